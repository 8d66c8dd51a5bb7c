//! One VM: a wasmtime instance of the module in its own `Store<HostState>`, the proxy-wasm
//! exports Envoy calls, and the one place that calls them ([`Vm::call`]), which meters fuel and
//! turns a trap into a [`Failure`] carrying the panic message and the log; the VM's host state
//! ([`HostState`]: its contexts, the call in progress, the actions deferred to after it); and
//! the [`Core`], the world's state beside the slots that hold its VMs.
//!
//! These are one module because their types hold each other: the world's slots hold the VMs,
//! each VM's store holds its host state, and the host state points back at the world, which a
//! host function reaches through it.
//!
//! A VM being called is taken out of its [`Slot`] for the duration of the call, so that a host
//! call of that VM may run another VM (preemption, see [`crate::Interleaving`]) without the two
//! borrowing each other.

mod host;
mod instrument;

pub(crate) use host::{
    CallOutcome, CallResponse, Ctx, Deferred, Direction, HostState, PendingCall, Root,
};

use crate::error::Failure;
use crate::observe::{Callback, LogLevel, VmId};
use crate::state::State;
use crate::HarnessError;
use rand::rngs::StdRng;
use std::cell::RefCell;
use std::rc::Rc;
use wasmtime::{Instance, Linker, Module, Store, TypedFunc, WasmParams, WasmResults};

/// Everything the world owns.
pub(crate) struct Core {
    pub state: RefCell<State>,
    pub slots: RefCell<Vec<Slot>>,
}

/// One VM's place: empty while the VM is being called, dead once a canary is killed or its
/// plugin removed.
pub(crate) struct Slot {
    pub id: VmId,
    /// The plugin it runs (an index into [`State::plugins`](crate::state::State::plugins); 0 is the primary).
    pub plugin: usize,
    pub vm: Option<Vm>,
    pub alive: bool,
}

pub(crate) struct Vm {
    pub store: Store<HostState>,
    pub ex: Exports,
}

/// `proxy_on_http_call_response(root, token, headers, body_size, trailers)`.
type CallResponseFn = TypedFunc<(u32, u32, u32, u32, u32), ()>;

/// The exports Envoy calls; a missing one means "do the default" (cpp-host skips it).
#[derive(Clone)]
pub(crate) struct Exports {
    pub initialize: Option<TypedFunc<(), ()>>,
    pub start: Option<TypedFunc<(), ()>>,
    pub context_create: Option<TypedFunc<(u32, u32), ()>>,
    pub vm_start: Option<TypedFunc<(u32, u32), u32>>,
    pub configure: Option<TypedFunc<(u32, u32), u32>>,
    pub tick: Option<TypedFunc<u32, ()>>,
    pub queue_ready: Option<TypedFunc<(u32, u32), ()>>,
    pub http_call_response: Option<CallResponseFn>,
    pub request_headers: Option<TypedFunc<(u32, u32, u32), u32>>,
    pub request_body: Option<TypedFunc<(u32, u32, u32), u32>>,
    pub request_trailers: Option<TypedFunc<(u32, u32), u32>>,
    pub response_headers: Option<TypedFunc<(u32, u32, u32), u32>>,
    pub response_body: Option<TypedFunc<(u32, u32, u32), u32>>,
    pub response_trailers: Option<TypedFunc<(u32, u32), u32>>,
    pub log: Option<TypedFunc<u32, ()>>,
    pub done: Option<TypedFunc<u32, u32>>,
    pub delete: Option<TypedFunc<u32, ()>>,
}

/// The ABI version export Envoy requires of a 0.2.1 module.
const ABI_VERSION: &str = "proxy_abi_version_0_2_1";

