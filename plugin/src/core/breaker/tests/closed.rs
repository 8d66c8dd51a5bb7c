//! Closed: counting outcomes and the trip conditions.

use super::*;
use crate::core::breaker::OpenReason;

#[test]
fn consecutive_failures_open_at_exactly_the_threshold() {
    let p = policy_with(|p| p.failure_threshold = 3);
    let mut b = Breaker::new();
    for n in 1..3 {
        let step = request(&mut b, &p, T0, FAIL);
        assert!(step.changed, "failure {n} must be counted in shared data");
        assert_eq!(
            b.phase(),
            Phase::Closed,
            "{n} failures are below the threshold of 3"
        );
    }
    let step = request(&mut b, &p, T0, FAIL);
    assert_eq!(
        b.phase(),
        Phase::Open,
        "the 3rd consecutive failure reaches the threshold"
    );
    let opening = step
        .events
        .opened()
        .expect("the step that opens reports it");
    assert_eq!(opening.reason, OpenReason::ConsecutiveFailures(3));
    assert!(step.changed, "opening must be written");
}

#[test]
fn a_success_resets_the_consecutive_failures() {
    let p = policy_with(|p| p.failure_threshold = 3);
    let mut b = Breaker::new();
    let _ = request(&mut b, &p, T0, FAIL);
    let _ = request(&mut b, &p, T0, FAIL);
    let reset = request(&mut b, &p, T0, OK);
    assert!(
        reset.changed,
        "forgetting two failures is a change to write"
    );
    let _ = request(&mut b, &p, T0, FAIL);
    let _ = request(&mut b, &p, T0, FAIL);
    assert_eq!(
        b.phase(),
        Phase::Closed,
        "2 + 2 failures with a success between never make 3"
    );
    let _ = request(&mut b, &p, T0, FAIL);
    assert_eq!(b.phase(), Phase::Open, "three in a row do");
}

#[test]
fn a_failure_threshold_of_zero_never_opens() {
    let p = policy_with(|p| p.failure_threshold = 0);
    let mut b = Breaker::new();
    for _ in 0..1000 {
        let _ = request(&mut b, &p, T0, FAIL);
    }
    assert_eq!(
        b.phase(),
        Phase::Closed,
        "threshold 0 turns the consecutive trigger off"
    );
}

#[test]
fn admitting_while_closed_writes_nothing_and_reports_nothing() {
    let p = policy();
    let mut b = Breaker::new();
    let step = b.admit(&p, T0, &mut rng());
    assert!(
        !step.changed,
        "admit while closed is the hot path: no shared-data write"
    );
    assert!(
        step.events.is_empty(),
        "nothing happened: {:?}",
        step.events
    );
    assert_eq!(b, Breaker::new());
}

#[test]
fn a_success_with_nothing_to_forget_and_no_window_writes_nothing() {
    let p = policy();
    let mut b = Breaker::new();
    let before = b.clone();
    let step = request(&mut b, &p, T0, OK);
    assert!(
        !step.changed,
        "the common success changes nothing, so the glue must not write"
    );
    assert!(step.events.is_empty());
    assert_eq!(b, before);
}

#[test]
fn a_success_is_written_when_a_rate_window_is_configured() {
    let p = rate_policy(0.5, 20);
    let mut b = Breaker::new();
    let step = request(&mut b, &p, T0, OK);
    assert!(
        step.changed,
        "the window counts every call, successes included"
    );
}

#[test]
fn the_failure_rate_waits_for_minimum_requests() {
    let p = rate_policy(0.5, 10);
    let mut b = Breaker::new();
    for n in 1..10 {
        let _ = request(&mut b, &p, T0 + n, FAIL);
        assert_eq!(
            b.phase(),
            Phase::Closed,
            "{n} calls are fewer than the minimum of 10"
        );
    }
    let step = request(&mut b, &p, T0 + 10, FAIL);
    assert_eq!(
        b.phase(),
        Phase::Open,
        "10 of 10 failed is over the 50% threshold"
    );
    let opening = step.events.opened().expect("opened");
    assert_eq!(
        opening.reason,
        OpenReason::FailureRate {
            rate: 1.0,
            requests: 10
        }
    );
}

#[test]
fn the_failure_rate_opens_at_exactly_its_threshold_and_not_below() {
    let p = rate_policy(0.5, 10);
    let mut b = Breaker::new();
    for n in 0..6 {
        let _ = request(&mut b, &p, T0 + n, OK);
    }
    for n in 6..10 {
        let _ = request(&mut b, &p, T0 + n, FAIL);
    }
    assert_eq!(
        b.phase(),
        Phase::Closed,
        "4 failures of 10 is 40%, below 50%"
    );
    let _ = request(&mut b, &p, T0 + 10, FAIL);
    assert_eq!(
        b.phase(),
        Phase::Closed,
        "5 failures of 11 is 45%, below 50%"
    );
    let step = request(&mut b, &p, T0 + 11, FAIL);
    let opening = step
        .events
        .opened()
        .expect("6 failures of 12 is exactly 50%: must open");
    assert_eq!(
        opening.reason,
        OpenReason::FailureRate {
            rate: 0.5,
            requests: 12
        }
    );
}

