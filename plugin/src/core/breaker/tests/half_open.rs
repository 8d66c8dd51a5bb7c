//! Half-open: bounded probes, leases, closing and re-opening.

use super::*;
use crate::core::breaker::OpenReason;

fn three_probes() -> BreakerPolicy {
    policy_with(|p| p.half_open_attempts = 3)
}

#[test]
fn half_open_admits_exactly_half_open_attempts_probes() {
    let p = three_probes();
    let (mut b, first, at) = half_open(&p);
    let mut rng = rng();
    let second = admitted(b.admit(&p, at, &mut rng));
    let third = admitted(b.admit(&p, at + 1, &mut rng));
    assert!(
        first.is_probe() && second.is_probe() && third.is_probe(),
        "three slots, three probes"
    );
    let step = b.admit(&p, at + 2, &mut rng);
    assert_eq!(step.events.rejected(), Some(Phase::HalfOpen));
    assert!(!step.changed, "refusing a fourth probe writes nothing");
    let r = rejected(step);
    assert_eq!(
        r.phase,
        Phase::HalfOpen,
        "the fallback says half-open, not open"
    );
    assert_eq!(
        r.retry_after,
        Duration::from_millis(30_000 - 2),
        "retry when the earliest lease (granted at `at`, 30s probe timeout) expires"
    );
}

#[test]
fn a_full_half_open_asks_for_at_least_a_second() {
    let p = policy_with(|p| p.probe_timeout = Duration::from_millis(300));
    let (mut b, _probe, at) = half_open(&p);
    let r = rejected(b.admit(&p, at + 100, &mut rng()));
    assert_eq!(
        r.retry_after,
        Duration::from_secs(1),
        "200ms left, but never less than 1s"
    );
}

#[test]
fn half_open_attempts_successes_close_the_breaker() {
    let p = three_probes();
    let (mut b, first, at) = half_open(&p);
    let mut rng = rng();
    let second = admitted(b.admit(&p, at, &mut rng));
    let third = admitted(b.admit(&p, at, &mut rng));
    for (n, probe) in [first, second].into_iter().enumerate() {
        let step = b.record(&p, probe, OK, at + 1, &mut rng);
        assert!(step.changed, "a probe success is counted in shared data");
        assert_eq!(
            b.phase(),
            Phase::HalfOpen,
            "{} of 3 successes do not close",
            n + 1
        );
    }
    let step = b.record(&p, third, OK, at + 1, &mut rng);
    assert!(step.events.closed(), "the 3rd success closes");
    assert_eq!(
        b,
        Breaker {
            epoch: b.epoch(),
            ..Breaker::new()
        },
        "closing resets everything"
    );
}

#[test]
fn a_probe_success_frees_no_slot_beyond_the_successes_still_needed() {
    let p = three_probes();
    let (mut b, first, at) = half_open(&p);
    let mut rng = rng();
    let _second = admitted(b.admit(&p, at, &mut rng));
    let _third = admitted(b.admit(&p, at, &mut rng));
    let _ = b.record(&p, first, OK, at, &mut rng);
    let r = rejected(b.admit(&p, at, &mut rng));
    assert_eq!(
        r.phase,
        Phase::HalfOpen,
        "2 successes still needed and 2 probes in flight: full"
    );
}

#[test]
fn any_probe_failure_reopens_one_doubling_higher() {
    let p = policy_with(|p| {
        p.half_open_attempts = 2;
        p.max_timeout = Duration::from_secs(600);
    });
    let (mut b, first, at) = half_open(&p);
    let mut rng = rng();
    let second = admitted(b.admit(&p, at, &mut rng));
    let _ = b.record(&p, first, OK, at, &mut rng);
    let step = b.record(&p, second, FAIL, at, &mut rng);
    assert_eq!(
        b.phase(),
        Phase::Open,
        "a failure after a success still re-opens"
    );
    let opening = step.events.opened().expect("re-open reported");
    assert_eq!(opening.reason, OpenReason::ProbeFailed);
    let open = open_until(&b) - at;
    assert!(
        (108_000..=132_000).contains(&open),
        "120s ±10% after one doubling, got {open}ms"
    );
}

#[test]
fn a_slow_probe_reopens_when_a_slow_call_trigger_is_configured() {
    let p = policy_with(|p| {
        p.slow_call = Some(SlowCall {
            duration: Duration::from_secs(2),
            rate_threshold: 0.5,
        });
    });
    let (mut b, probe, at) = half_open(&p);
    let step = b.record(&p, probe, SLOW, at, &mut rng());
    assert_eq!(
        step.events.opened().map(|o| o.reason),
        Some(OpenReason::ProbeSlow)
    );

    let p = policy();
    let (mut b, probe, at) = half_open(&p);
    let _ = b.record(&p, probe, SLOW, at, &mut rng());
    assert!(
        b.is_closed(),
        "without a slow-call trigger a slow success is a success"
    );
}

