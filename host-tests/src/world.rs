//! [`World`]: Envoy with N workers around one module, a virtual clock, and scripted upstreams.

use crate::builder::WorldBuilder;
use crate::engine;
use crate::error::Failure;
use crate::events::EventKind;
use crate::host::HostState;
use crate::interleave::Interleaving;
use crate::lifecycle;
use crate::metrics::{MetricKind, MetricValue};
use crate::observe::{LogLine, Response, StreamId, StreamState, VmId};
use crate::request::RequestBuilder;
use crate::state::{Core, FuelReport};
use crate::upstream::{Attempt, UpstreamScript};
use crate::HarnessError;
use std::rc::Rc;
use std::time::{Duration, SystemTime};
use wasmtime::Linker;

/// A value in shared data and its compare-and-swap token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedValue {
    pub bytes: Vec<u8>,
    pub cas: u32,
}

impl SharedValue {
    /// The value as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}

/// A running Envoy stand-in; see the crate docs for a tour.
///
/// Operations that run wasm come in two forms: `x()` panics with the failure report (the panic
/// message, the log, the last scheduling steps) when the module traps, which fails the test;
/// `try_x()` returns the [`Failure`] instead. After a failure the world is poisoned: every later
/// operation reports the same failure.
pub struct World {
    core: Rc<Core>,
    linker: Linker<HostState>,
    workers: Vec<usize>,
    main: Option<usize>,
}

#[track_caller]
fn or_panic<T>(result: Result<T, Failure>) -> T {
    result.unwrap_or_else(|failure| panic!("{failure}"))
}

impl World {
    /// A builder with the defaults described on [`WorldBuilder`].
    pub fn builder() -> WorldBuilder {
        WorldBuilder::default()
    }

    pub(crate) fn new(
        core: Rc<Core>,
        linker: Linker<HostState>,
        workers: Vec<usize>,
        main: Option<usize>,
    ) -> Self {
        World {
            core,
            linker,
            workers,
            main,
        }
    }

    pub(crate) fn core(&self) -> &Core {
        &self.core
    }

    pub(crate) fn worker_slot(&self, worker: usize) -> Option<usize> {
        self.workers.get(worker).copied()
    }

    /// How many workers the world runs.
    pub fn workers(&self) -> usize {
        self.workers.len()
    }

    /// Scripts (or re-scripts) the upstream of `cluster`: a [`Reply`](crate::Reply) for every
    /// request, a [`Reply::sequence`](crate::Reply::sequence), or a closure of the
    /// [`UpstreamRequest`](crate::UpstreamRequest). Calls to unscripted clusters are refused.
    pub fn upstream(&mut self, cluster: &str, script: impl UpstreamScript) -> &mut Self {
        self.core
            .state
            .borrow_mut()
            .upstreams
            .insert(cluster.to_string(), Box::new(script));
        self
    }

    /// Starts describing a downstream request to worker `worker`.
    pub fn request(&mut self, worker: usize) -> RequestBuilder<'_> {
        RequestBuilder::new(self, worker)
    }

    /// Virtual time since the world started.
    pub fn now(&self) -> Duration {
        self.core.state.borrow().now
    }

    /// The Unix time the module sees now.
    pub fn unix_time(&self) -> SystemTime {
        crate::clock::unix_time(self.now())
    }

    /// Runs everything due now, without moving the clock.
    #[track_caller]
    pub fn settle(&mut self) {
        or_panic(self.try_settle())
    }

    pub fn try_settle(&mut self) -> Result<(), Failure> {
        let now = self.now();
        engine::run_until(&self.core, now)
    }

    /// Moves the clock forward by `by`, running every event (ticks, upstream answers, timeouts)
    /// in time order on the way.
    #[track_caller]
    pub fn advance(&mut self, by: Duration) {
        or_panic(self.try_advance(by))
    }

    pub fn try_advance(&mut self, by: Duration) -> Result<(), Failure> {
        let until = self.now() + by;
        engine::run_until(&self.core, until)
    }

    /// Moves the clock to `at` (virtual time since the start), if it is not already later.
    #[track_caller]
    pub fn advance_to(&mut self, at: Duration) {
        or_panic(self.try_advance_to(at))
    }

