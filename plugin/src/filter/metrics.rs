//! Envoy stats, per upstream cluster.
//!
//! # Names
//! Every stat is named `breakwater.breakwater_cluster=.=<cluster>;.;<metric>` (and
//! `…;.;reason=.=<reason>;.;retries_skipped_total` for skipped retries). That is Istio's tag
//! encoding: a `stats_tags` entry with regex `(breakwater_cluster=\.=(.*?);\.;)` (which Istio's
//! `extraStatTags: [breakwater_cluster]` generates) strips the tag from the name and turns it into a
//! label, so Prometheus sees `breakwater_requests_total{breakwater_cluster="payments"}`. Cluster
//! names may contain dots and `|` (Istio's `outbound|8080||svc.ns.svc.cluster.local`); a `;` would
//! break the encoding and is replaced by `_`.
//!
//! Metric ids are defined lazily, once per cluster and metric in each worker VM, and cached.
//! Counters from all workers add up in the same Envoy stat.

use std::rc::Rc;

type HashMap<K, V> = hashbrown::HashMap<K, V, crate::policy::names::FnvBuildHasher>;

use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;

/// The counters the filter keeps per cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    /// Client requests routed to the cluster.
    Requests,
    /// Outcomes the breaker counted as failures (`failure_on`).
    Failures,
    /// Fallback replies served because the breaker was open (or `forced_open`).
    Rejected,
    /// Requests that `shadow` mode would have rejected.
    ShadowRejected,
    BreakerOpened,
    BreakerHalfOpened,
    BreakerClosed,
    /// Times `shadow` mode would have opened the breaker.
    BreakerWouldOpen,
    /// Half-open probe slots given back after `probe_timeout`.
    ProbesReclaimed,
    /// Retry attempts dispatched (a dispatch the host refused at once is no retry).
    Retries,
    /// Client requests that succeeded after at least one retry.
    RetrySuccesses,
    /// Client requests that failed after `max_attempts` attempts.
    RetriesExhausted,
    /// Shared-data entries that did not decode and were replaced by a fresh state.
    StateErrors,
    /// Shared-data updates given up after too many compare-and-swap conflicts.
    StateContention,
    /// Requests that ended on a retry whose response could not be relayed: larger than the
    /// worker's byte budget, or a call reset after an answered attempt (Envoy drops a call's
    /// response past its 32 MiB buffer and reports a reset). The client got the last real answer.
    ResponsesDropped,
    /// Breaker states that decoded but held a time further ahead than the policy allows (an
    /// open time, a probe lease, a window bucket), brought within it.
    StateClamped,
    /// Failed first attempts that Envoy's router had already retried itself (a route
    /// `retry_policy`): Breakwater's retries come on top of the router's.
    StackedRetries,
}

/// Why a retry that the outcome asked for did not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    NotEligible,
    Budget,
    Deadline,
    Breaker,
    /// The host refused the dispatch at once: nothing reached the upstream.
    Refused,
    /// Keeping the request for a retry would have taken the worker past its byte budget.
    Memory,
    /// The attempt was answered before the client's body ended: a retry could not carry it all.
    IncompleteBody,
    /// The upstream's `Retry-After` asked for longer than `max_delay`.
    RetryAfter,
    /// A gRPC request: the filter cannot relay a retried gRPC response intact.
    Grpc,
}

impl SkipReason {
    pub const ALL: [SkipReason; 9] = [
        SkipReason::NotEligible,
        SkipReason::Budget,
        SkipReason::Deadline,
        SkipReason::Breaker,
        SkipReason::Refused,
        SkipReason::Memory,
        SkipReason::IncompleteBody,
        SkipReason::RetryAfter,
        SkipReason::Grpc,
    ];

    pub fn label(self) -> &'static str {
        match self {
            SkipReason::NotEligible => "not_eligible",
            SkipReason::Budget => "budget",
            SkipReason::Deadline => "deadline",
            SkipReason::Breaker => "breaker",
            SkipReason::Refused => "refused",
            SkipReason::Memory => "memory",
            SkipReason::IncompleteBody => "incomplete_body",
            SkipReason::RetryAfter => "retry_after",
            SkipReason::Grpc => "grpc",
        }
    }
}

impl Counter {
    const ALL: [Counter; 17] = [
        Counter::Requests,
        Counter::Failures,
        Counter::Rejected,
        Counter::ShadowRejected,
        Counter::BreakerOpened,
        Counter::BreakerHalfOpened,
        Counter::BreakerClosed,
        Counter::BreakerWouldOpen,
        Counter::ProbesReclaimed,
        Counter::Retries,
        Counter::RetrySuccesses,
        Counter::RetriesExhausted,
        Counter::StateErrors,
        Counter::StateContention,
        Counter::ResponsesDropped,
        Counter::StateClamped,
        Counter::StackedRetries,
    ];

