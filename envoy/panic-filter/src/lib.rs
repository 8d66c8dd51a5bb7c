//! A proxy-wasm HTTP filter that traps its VM on request: the fixture of the failure-policy
//! tests (`envoy/tests/failure_policy`).
//!
//! # Why
//! Envoy's `failure_policy` (FAIL_CLOSED, FAIL_OPEN, FAIL_RELOAD) only matters once a plugin's
//! VM has failed at run time, and Breakwater is written never to trap on input. This filter
//! traps whenever it is asked to, so the tests can watch what Envoy does next.
//!
//! # What it does
//! - A request carrying `x-panic` makes the filter panic in `on_http_request_headers`. Built
//!   with `panic = "abort"` (the workspace's release profile), the panic is a wasm trap: Envoy
//!   marks the VM failed.
//! - Every other request passes, and its response carries `x-panic-vm` (an id of the VM that
//!   served it, fixed when the VM starts, so a replaced VM shows a new id), `x-panic-served` (how
//!   many requests this VM has served) and `x-panic-total` (how many requests all VMs of the
//!   plugin have served, counted in shared data, which outlives any one VM).

use std::cell::Cell;
use std::time::UNIX_EPOCH;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, MapType, Status};

/// The shared-data key of the request count.
const TOTAL_KEY: &str = "breakwater-panic/served";
/// Attempts of the count's compare-and-swap before it gives up.
const CAS_ATTEMPTS: u32 = 16;

thread_local! {
    /// This VM's id (0 until the VM starts) and its served count.
    static VM: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(PanicRoot) });
}}

struct PanicRoot;

impl Context for PanicRoot {}

impl RootContext for PanicRoot {
    fn on_vm_start(&mut self, _vm_configuration_size: usize) -> bool {
        // The host clock in nanoseconds identifies this VM well enough: a reload starts the
        // new VM later than the one it replaces.
        let id = hostcalls::get_current_time()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(1, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        VM.with(|vm| vm.set((id, 0)));
        log::info!("breakwater-panic: vm {id:x} started");
        true
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(PanicStream))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct PanicStream;

impl Context for PanicStream {}

/// Adds one to the shared count; the count after it, or `None` if shared data kept refusing.
fn count_in_shared_data() -> Option<u64> {
    for _ in 0..CAS_ATTEMPTS {
        let (bytes, cas) = hostcalls::get_shared_data(TOTAL_KEY).ok()?;
        let current = bytes
            .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
            .map_or(0, u64::from_le_bytes);
        let next = current.saturating_add(1);
        // A non-zero cas on an absent key inserts (Envoy's rule); 0 would overwrite blindly.
        match hostcalls::set_shared_data(
            TOTAL_KEY,
            Some(&next.to_le_bytes()),
            Some(cas.unwrap_or(u32::MAX)),
        ) {
            Ok(()) => return Some(next),
            Err(Status::CasMismatch) => continue,
            Err(_) => return None,
        }
    }
    None
}

impl HttpContext for PanicStream {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        if let Ok(Some(_)) = hostcalls::get_map_value_bytes(MapType::HttpRequestHeaders, "x-panic")
        {
            panic!("breakwater-panic: x-panic asked this VM to trap");
        }
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let (id, served) = VM.with(|vm| {
            let (id, served) = vm.get();
            vm.set((id, served + 1));
            (id, served + 1)
        });
        let total = count_in_shared_data().map_or_else(|| "unknown".to_string(), |t| t.to_string());
        let _ = hostcalls::add_map_value(
            MapType::HttpResponseHeaders,
            "x-panic-vm",
            &format!("{id:x}"),
        );
        let _ = hostcalls::add_map_value(
            MapType::HttpResponseHeaders,
            "x-panic-served",
            &served.to_string(),
        );
        let _ = hostcalls::add_map_value(MapType::HttpResponseHeaders, "x-panic-total", &total);
        Action::Continue
    }
}
