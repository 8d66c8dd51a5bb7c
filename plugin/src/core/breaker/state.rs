//! The breaker's state and its transitions: `admit`, `record`, `release`.
//!
//! Every call first brings implausible times within the policy ([`Breaker::clamp`]), then does
//! what time alone has made due (open → half-open on `admit`, expired probe leases reclaimed),
//! then applies its input. Every phase change goes through [`Breaker::transition`], which bumps
//! the epoch, builds the new phase and reports the event.
//!
//! # Implausible times
//!
//! The state comes from shared data, where anything may have written it: another plugin under
//! the same key (Istio shares one namespace), a worker whose clock jumped, an older policy with
//! longer times. Decoding checks the layout, not the times. A time further ahead than the
//! current policy could ever set would stall the breaker: an `open_until` a year away rejects
//! every request for a year, a probe lease that never expires holds its slot forever, a window
//! bucket from the future collects every count and never slides. So `admit` and `record` first
//! clamp, against their `now`: an `open_until` beyond `now` + the longest open time
//! (`max_timeout` with the most jitter) comes back to that, a probe lease beyond `now +
//! probe_timeout` to that, and a window bucket that starts more than a whole window ahead is
//! dropped. Times up to [`CLOCK_SLACK`] past the bound are left alone: workers' readings of the
//! clock differ by that much without anything being wrong. A clamp is written back (`changed`) and
//! reported ([`Events::clamped`]) so the glue logs and counts it; a lowered `max_timeout` or
//! `probe_timeout` clamps the same way, once. `release` has no policy at hand and clamps
//! nothing: it only gives a slot back, and the next `admit` or `record` clamps.

use std::time::Duration;

use rand_core::Rng;

use super::api::PermitKind;
use super::closed::Counts;
use super::open_time;
use super::probes::Probes;
use super::window::Geometry;
use super::{
    Admission, Call, Events, OpenReason, Opening, Permit, Phase, Rejection, Step, Successes,
};
use crate::core::{millis, Millis};
use crate::policy::{BreakerMode, BreakerPolicy};

/// The least `retry_after` while every probe slot is taken.
const HALF_OPEN_RETRY_AFTER: Millis = 1000;

/// How far beyond the policy's bound a stored time may lie before it is clamped. Workers read
/// the clock at different moments of their callbacks, so one may see a breaker another opened
/// "in its future" by a few milliseconds; that disagreement is not an error worth a warning.
const CLOCK_SLACK: Millis = 1000;

/// The circuit breaker of one upstream cluster, as stored in shared data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Breaker {
    /// Phase changes so far (wrapping). A permit from another epoch is stale.
    pub(super) epoch: u64,
    pub(super) state: State,
}

/// The phase, with what it needs to remember.
// The closed variant holds the window's fixed array (about 250 bytes). Boxing it would cost a
// heap allocation per decode on the hot closed path; a breaker lives on the stack for one
// callback, so the size is the better trade.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum State {
    /// Requests flow; their outcomes are counted by the trip conditions.
    Closed(Counts),
    /// Requests are rejected until `until` (absolute); the first request after it makes the
    /// breaker half-open. `escalation` is the number of doublings in this open time.
    Open { until: Millis, escalation: u8 },
    /// Probes are let through, up to `half_open_attempts` at once, each holding a lease.
    HalfOpen(Probes),
}

/// Where a transition goes.
enum Target {
    Closed,
    Open { reason: OpenReason, escalation: u8 },
    HalfOpen { escalation: u8 },
}

/// The events and the changed flag of a step under way.
#[derive(Default)]
struct Effects {
    events: Events,
    changed: bool,
}

impl Effects {
    fn finish<T>(self, value: T) -> Step<T> {
        Step {
            value,
            events: self.events,
            changed: self.changed,
        }
    }
}

impl Default for Breaker {
    fn default() -> Self {
        Breaker::new()
    }
}