    /// The metric part of the stat name.
    pub fn name(self) -> &'static str {
        match self {
            Counter::Requests => "requests_total",
            Counter::Failures => "failures_total",
            Counter::Rejected => "rejected_total",
            Counter::ShadowRejected => "shadow_rejected_total",
            Counter::BreakerOpened => "breaker_opened_total",
            Counter::BreakerHalfOpened => "breaker_half_opened_total",
            Counter::BreakerClosed => "breaker_closed_total",
            Counter::BreakerWouldOpen => "breaker_would_open_total",
            Counter::ProbesReclaimed => "probes_reclaimed_total",
            Counter::Retries => "retries_total",
            Counter::RetrySuccesses => "retry_successes_total",
            Counter::RetriesExhausted => "retries_exhausted_total",
            Counter::StateErrors => "state_errors_total",
            Counter::StateContention => "state_contention_total",
            Counter::ResponsesDropped => "retry_responses_dropped_total",
            Counter::StackedRetries => "stacked_retries_total",
            Counter::StateClamped => "state_clamped_total",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The gauge of the breaker's state: 0 closed, 1 open, 2 half-open.
pub const STATE_GAUGE: &str = "breaker_state";

/// The gauge of the phase a `shadow` breaker would be in (same values): its state machine runs
/// beside the traffic and rejects nothing, so its phase is not the breaker's state, which
/// stays 0 while the cluster is in shadow mode.
pub const SHADOW_STATE_GAUGE: &str = "breaker_shadow_state";

/// The gauge of the largest wasm linear memory of the VMs running Breakwater in this Envoy, in
/// bytes: each VM raises it at its flush when its own memory grew past it (a VM's linear memory
/// only grows). One stat for the whole process, not per cluster nor per plugin.
pub const MEMORY_GAUGE: &str = "breakwater.wasm_memory_bytes";

/// The counter of the wasm linear memory of every VM that ran Breakwater in this Envoy, in
/// bytes: each VM adds its growth at its flush. It only moves when some VM grows, so it shows a
/// leak in any one VM however the others stand (a replaced VM keeps its share).
pub const MEMORY_TOTAL: &str = "breakwater.wasm_memory_total_bytes";

/// The stat name of `metric` for `cluster`.
pub fn stat_name(cluster: &str, metric: &str) -> String {
    format!(
        "breakwater.breakwater_cluster=.={};.;{metric}",
        cluster.replace(';', "_")
    )
}

/// The stat name of the skipped-retries counter for `reason`.
pub fn skipped_name(cluster: &str, reason: SkipReason) -> String {
    stat_name(
        cluster,
        &format!("reason=.={};.;retries_skipped_total", reason.label()),
    )
}

/// Clusters a worker keeps apart in its stats and budget batches. Envoy's clusters are few, but a
/// route may take its cluster from a request header (`cluster_header`), and Envoy names the
/// route's cluster to the filter whether or not such a cluster exists. Past this many names, the
/// stats of new names are counted together under [`OTHER_CLUSTERS`] and their budget writes are
/// not batched, so clients can grow neither a worker's memory nor Envoy's stats through it.
pub const MAX_CLUSTERS: usize = 1024;

/// The longest cluster name a worker keeps apart: Istio's longest (`outbound|PORT|SUBSET|` and a
/// 253-byte host name) fits. A longer name (only a request header can make one) is counted under
/// [`OTHER_CLUSTERS`] like the names past [`MAX_CLUSTERS`], so 1,024 names cannot hold much.
pub const MAX_NAME: usize = 512;

/// The `breakwater_cluster` of the stats of the clusters past [`MAX_CLUSTERS`] (or with names
/// longer than [`MAX_NAME`]). A cluster really named `_other` shares its stats.
pub const OTHER_CLUSTERS: &str = "_other";

/// Lazily defined metric ids of one cluster.
#[derive(Debug)]
struct ClusterIds {
    /// The cluster's name (its stats are named after it).
    name: Rc<str>,
    counters: [Option<u32>; Counter::ALL.len()],
    skipped: [Option<u32>; SkipReason::ALL.len()],
    state: Option<u32>,
    shadow_state: Option<u32>,
    /// The last phase value given for the state gauge.
    phase: Option<u64>,
    /// The cluster's breaker runs in `shadow` mode (as its last step said).
    shadow: bool,
    /// Counts waiting for the next flush, by counter.
    pending: [u64; Counter::ALL.len()],
}

impl ClusterIds {
    fn new(name: Rc<str>) -> ClusterIds {
        ClusterIds {
            name,
            counters: Default::default(),
            skipped: Default::default(),
            state: None,
            shadow_state: None,
            phase: None,
            shadow: false,
            pending: Default::default(),
        }
    }
}

/// A cluster's place in this worker's tables ([`Metrics::slot`]): looked up once per request by
/// name, then used by index. Slots are never reused, so a slot stays its cluster's; the clusters
/// past [`MAX_CLUSTERS`] share one slot that has no index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot(usize);

/// The slot of the clusters past [`MAX_CLUSTERS`].
const OTHER: usize = usize::MAX;

impl Slot {
    /// The slot's position, for tables indexed like this worker's clusters; `None` for the
    /// clusters past [`MAX_CLUSTERS`], which such tables do not hold.
    pub fn index(self) -> Option<usize> {
        (self.0 != OTHER).then_some(self.0)
    }

    /// The slot at `index` of such a table.
    pub fn at(index: usize) -> Slot {
        Slot(index.min(OTHER - 1))
    }
}

/// This worker's metric ids, per cluster.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Each cluster's slot, by name (the name shared with its entry).
    slots: HashMap<Rc<str>, usize>,
    clusters: Vec<ClusterIds>,
    /// The clusters past [`MAX_CLUSTERS`], counted together.
    other: Option<ClusterIds>,
    /// Some cluster has counts waiting for the next flush.
    pending: bool,
    /// The ids of [`MEMORY_GAUGE`] and [`MEMORY_TOTAL`].
    memory: Option<u32>,
    memory_total: Option<u32>,
    /// The linear memory this VM last showed in them.
    memory_shown: u64,
}

impl Metrics {
    /// Adds `n` to a counter of `cluster`. A host refusal is ignored: stats must never fail a
    /// request.
    pub fn add(&mut self, cluster: &str, counter: Counter, n: u64) {
        let slot = self.slot(cluster);
        self.add_at(slot, counter, n);
    }

