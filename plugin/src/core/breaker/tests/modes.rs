//! `shadow`, `forced_open` and `disabled`.

use super::*;
use crate::core::breaker::{OpenReason, Successes};

fn shadow() -> BreakerPolicy {
    policy_with(|p| p.mode = BreakerMode::Shadow)
}

#[test]
fn shadow_runs_the_state_machine_but_reports_would_open() {
    let p = shadow();
    let mut b = Breaker::new();
    for _ in 1..5 {
        let _ = request(&mut b, &p, T0, FAIL);
    }
    let step = request(&mut b, &p, T0, FAIL);
    assert!(
        step.events.opened().is_none(),
        "shadow never reports a real opening"
    );
    let opening = step
        .events
        .would_open()
        .expect("the 5th failure would open");
    assert_eq!(opening.reason, OpenReason::ConsecutiveFailures(5));
    assert_eq!(
        b.phase(),
        Phase::Open,
        "the shadow state follows what enforce would do"
    );
    assert!(step.changed);
}

#[test]
fn shadow_admits_what_enforce_would_reject_without_counting_it() {
    let p = shadow();
    let mut b = opened(&p, T0);
    let open = b.clone();
    let mut rng = rng();
    let step = b.admit(&p, T0 + 1, &mut rng);
    assert_eq!(step.events.would_reject(), Some(Phase::Open));
    assert!(
        step.events.rejected().is_none(),
        "nothing is really rejected"
    );
    assert!(
        !step.changed,
        "admitting in shadow while open writes nothing"
    );
    let permit = admitted(step);
    assert!(
        !permit.is_counted(),
        "the request would have been rejected: its outcome is not data"
    );
    let step = b.record(&p, permit, FAIL, T0 + 2, &mut rng);
    assert!(
        !step.changed && step.events.is_empty(),
        "its outcome drives nothing"
    );
    assert_eq!(b, open);
}

#[test]
fn shadow_half_open_admits_excess_requests_as_non_probes() {
    let p = shadow();
    let (mut b, probe, at) = half_open(&p);
    let mut rng = rng();
    let step = b.admit(&p, at, &mut rng);
    assert_eq!(step.events.would_reject(), Some(Phase::HalfOpen));
    let extra = admitted(step);
    assert!(
        !extra.is_probe() && !extra.is_counted(),
        "beyond the slots: admitted, not a probe"
    );
    let step = b.record(&p, extra, FAIL, at, &mut rng);
    assert!(
        step.events.is_empty(),
        "a non-probe failure must not re-open"
    );
    let step = b.record(&p, probe, OK, at, &mut rng);
    assert!(
        step.events.closed(),
        "the real probe's success closes the shadow breaker"
    );
}

#[test]
fn shadow_probe_failure_reports_would_open() {
    let p = shadow();
    let (mut b, probe, at) = half_open(&p);
    let step = b.record(&p, probe, FAIL, at, &mut rng());
    let opening = step
        .events
        .would_open()
        .expect("the failed probe would re-open");
    assert_eq!(opening.reason, OpenReason::ProbeFailed);
}

#[test]
fn forced_open_rejects_everything_and_touches_nothing() {
    let p = policy_with(|p| p.mode = BreakerMode::ForcedOpen);
    let mut b = Breaker::new();
    let step = b.admit(&p, T0, &mut rng());
    assert!(!step.changed, "forced open writes nothing");
    assert_eq!(step.events.rejected(), Some(Phase::Open));
    let r = rejected(step);
    assert_eq!(
        r,
        Rejection {
            phase: Phase::Open,
            retry_after: p.timeout
        },
        "retry after timeout"
    );
    assert_eq!(b, Breaker::new(), "the state is untouched");

    // A permit from before the switch reports while forced open: ignored.
    let enforce = policy_with(|p| p.failure_threshold = 1);
    let permit = admitted(b.admit(&enforce, T0, &mut rng()));
    let step = b.record(&p, permit, FAIL, T0, &mut rng());
    assert!(
        !step.changed && b.is_closed(),
        "forced open records nothing"
    );
}

#[test]
fn disabled_admits_everything_records_nothing_and_writes_nothing() {
    let p = policy_with(|p| {
        p.mode = BreakerMode::Disabled;
        p.failure_threshold = 1;
    });
    let mut b = Breaker::new();
    let mut rng = rng();
    for n in 0..100 {
        let step = b.admit(&p, T0 + n, &mut rng);
        assert!(
            !step.changed && step.events.is_empty(),
            "disabled: no write, no event"
        );
        let permit = admitted(step);
        let step = b.record(&p, permit, FAIL, T0 + n, &mut rng);
        assert!(
            !step.changed && step.events.is_empty(),
            "disabled: failures are not counted"
        );
    }
    assert_eq!(b, Breaker::new());

    let enforce = policy_with(|p| p.failure_threshold = 1);
    let mut open = opened(&enforce, T0);
    let before = open.clone();
    let _ = admitted(open.admit(&p, T0 + 1, &mut rng));
    assert_eq!(
        open, before,
        "disabled admits even where the state is open, and leaves it"
    );
}

#[test]
fn every_step_under_a_policy_says_whether_it_ran_in_shadow_mode() {
    let mut rng = rng();
    for (mode, shadow) in [
        (BreakerMode::Shadow, true),
        (BreakerMode::Enforce, false),
        (BreakerMode::ForcedOpen, false),
        (BreakerMode::Disabled, false),
    ] {
        let p = policy_with(|p| p.mode = mode);
        let mut b = Breaker::new();
        let step = b.admit(&p, T0, &mut rng);
        assert_eq!(step.events.shadow(), Some(shadow), "admit under {mode:?}");
        if let Admission::Admitted(permit) = step.value {
            let recorded = b.record(&p, permit, OK, T0 + 1, &mut rng);
            assert_eq!(
                recorded.events.shadow(),
                Some(shadow),
                "record under {mode:?}"
            );
            assert!(
                recorded.events.is_empty(),
                "the mode alone is no event: {:?}",
                recorded.events
            );
            let held = Successes {
                epoch: permit.epoch,
                total: 2,
                slow: 0,
            };
            let flushed = b.record_successes(&p, held, T0 + 2, &mut rng);
            assert_eq!(
                flushed.events.shadow(),
                Some(shadow),
                "held successes recorded under {mode:?}"
            );
        }
    }
    let p = shadow();
    let mut b = Breaker::new();
    let permit = admitted(b.admit(&p, T0, &mut rng));
    assert_eq!(
        b.release(permit, T0 + 1).events.shadow(),
        None,
        "a released permit has no policy to tell"
    );
}