impl Breaker {
    /// A closed breaker with nothing counted.
    pub fn new() -> Self {
        Breaker {
            epoch: 0,
            state: State::Closed(Counts::default()),
        }
    }

    pub fn phase(&self) -> Phase {
        match self.state {
            State::Closed(_) => Phase::Closed,
            State::Open { .. } => Phase::Open,
            State::HalfOpen(_) => Phase::HalfOpen,
        }
    }

    /// The consecutive failures counted so far, while closed.
    pub fn consecutive_failures(&self) -> Option<u32> {
        match &self.state {
            State::Closed(counts) => Some(counts.failures),
            _ => None,
        }
    }

    /// When an open breaker lets the next request through as a probe, while open.
    pub fn open_until(&self) -> Option<Millis> {
        match self.state {
            State::Open { until, .. } => Some(until),
            _ => None,
        }
    }

    /// Probe slots held and probes succeeded, while half-open.
    pub fn probes(&self) -> Option<(u32, u32)> {
        match &self.state {
            State::HalfOpen(probes) => {
                let held = u32::try_from(probes.leases.len()).unwrap_or(u32::MAX);
                Some((held, probes.successes))
            }
            _ => None,
        }
    }

    /// Closed. Trips happen in the `record` that meets a trip condition, so a closed breaker is
    /// never waiting to open; an open breaker whose time is up stays open until a request comes.
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed(_))
    }

    /// Phase changes so far: the epoch a permit admitted now would carry.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Decides whether a request may go upstream.
    pub fn admit(&mut self, p: &BreakerPolicy, now: Millis, rng: &mut impl Rng) -> Step<Admission> {
        let mut fx = Effects::default();
        fx.events.set_shadow(p.mode == BreakerMode::Shadow);
        let admission = match p.mode {
            BreakerMode::Disabled => Admission::Admitted(Permit::untracked(self.epoch)),
            BreakerMode::ForcedOpen => {
                fx.events.set_rejected(Phase::Open, false);
                Admission::Rejected(Rejection {
                    phase: Phase::Open,
                    retry_after: Duration::from_millis(millis(p.timeout).max(1)),
                })
            }
            BreakerMode::Enforce | BreakerMode::Shadow => {
                self.clamp(p, now, &mut fx);
                self.admit_counted(p, now, rng, &mut fx)
            }
        };
        fx.finish(admission)
    }

    /// Reports the outcome of a request admitted with `permit`.
    pub fn record(
        &mut self,
        p: &BreakerPolicy,
        permit: Permit,
        call: Call,
        now: Millis,
        rng: &mut impl Rng,
    ) -> Step<()> {
        let mut fx = Effects::default();
        fx.events.set_shadow(p.mode == BreakerMode::Shadow);
        if matches!(p.mode, BreakerMode::Disabled | BreakerMode::ForcedOpen) {
            return fx.finish(());
        }
        self.clamp(p, now, &mut fx);
        self.reclaim(now, &mut fx);
        if permit.epoch != self.epoch {
            return fx.finish(());
        }
        match permit.kind {
            PermitKind::Counted => self.record_closed(p, call, now, rng, &mut fx),
            PermitKind::Probe(id) => self.record_probe(p, id, call, now, rng, &mut fx),
            PermitKind::Untracked => {}
        }
        fx.finish(())
    }

    /// What `admit` decides for a closed breaker, without the time: every request is admitted
    /// while closed (`forced_open` and the other phases go the full way, `None`). The full
    /// `admit` may also drop window buckets dated more than a window ahead (see the module docs);
    /// the next `record` does that instead, so admission needs neither the clock nor a write.
    pub fn admit_closed(&self, p: &BreakerPolicy) -> Option<Admission> {
        if !self.is_closed() {
            return None;
        }
        match p.mode {
            BreakerMode::Enforce | BreakerMode::Shadow => {
                Some(Admission::Admitted(Permit::counted(self.epoch)))
            }
            BreakerMode::Disabled => Some(Admission::Admitted(Permit::untracked(self.epoch))),
            BreakerMode::ForcedOpen => None,
        }
    }

    /// Whether recording `call` for `permit` would only add a success to the rate window: the
    /// breaker is closed in the permit's epoch with no consecutive failures to forget, and the
    /// call is a counted success. A worker may then hold it back and add it later with others
    /// ([`Breaker::record_successes`]) instead of writing the shared state for each.
    pub fn takes_success_later(&self, permit: Permit, call: Call) -> bool {
        let closed_clean = matches!(&self.state, State::Closed(c) if c.failures == 0);
        closed_clean
            && !call.failed
            && permit.epoch == self.epoch
            && permit.kind == PermitKind::Counted
    }

    /// Records `successes` held back in a worker (see [`Breaker::takes_success_later`]) at
    /// `now`, exactly as their `record`s one after the other would (the slow ones last): the
    /// breaker opens at the first of them that makes a rate meet its threshold with at least
    /// `minimum_requests` calls in the window, and the rest are then stale. Successes of
    /// another epoch are stale from the start.
    pub fn record_successes(
        &mut self,
        p: &BreakerPolicy,
        successes: Successes,
        now: Millis,
        rng: &mut impl Rng,
    ) -> Step<()> {
        let mut fx = Effects::default();
        fx.events.set_shadow(p.mode == BreakerMode::Shadow);
        if matches!(p.mode, BreakerMode::Disabled | BreakerMode::ForcedOpen) {
            return fx.finish(());
        }
        self.clamp(p, now, &mut fx);
        self.reclaim(now, &mut fx);
        let fast = successes.total.saturating_sub(successes.slow);
        for i in 0..successes.total {
            if successes.epoch != self.epoch {
                break;
            }
            let call = Call {
                failed: false,
                slow: i >= fast,
            };
            self.record_closed(p, call, now, rng, &mut fx);
        }
        fx.finish(())
    }

    /// The request ended with no outcome to report (client went away): give back a probe slot.
    pub fn release(&mut self, permit: Permit, now: Millis) -> Step<()> {
        let mut fx = Effects::default();
        self.reclaim(now, &mut fx);
        if let (State::HalfOpen(probes), PermitKind::Probe(id)) = (&mut self.state, permit.kind) {
            if permit.epoch == self.epoch && probes.give_back(id) {
                fx.changed = true;
            }
        }
        fx.finish(())
    }

    fn admit_counted(
        &mut self,
        p: &BreakerPolicy,
        now: Millis,
        rng: &mut impl Rng,
        fx: &mut Effects,
    ) -> Admission {
        let shadow = p.mode == BreakerMode::Shadow;
        if let State::Open { until, escalation } = self.state {
            if now >= until {
                self.transition(Target::HalfOpen { escalation }, p, now, rng, fx);
            }
        }
        self.reclaim(now, fx);
        let required = Probes::required(p);
        if matches!(&self.state, State::HalfOpen(probes) if probes.succeeded(required)) {
            self.transition(Target::Closed, p, now, rng, fx);
        }

        let rejection = match &mut self.state {
            State::Closed(_) => return Admission::Admitted(Permit::counted(self.epoch)),
            State::Open { until, .. } => Rejection {
                phase: Phase::Open,
                retry_after: Duration::from_millis(until.saturating_sub(now).max(1)),
            },
            State::HalfOpen(probes) => {
                if probes.free(required) > 0 {
                    fx.changed = true;
                    let lease = probes.lease(now.saturating_add(millis(p.probe_timeout)));
                    return Admission::Admitted(Permit::probe(self.epoch, lease));
                }
                let wait = probes
                    .earliest_expiry()
                    .map_or(0, |e| e.saturating_sub(now));
                Rejection {
                    phase: Phase::HalfOpen,
                    retry_after: Duration::from_millis(wait.max(HALF_OPEN_RETRY_AFTER)),
                }
            }
        };
        fx.events.set_rejected(rejection.phase, shadow);
        if shadow {
            Admission::Admitted(Permit::untracked(self.epoch))
        } else {
            Admission::Rejected(rejection)
        }
    }

    fn record_closed(
        &mut self,
        p: &BreakerPolicy,
        call: Call,
        now: Millis,
        rng: &mut impl Rng,
        fx: &mut Effects,
    ) {
        let State::Closed(counts) = &mut self.state else {
            return;
        };
        let observed = counts.observe(p, call, now);
        fx.changed |= observed.changed;
        if let Some(reason) = observed.trip {
            let to = Target::Open {
                reason,
                escalation: 0,
            };
            self.transition(to, p, now, rng, fx);
        }
    }

    fn record_probe(
        &mut self,
        p: &BreakerPolicy,
        id: u64,
        call: Call,
        now: Millis,
        rng: &mut impl Rng,
        fx: &mut Effects,
    ) {
        let State::HalfOpen(probes) = &mut self.state else {
            return;
        };
        probes.give_back(id);
        fx.changed = true;
        let reason = if call.failed {
            Some(OpenReason::ProbeFailed)
        } else if call.slow && p.slow_call.is_some() {
            Some(OpenReason::ProbeSlow)
        } else {
            None
        };
        let to = match reason {
            Some(reason) => {
                let escalation = open_time::escalate(p, probes.escalation);
                Target::Open { reason, escalation }
            }
            None => {
                probes.successes = probes.successes.saturating_add(1);
                if !probes.succeeded(Probes::required(p)) {
                    return;
                }
                Target::Closed
            }
        };
        self.transition(to, p, now, rng, fx);
    }

    /// Brings times further ahead than `p` allows back within it (see the module docs).
    fn clamp(&mut self, p: &BreakerPolicy, now: Millis, fx: &mut Effects) {
        let clamped = match &mut self.state {
            State::Open { until, .. } => {
                let latest = now.saturating_add(open_time::longest(p));
                let late = *until > latest.saturating_add(CLOCK_SLACK);
                if late {
                    *until = latest;
                }
                late
            }
            State::HalfOpen(probes) => {
                let latest = now.saturating_add(millis(p.probe_timeout));
                probes.clamp_leases(latest, CLOCK_SLACK)
            }
            State::Closed(counts) => counts.window.drop_future(Geometry::of(&p.window), now),
        };
        if clamped {
            fx.changed = true;
            fx.events.set_clamped();
        }
    }

    /// Gives back the slots of expired probe leases.
    fn reclaim(&mut self, now: Millis, fx: &mut Effects) {
        if let State::HalfOpen(probes) = &mut self.state {
            let reclaimed = probes.reclaim(now);
            if reclaimed > 0 {
                fx.changed = true;
                fx.events.add_reclaimed(reclaimed);
            }
        }
    }

    /// The one place where the phase changes: bumps the epoch (making every outstanding permit
    /// stale), builds the new phase with fresh counts, and reports the event.
    fn transition(
        &mut self,
        to: Target,
        p: &BreakerPolicy,
        now: Millis,
        rng: &mut impl Rng,
        fx: &mut Effects,
    ) {
        self.epoch = self.epoch.wrapping_add(1);
        fx.changed = true;
        self.state = match to {
            Target::Closed => {
                fx.events.set_closed();
                State::Closed(Counts::default())
            }
            Target::Open { reason, escalation } => {
                let open_for = open_time::open_for(p, escalation, rng);
                let opening = Opening {
                    reason,
                    open_for: Duration::from_millis(open_for),
                };
                fx.events.set_opened(opening, p.mode == BreakerMode::Shadow);
                State::Open {
                    until: now.saturating_add(open_for),
                    escalation,
                }
            }
            Target::HalfOpen { escalation } => {
                fx.events.set_half_opened();
                State::HalfOpen(Probes::new(escalation))
            }
        };
    }
}