    /// [`Metrics::add`] for the cluster in `slot`, without looking its name up.
    pub fn add_at(&mut self, slot: Slot, counter: Counter, n: u64) {
        if n > 0 {
            increment(self.entry(slot), counter, n);
        }
    }

    /// Counts one skipped retry.
    pub fn skipped(&mut self, cluster: &str, reason: SkipReason) {
        let slot = self.slot(cluster);
        let ids = self.entry(slot);
        let index = SkipReason::ALL
            .iter()
            .position(|r| *r == reason)
            .unwrap_or_default();
        let name = &ids.name;
        if let Some(id) = define(&mut ids.skipped[index], MetricType::Counter, || {
            skipped_name(name, reason)
        }) {
            let _ = hostcalls::increment_metric(id, 1);
        }
    }

    /// Sets the breaker-state gauge of `cluster` to its breaker's phase; in `shadow` mode the
    /// phase goes to the shadow gauge and the state gauge says closed (see [`SHADOW_STATE_GAUGE`]).
    pub fn state(&mut self, cluster: &str, value: u64) {
        let slot = self.slot(cluster);
        self.state_at(slot, value);
    }

    fn state_at(&mut self, slot: Slot, value: u64) {
        if slot.index().is_none() {
            // Clusters counted together have no one state to show.
            return;
        }
        let ids = self.entry(slot);
        ids.phase = Some(value);
        let (real, shadow) = if ids.shadow {
            (0, Some(value))
        } else {
            (value, None)
        };
        record_gauge(&mut ids.state, &ids.name, STATE_GAUGE, real);
        if let Some(value) = shadow {
            record_gauge(&mut ids.shadow_state, &ids.name, SHADOW_STATE_GAUGE, value);
        }
    }

    /// Tells whether `cluster`'s breaker runs in `shadow` mode; on a change, the gauges are set
    /// again from the last phase: entering shadow, the state gauge goes to closed and the shadow
    /// gauge takes the phase; leaving it, the phase is the real state again and the shadow gauge
    /// goes to 0.
    pub fn mode(&mut self, cluster: &str, shadow: bool) {
        let slot = self.slot(cluster);
        if slot.index().is_none() {
            return;
        }
        let ids = self.entry(slot);
        if ids.shadow == shadow {
            return;
        }
        ids.shadow = shadow;
        let Some(phase) = ids.phase else { return };
        let (real, shadowed) = if shadow { (0, phase) } else { (phase, 0) };
        record_gauge(&mut ids.state, &ids.name, STATE_GAUGE, real);
        record_gauge(
            &mut ids.shadow_state,
            &ids.name,
            SHADOW_STATE_GAUGE,
            shadowed,
        );
    }

    /// Sets the breaker-state gauge to `value` unless this worker last set it to that already
    /// (no host call then): admission keeps the gauge in step with the state it reads, so a
    /// gauge left by a mode that is gone (`forced_open` released) or by another worker's
    /// transition is put right by the next request.
    pub fn sync_state(&mut self, slot: Slot, value: u64) {
        if slot.index().is_none() {
            return;
        }
        if self.entry(slot).phase != Some(value) {
            self.state_at(slot, value);
        }
    }

