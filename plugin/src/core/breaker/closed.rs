//! The closed phase: counting outcomes and deciding when to trip.
//!
//! # Trip conditions
//! - `failure_threshold` consecutive failures. A success resets the count;
//!   0 turns the trigger off.
//! - `failure_rate`: over the sliding window, once at least `minimum_requests` calls finished,
//!   the failed fraction reaches `threshold`.
//! - `slow_call`: the same with the slow fraction and `rate_threshold`.
//!
//! The window is only maintained when a rate trigger is configured, and it is dropped when the
//! policy no longer has one. So with only the consecutive trigger, a success that finds no
//! failures to forget changes nothing, and the glue writes nothing: the common case costs no
//! shared-data write.

use super::window::{Geometry, Window};
use super::{Call, OpenReason};
use crate::core::Millis;
use crate::policy::BreakerPolicy;

/// What the closed phase remembers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Counts {
    /// Failures since the last success.
    pub(super) failures: u32,
    /// Outcomes over the sliding window; empty unless a rate trigger is configured.
    pub(super) window: Window,
}

/// What observing one outcome did.
pub(super) struct Observed {
    /// The counts changed (the state must be written back).
    pub(super) changed: bool,
    /// A trip condition is met: the breaker must open.
    pub(super) trip: Option<OpenReason>,
}

impl Counts {
    /// Counts one outcome of a request admitted while closed.
    pub(super) fn observe(&mut self, p: &BreakerPolicy, call: Call, now: Millis) -> Observed {
        let mut changed = false;
        if call.failed {
            self.failures = self.failures.saturating_add(1);
            changed = true;
        } else if self.failures != 0 {
            self.failures = 0;
            changed = true;
        }

        let rates = p.failure_rate.is_some() || p.slow_call.is_some();
        if rates {
            let slow = call.slow && p.slow_call.is_some();
            self.window
                .record(Geometry::of(&p.window), now, call.failed, slow);
            changed = true;
        } else if !self.window.is_empty() {
            self.window = Window::default();
            changed = true;
        }

        let trip = self
            .consecutive_trip(p, call)
            .or_else(|| self.rate_trip(p, now));
        Observed { changed, trip }
    }

    fn consecutive_trip(&self, p: &BreakerPolicy, call: Call) -> Option<OpenReason> {
        let met = call.failed && p.failure_threshold > 0 && self.failures >= p.failure_threshold;
        met.then_some(OpenReason::ConsecutiveFailures(self.failures))
    }

    fn rate_trip(&self, p: &BreakerPolicy, now: Millis) -> Option<OpenReason> {
        if p.failure_rate.is_none() && p.slow_call.is_none() {
            return None;
        }
        let tally = self.window.tally(Geometry::of(&p.window), now);
        if tally.total == 0 || tally.total < p.window.minimum_requests {
            return None;
        }
        let requests = tally.total;
        let total = f64::from(tally.total);
        let failure_rate = f64::from(tally.failed) / total;
        let slow_rate = f64::from(tally.slow) / total;
        if p.failure_rate.is_some_and(|r| failure_rate >= r.threshold) {
            return Some(OpenReason::FailureRate {
                rate: failure_rate,
                requests,
            });
        }
        if p.slow_call.is_some_and(|s| slow_rate >= s.rate_threshold) {
            return Some(OpenReason::SlowCallRate {
                rate: slow_rate,
                requests,
            });
        }
        None
    }
}
