//! Shared fixtures: the trapping filters, an Envoy with one worker around one, and the stats of a
//! plugin's VM reloads.

use std::path::PathBuf;

use breakwater_envoy::{Envoy, EnvoyConfig, FailurePolicy, Response, Upstream, WasmFilter};

/// The current `breakwater-panic` module (traps on `x-panic`), built once per test process.
pub fn panic_wasm() -> PathBuf {
    breakwater_wasm::build("breakwater-panic")
        .unwrap_or_else(|e| panic!("the panic filter must build: {e}"))
}

/// The real `breakwater.wasm` built with its test-only `test-trap` feature (traps on
/// `x-test-trap`), once per test process, in a target directory of its own.
pub fn breakwater_trap_wasm() -> PathBuf {
    breakwater_wasm::build_with_features("breakwater", &["test-trap"])
        .unwrap_or_else(|e| panic!("breakwater.wasm with test-trap must build: {e}"))
}

pub fn upstream(name: &str) -> Upstream {
    Upstream::start(name).unwrap_or_else(|e| panic!("upstream {name} must start: {e}"))
}

pub fn start(config: &EnvoyConfig) -> Envoy {
    Envoy::start(config).unwrap_or_else(|e| panic!("Envoy must start: {e}"))
}

/// Envoy with ONE worker (so every request meets the same VM) and the panic filter under
/// `policy`, in front of cluster `a`.
pub fn panic_envoy(upstream: &Upstream, policy: FailurePolicy) -> Envoy {
    start(
        &EnvoyConfig::new()
            .cluster("a", upstream.addr())
            .concurrency(1)
            .filter(WasmFilter::new(panic_wasm()).failure_policy(policy)),
    )
}

/// `GET path`, which must get a response.
#[track_caller]
pub fn get(envoy: &Envoy, path: &str) -> Response {
    envoy
        .get(path)
        .unwrap_or_else(|e| panic!("GET {path} must get a response: {e}"))
}

/// A request that makes the panic filter trap its VM.
#[track_caller]
pub fn trap(envoy: &Envoy) -> Response {
    let request = breakwater_envoy::Request::get("/trap").header("x-panic", "1");
    envoy
        .send(&request)
        .unwrap_or_else(|e| panic!("the trapping request must get a response: {e}"))
}

/// A request that makes Breakwater built with `test-trap` trap its VM.
#[track_caller]
pub fn trap_breakwater(envoy: &Envoy) -> Response {
    let request = breakwater_envoy::Request::get("/trap").header("x-test-trap", "1");
    envoy
        .send(&request)
        .unwrap_or_else(|e| panic!("the trapping request must get a response: {e}"))
}

/// The VM reload counters of plugin `name` (`wasm.<name>.vm_reload_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reloads {
    pub success: u64,
    pub failure: u64,
    pub backoff: u64,
}

pub fn reloads(envoy: &Envoy, plugin: &str) -> Reloads {
    let stats = envoy.stats().unwrap_or_else(|e| panic!("stats: {e}"));
    let n = |what: &str| stats.number_or_zero(&format!("wasm.{plugin}.vm_reload_{what}"));
    Reloads {
        success: n("success"),
        failure: n("failure"),
        backoff: n("backoff"),
    }
}

/// Whether Envoy's log shows that a wasm VM of the plugin trapped.
pub fn trapped(envoy: &Envoy) -> bool {
    envoy.log().contains("failed: Uncaught RuntimeError")
}
