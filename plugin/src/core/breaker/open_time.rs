//! How long the breaker stays open.
//!
//! # Escalation
//! The first open lasts `timeout`. Each re-open straight from half-open (a probe failed: the
//! upstream is still down) doubles it, up to `max_timeout`; a close resets the doubling. The
//! escalation level only rises while the doubled time is below the cap, so a later policy that
//! raises `max_timeout` resumes doubling from the cap instead of jumping by many doublings.
//!
//! # Jitter
//! The capped time is multiplied by U[0.9, 1.1], rounded to whole milliseconds and kept inside
//! `[⌈0.9·t⌉, ⌊1.1·t⌋]`, at least 1 ms. Proxies that tripped together on the same outage then do
//! not all send their probes in the same instant.

use rand_core::Rng;

use crate::core::rng::uniform;
use crate::core::{millis, Millis};
use crate::policy::BreakerPolicy;

/// The jitter factor's range: ±10%.
const JITTER: (f64, f64) = (0.9, 1.1);

/// `timeout · 2^escalation`, capped at `max_timeout`: the open time before jitter.
pub(super) fn capped(p: &BreakerPolicy, escalation: u8) -> Millis {
    let factor = 1u64.checked_shl(u32::from(escalation)).unwrap_or(u64::MAX);
    millis(p.timeout)
        .saturating_mul(factor)
        .min(millis(p.max_timeout))
}

/// The escalation level of a re-open from half-open that was opened at `escalation`.
pub(super) fn escalate(p: &BreakerPolicy, escalation: u8) -> u8 {
    let doubled = escalation.saturating_add(1);
    if capped(p, doubled) > capped(p, escalation) {
        doubled
    } else {
        escalation
    }
}

/// The longest open time this policy can give: `max_timeout` with the most jitter (+10%), in
/// milliseconds. No [`open_for`] is longer, at any escalation: `⌊1.1·t⌋ = t + ⌊t/10⌋` for a
/// whole `t`, in integers.
pub(super) fn longest(p: &BreakerPolicy) -> Millis {
    let t = millis(p.max_timeout);
    t.saturating_add(t / 10).max(1)
}

/// The jittered open time at `escalation`, in milliseconds.
pub(super) fn open_for(p: &BreakerPolicy, escalation: u8, rng: &mut impl Rng) -> Millis {
    let base = capped(p, escalation) as f64;
    let low = (base * JITTER.0).ceil();
    let high = (base * JITTER.1).floor();
    let jittered = (base * uniform(rng, JITTER.0, JITTER.1)).round();
    (jittered.max(low).min(high) as Millis).max(1)
}
