//! What must hold once a world has gone idle, whatever faults it met: the filter's promises,
//! read from the outside (responses, the harness's record of upstream attempts and refused
//! dispatches, the filter's counters, and the shared state decoded with the filter's own codecs).
//!
//! - **One answer per client.** Every request ended, none was reset by the filter, and the filter
//!   never asked to reply to or resume a stream that had already ended.
//! - **Requests counted once.** `requests_total` is the number of requests sent.
//! - **Retries counted as they reached the upstream.** `retries_total` is the number of retries
//!   the harness saw reach the cluster, and `retries_skipped_total{reason="refused"}` the number of
//!   retries Envoy refused at once: a dispatch that never started is not a retry.
//! - **The budget is balanced.** The retries the shared budget holds are the retries that were
//!   dispatched: every withdrawal of a retry that never ran went back.
//! - **No probe slot leaked.** With no request in flight, a half-open breaker holds no lease.
//! - **Timers off.** No worker's root keeps a tick period once nothing waits (after the faults
//!   pass and the flush of the workers' batched counts runs, which [`Invariants::hold`] lets
//!   happen first).

use std::time::Duration;

use breakwater::core::breaker::{Breaker, Phase};
use breakwater::core::budget::Budget;
use breakwater::core::Millis;
use breakwater::policy::{BreakerMode, Effective, Policy};
use breakwater_host_tests::{StreamId, StreamState, World};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::Value;

use crate::common::{breaker_key, budget_key, count, log_text, retries_sent, skipped, CLUSTER};

/// The policy in force for [`CLUSTER`], as the filter parsed it.
pub fn effective(policy: &Value) -> Effective {
    let parsed = Policy::parse(policy.to_string().as_bytes())
        .unwrap_or_else(|e| panic!("the test's policy must be valid: {e:?}"));
    parsed.policy.lookup(CLUSTER, "").clone()
}

/// The clock the filter measures its spans on (the monotonic one), in milliseconds.
pub fn host_now(w: &World) -> Millis {
    w.monotonic_nanos() / 1_000_000
}

/// The shared budget of [`CLUSTER`], decoded; `None` if never written.
pub fn budget(w: &World) -> Option<Budget> {
    let stored = w.shared_data(budget_key(CLUSTER))?;
    Some(
        Budget::decode(&stored.bytes)
            .unwrap_or_else(|e| panic!("the budget must decode with the filter's own codec: {e}")),
    )
}

/// The shared breaker of [`CLUSTER`], decoded; `None` if never written.
pub fn breaker(w: &World) -> Option<Breaker> {
    let stored = w.shared_data(breaker_key(CLUSTER))?;
    Some(
        Breaker::decode(&stored.bytes)
            .unwrap_or_else(|e| panic!("the breaker must decode with the filter's own codec: {e}")),
    )
}

/// The retries the shared budget counts in its window now.
pub fn budgeted_retries(w: &World, policy: &Value) -> u32 {
    let effective = effective(policy);
    let Some(budget_policy) = effective.retry.as_ref().and_then(|r| r.budget.as_ref()) else {
        return 0;
    };
    budget(w).map_or(0, |mut b| b.usage(budget_policy, host_now(w)).retries)
}

/// Probe leases the breaker holds now: admitting a request one `probe_timeout` later reclaims
/// every one of them.
pub fn held_probes(w: &World, policy: &Value) -> u32 {
    let effective = effective(policy);
    let Some(p) = effective.breaker.as_ref() else {
        return 0;
    };
    let Some(mut b) = breaker(w) else {
        return 0;
    };
    if b.phase() != Phase::HalfOpen || !matches!(p.mode, BreakerMode::Enforce | BreakerMode::Shadow)
    {
        return 0;
    }
    let later = host_now(w) + duration_ms(p.probe_timeout);
    let step = b.admit(p, later, &mut StdRng::seed_from_u64(0));
    step.events.probes_reclaimed()
}

fn duration_ms(d: Duration) -> Millis {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Longer than the workers' flush period: every batched count has reached Envoy's stats.
pub const FLUSH: Duration = Duration::from_millis(1_000);

/// The checks of the module docs, for a world that ran `streams` under `policy` (the policy in
/// force at the end) and is idle now.
pub struct Invariants<'a> {
    pub world: &'a mut World,
    pub policy: &'a Value,
    pub streams: &'a [StreamId],
}

impl Invariants<'_> {
    /// Every check of the module docs, once the faults have passed and the workers' flush has
    /// run: their batched counts (`requests_total`, the budget's request counts and owed
    /// refunds) reach Envoy's stats and shared data at most a second after their requests, or,
    /// where a write was given up under contention, at the first flush after it passes.
    #[track_caller]
    pub fn hold(self) {
        self.world.clear_faults();
        self.world.advance(FLUSH);
        self.every_client_answered_once();
        self.requests_counted_once();
        self.retries_counted_as_they_reached_the_upstream();
        self.budget_balanced();
        self.no_probe_held();
        self.timers_off();
    }

    #[track_caller]
    pub fn every_client_answered_once(&self) {
        let w = &*self.world;
        for s in self.streams {
            match w.stream_state(*s) {
                StreamState::Complete => assert!(w.response(*s).is_some()),
                StreamState::Disconnected => {}
                other => panic!(
                    "{s} should have ended with a response (or its client left), but it is \
                     {other:?}; log:\n{}",
                    log_text(w)
                ),
            }
        }
        assert!(
            w.late_actions().is_empty(),
            "the filter acted on streams that had ended (a second reply?): {:?}",
            w.late_actions()
        );
    }

    #[track_caller]
    pub fn requests_counted_once(&self) {
        assert_eq!(
            count(&*self.world, "requests_total"),
            self.streams.len() as u64,
            "requests_total counts each client request once"
        );
    }

    #[track_caller]
    pub fn retries_counted_as_they_reached_the_upstream(&self) {
        let w = &*self.world;
        let sent = retries_sent(w, CLUSTER).len() as u64;
        assert_eq!(
            count(w, "retries_total"),
            sent,
            "retries_total counts the retries that reached the upstream ({sent})"
        );
        let refused = w
            .refused_calls()
            .iter()
            .filter(|r| r.cluster == CLUSTER)
            .count() as u64;
        assert_eq!(
            skipped(w, "refused"),
            refused,
            "every retry Envoy refused at once is counted as skipped, reason `refused`"
        );
    }

    #[track_caller]
    pub fn budget_balanced(&self) {
        let w = &*self.world;
        let effective = effective(self.policy);
        let Some(window) = effective
            .retry
            .as_ref()
            .and_then(|r| r.budget.as_ref())
            .map(|b| b.window)
        else {
            return;
        };
        assert!(
            w.now() < window,
            "the scenario must end within one budget window ({window:?}) for every retry to \
             still count, but it ran {:?}",
            w.now()
        );
        let dispatched = retries_sent(w, CLUSTER).len() as u32;
        assert_eq!(
            budgeted_retries(w, self.policy),
            dispatched,
            "the budget holds exactly the retries dispatched: a withdrawal for a retry that \
             never ran must be given back"
        );
    }

    #[track_caller]
    pub fn no_probe_held(&self) {
        assert_eq!(
            held_probes(&*self.world, self.policy),
            0,
            "no request is in flight, so no probe slot may be held: {:?}",
            breaker(&*self.world)
        );
    }

    #[track_caller]
    pub fn timers_off(&self) {
        let w = &*self.world;
        for worker in 0..w.workers() {
            assert_eq!(
                w.tick_period(worker),
                None,
                "nothing waits on worker {worker}: its tick must be off"
            );
        }
    }
}