    pub fn try_advance_to(&mut self, at: Duration) -> Result<(), Failure> {
        engine::run_until(&self.core, at.max(self.now()))
    }

    /// Runs until every stream has finished and only ticks remain; answers the virtual time it
    /// took. Fails if that does not happen within the idle limit (a stream stuck in the filter).
    #[track_caller]
    pub fn run_until_idle(&mut self) -> Duration {
        or_panic(self.try_run_until_idle())
    }

    pub fn try_run_until_idle(&mut self) -> Result<Duration, Failure> {
        let limit = self.core.state.borrow().settings.idle_limit;
        engine::run_until_idle(&self.core, limit)
    }

    /// The client of `stream` disconnects now (after whatever else is due now).
    #[track_caller]
    pub fn disconnect(&mut self, stream: StreamId) {
        or_panic(self.try_disconnect(stream))
    }

    pub fn try_disconnect(&mut self, stream: StreamId) -> Result<(), Failure> {
        self.schedule_disconnect(stream, Duration::ZERO);
        self.try_settle()
    }

    /// The client of `stream` will disconnect `after` from now.
    pub fn disconnect_after(&mut self, stream: StreamId, after: Duration) {
        self.schedule_disconnect(stream, after);
    }

    fn schedule_disconnect(&mut self, stream: StreamId, after: Duration) {
        let mut state = self.core.state.borrow_mut();
        let slot = state.streams[stream.0].slot;
        let at = state.now + after;
        state.events.push(at, slot, EventKind::Disconnect(stream));
    }

    /// Applies a new plugin configuration as Envoy does: a canary first, then a new root
    /// context per VM while shared data stays. Answers whether it was accepted.
    #[track_caller]
    pub fn reconfigure(&mut self, configuration: impl Into<Vec<u8>>) -> bool {
        match self.try_reconfigure(configuration) {
            Ok(accepted) => accepted,
            Err(error) => panic!("{error}"),
        }
    }

    pub fn try_reconfigure(
        &mut self,
        configuration: impl Into<Vec<u8>>,
    ) -> Result<bool, HarnessError> {
        engine::check(&self.core)?;
        lifecycle::reconfigure(&self.core, &self.linker, configuration.into())
    }

    /// Changes how simultaneous work of different workers is ordered from now on.
    pub fn set_interleaving(&mut self, interleaving: Interleaving) {
        self.core.state.borrow_mut().interleaving = interleaving;
    }

    /// The last scheduling steps (events run, preemptions), oldest first.
    pub fn trace(&self) -> Vec<String> {
        self.core.state.borrow().trace_lines()
    }

    /// The response the client received, once it has one.
    pub fn response(&self, stream: StreamId) -> Option<Response> {
        self.core.state.borrow().streams[stream.0].result.clone()
    }

    /// Where `stream` is.
    pub fn stream_state(&self, stream: StreamId) -> StreamState {
        self.core.state.borrow().streams[stream.0].state.clone()
    }

    /// The filter's context id for `stream`, once it arrived.
    pub fn context_id(&self, stream: StreamId) -> Option<u32> {
        Some(self.core.state.borrow().streams[stream.0].ctx).filter(|c| *c != 0)
    }

    /// The callbacks run in `stream`'s context so far, in order.
    pub fn callbacks(&self, stream: StreamId) -> Vec<crate::Callback> {
        self.core.state.borrow().streams[stream.0].callbacks.clone()
    }

    /// The fuel `stream`'s own callbacks used.
    pub fn stream_fuel(&self, stream: StreamId) -> u64 {
        self.core.state.borrow().streams[stream.0].fuel
    }

    /// Every request that reached `cluster`'s upstream, in order.
    pub fn upstream_attempts(&self, cluster: &str) -> Vec<Attempt> {
        self.core
            .state
            .borrow()
            .attempts
            .iter()
            .filter(|a| a.request.cluster == cluster)
            .cloned()
            .collect()
    }

    /// Every request that reached any upstream, in order.
    pub fn attempts(&self) -> Vec<Attempt> {
        self.core.state.borrow().attempts.clone()
    }

    /// Everything logged so far.
    pub fn logs(&self) -> Vec<LogLine> {
        self.core.state.borrow().logs.clone()
    }

