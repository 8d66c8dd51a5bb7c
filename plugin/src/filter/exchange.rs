//! One client request as the breaker and the retries see it, from admission to its final outcome.
//!
//! An [`Exchange`] starts in the request's HTTP context. If the first attempt fails in a way that
//! is retried, it moves into the worker's retry queue with the copy of the request and lives on
//! there until its last attempt; either way its final outcome is reported to the breaker exactly
//! once (`count_retries: false`, the seed's "breaker outside retry") or every attempt is
//! (`count_retries: true`).

use std::rc::Rc;
use std::time::Duration;

use crate::core::breaker::{Breaker, Call, Permit};
use crate::core::outcome::Outcome;
use crate::core::pairs::Pairs;
use crate::core::retry::{plan, PlanInput, Stop, Verdict};
use crate::core::{millis, Millis};
use crate::policy::{BreakerMode, BreakerPolicy, Effective};

use super::metrics::{Counter, SkipReason};
use super::root::Config;
use super::shared;
use super::worker::Worker;

/// The copy of a retry-eligible request, replayed by each retry.
#[derive(Debug, Default)]
pub struct RequestCopy {
    /// The request headers as the host serialized them when the request arrived (all UTF-8);
    /// hop-by-hop ones and `x-breakwater-*` are left out when a retry replays them.
    pub headers: Pairs,
    pub body: Vec<u8>,
    pub trailers: Vec<(String, String)>,
}

/// What happens after an attempt.
#[derive(Debug)]
pub enum Next {
    /// Retry at this time.
    Retry { due: Millis },
    /// This attempt's response is final; `Some` says why a wanted retry did not run.
    Final(Option<Stop>),
}

/// The breaker and retry state of one client request.
#[derive(Debug)]
pub struct Exchange {
    pub config: Rc<Config>,
    pub cluster: String,
    pub route: String,
    /// The breaker's admission; `None` when the breaker is off for this request.
    pub permit: Option<Permit>,
    /// When the client request arrived.
    pub started: Millis,
    /// When the current attempt started.
    pub attempt_started: Millis,
    /// Attempts made so far, the first included.
    pub attempts: u32,
    /// The delay before the current attempt (decorrelated jitter grows from it).
    pub previous_delay: Option<Duration>,
    /// The request copy; `None` when the request may not be retried.
    pub copy: Option<RequestCopy>,
    /// The budget taken by the retry that is waiting or in flight.
    pub withdrawal: Option<crate::core::budget::Withdrawal>,
    /// The breaker has heard this request's final outcome, or its probe slot was given back.
    pub reported: bool,
    /// At admission the breaker said a success of this request would change nothing, so a
    /// success is not reported (no shared-data round trip on the success path).
    pub quiet_success: bool,
}

impl Exchange {
    pub fn effective(&self) -> &Effective {
        self.config.policy.lookup(&self.cluster, &self.route)
    }

    fn breaker_policy(&self) -> Option<&BreakerPolicy> {
        self.effective().breaker.as_ref()
    }

    fn count_retries(&self) -> bool {
        self.breaker_policy().is_some_and(|b| b.count_retries)
    }

    /// Judges the attempt that just ended: reports it to the breaker if every attempt counts,
    /// then decides whether to retry (attempts, deadline, breaker, budget).
    pub fn after_attempt(
        &mut self,
        w: &mut Worker,
        outcome: &Outcome,
        retry_after: Option<&str>,
        now: Millis,
    ) -> Next {
        let config = Rc::clone(&self.config);
        let effective = config.policy.lookup(&self.cluster, &self.route);
        if effective.breaker.as_ref().is_some_and(|b| b.count_retries) {
            self.report(w, outcome, now);
        }
        let Some(policy) = effective.retry.as_ref() else {
            return Next::Final(None);
        };
        let input = PlanInput {
            outcome: *outcome,
            attempts: self.attempts,
            eligible: self.copy.is_some(),
            started_at: self.started,
            now,
            retry_after,
            now_unix: now,
            previous_delay: self.previous_delay,
        };
        let delay = match plan(policy, &input, &mut w.rng) {
            Verdict::Stop(stop) => return Next::Final(Some(stop)),
            Verdict::Retry { delay, .. } => delay,
        };
        if effective.breaker.is_some() && !self.breaker_closed(w) {
            return Next::Final(Some(Stop::Breaker));
        }
        if let Some(budget) = &policy.budget {
            match w.withdraw(&config.keys, &self.cluster, budget, now) {
                Some(withdrawal) => self.withdrawal = Some(withdrawal),
                None => return Next::Final(Some(Stop::Budget)),
            }
        }
        self.previous_delay = Some(delay);
        Next::Retry {
            due: now.saturating_add(millis(delay)),
        }
    }