impl Vm {
    /// Instantiates the module for VM `id` of plugin `plugin` in world slot `slot`.
    pub fn new(
        core: &Rc<Core>,
        slot: usize,
        (id, plugin): (VmId, usize),
        module: &Module,
        linker: &Linker<HostState>,
        rng: StdRng,
    ) -> Result<Vm, HarnessError> {
        let host = HostState::new(slot, (id, plugin), core, rng);
        let mut store = Store::new(module.engine(), host);
        store
            .set_fuel(u64::MAX)
            .map_err(|e| HarnessError::Invalid(format!("fuel: {e}")))?;
        let instantiate_error = |e: wasmtime::Error| HarnessError::Instantiate {
            vm: id,
            reason: format!("{e:#}"),
        };
        let counted =
            instrument::instrument(linker, &mut store, module).map_err(instantiate_error)?;
        let instance = counted
            .instantiate(&mut store, module)
            .map_err(instantiate_error)?;
        if instance.get_func(&mut store, ABI_VERSION).is_none() {
            return Err(HarnessError::NotProxyWasm(format!(
                "no `{ABI_VERSION}` export (the harness implements ABI 0.2.1)"
            )));
        }
        let memory = instance
            .get_memory(&mut store, "memory")
            .ok_or_else(|| HarnessError::NotProxyWasm("no exported `memory`".into()))?;
        let alloc = match typed(&instance, &mut store, "malloc")? {
            Some(f) => f,
            None => typed(&instance, &mut store, "proxy_on_memory_allocate")?.ok_or_else(|| {
                HarnessError::NotProxyWasm("no `malloc` or `proxy_on_memory_allocate`".into())
            })?,
        };
        store.data_mut().memory = Some(memory);
        store.data_mut().alloc = Some(alloc);
        let ex = Exports {
            initialize: typed(&instance, &mut store, "_initialize")?,
            start: typed(&instance, &mut store, "_start")?,
            context_create: typed(&instance, &mut store, "proxy_on_context_create")?,
            vm_start: typed(&instance, &mut store, "proxy_on_vm_start")?,
            configure: typed(&instance, &mut store, "proxy_on_configure")?,
            tick: typed(&instance, &mut store, "proxy_on_tick")?,
            queue_ready: typed(&instance, &mut store, "proxy_on_queue_ready")?,
            http_call_response: typed(&instance, &mut store, "proxy_on_http_call_response")?,
            request_headers: typed(&instance, &mut store, "proxy_on_request_headers")?,
            request_body: typed(&instance, &mut store, "proxy_on_request_body")?,
            request_trailers: typed(&instance, &mut store, "proxy_on_request_trailers")?,
            response_headers: typed(&instance, &mut store, "proxy_on_response_headers")?,
            response_body: typed(&instance, &mut store, "proxy_on_response_body")?,
            response_trailers: typed(&instance, &mut store, "proxy_on_response_trailers")?,
            log: typed(&instance, &mut store, "proxy_on_log")?,
            done: typed(&instance, &mut store, "proxy_on_done")?,
            delete: typed(&instance, &mut store, "proxy_on_delete")?,
        };
        Ok(Vm { store, ex })
    }

    pub fn id(&self) -> VmId {
        self.store.data().vm
    }

    /// Calls `func` as callback `callback` of context `context`: resets the call state, meters
    /// fuel (charged to the callback and, for a stream's context, to the stream), and reports a
    /// trap as a [`Failure`]. The effective context and stop flag are left for the caller.
    pub fn call<P: WasmParams, R: WasmResults>(
        &mut self,
        core: &Core,
        callback: Callback,
        context: u32,
        func: TypedFunc<P, R>,
        params: P,
    ) -> Result<R, Failure> {
        let logs_before = core.state.borrow().logs.len();
        let host = self.store.data_mut();
        host.call.callback = Some(callback);
        host.call.current = context;
        host.call.effective = 0;
        host.call.stop_iteration = false;
        let before = self.store.get_fuel().unwrap_or(0);
        let result = func.call(&mut self.store, params);
        let used = before.saturating_sub(self.store.get_fuel().unwrap_or(0));
        let stream = self.store.data().stream_of(context);
        {
            let mut state = core.state.borrow_mut();
            state.fuel.charge(callback, used);
            if let Some(stream) = stream {
                let s = &mut state.streams[stream.0];
                s.fuel += used;
                s.callbacks.push(callback);
            }
        }
        self.store.data_mut().call.callback = None;
        result.map_err(|error| self.failure(core, callback, context, logs_before, &error))
    }

    fn failure(
        &self,
        core: &Core,
        callback: Callback,
        context: u32,
        logs_before: usize,
        error: &wasmtime::Error,
    ) -> Failure {
        let mut state = core.state.borrow_mut();
        if let Some(earlier) = &state.failure {
            return earlier.clone();
        }
        let vm = self.id();
        let panic = state.logs[logs_before.min(state.logs.len())..]
            .iter()
            .rev()
            .find(|l| l.vm == vm && l.level == LogLevel::Critical)
            .map(|l| l.message.clone());
        let failure = Failure {
            vm: Some(vm),
            callback: Some(callback),
            context,
            message: format!("{error:?}"),
            panic,
            logs: state.logs.clone(),
            trace: state.trace_lines(),
        };
        state.failure = Some(failure.clone());
        failure
    }
}

/// An optional export with the signature Envoy calls it with; a wrong signature is an error.
fn typed<P: WasmParams, R: WasmResults>(
    instance: &Instance,
    store: &mut Store<HostState>,
    name: &str,
) -> Result<Option<TypedFunc<P, R>>, HarnessError> {
    match instance.get_func(&mut *store, name) {
        None => Ok(None),
        Some(func) => func.typed::<P, R>(&*store).map(Some).map_err(|e| {
            HarnessError::NotProxyWasm(format!("export `{name}` has an unexpected signature: {e}"))
        }),
    }
}