#[test]
fn an_expired_lease_is_reclaimed_and_its_slot_reused() {
    let p = policy();
    let (mut b, _lost, at) = half_open(&p);
    let mut rng = rng();
    let _ = rejected(b.admit(&p, at + 29_999, &mut rng));
    let step = b.admit(&p, at + 30_000, &mut rng);
    assert_eq!(
        step.events.probes_reclaimed(),
        1,
        "the 30s probe timeout reclaims the slot"
    );
    assert!(
        admitted(step).is_probe(),
        "the reclaimed slot goes to the next request"
    );
}

#[test]
fn leases_are_reclaimed_by_records_and_releases_too() {
    let p = three_probes();
    let (mut b, _lost, at) = half_open(&p);
    let mut rng = rng();
    let other = admitted(b.admit(&p, at + 10_000, &mut rng));
    let step = b.release(other, at + 30_000);
    assert_eq!(
        step.events.probes_reclaimed(),
        1,
        "release reclaims the expired first lease"
    );
    assert!(step.changed);

    let (mut b, _lost, at) = half_open(&p);
    let other = admitted(b.admit(&p, at + 10_000, &mut rng));
    let step = b.record(&p, other, OK, at + 30_000, &mut rng);
    assert_eq!(
        step.events.probes_reclaimed(),
        1,
        "record reclaims the expired first lease"
    );
}

#[test]
fn a_released_probe_gives_its_slot_back_at_once() {
    let p = policy();
    let (mut b, probe, at) = half_open(&p);
    let _ = rejected(b.admit(&p, at, &mut rng()));
    let step = b.release(probe, at + 1);
    assert!(
        step.changed && step.events.is_empty(),
        "a release is a write, not an event"
    );
    assert!(
        admitted(b.admit(&p, at + 1, &mut rng())).is_probe(),
        "the slot is free again"
    );
    let again = b.release(probe, at + 2);
    assert!(
        !again.changed,
        "releasing a lease that is gone changes nothing"
    );
}

#[test]
fn a_probe_reporting_after_its_lease_was_reclaimed_still_counts() {
    let p = policy();
    let (mut b, slow_probe, at) = half_open(&p);
    let mut rng = rng();
    let replacement = admitted(b.admit(&p, at + 30_000, &mut rng));
    assert!(replacement.is_probe());
    let step = b.record(&p, slow_probe, FAIL, at + 31_000, &mut rng);
    assert!(
        step.events.opened().is_some(),
        "same epoch: a late failure is still a failure"
    );

    let (mut b, slow_probe, at) = half_open(&p);
    let _ = admitted(b.admit(&p, at + 30_000, &mut rng));
    let _ = b.record(&p, slow_probe, OK, at + 31_000, &mut rng);
    assert!(
        b.is_closed(),
        "same epoch: a late success is evidence of recovery"
    );
}

#[test]
fn a_probe_from_an_earlier_half_open_is_stale() {
    let p = three_probes();
    let (mut b, first, at) = half_open(&p);
    let mut rng = rng();
    let second = admitted(b.admit(&p, at, &mut rng));
    let _ = b.record(&p, first, FAIL, at, &mut rng);
    let reopened_until = open_until(&b);
    let next = admitted(b.admit(&p, reopened_until, &mut rng));
    assert!(next.is_probe(), "second half-open");
    let step = b.record(&p, second, FAIL, reopened_until, &mut rng);
    assert!(
        step.events.is_empty(),
        "the old probe's failure must not re-open the new half-open"
    );
    assert_eq!(b.phase(), Phase::HalfOpen);
    let step = b.release(second, reopened_until);
    assert!(
        !step.changed,
        "nor may its release free a slot of the new half-open"
    );
}

#[test]
fn fewer_slots_after_a_policy_change_admit_nothing_until_enough_leases_end() {
    let p = three_probes();
    let (mut b, first, at) = half_open(&p);
    let mut rng = rng();
    let second = admitted(b.admit(&p, at, &mut rng));
    let third = admitted(b.admit(&p, at, &mut rng));
    let one = policy();
    let _ = rejected(b.admit(&one, at, &mut rng));
    let _ = b.release(first, at);
    let _ = b.release(second, at);
    let _ = rejected(b.admit(&one, at, &mut rng));
    let step = b.record(&one, third, OK, at, &mut rng);
    assert!(
        step.events.closed(),
        "one success closes under the new policy of one attempt"
    );
}

#[test]
fn successes_that_already_reach_a_lowered_attempts_close_at_the_next_admit() {
    let p = three_probes();
    let (mut b, first, at) = half_open(&p);
    let mut rng = rng();
    let second = admitted(b.admit(&p, at, &mut rng));
    let _ = b.record(&p, first, OK, at, &mut rng);
    let _ = b.release(second, at);
    let one = policy();
    let step = b.admit(&one, at + 1, &mut rng);
    assert!(
        step.events.closed(),
        "1 success already meets half_open_attempts = 1"
    );
    let permit = admitted(step);
    assert!(
        !permit.is_probe() && b.is_closed(),
        "the request is admitted as a closed one"
    );
}