    /// The request is over with `outcome`: reports it to the breaker (once per request unless
    /// every attempt counted already) and counts what the retries did.
    pub fn finish(&mut self, w: &mut Worker, outcome: &Outcome, stop: Option<Stop>, now: Millis) {
        if !self.count_retries() {
            self.report(w, outcome, now);
        }
        self.give_back_budget(w, now);
        let cluster = self.cluster.as_str();
        if self.attempts > 1 && outcome.is_success() {
            w.metrics.add(cluster, Counter::RetrySuccesses, 1);
        }
        if let Some(stop) = stop {
            if stop.is_exhausted() {
                w.metrics.add(cluster, Counter::RetriesExhausted, 1);
            } else if let Some(reason) = skip_reason(stop) {
                w.metrics.skipped(cluster, reason);
            }
        }
        self.reported = true;
    }

    /// The client went away: nothing to report, but a probe slot and a waiting retry's budget
    /// go back.
    pub fn abandon(&mut self, w: &mut Worker, now: Millis) {
        self.give_back_budget(w, now);
        if self.reported {
            return;
        }
        self.reported = true;
        let Some(permit) = self.permit.filter(|p| p.is_probe()) else {
            return;
        };
        let key = self.config.keys.breaker(&self.cluster);
        let updated = shared::update::<Breaker, _>(&key, |b| {
            let step = b.release(permit, now);
            (step.events, step.changed)
        });
        w.observe(&self.cluster, &key, updated);
    }

    /// Returns the budget of a retry that will not run.
    pub fn give_back_budget(&mut self, w: &mut Worker, now: Millis) {
        let Some(withdrawal) = self.withdrawal.take() else {
            return;
        };
        let config = Rc::clone(&self.config);
        let effective = config.policy.lookup(&self.cluster, &self.route);
        if let Some(budget) = effective.retry.as_ref().and_then(|r| r.budget.as_ref()) {
            w.refund(&config.keys, &self.cluster, budget, withdrawal, now);
        }
    }

    /// The retry that was waiting has been dispatched: its budget is spent for good.
    pub fn spend_budget(&mut self) {
        self.withdrawal = None;
    }

    /// Whether the cluster's breaker lets retries run: it is closed right now, or it does not
    /// enforce (`shadow` and `disabled` never change what requests do).
    pub fn breaker_closed(&self, w: &mut Worker) -> bool {
        if self
            .breaker_policy()
            .is_none_or(|b| matches!(b.mode, BreakerMode::Shadow | BreakerMode::Disabled))
        {
            return true;
        }
        let key = self.config.keys.breaker(&self.cluster);
        let loaded = shared::load_repairing::<Breaker>(&key);
        if let Some(error) = &loaded.error {
            w.state_error(&self.cluster, &key, error);
        }
        loaded.state.is_closed()
    }

    /// Reports one outcome to the breaker.
    fn report(&self, w: &mut Worker, outcome: &Outcome, now: Millis) {
        let (Some(policy), Some(permit)) = (self.breaker_policy(), self.permit) else {
            return;
        };
        if policy.mode == BreakerMode::Disabled {
            return;
        }
        let elapsed = now.saturating_sub(self.attempt_started);
        let call = Call {
            failed: policy.failure_on.matches(outcome),
            slow: policy
                .slow_call
                .is_some_and(|s| elapsed > millis(s.duration)),
        };
        if call.failed {
            w.metrics.add(&self.cluster, Counter::Failures, 1);
        } else if !call.slow && self.quiet_success {
            return;
        }
        let key = self.config.keys.breaker(&self.cluster);
        let rng = &mut w.rng;
        let updated = shared::update::<Breaker, _>(&key, |b| {
            let step = b.record(policy, permit, call, now, rng);
            (step.events, step.changed)
        });
        w.observe(&self.cluster, &key, updated);
    }
}

/// The metric label of a stop that skipped a wanted retry (the labels of
/// [`Stop::metric_reason`]). Exhaustive, so a new stop cannot go uncounted by accident.
pub fn skip_reason(stop: Stop) -> Option<SkipReason> {
    match stop {
        Stop::NotEligible => Some(SkipReason::NotEligible),
        Stop::Budget => Some(SkipReason::Budget),
        Stop::Deadline => Some(SkipReason::Deadline),
        Stop::Breaker => Some(SkipReason::Breaker),
        Stop::RetryAfterTooLong => Some(SkipReason::RetryAfter),
        Stop::Success | Stop::NotRetryable | Stop::Exhausted => None,
    }
}
