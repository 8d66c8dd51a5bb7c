//! Open: rejection, open time, escalation, jitter, and the way to half-open.

use super::*;
use crate::core::breaker::OpenReason;

/// The open time of `b`, opened at `at`.
fn open_time(b: &Breaker, at: Millis) -> Millis {
    open_until(b) - at
}

/// Lets the open breaker's first probe through and fails it: returns the re-open's time.
fn fail_probe(b: &mut Breaker, p: &BreakerPolicy, rng: &mut StdRng) -> Millis {
    let at = open_until(b);
    let probe = admitted(b.admit(p, at, rng));
    let step = b.record(p, probe, FAIL, at, rng);
    let opening = step.events.opened().expect("a failed probe re-opens");
    assert_eq!(opening.reason, OpenReason::ProbeFailed);
    assert_eq!(
        opening.open_for,
        Duration::from_millis(open_time(b, at)),
        "event = state"
    );
    open_time(b, at)
}

#[track_caller]
fn assert_jittered(open: Millis, base_ms: Millis, why: &str) {
    let (low, high) = (base_ms * 9 / 10, base_ms * 11 / 10);
    assert!(
        (low..=high).contains(&open),
        "{why}: {open}ms is outside [{low}, {high}]ms"
    );
}

#[test]
fn an_open_breaker_rejects_until_its_open_time_has_passed() {
    let p = policy();
    let mut b = opened(&p, T0);
    let until = open_until(&b);
    let step = b.admit(&p, T0 + 1, &mut rng());
    assert!(!step.changed, "a rejection changes nothing in shared data");
    assert_eq!(
        step.events.rejected(),
        Some(Phase::Open),
        "the rejection is reported"
    );
    let r = rejected(step);
    assert_eq!(r.phase, Phase::Open);
    assert_eq!(
        r.retry_after,
        Duration::from_millis(until - T0 - 1),
        "retry when half-open"
    );

    let last = rejected(b.admit(&p, until - 1, &mut rng()));
    assert_eq!(
        last.retry_after,
        Duration::from_millis(1),
        "1ms before: retry in 1ms, never 0"
    );
}

#[test]
fn the_first_request_after_the_open_time_half_opens_and_is_a_probe() {
    let p = policy();
    let mut b = opened(&p, T0);
    let until = open_until(&b);
    let before = b.epoch();
    let step = b.admit(&p, until, &mut rng());
    assert!(step.events.half_opened(), "the lazy half-open is reported");
    assert!(
        step.changed,
        "half-open and the probe lease must be written"
    );
    let permit = admitted(step);
    assert!(
        permit.is_probe(),
        "the request that half-opens is the first probe"
    );
    assert_eq!(b.phase(), Phase::HalfOpen);
    assert_eq!(b.epoch(), before + 1, "half-opening is a transition");
}

#[test]
fn the_open_time_is_the_timeout_with_ten_percent_jitter() {
    let p = policy();
    let mut seen = std::collections::BTreeSet::new();
    for seed in 0..200 {
        let mut b = Breaker::new();
        let mut rng = StdRng::seed_from_u64(seed);
        for _ in 0..p.failure_threshold {
            let permit = admitted(b.admit(&p, T0, &mut rng));
            let _ = b.record(&p, permit, FAIL, T0, &mut rng);
        }
        let open = open_time(&b, T0);
        assert_jittered(open, 60_000, "the first open lasts timeout ±10%");
        seen.insert(open);
    }
    assert!(
        seen.len() > 150,
        "jitter must spread proxies apart: only {} distinct",
        seen.len()
    );
    let spread = seen.last().unwrap_or(&0) - seen.first().unwrap_or(&0);
    assert!(
        spread > 10_000,
        "200 draws should cover most of the ±6s range, got {spread}ms"
    );
}

#[test]
fn each_reopen_from_half_open_doubles_the_open_time_up_to_the_cap() {
    let p = policy_with(|p| {
        p.timeout = Duration::from_secs(10);
        p.max_timeout = Duration::from_secs(35);
    });
    let mut rng = rng();
    let b = &mut opened(&p, T0);
    assert_jittered(open_time(b, T0), 10_000, "first open: timeout");
    assert_jittered(fail_probe(b, &p, &mut rng), 20_000, "1st re-open: doubled");
    assert_jittered(
        fail_probe(b, &p, &mut rng),
        35_000,
        "2nd re-open: 40s capped at 35s",
    );
    assert_jittered(
        fail_probe(b, &p, &mut rng),
        35_000,
        "3rd re-open: stays at the cap",
    );
}

#[test]
fn a_close_resets_the_escalation() {
    let p = policy_with(|p| {
        p.timeout = Duration::from_secs(10);
        p.max_timeout = Duration::from_secs(80);
    });
    let mut rng = rng();
    let mut b = opened(&p, T0);
    let _ = fail_probe(&mut b, &p, &mut rng);
    let _ = fail_probe(&mut b, &p, &mut rng);
    let at = open_until(&b);
    let probe = admitted(b.admit(&p, at, &mut rng));
    let step = b.record(&p, probe, OK, at, &mut rng);
    assert!(
        step.events.closed() && b.is_closed(),
        "a successful probe closes"
    );
    for _ in 0..p.failure_threshold {
        let _ = request(&mut b, &p, at + 1, FAIL);
    }
    assert_jittered(
        open_time(&b, at + 1),
        10_000,
        "after a close the open time is back to timeout",
    );
}

#[test]
fn a_max_timeout_below_the_timeout_caps_the_first_open_too() {
    let p = policy_with(|p| p.max_timeout = Duration::from_secs(30));
    let b = opened(&p, T0);
    assert_jittered(open_time(&b, T0), 30_000, "min(timeout, max_timeout)");
}

#[test]
fn the_opened_event_carries_the_jittered_open_time() {
    let p = policy_with(|p| p.failure_threshold = 1);
    let mut b = Breaker::new();
    let step = request(&mut b, &p, T0, FAIL);
    let opening = step
        .events
        .opened()
        .expect("one failure opens at threshold 1");
    assert_eq!(opening.open_for, Duration::from_millis(open_time(&b, T0)));
}
