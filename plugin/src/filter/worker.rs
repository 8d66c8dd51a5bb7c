//! What one worker VM keeps across callbacks: metric ids, randomness, the retry budget's batched
//! request counts, and the retries that wait or are in flight.
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
//! locally and adds its count to the shared budget every [`FLUSH_EVERY`] requests, every
//! [`FLUSH_AFTER`] ms, and before every withdrawal. A count whose write is given up under
//! contention is kept for the next write, never dropped.

use std::cell::RefCell;

type HashMap<K, V> = hashbrown::HashMap<K, V, crate::policy::names::FnvBuildHasher>;

use crate::core::breaker::Breaker;
use crate::core::budget::{Budget, Withdrawal};
use crate::core::Millis;
use crate::policy::BudgetPolicy;

use super::host::HostRng;
use super::metrics::{Counter, Metrics};
use super::retries::Retries;
use super::shared::{self, Keys, Updated};

/// Local requests counted before they are added to the shared budget.
pub const FLUSH_EVERY: u32 = 32;
/// Longest time a local request count waits before it is added to the shared budget.
pub const FLUSH_AFTER: Millis = 1_000;

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

/// Requests counted locally for one cluster's budget.
#[derive(Debug, Default)]
struct Batch {
    count: u32,
    since: Millis,
}

/// One worker VM's state.
#[derive(Debug, Default)]
pub struct Worker {
    pub metrics: Metrics,
    pub rng: HostRng,
    pub retries: Retries,
    batches: HashMap<String, Batch>,
}

impl Worker {
    /// Counts one request towards the cluster's retry budget, flushing the local count when due.
    pub fn count_request(
        &mut self,
        keys: &Keys,
        cluster: &str,
        policy: &BudgetPolicy,
        now: Millis,
    ) {
        let batch = self.batches.entry_ref(cluster).or_default();
        if batch.count == 0 {
            batch.since = now;
        }
        batch.count += 1;
        if batch.count < FLUSH_EVERY && now.saturating_sub(batch.since) < FLUSH_AFTER {
            return;
        }
        let pending = std::mem::take(&mut batch.count);
        let key = keys.budget(cluster);
        let updated = shared::update::<Budget, _>(&key, |b| {
            b.record_requests(policy, pending, now);
            ((), true)
        });
        if updated.value.is_none() {
            self.keep_pending(cluster, pending);
        }
        self.budget_written(cluster, &key, updated.error, updated.value.is_some());
    }

    /// Puts back request counts whose write was given up: they go with the next write.
    fn keep_pending(&mut self, cluster: &str, pending: u32) {
        let batch = self.batches.entry_ref(cluster).or_default();
        batch.count = batch.count.saturating_add(pending);
    }

    /// Takes one retry from the cluster's budget (after adding this worker's pending request
    /// count); `None` when the budget is spent.
    pub fn withdraw(
        &mut self,
        keys: &Keys,
        cluster: &str,
        policy: &BudgetPolicy,
        now: Millis,
    ) -> Option<Withdrawal> {
        let pending = self
            .batches
            .get_mut(cluster)
            .map(|b| std::mem::take(&mut b.count))
            .unwrap_or(0);
        let key = keys.budget(cluster);
        let updated = shared::update::<Budget, _>(&key, |b| {
            if pending > 0 {
                b.record_requests(policy, pending, now);
            }
            match b.try_withdraw(policy, now) {
                Ok(w) => (Some(w), true),
                Err(_) => (None, pending > 0),
            }
        });
        if updated.value.is_none() {
            self.keep_pending(cluster, pending);
        }
        self.budget_written(cluster, &key, updated.error, updated.value.is_some());
        updated.value.flatten()
    }

    /// Gives back the budget of a retry that will not run.
    pub fn refund(
        &mut self,
        keys: &Keys,
        cluster: &str,
        policy: &BudgetPolicy,
        withdrawal: Withdrawal,
        now: Millis,
    ) {
        let key = keys.budget(cluster);
        let updated = shared::update::<Budget, _>(&key, |b| {
            b.refund(policy, withdrawal, now);
            ((), true)
        });
        self.budget_written(cluster, &key, updated.error, updated.value.is_some());
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
        match updated.value {
            Some(events) => super::events::apply(self, cluster, &events),
            None => self.contention(cluster, key),
        }
    }

    /// Bytes under `key` did not decode and were replaced by a fresh state.
    pub fn state_error(&mut self, cluster: &str, key: &str, error: &str) {
        log::warn!(
            "breakwater: shared data '{key}' was unreadable ({error}); replaced by a fresh state"
        );
        self.metrics.add(cluster, Counter::StateErrors, 1);
    }

    fn contention(&mut self, cluster: &str, key: &str) {
        log::warn!(
            "breakwater: gave up updating shared data '{key}' after {} conflicting writes",
            shared::MAX_ATTEMPTS
        );
        self.metrics.add(cluster, Counter::StateContention, 1);
    }
}

/// Reads the breaker of a cluster (fresh if absent or unreadable).
pub fn read_breaker(w: &mut Worker, cluster: &str, key: &str) -> Breaker {
    let loaded = shared::load::<Breaker>(key);
    if let Some(error) = &loaded.error {
        w.state_error(cluster, key, error);
    }
    loaded.state
}
