//! What one worker VM keeps across callbacks: metric ids, randomness, the retry budget's batched
//! request counts, and the retries that wait or are in flight.
//!
//! The [`Worker`] is the container, with the bookkeeping that needs nothing else (budget writes,
//! held successes, breaker observations): the plain data it holds, the retry queue
//! ([`super::queue`]) and the relays ([`super::reply::Relay`]), sits below it, and what acts on a
//! request with it (a root's timer, judging attempts, relaying, the retries) sits above it.
//!
//! # One per VM
//! Envoy runs one VM per worker thread, and a VM runs one callback at a time, so a thread-local
//! `RefCell` is this worker's state. Host calls never call back into the VM while a callback
//! runs (Envoy defers `send_local_response`, `continue_stream` and re-entrant call responses until
//! the VM call returns), so a borrow never overlaps another; [`with`] still refuses, rather than
//! panics, if one ever did.
//!
//! # Batched request counts
//! The retry budget needs the cluster's request rate across all workers. Writing shared data on
//! every request would make the success path pay a compare-and-swap, so each worker counts
//! locally and adds its count to the shared budget every [`FLUSH_EVERY`] requests, before every
//! withdrawal, and at the worker's flush. `requests_total` is counted the same way, locally,
//! and added to Envoy's stat at the flush: a host call per request saved.
//!
//! # The flush
//! The first request counted after a flush reads the clock and sets a [`FlushTimer`] due
//! [`FLUSH_AFTER`] ms later on its root's timer, which it shares with the root's waiting retries
//! (the period is the nearer of the two, see [`super::timer::arm`]). The root's tick then adds
//! every pending count, requests and budget alike, and the timer turns off until the next
//! request. So a count reaches Envoy's stats and the shared budget at most [`FLUSH_AFTER`] ms
//! (plus the lateness of Envoy's timer) after its request arrived; a budget batch of
//! [`FLUSH_EVERY`] requests goes at once.
//!
//! # Held successes
//! With a rate trigger, every success would write the breaker's shared window. A success that
//! would do nothing else (the breaker closed in its permit's epoch, no consecutive failures to
//! reset) is held in the worker instead ([`Worker::hold_success`]) and recorded with the others
//! at the flush, once [`FLUSH_EVERY`] are held, or just before the worker records a failure of
//! the cluster, whose rate then counts them. They are recorded exactly as their records one by
//! one would have been ([`Breaker::record_successes`]), so `minimum_requests` and the
//! thresholds are met at the flush as at the last of them; the shared window lags by at most
//! [`FLUSH_AFTER`] ms of each worker's successes. If the root that set the timer goes away
//! (reconfiguration), the next request moves the timer to its own root.
//!
//! # Under contention
//! A budget write can be given up (another worker kept winning the compare-and-swap). What it
//! carried for this worker is then not dropped: the request counts and the refunds of retries
//! that never ran wait in the worker's batch and go with the cluster's next budget write (the
//! next request's, when refunds are owed), so the shared budget ends up exact once the contention
//! passes. A withdrawal given up is simply not
//! granted (no retry), which needs nothing kept.

use std::cell::RefCell;

type HashMap<K, V> = hashbrown::HashMap<K, V, crate::policy::names::FnvBuildHasher>;

use crate::core::breaker::{Breaker, Successes};
use crate::core::budget::{Budget, Withdrawal};
use crate::core::Millis;
use crate::policy::BudgetPolicy;

use super::config::Config;
use super::host::{self, Clock, HostRng};
use super::logs::{held_back, Kind, Limiter};
use super::metrics::{Counter, Metrics, Slot};
use super::queue::Retries;
use super::reply::Relays;
use super::shared::{self, Keys, Updated};

/// Local requests counted before they are added to the shared budget.
pub const FLUSH_EVERY: u32 = 32;
/// Longest time a local request count waits before the worker's flush adds it to Envoy's stats
/// and the shared budget.
pub const FLUSH_AFTER: Millis = 1_000;

/// The worker's next flush: the root whose timer runs it, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlushTimer {
    pub root: u32,
    pub due: Millis,
}

thread_local! {
    static WORKER: RefCell<Worker> = RefCell::new(Worker::default());
}