#[test]
fn failures_that_left_the_window_no_longer_count() {
    let p = rate_policy(0.5, 10);
    let mut b = Breaker::new();
    for n in 0..9 {
        let _ = request(&mut b, &p, T0 + n, FAIL);
    }
    // Ten seconds later all nine failures are out of the 10s window.
    let later = T0 + 10_000;
    for n in 0..10 {
        let _ = request(&mut b, &p, later + n, OK);
    }
    let _ = request(&mut b, &p, later + 10, FAIL);
    assert_eq!(
        b.phase(),
        Phase::Closed,
        "1 failure of 11 in the window is far below 50%"
    );
}

#[test]
fn the_window_slides_one_bucket_at_a_time() {
    let p = rate_policy(0.5, 4);
    let mut b = Breaker::new();
    // 3 failures in the first 1s bucket, then successes 9.5s later: still in the window.
    for n in 0..3 {
        let _ = request(&mut b, &p, T0 + n, FAIL);
    }
    let _ = request(&mut b, &p, T0 + 9_500, OK);
    assert_eq!(
        b.phase(),
        Phase::Open,
        "3 of 4 failed within 10s: the first bucket still counts"
    );

    let mut b = Breaker::new();
    for n in 0..3 {
        let _ = request(&mut b, &p, T0 + n, FAIL);
    }
    let _ = request(&mut b, &p, T0 + 10_000, OK);
    assert_eq!(
        b.phase(),
        Phase::Closed,
        "at 10s the first bucket has left: 0 of 1 failed"
    );
}

#[test]
fn slow_calls_open_at_the_slow_call_rate() {
    let p = slow_policy(0.6, 5);
    let mut b = Breaker::new();
    for n in 0..2 {
        let _ = request(&mut b, &p, T0 + n, OK);
    }
    for n in 2..4 {
        let _ = request(&mut b, &p, T0 + n, SLOW);
    }
    assert_eq!(
        b.phase(),
        Phase::Closed,
        "4 calls are below the minimum of 5"
    );
    let step = request(&mut b, &p, T0 + 4, SLOW);
    let opening = step.events.opened().expect("3 slow of 5 is 60%: must open");
    assert_eq!(
        opening.reason,
        OpenReason::SlowCallRate {
            rate: 0.6,
            requests: 5
        }
    );
}

#[test]
fn slow_calls_count_for_nothing_without_a_slow_call_trigger() {
    let p = rate_policy(0.5, 2);
    let mut b = Breaker::new();
    for n in 0..10 {
        let _ = request(&mut b, &p, T0 + n, SLOW);
    }
    assert_eq!(
        b.phase(),
        Phase::Closed,
        "slow successes are successes for the failure rate"
    );
}

#[test]
fn the_window_is_dropped_when_the_policy_no_longer_has_a_rate_trigger() {
    let rates = rate_policy(0.9, 100);
    let mut b = Breaker::new();
    let _ = request(&mut b, &rates, T0, OK);
    let plain = policy();
    let step = request(&mut b, &plain, T0 + 1, OK);
    assert!(step.changed, "forgetting the stale window is written once");
    assert_eq!(b, Breaker::new(), "nothing is left to count");
    let again = request(&mut b, &plain, T0 + 2, OK);
    assert!(!again.changed, "after that, successes are free again");
}

#[test]
fn an_outcome_admitted_before_an_opening_does_not_count_after_it() {
    let p = policy_with(|p| p.failure_threshold = 2);
    let mut b = Breaker::new();
    let mut rng = rng();
    let late = admitted(b.admit(&p, T0, &mut rng));
    let _ = request(&mut b, &p, T0, FAIL);
    let _ = request(&mut b, &p, T0, FAIL);
    let open = b.clone();
    let step = b.record(&p, late, FAIL, T0 + 1, &mut rng);
    assert!(
        !step.changed && step.events.is_empty(),
        "a stale outcome is ignored"
    );
    assert_eq!(b, open);

    // Still stale after the breaker went half-open and closed again.
    let at = open_until(&b);
    let probe = admitted(b.admit(&p, at, &mut rng));
    let _ = b.record(&p, probe, OK, at, &mut rng);
    assert!(b.is_closed(), "one probe success closes");
    let step = b.record(&p, late, FAIL, at + 1, &mut rng);
    assert!(
        !step.changed,
        "an outcome from two epochs ago counts nowhere"
    );
    assert_eq!(
        b,
        Breaker {
            epoch: b.epoch,
            ..Breaker::new()
        },
        "the fresh closed counts stay 0"
    );
}
