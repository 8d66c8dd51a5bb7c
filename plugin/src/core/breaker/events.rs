//! What a transition did, for the glue to turn into logs and metrics.
//!
//! # Why a fixed struct and not a list
//! Every request passes through `admit` and `record`, so the closed path must not allocate.
//! [`Events`] is a small `Copy` struct with one slot per kind of event; one step can hold at most
//! one of each kind (a step moves the breaker at most twice: open → half-open, then a probe is
//! admitted or refused). [`Events::iter`] yields them as [`Event`]s in the order they happened,
//! and every [`Event`] and [`OpenReason`] has a `Display` fit for a log line.
//!
//! # No float formatting
//! Rates print with one decimal (`55.0%`), exactly as `{:.1}` would print them, but through
//! integer arithmetic ([`tenths_of_percent`]): `{:.1}` on an `f64` links core's float formatting
//! (Grisu and Dragon4 with their tables, about 24 KB) into the filter's `.wasm` for this one log
//! line. Durations print as whole milliseconds in a `u64`, which keeps 128-bit formatting out too.

use std::fmt;
use std::time::Duration;

use super::Phase;
use crate::core::millis;

/// Why the breaker opened.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum OpenReason {
    /// `failure_threshold` consecutive failures; carries the count.
    ConsecutiveFailures(u32),
    /// The failed fraction over the window reached `failure_rate.threshold`.
    FailureRate { rate: f64, requests: u32 },
    /// The slow fraction over the window reached `slow_call.rate_threshold`.
    SlowCallRate { rate: f64, requests: u32 },
    /// A half-open probe failed.
    ProbeFailed,
    /// A half-open probe answered, but slower than `slow_call.duration`.
    ProbeSlow,
}

impl fmt::Display for OpenReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            OpenReason::ConsecutiveFailures(n) => write!(f, "{n} consecutive failures"),
            OpenReason::FailureRate { rate, requests } => {
                let rate = Percent(rate);
                write!(f, "failure rate {rate}% over {requests} requests")
            }
            OpenReason::SlowCallRate { rate, requests } => {
                let rate = Percent(rate);
                write!(f, "slow-call rate {rate}% over {requests} requests")
            }
            OpenReason::ProbeFailed => f.write_str("a half-open probe failed"),
            OpenReason::ProbeSlow => f.write_str("a half-open probe was slow"),
        }
    }
}

/// A fraction in `[0, 1]` as a percentage with one decimal, without the `%`.
struct Percent(f64);

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tenths = tenths_of_percent(self.0);
        write!(f, "{}.{}", tenths / 10, tenths % 10)
    }
}

/// `rate · 100` in tenths, rounded as `format!("{:.1}", rate * 100.0)` rounds: half to even on
/// the exact binary value of the product. A rate outside `[0, 1]` (the windows never produce
/// one) is clamped to it, NaN read as 0.
fn tenths_of_percent(rate: f64) -> u64 {
    let percent = if rate > 0.0 {
        rate.min(1.0) * 100.0
    } else {
        0.0
    };
    // percent = significand · 2^(exponent − 1075), with the implicit bit; 0 and subnormals
    // (far below 0.05) are 0 tenths.
    let bits = percent.to_bits();
    let exponent = (bits >> 52) & 0x7ff;
    if exponent == 0 {
        return 0;
    }
    let tenths = ((bits & ((1 << 52) - 1)) | (1 << 52)) * 10; // below 2^57
                                                              // percent ≤ 100 < 2^53, so the shift is at least 46; from 58 on the value is below 1/2.
    let shift = 1075 - exponent;
    if shift >= 58 {
        return 0;
    }
    let whole = tenths >> shift;
    let rest = tenths & ((1 << shift) - 1);
    let half = 1 << (shift - 1);
    if rest > half || (rest == half && whole % 2 == 1) {
        whole + 1
    } else {
        whole
    }
}

/// An opening: why, and for how long (jitter included).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Opening {
    pub reason: OpenReason,
    pub open_for: Duration,
}