/// Runs `f` on this worker's state; `None` (logged) if the state is somehow borrowed already.
pub fn with<R>(f: impl FnOnce(&mut Worker) -> R) -> Option<R> {
    WORKER.with(|cell| match cell.try_borrow_mut() {
        Ok(mut worker) => Some(f(&mut worker)),
        Err(_) => {
            log::error!("breakwater: worker state re-entered; callback skipped");
            None
        }
    })
}

/// What this worker still has to add to one cluster's shared budget.
#[derive(Debug, Default)]
struct Batch {
    /// Requests counted locally and not yet added.
    count: u32,
    /// The budget policy they were counted under (for the flush).
    policy: Option<BudgetPolicy>,
    /// Refunds whose write was given up under contention, oldest first (at most
    /// [`OWED_REFUNDS`]).
    refunds: Vec<Withdrawal>,
}

/// The change of a budget write that only adds what the worker owes: one function for every
/// such write, so `write_budget` is compiled once for them all.
fn add_owed(_: &mut Budget) -> ((), bool) {
    ((), false)
}

/// Refunds kept per cluster while budget writes are given up; beyond it the oldest are dropped
/// (a withdrawal older than the budget window holds nothing anyway).
const OWED_REFUNDS: usize = 64;

/// One worker VM's state.
#[derive(Debug, Default)]
pub struct Worker {
    pub metrics: Metrics,
    pub rng: HostRng,
    pub retries: Retries,
    /// Retried responses being written into their streams' held responses, by HTTP context id.
    pub relays: Relays,
    /// Budget batches, by cluster slot ([`Metrics::slot`]).
    batches: Vec<Batch>,
    logs: Limiter,
    /// The next flush of the batched counts, while any wait.
    pub flush_timer: Option<FlushTimer>,
    /// Successes held back for the breakers' rate windows, by cluster.
    held: HashMap<String, Held>,
}

/// Successes of one cluster held back for its rate window (see [`Worker::hold_success`]).
#[derive(Debug, Default)]
struct Held {
    /// The route they were judged under (its policy is the one they are recorded with).
    route: String,
    successes: Successes,
}

impl Worker {
    /// Counts one request towards the cluster's retry budget, writing the local count when
    /// [`FLUSH_EVERY`] are waiting (and whenever refunds are owed); the worker's flush writes the
    /// rest.
    pub fn count_request(
        &mut self,
        keys: &Keys,
        cluster: &str,
        slot: Slot,
        policy: &BudgetPolicy,
        clock: &mut Clock,
    ) {
        let Some(batch) = self.batch(slot) else {
            // A cluster past the worker's table has no batch: its request is written at once.
            let now = clock.now();
            self.write_budget(keys, cluster, policy, now, |b| {
                b.record_requests(policy, 1, now);
                ((), true)
            });
            return;
        };
        batch.count = batch.count.saturating_add(1);
        batch.policy = Some(*policy);
        if batch.count < FLUSH_EVERY && batch.refunds.is_empty() {
            return;
        }
        self.write_budget(keys, cluster, policy, clock.now(), add_owed);
    }

    /// The budget batch of the cluster in `slot`; `None` past the worker's table of clusters
    /// (see [`super::metrics::MAX_CLUSTERS`]).
    fn batch(&mut self, slot: Slot) -> Option<&mut Batch> {
        let i = slot.index()?;
        if i >= self.batches.len() {
            self.batches.resize_with(i + 1, Batch::default);
        }
        self.batches.get_mut(i)
    }

    /// The budget batch of `cluster`.
    fn batch_of(&mut self, cluster: &str) -> Option<&mut Batch> {
        let slot = self.metrics.slot(cluster);
        self.batch(slot)
    }

    /// Whether counts wait for the flush: requests for Envoy's stats, for a shared budget, or
    /// successes for a rate window.
    pub fn pending(&self) -> bool {
        self.metrics.pending()
            || self
                .batches
                .iter()
                .any(|b| b.count > 0 || !b.refunds.is_empty())
            || self.held.values().any(|h| h.successes.total > 0)
    }

