//! The quiet breaker's shortcut answers exactly what the full path answers.

use proptest::prelude::*;

use super::*;
use crate::core::breaker::api::PermitKind;
use crate::core::breaker::closed::Counts;
use crate::core::breaker::state::State;
use crate::core::breaker::Quiet;

fn quiet_breaker(epoch: u64, failures: u32) -> Breaker {
    Breaker {
        epoch,
        state: State::Closed(Counts {
            failures,
            ..Counts::default()
        }),
    }
}

fn encoded(b: &Breaker) -> Vec<u8> {
    let mut bytes = Vec::new();
    b.encode(&mut bytes);
    bytes
}

fn mode() -> impl Strategy<Value = BreakerMode> {
    prop_oneof![
        Just(BreakerMode::Enforce),
        Just(BreakerMode::Shadow),
        Just(BreakerMode::ForcedOpen),
        Just(BreakerMode::Disabled),
    ]
}

/// The default policy in `mode`, with a failure-rate and a slow-call trigger if asked.
fn some_policy(mode: BreakerMode, rate: bool, slow: bool) -> BreakerPolicy {
    policy_with(|p| {
        p.mode = mode;
        if rate {
            p.failure_rate = Some(FailureRate { threshold: 0.5 });
        }
        if slow {
            p.slow_call = Some(SlowCall {
                duration: Duration::from_secs(2),
                rate_threshold: 0.5,
            });
        }
    })
}

#[test]
fn a_fresh_breaker_is_quiet_and_an_open_one_or_one_with_a_window_is_not() {
    let fresh = encoded(&Breaker::new());
    assert_eq!(
        Quiet::read(&fresh),
        Some(Quiet::fresh()),
        "a fresh breaker is quiet, and what absent bytes are read as"
    );
    assert_eq!(Quiet::of(None), Some(Quiet::fresh()));
    assert!(
        Quiet::read(&encoded(&opened(&policy(), T0))).is_none(),
        "open"
    );
    let mut windowed = Breaker::new();
    let _ = request(&mut windowed, &rate_policy(0.5, 20), T0, OK);
    assert!(
        Quiet::read(&encoded(&windowed)).is_none(),
        "a window to keep"
    );
}

proptest! {
    #[test]
    fn quiet_bytes_are_exactly_the_closed_breakers_with_an_empty_window(
        epoch in any::<u64>(),
        failures in any::<u32>(),
        damage in prop::collection::vec((0..40usize, any::<u8>()), 0..3),
        truncate in prop::option::of(0..40usize),
    ) {
        let mut bytes = encoded(&quiet_breaker(epoch, failures));
        for (at, value) in damage {
            if let Some(b) = bytes.get_mut(at) {
                *b = value;
            }
        }
        if let Some(len) = truncate {
            bytes.truncate(len);
        }
        let full = Breaker::decode(&bytes).ok().filter(|b| {
            matches!(&b.state, State::Closed(c) if c.window.is_empty())
        });
        match (Quiet::read(&bytes), full) {
            (None, None) => {}
            (Some(q), Some(b)) => {
                let again = Quiet::read(&encoded(&quiet_breaker(b.epoch, b.consecutive_failures().unwrap_or(0))));
                prop_assert_eq!(Some(q), again, "the same epoch and count");
            }
            (q, b) => prop_assert!(false, "read {:?} but decode gave {:?} for {:?}", q, b, bytes),
        }
    }

    #[test]
    fn where_the_quiet_breaker_answers_the_full_transition_agrees_at_any_time(
        epoch in 0..4u64,
        failures in 0..3u32,
        mode in mode(),
        rate in any::<bool>(),
        slow in any::<bool>(),
        now in any::<u64>(),
        permit_epoch in 0..4u64,
        kind in 0..3u8,
        failed in any::<bool>(),
        slow_call in any::<bool>(),
    ) {
        let p = some_policy(mode, rate, slow);
        let b = quiet_breaker(epoch, failures);
        let q = Quiet::read(&encoded(&b)).expect("a closed breaker with no window is quiet");

        if let Some(admission) = q.admit(&p) {
            let mut full = b.clone();
            let step = full.admit(&p, now, &mut rng());
            prop_assert_eq!(step.value, admission);
            // The full step also says which mode it ran in; the quiet answer has nothing to report.
            prop_assert!(step.events.is_empty(), "{:?}", step.events);
            prop_assert!(!step.changed);
            prop_assert_eq!(&full, &b);
        }

        let permit = Permit {
            epoch: permit_epoch,
            kind: match kind {
                0 => PermitKind::Counted,
                1 => PermitKind::Untracked,
                _ => PermitKind::Probe(1),
            },
        };
        let call = Call { failed, slow: slow_call };
        if q.record(&p, permit, call) {
            let mut full = b.clone();
            let step = full.record(&p, permit, call, now, &mut rng());
            // The full step also says which mode it ran in; the quiet answer has nothing to report.
            prop_assert!(step.events.is_empty(), "{:?}", step.events);
            prop_assert!(!step.changed, "the full path would write");
            prop_assert_eq!(&full, &b);
        }
    }
}

#[test]
fn the_shortcut_answers_the_healthy_paths_of_the_default_policy() {
    let p = policy();
    let q = Quiet::read(&encoded(&Breaker::new())).expect("quiet");
    let Some(Admission::Admitted(permit)) = q.admit(&p) else {
        panic!("a quiet breaker admits without the full path");
    };
    assert!(q.record(&p, permit, OK), "a success has nothing to reset");
    assert!(!q.record(&p, permit, FAIL), "a failure is counted");
    let counting = Quiet::read(&encoded(&quiet_breaker(0, 2))).expect("quiet");
    assert!(
        !counting.record(&p, permit, OK),
        "a success resets a consecutive count"
    );
    assert!(
        !q.record(&rate_policy(0.5, 20), permit, OK),
        "a success goes into the rate window"
    );
}