/// One thing that happened in a step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Event {
    /// The stored state held a time further ahead than the policy allows (an open time, a probe
    /// lease, a window bucket): it was brought within the policy before anything else.
    Clamped,
    /// Leases of probes that never reported were given back after `probe_timeout`.
    ProbesReclaimed(u32),
    /// The open time passed and a request arrived: probes are admitted.
    HalfOpened,
    /// Enough probes succeeded (or, in shadow mode, would have): counting starts afresh.
    Closed,
    /// The breaker opened and rejects requests (`enforce`).
    Opened(Opening),
    /// The breaker opened in `shadow` mode: it keeps admitting everything.
    WouldOpen(Opening),
    /// A request was answered with the fallback.
    Rejected(Phase),
    /// `shadow` mode admitted a request that `enforce` would have rejected.
    WouldReject(Phase),
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Event::Clamped => f.write_str(
                "breaker state held a time further ahead than the policy allows; clamped to it",
            ),
            Event::ProbesReclaimed(n) => {
                write!(
                    f,
                    "breaker reclaimed {n} probe slot(s) whose probes never reported"
                )
            }
            Event::HalfOpened => f.write_str("breaker half-open: admitting probes"),
            Event::Closed => f.write_str("breaker closed: probes succeeded"),
            Event::Opened(o) => {
                let ms = millis(o.open_for);
                write!(f, "breaker opened for {ms}ms: {}", o.reason)
            }
            Event::WouldOpen(o) => {
                let ms = millis(o.open_for);
                write!(
                    f,
                    "breaker would open for {ms}ms (shadow mode): {}",
                    o.reason
                )
            }
            Event::Rejected(phase) => write!(f, "request rejected: breaker {phase}"),
            Event::WouldReject(phase) => {
                write!(
                    f,
                    "request would be rejected (shadow mode): breaker {phase}"
                )
            }
        }
    }
}

/// The events of one step. `Copy`, allocation-free; empty on the common paths.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Events {
    clamped: bool,
    reclaimed: u32,
    half_opened: bool,
    closed: bool,
    opened: Option<Opening>,
    would_open: Option<Opening>,
    rejected: Option<Phase>,
    would_reject: Option<Phase>,
    /// Whether the step ran in `shadow` mode; `None` when it had no policy (a released permit).
    shadow: Option<bool>,
}

impl Events {
    /// Nothing happened (the mode the step ran in is not an event).
    pub fn is_empty(&self) -> bool {
        Events {
            shadow: None,
            ..*self
        } == Events::default()
    }

    /// Whether the step ran under a `shadow` policy: its state machine then runs beside the
    /// traffic and rejects nothing, so the glue shows its phase apart from the real state (which
    /// stays closed). `None` for a step without a policy.
    pub fn shadow(&self) -> Option<bool> {
        self.shadow
    }

    /// The stored state held a time further ahead than the policy allows and was clamped (see
    /// the breaker's "Implausible times"). The glue logs and counts it.
    pub fn clamped(&self) -> bool {
        self.clamped
    }

    /// Probe leases reclaimed in this step (0 if none).
    pub fn probes_reclaimed(&self) -> u32 {
        self.reclaimed
    }

    pub fn half_opened(&self) -> bool {
        self.half_opened
    }

    pub fn closed(&self) -> bool {
        self.closed
    }

    /// The breaker opened (`enforce`).
    pub fn opened(&self) -> Option<Opening> {
        self.opened
    }

    /// The breaker opened in `shadow` mode.
    pub fn would_open(&self) -> Option<Opening> {
        self.would_open
    }

    /// The request was rejected, in this phase.
    pub fn rejected(&self) -> Option<Phase> {
        self.rejected
    }

    /// `shadow` mode admitted a request that `enforce` would have rejected, in this phase.
    pub fn would_reject(&self) -> Option<Phase> {
        self.would_reject
    }

    /// The events in the order they happened.
    pub fn iter(&self) -> impl Iterator<Item = Event> {
        [
            self.clamped.then_some(Event::Clamped),
            (self.reclaimed > 0).then_some(Event::ProbesReclaimed(self.reclaimed)),
            self.half_opened.then_some(Event::HalfOpened),
            self.closed.then_some(Event::Closed),
            self.opened.map(Event::Opened),
            self.would_open.map(Event::WouldOpen),
            self.rejected.map(Event::Rejected),
            self.would_reject.map(Event::WouldReject),
        ]
        .into_iter()
        .flatten()
    }

    pub(super) fn set_shadow(&mut self, shadow: bool) {
        self.shadow = Some(shadow);
    }

    pub(super) fn set_clamped(&mut self) {
        self.clamped = true;
    }

    pub(super) fn add_reclaimed(&mut self, n: u32) {
        self.reclaimed = self.reclaimed.saturating_add(n);
    }

    pub(super) fn set_half_opened(&mut self) {
        self.half_opened = true;
    }

    pub(super) fn set_closed(&mut self) {
        self.closed = true;
    }

    pub(super) fn set_opened(&mut self, opening: Opening, shadow: bool) {
        if shadow {
            self.would_open = Some(opening);
        } else {
            self.opened = Some(opening);
        }
    }

    pub(super) fn set_rejected(&mut self, phase: Phase, shadow: bool) {
        if shadow {
            self.would_reject = Some(phase);
        } else {
            self.rejected = Some(phase);
        }
    }
}