    /// Holds back a success of `cluster` for its breaker's rate window: the breaker would only
    /// add it to the window (see [`Breaker::takes_success_later`]), so this worker adds its
    /// successes together, at the flush, at its next failure of the cluster, or once
    /// [`FLUSH_EVERY`] are held; whether that many are held now. Only successes of one epoch
    /// are held: an older one is stale and dropped, a newer one makes the held ones stale.
    /// `None`: not held, because the worker does not keep the cluster apart (its `slot` is the
    /// shared one, see [`super::metrics::MAX_CLUSTERS`]); the success is then recorded at once.
    /// So successes are held for at most the clusters the worker keeps apart.
    pub fn hold_success(
        &mut self,
        cluster: &str,
        slot: Slot,
        route: &str,
        epoch: u64,
        slow: bool,
    ) -> Option<bool> {
        slot.index()?;
        let held = self.held.entry_ref(cluster).or_default();
        if epoch < held.successes.epoch {
            return Some(false);
        }
        if epoch > held.successes.epoch || held.successes.total == 0 {
            held.successes = Successes {
                epoch,
                total: 0,
                slow: 0,
            };
        }
        if held.route != route {
            held.route.clear();
            held.route.push_str(route);
        }
        held.successes.total = held.successes.total.saturating_add(1);
        held.successes.slow = held.successes.slow.saturating_add(u32::from(slow));
        Some(held.successes.total >= FLUSH_EVERY)
    }

    /// Records the successes held back for `cluster` in its breaker (one read-modify-write; if
    /// it is given up under contention they stay held for the next).
    pub fn record_held(&mut self, config: &Config, cluster: &str, now: Millis) {
        let Some(held) = self.held.get_mut(cluster) else {
            return;
        };
        let successes = std::mem::take(&mut held.successes);
        if successes.total == 0 {
            return;
        }
        let effective = config.policy.lookup(cluster, &held.route);
        let Some(policy) = effective.breaker.as_ref() else {
            return;
        };
        let key = config.keys.breaker(cluster);
        let rng = &mut self.rng;
        let updated = shared::update::<Breaker, _>(&key, |b| {
            let step = b.record_successes(policy, successes, now, rng);
            (step.events, step.changed)
        });
        if updated.value.is_none() {
            if let Some(held) = self.held.get_mut(cluster) {
                held.successes = successes;
            }
        }
        self.observe(cluster, &key, updated);
    }

    /// The flush: adds every waiting count to Envoy's stats, to the shared budgets and to the
    /// breakers' rate windows, and shows the VM's memory if it grew. A write given up under
    /// contention keeps its counts for the next flush.
    pub fn flush(&mut self, config: &Config, now: Millis) {
        let keys = &config.keys;
        self.metrics.flush();
        self.metrics.record_memory();
        let held: Vec<String> = self
            .held
            .iter()
            .filter(|(_, h)| h.successes.total > 0)
            .map(|(cluster, _)| cluster.clone())
            .collect();
        for cluster in held {
            self.record_held(config, &cluster, now);
        }
        let metrics = &self.metrics;
        let due: Vec<(String, BudgetPolicy)> = self
            .batches
            .iter()
            .enumerate()
            .filter(|(_, b)| b.count > 0 || !b.refunds.is_empty())
            .filter_map(|(i, b)| Some((metrics.name(Slot::at(i))?.to_string(), b.policy?)))
            .collect();
        for (cluster, policy) in due {
            self.write_budget(keys, &cluster, &policy, now, add_owed);
        }
    }

    /// Takes one retry from the cluster's budget (after adding this worker's pending request
    /// count); `None` when the budget is spent or too contended to write.
    pub fn withdraw(
        &mut self,
        keys: &Keys,
        cluster: &str,
        policy: &BudgetPolicy,
        now: Millis,
    ) -> Option<Withdrawal> {
        self.write_budget(keys, cluster, policy, now, |b| {
            match b.try_withdraw(policy, now) {
                Ok(w) => (Some(w), true),
                Err(_) => (None, false),
            }
        })
        .flatten()
    }

