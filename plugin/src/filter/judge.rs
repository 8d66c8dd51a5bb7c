//! Judging a request's attempts with the worker: an attempt's end is reported to the breaker
//! (every attempt, or only the request's final outcome), the retry is planned and its budget
//! withdrawn, and at the request's end a budget not spent goes back and what the retries did is
//! counted.
//!
//! These are the [`Exchange`]'s methods that draw on the worker (its randomness, budget batches,
//! held successes, metrics, and the flush timer), so they sit above the [`Worker`]; the request's
//! own state, which the worker's retry queue holds, is `exchange`'s, below it.

use std::rc::Rc;

use crate::core::breaker::{Breaker, Call, Permit, Quiet};
use crate::core::outcome::{Cause, Outcome};
use crate::core::retry::{plan, PlanInput, Stop, Verdict};
use crate::core::{millis, Millis};
use crate::policy::BreakerMode;

use super::copy::Dropped;
use super::exchange::Exchange;
use super::host::{self, Clock};
use super::metrics::{Counter, SkipReason};
use super::shared;
use super::timer;
use super::worker::{read_breaker, Worker};

/// What happens after an attempt.
#[derive(Debug)]
pub enum Next {
    /// Retry at this time.
    Retry { due: Millis },
    /// This attempt's response is final; `Some` says why a wanted retry did not run.
    Final(Option<Stop>),
}