    /// Adds `n` to a counter of `cluster` at the next [`Metrics::flush`] (the worker's tick, at
    /// most [`super::worker::FLUSH_AFTER`] later): for the counter of every request, whose host
    /// call would otherwise be paid on every request.
    pub fn add_later(&mut self, slot: Slot, counter: Counter, n: u64) {
        let pending = &mut self.entry(slot).pending[counter.index()];
        *pending = pending.saturating_add(n);
        self.pending = true;
    }

    /// Whether counts wait for a flush.
    pub fn pending(&self) -> bool {
        self.pending
    }

    /// Adds every count waiting since the last flush to its counter (one host call each).
    pub fn flush(&mut self) {
        if !std::mem::take(&mut self.pending) {
            return;
        }
        for ids in self.clusters.iter_mut().chain(self.other.as_mut()) {
            for counter in Counter::ALL {
                let n = std::mem::take(&mut ids.pending[counter.index()]);
                if n > 0 {
                    increment(ids, counter, n);
                }
            }
        }
    }

    /// Shows this VM's linear memory if it grew since it was last shown: [`MEMORY_TOTAL`] adds
    /// the growth, and [`MEMORY_GAUGE`] is raised to it if the gauge shows less (two workers
    /// raising it at once may leave the smaller figure until the larger grows again). Nothing
    /// to do, and no host call, while the memory stays as it was.
    pub fn record_memory(&mut self) {
        let bytes = linear_memory_bytes();
        let grown = bytes.saturating_sub(self.memory_shown);
        if grown == 0 {
            return;
        }
        self.memory_shown = bytes;
        if let Some(id) = define(&mut self.memory_total, MetricType::Counter, || {
            MEMORY_TOTAL.to_owned()
        }) {
            let _ = hostcalls::increment_metric(id, i64::try_from(grown).unwrap_or(i64::MAX));
        }
        let Some(id) = define(&mut self.memory, MetricType::Gauge, || {
            MEMORY_GAUGE.to_owned()
        }) else {
            return;
        };
        if hostcalls::get_metric(id).is_ok_and(|shown| shown >= bytes) {
            return;
        }
        let _ = hostcalls::record_metric(id, bytes);
    }

    /// The slot of `cluster`, made on its first use (the shared one past [`MAX_CLUSTERS`]).
    pub fn slot(&mut self, cluster: &str) -> Slot {
        if let Some(&slot) = self.slots.get(cluster) {
            return Slot(slot);
        }
        if self.clusters.len() >= MAX_CLUSTERS || cluster.len() > MAX_NAME {
            return Slot(OTHER);
        }
        let slot = self.clusters.len();
        let name: Rc<str> = Rc::from(cluster);
        self.clusters.push(ClusterIds::new(Rc::clone(&name)));
        self.slots.insert(name, slot);
        Slot(slot)
    }

    /// The name of the cluster in `slot` (shared, not copied); `None` for the slot of the
    /// clusters past [`MAX_CLUSTERS`].
    pub fn name(&self, slot: Slot) -> Option<&Rc<str>> {
        self.clusters.get(slot.index()?).map(|ids| &ids.name)
    }

    /// The ids of the cluster in `slot`.
    fn entry(&mut self, slot: Slot) -> &mut ClusterIds {
        match slot.index() {
            Some(i) if i < self.clusters.len() => &mut self.clusters[i],
            _ => self
                .other
                .get_or_insert_with(|| ClusterIds::new(Rc::from(OTHER_CLUSTERS))),
        }
    }
}

fn record_gauge(slot: &mut Option<u32>, cluster: &str, name: &str, value: u64) {
    if let Some(id) = define(slot, MetricType::Gauge, || stat_name(cluster, name)) {
        let _ = hostcalls::record_metric(id, value);
    }
}

/// Adds `n` to a counter of the cluster whose ids are `ids`, defining it on first use.
fn increment(ids: &mut ClusterIds, counter: Counter, n: u64) {
    let name = &ids.name;
    let slot = &mut ids.counters[counter.index()];
    if let Some(id) = define(slot, MetricType::Counter, || {
        stat_name(name, counter.name())
    }) {
        let _ = hostcalls::increment_metric(id, i64::try_from(n).unwrap_or(i64::MAX));
    }
}

fn define(slot: &mut Option<u32>, kind: MetricType, name: impl FnOnce() -> String) -> Option<u32> {
    if slot.is_none() {
        *slot = hostcalls::define_metric(kind, &name()).ok();
    }
    *slot
}

/// This VM's wasm linear memory in bytes (0 off wasm, in the crate's own unit tests).
fn linear_memory_bytes() -> u64 {
    #[cfg(target_arch = "wasm32")]
    {
        const PAGE: u64 = 65_536;
        core::arch::wasm32::memory_size(0) as u64 * PAGE
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        0
    }
}
