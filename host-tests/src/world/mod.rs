//! [`World`]: Envoy with N workers around one module, a virtual clock, and scripted upstreams.
//!
//! This is the API a test drives, at the top of the crate: the world ([`World`]) and its builder
//! ([`WorldBuilder`]), requests ([`RequestBuilder`]), what a test reads back, and
//! the world's side of faults and plugins.

mod builder;
mod faults;
mod inspect;
mod plugins;
mod request;

pub use builder::{WorldBuilder, DEFAULT_ROUTE_TIMEOUT};
pub use inspect::SharedValue;
pub use request::RequestBuilder;

use crate::contexts::lifecycle;
use crate::engine;
use crate::error::Failure;
use crate::events::EventKind;
use crate::interleave::Interleaving;
use crate::observe::StreamId;
use crate::upstream::UpstreamScript;
use crate::vm::{Core, HostState};
use crate::HarnessError;
use std::rc::Rc;
use std::time::{Duration, SystemTime};
use wasmtime::Linker;

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

    pub(crate) fn core_and_linker(&self) -> (&Rc<Core>, &Linker<HostState>) {
        (&self.core, &self.linker)
    }

    pub(crate) fn worker_slot(&self, worker: usize) -> Option<usize> {
        self.workers.get(worker).copied()
    }

    pub(crate) fn main_slot(&self) -> Option<usize> {
        self.main
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

    /// From now on the cluster manager has no cluster `cluster` (never defined, removed, or
    /// still warming): `xds.cluster_name` has no answer for requests routed to it, the router
    /// answers them with its 503 `cluster_not_found` (flag NC), and `proxy_http_call` to it is
    /// `BadArgument`. See [`crate::clusters`].
    pub fn cluster_absent(&mut self, cluster: &str) -> &mut Self {
        self.set_unavailable(cluster, Some(crate::clusters::Unavailable::Absent))
    }

    /// From now on every host of `cluster` fails its health checks: the router answers
    /// requests routed to it with its 503 `no healthy upstream` (flag UH), and
    /// `proxy_http_call` to it fails inline with `InternalFailure`. See [`crate::clusters`].
    pub fn cluster_unhealthy(&mut self, cluster: &str) -> &mut Self {
        self.set_unavailable(cluster, Some(crate::clusters::Unavailable::NoHealthyHost))
    }

    /// `cluster` exists and has healthy hosts again: its script answers.
    pub fn cluster_ready(&mut self, cluster: &str) -> &mut Self {
        self.set_unavailable(cluster, None)
    }

    fn set_unavailable(
        &mut self,
        cluster: &str,
        unavailable: Option<crate::clusters::Unavailable>,
    ) -> &mut Self {
        {
            let mut state = self.core.state.borrow_mut();
            match unavailable {
                Some(why) => state.unavailable.insert(cluster.to_string(), why),
                None => state.unavailable.remove(cluster),
            };
        }
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

    /// The Unix time the module sees now on the wall clock (stepped, if the test stepped it).
    pub fn unix_time(&self) -> SystemTime {
        let state = self.core.state.borrow();
        crate::clock::unix_time(state.now, state.wall_step)
    }

    /// The monotonic clock the module reads now (WASI `clock_time_get(MONOTONIC)`), in
    /// nanoseconds: [`crate::clock::MONOTONIC_START`] plus virtual time, never stepped.
    pub fn monotonic_nanos(&self) -> u64 {
        crate::clock::monotonic_nanos(self.now())
    }

    /// Steps the wall clock forward by `by`, as NTP or an operator steps a machine's clock:
    /// `proxy_get_current_time_nanoseconds`, WASI's realtime clock and `request.time` jump; the
    /// monotonic clock, virtual time and every timer stay where they are, and nothing runs.
    pub fn step_wall_clock_forward(&mut self, by: Duration) {
        self.step_wall_clock(crate::clock::step(by, true));
    }

    /// Steps the wall clock back by `by`; see [`World::step_wall_clock_forward`].
    pub fn step_wall_clock_back(&mut self, by: Duration) {
        self.step_wall_clock(crate::clock::step(by, false));
    }

    fn step_wall_clock(&mut self, step: crate::clock::WallStep) {
        let mut state = self.core.state.borrow_mut();
        state.wall_step = state.wall_step.saturating_add(step);
        let total = state.wall_step;
        state.trace(|| format!("wall clock stepped by {step} ns (now {total} ns off)"));
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

    /// Runs worker `worker`'s timer now, if its active root has one set: `on_tick` as if its
    /// period had just elapsed, after which the period starts again. Envoy never fires a timer
    /// early; this is for a test that wants a filter's periodic work (a flush) at an instant it
    /// chooses. Returns whether a tick ran.
    #[track_caller]
    pub fn fire_timer(&mut self, worker: usize) -> bool {
        or_panic(self.try_fire_timer(worker))
    }

    pub fn try_fire_timer(&mut self, worker: usize) -> Result<bool, Failure> {
        engine::check(&self.core)?;
        let Some(slot) = self.worker_slot(worker) else {
            return Ok(false);
        };
        let mut vm = lifecycle::take(&self.core, slot)?;
        let host = vm.store.data_mut();
        let root = host.active_root;
        let armed = host
            .root_mut(root)
            .filter(|r| !r.tick_period.is_zero())
            .map(|r| r.tick_generation);
        let result = match armed {
            Some(generation) => {
                lifecycle::tick(&self.core, &mut vm, root, generation).map(|()| true)
            }
            None => Ok(false),
        };
        lifecycle::put(&self.core, slot, vm);
        let ran = result?;
        self.try_settle()?;
        Ok(ran)
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
    /// context per VM while shared data stays. Answers whether it was accepted. The same bytes
    /// as the configuration in effect change nothing and answer `true` (see
    /// [`crate::lifecycle`]).
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
        lifecycle::reconfigure(&self.core, &self.linker, configuration.into(), None)
    }

    /// Like [`World::reconfigure`], under a new plugin name (property `plugin_name`), the root id
    /// unchanged: the ECDS update that an istiod upgrade to Istio 1.30 sends, which renames
    /// `<namespace>.<name>` to `<namespace>.<name>~istio-translated-wasmplugin`.
    #[track_caller]
    pub fn reconfigure_renamed(
        &mut self,
        plugin_name: &str,
        configuration: impl Into<Vec<u8>>,
    ) -> bool {
        let name = Some(plugin_name.to_owned());
        let renamed = engine::check(&self.core)
            .map_err(HarnessError::from)
            .and_then(|()| {
                lifecycle::reconfigure(&self.core, &self.linker, configuration.into(), name)
            });
        match renamed {
            Ok(accepted) => accepted,
            Err(error) => panic!("{error}"),
        }
    }

    /// Replaces the connection manager's `local_reply_config` (see
    /// [`WorldBuilder::local_reply_config`]).
    pub fn set_local_reply_config(
        &mut self,
        hook: impl FnMut(&mut crate::LocalReplyEdit<'_>) + 'static,
    ) {
        self.core.state.borrow_mut().local_reply_hook = Some(Box::new(hook));
    }

    /// Removes the connection manager's `local_reply_config`: local replies go out as given.
    pub fn clear_local_reply_config(&mut self) {
        self.core.state.borrow_mut().local_reply_hook = None;
    }

    /// Changes how simultaneous work of different workers is ordered from now on.
    pub fn set_interleaving(&mut self, interleaving: Interleaving) {
        self.core.state.borrow_mut().interleaving = interleaving;
    }

    /// The last scheduling steps (events run, preemptions), oldest first.
    pub fn trace(&self) -> Vec<String> {
        self.core.state.borrow().trace_lines()
    }
}