impl Exchange {
    /// Judges the attempt that just ended: reports it to the breaker if every attempt counts,
    /// then decides whether to retry (attempts, deadline, breaker, budget).
    pub fn after_attempt(
        &mut self,
        w: &mut Worker,
        outcome: &Outcome,
        retry_after: Option<&str>,
        clock: &mut Clock,
    ) -> Next {
        let config = Rc::clone(&self.config);
        let effective = config.policy.at(self.entry);
        if effective.breaker.as_ref().is_some_and(|b| b.count_retries)
            && !self.inconclusive
            && outcome.cause != Cause::Local
        {
            self.report(w, outcome, clock);
        }
        let Some(policy) = effective.retry.as_ref() else {
            return Next::Final(None);
        };
        if outcome.is_success() {
            // `plan`'s first rule, taken before the clock is read.
            return Next::Final(Some(Stop::Success));
        }
        let now = clock.now();
        let input = PlanInput {
            outcome: *outcome,
            attempts: self.attempts,
            eligible: self.copy.is_some(),
            started_at: self.started.unwrap_or(now),
            now,
            retry_after,
            // The wall clock is read only for a `Retry-After` that may be an HTTP date.
            now_unix: retry_after.map_or(0, |_| host::unix_now()),
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
    pub fn finish(
        &mut self,
        w: &mut Worker,
        outcome: &Outcome,
        stop: Option<Stop>,
        clock: &mut Clock,
    ) {
        if self.inconclusive {
            // No evidence against the upstream: the breaker hears nothing (a probe slot goes
            // back), and the dropped response is counted.
            w.metrics.add_at(self.slot, Counter::ResponsesDropped, 1);
            self.release_permit(w, clock.now());
        } else if outcome.cause == Cause::Local {
            // Envoy's or another filter's own reply: the upstream was never asked, so it is no
            // outcome (neither a failure nor a success that would reset the count or close a
            // half-open breaker); a probe's slot goes back unless an earlier attempt of this
            // request reported (with `count_retries`) and so used it.
            if !self.count_retries() || self.attempts == 1 {
                self.release_permit(w, clock.now());
            }
        } else if !self.count_retries() {
            self.report(w, outcome, clock);
        }
        if self.withdrawal.is_some() {
            self.give_back_budget(w, clock.now());
        }
        let cluster = &*self.cluster;
        if self.attempts > 1 && outcome.is_success() {
            w.metrics.add_at(self.slot, Counter::RetrySuccesses, 1);
        }
        if let Some(stop) = stop {
            if stop.is_exhausted() {
                w.metrics.add_at(self.slot, Counter::RetriesExhausted, 1);
            } else if let Some(reason) = skip_reason(stop, self.dropped) {
                w.metrics.skipped(cluster, reason);
            }
        }
        self.reported = true;
    }

    /// The client went away: nothing to report, but a probe slot and a waiting retry's budget
    /// go back.
    pub fn abandon(&mut self, w: &mut Worker, now: Millis) {
        self.give_back_budget(w, now);
        self.release_permit(w, now);
    }

    /// Reports no outcome: a probe's slot goes back.
    fn release_permit(&mut self, w: &mut Worker, now: Millis) {
        if self.reported {
            return;
        }
        self.reported = true;
        let Some(permit) = self.permit.filter(|p| p.is_probe()) else {
            return;
        };
        let updated = shared::update::<Breaker, _>(&self.breaker_key, |b| {
            let step = b.release(permit, now);
            (step.events, step.changed)
        });
        w.observe(&self.cluster, &self.breaker_key, updated);
    }

    /// Returns the budget of a retry that will not run.
    pub fn give_back_budget(&mut self, w: &mut Worker, now: Millis) {
        let Some(withdrawal) = self.withdrawal.take() else {
            return;
        };
        let config = Rc::clone(&self.config);
        let effective = config.policy.at(self.entry);
        if let Some(budget) = effective.retry.as_ref().and_then(|r| r.budget.as_ref()) {
            w.refund(&config.keys, &self.cluster, budget, withdrawal, now);
        }
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
        read_breaker(w, &self.cluster, &self.breaker_key).is_closed()
    }

    /// Reports one outcome to the breaker (reading the clock only if the breaker is not quiet).
    fn report(&self, w: &mut Worker, outcome: &Outcome, clock: &mut Clock) {
        let (Some(policy), Some(permit)) = (self.breaker_policy(), self.permit) else {
            return;
        };
        if policy.mode == BreakerMode::Disabled {
            return;
        }
        let call = Call {
            failed: policy.failure_on.matches(outcome),
            slow: policy.slow_call.is_some_and(|s| {
                // A gRPC call is timed to its response headers (`responded`), not its trailers.
                let end = self.responded.unwrap_or_else(|| clock.now());
                end.saturating_sub(self.attempt_started) > millis(s.duration)
            }),
        };
        if call.failed {
            w.metrics.add_at(self.slot, Counter::Failures, 1);
        }
        let rates = policy.failure_rate.is_some() || policy.slow_call.is_some();
        if rates && call.failed {
            // The rate a failure is judged by counts this worker's held successes too.
            w.record_held(&self.config, &self.cluster, clock.now());
        }
        // Every outcome is recorded, successes included: a success resets the consecutive count
        // whenever it is non-zero, whatever the count was when this request was admitted (the
        // breaker counts in the order outcomes arrive). A success that finds nothing to reset
        // reads the state and writes nothing.
        let key = &*self.breaker_key;
        let first = shared::read(key);
        let quiet = Quiet::of(first.bytes.as_deref());
        if quiet.is_some_and(|q| q.record(policy, permit, call)) {
            return;
        }
        if rates && !call.failed && takes_success_later(&first, permit, call) {
            // Only the rate window would change: held back, added with others at the flush.
            let held = w.hold_success(
                &self.cluster,
                self.slot,
                &self.route,
                permit.epoch(),
                call.slow,
            );
            match held {
                Some(true) => return w.record_held(&self.config, &self.cluster, clock.now()),
                Some(false) => return timer::flush_later(w, self.root, clock),
                // Not held (the worker holds successes for as many clusters as it keeps
                // apart): recorded now, below.
                None => {}
            }
        }
        let now = clock.now();
        let rng = &mut w.rng;
        let updated = shared::update_from::<Breaker, _>(key, first, |b| {
            let step = b.record(policy, permit, call, now, rng);
            (step.events, step.changed)
        });
        w.observe(&self.cluster, key, updated);
    }
}

/// Whether the breaker stored as `read` would only add this success to its rate window (bytes
/// that do not decode go the full way, which reports them).
fn takes_success_later(read: &shared::Read, permit: Permit, call: Call) -> bool {
    shared::peek::<Breaker>(read).is_some_and(|b| b.takes_success_later(permit, call))
}

/// The metric label of a stop that skipped a wanted retry (`None`: nothing was skipped: a
/// success, an outcome not retried, every attempt used); `dropped` is why the request copy was
/// given up, if it was. Exhaustive, so a new stop cannot go uncounted by accident.
pub fn skip_reason(stop: Stop, dropped: Option<Dropped>) -> Option<SkipReason> {
    match stop {
        Stop::NotEligible if dropped == Some(Dropped::Memory) => Some(SkipReason::Memory),
        Stop::NotEligible if dropped == Some(Dropped::Incomplete) => {
            Some(SkipReason::IncompleteBody)
        }
        Stop::NotEligible if dropped == Some(Dropped::Grpc) => Some(SkipReason::Grpc),
        Stop::NotEligible => Some(SkipReason::NotEligible),
        Stop::Budget => Some(SkipReason::Budget),
        Stop::Deadline => Some(SkipReason::Deadline),
        Stop::Breaker => Some(SkipReason::Breaker),
        Stop::RetryAfterTooLong => Some(SkipReason::RetryAfter),
        Stop::Success | Stop::NotRetryable | Stop::Exhausted => None,
    }
}