    /// Gives back the budget of a retry that will not run (with the next write if this one is
    /// given up).
    pub fn refund(
        &mut self,
        keys: &Keys,
        cluster: &str,
        policy: &BudgetPolicy,
        withdrawal: Withdrawal,
        now: Millis,
    ) {
        let Some(batch) = self.batch_of(cluster) else {
            // Past the worker's table: given back at once, and lost if the write is given up.
            self.write_budget(keys, cluster, policy, now, |b| {
                b.refund(policy, withdrawal, now);
                ((), true)
            });
            return;
        };
        batch.refunds.push(withdrawal);
        batch.policy = Some(*policy);
        self.write_budget(keys, cluster, policy, now, add_owed);
    }

    /// Writes the cluster's budget: adds what this worker owes it (request counts, refunds),
    /// then applies `change` (which must be a pure function of the budget: it may run several
    /// times). If the write is given up, what was owed stays owed for the next write.
    fn write_budget<R>(
        &mut self,
        keys: &Keys,
        cluster: &str,
        policy: &BudgetPolicy,
        now: Millis,
        mut change: impl FnMut(&mut Budget) -> (R, bool),
    ) -> Option<R> {
        let (requests, refunds) = match self.batch_of(cluster) {
            Some(b) => (std::mem::take(&mut b.count), std::mem::take(&mut b.refunds)),
            None => (0, Vec::new()),
        };
        let key = keys.budget(cluster);
        let updated = shared::update::<Budget, _>(&key, |b| {
            if requests > 0 {
                b.record_requests(policy, requests, now);
            }
            for withdrawal in &refunds {
                b.refund(policy, *withdrawal, now);
            }
            let (value, changed) = change(b);
            (value, changed || requests > 0 || !refunds.is_empty())
        });
        if let (None, Some(batch)) = (&updated.value, self.batch_of(cluster)) {
            batch.count = batch.count.saturating_add(requests);
            let mut owed = refunds;
            owed.append(&mut batch.refunds);
            let excess = owed.len().saturating_sub(OWED_REFUNDS);
            owed.drain(..excess);
            batch.refunds = owed;
        }
        self.budget_written(cluster, &key, updated.error, updated.value.is_some());
        updated.value
    }

    fn budget_written(&mut self, cluster: &str, key: &str, error: Option<String>, ok: bool) {
        if let Some(error) = error {
            self.state_error(cluster, key, &error);
        }
        if !ok {
            self.contention(cluster, key);
        }
    }

    /// Turns the outcome of a breaker update into logs, metrics and the state gauge.
    pub fn observe(
        &mut self,
        cluster: &str,
        key: &str,
        updated: Updated<crate::core::breaker::Events>,
    ) {
        if let Some(error) = updated.error {
            self.state_error(cluster, key, &error);
        }
        if let Some(shadow) = updated.value.and_then(|events| events.shadow()) {
            self.metrics.mode(cluster, shadow);
        }
        match updated.value {
            Some(events) => super::events::apply(&mut self.metrics, cluster, &events),
            None => self.contention(cluster, key),
        }
    }

    /// Bytes under `key` did not decode and were replaced by a fresh state.
    pub fn state_error(&mut self, cluster: &str, key: &str, error: &str) {
        self.metrics.add(cluster, Counter::StateErrors, 1);
        if let Some(n) = self.logs.allow(cluster, Kind::StateError, host::now()) {
            log::warn!(
                "breakwater: shared data '{key}' was unreadable ({error}); replaced by a fresh \
                 state{}",
                held_back(n)
            );
        }
    }

    fn contention(&mut self, cluster: &str, key: &str) {
        self.metrics.add(cluster, Counter::StateContention, 1);
        if let Some(n) = self.logs.allow(cluster, Kind::Contention, host::now()) {
            log::warn!(
                "breakwater: gave up updating shared data '{key}' after {} conflicting writes{}",
                shared::MAX_ATTEMPTS,
                held_back(n)
            );
        }
    }
}

/// Reads the breaker of a cluster (fresh if absent or unreadable).
pub fn read_breaker(w: &mut Worker, cluster: &str, key: &str) -> Breaker {
    let loaded = shared::load_repairing::<Breaker>(key);
    if let Some(error) = &loaded.error {
        w.state_error(cluster, key, error);
    }
    loaded.state
}