    /// The log lines whose message contains `needle`.
    pub fn logs_containing(&self, needle: &str) -> Vec<LogLine> {
        self.core
            .state
            .borrow()
            .logs
            .iter()
            .filter(|l| l.message.contains(needle))
            .cloned()
            .collect()
    }

    /// A counter's or gauge's value (the counter if both exist).
    pub fn metric(&self, name: &str) -> Option<u64> {
        self.counter(name).or_else(|| self.gauge(name))
    }

    pub fn counter(&self, name: &str) -> Option<u64> {
        match self
            .core
            .state
            .borrow()
            .metrics
            .get(MetricKind::Counter, name)
        {
            Some(MetricValue::Counter(v)) => Some(*v),
            _ => None,
        }
    }

    pub fn gauge(&self, name: &str) -> Option<u64> {
        match self
            .core
            .state
            .borrow()
            .metrics
            .get(MetricKind::Gauge, name)
        {
            Some(MetricValue::Gauge(v)) => Some(*v),
            _ => None,
        }
    }

    /// Every value recorded in a histogram, in order.
    pub fn histogram(&self, name: &str) -> Option<Vec<u64>> {
        match self
            .core
            .state
            .borrow()
            .metrics
            .get(MetricKind::Histogram, name)
        {
            Some(MetricValue::Histogram(v)) => Some(v.clone()),
            _ => None,
        }
    }

    /// Every metric defined so far.
    pub fn metrics(&self) -> Vec<(MetricKind, String, MetricValue)> {
        self.core
            .state
            .borrow()
            .metrics
            .all()
            .iter()
            .map(|((kind, name), value)| (*kind, name.clone(), value.clone()))
            .collect()
    }

    /// A shared-data value and its cas.
    pub fn shared_data(&self, key: impl AsRef<[u8]>) -> Option<SharedValue> {
        self.core
            .state
            .borrow()
            .shared
            .get(key.as_ref())
            .map(|(bytes, cas)| SharedValue {
                bytes: bytes.to_vec(),
                cas,
            })
    }

    /// Every shared-data key, in byte order.
    pub fn shared_data_keys(&self) -> Vec<Vec<u8>> {
        self.core
            .state
            .borrow()
            .shared
            .keys()
            .map(<[u8]>::to_vec)
            .collect()
    }

    /// Writes shared data as another plugin or an operator could (to plant garbage, say): an
    /// unconditional write that takes a fresh cas, which it answers.
    pub fn set_shared_data(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> u32 {
        let mut state = self.core.state.borrow_mut();
        state
            .shared
            .set(key.as_ref(), value.as_ref(), 0)
            .unwrap_or_default()
    }

    /// The live VMs, main first, then workers.
    pub fn vms(&self) -> Vec<VmId> {
        self.core
            .slots
            .borrow()
            .iter()
            .filter(|s| s.alive)
            .map(|s| s.id)
            .collect()
    }

    fn slot_of(&self, vm: VmId) -> Option<usize> {
        match vm {
            VmId::Main => self.main,
            VmId::Worker(n) => self.worker_slot(n),
            VmId::Canary(_) => None,
        }
    }

    /// The root context new streams of `vm` attach to.
    pub fn root_context_id(&self, vm: impl Into<VmId>) -> Option<u32> {
        let slot = self.slot_of(vm.into())?;
        let slots = self.core.slots.borrow();
        slots[slot].vm.as_ref().map(|v| v.store.data().active_root)
    }

    /// The tick period of `vm`'s active root context, `None` when it has none.
    pub fn tick_period(&self, vm: impl Into<VmId>) -> Option<Duration> {
        let slot = self.slot_of(vm.into())?;
        let mut slots = self.core.slots.borrow_mut();
        let host = slots[slot].vm.as_mut()?.store.data_mut();
        let root = host.active_root;
        host.root_mut(root)
            .map(|r| r.tick_period)
            .filter(|p| !p.is_zero())
    }

    /// Fuel (wasm instructions, roughly) used so far, in all and per callback.
    pub fn fuel(&self) -> FuelReport {
        let state = self.core.state.borrow();
        FuelReport {
            total: state.fuel.total,
            by_callback: state.fuel.by_callback.clone(),
            finished_streams: state.streams.iter().filter(|s| s.finished()).count(),
        }
    }
}
