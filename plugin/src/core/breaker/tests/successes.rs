//! Successes held back in a worker and recorded together give the breaker exactly what their
//! `record`s one after the other give it.

use proptest::prelude::*;

use super::*;
use crate::core::breaker::Successes;

/// A closed breaker whose window holds `failed` failures and `passed` successes, recorded at
/// `T0` under `p`, and the permit of its epoch; `None` if they opened it.
fn windowed(p: &BreakerPolicy, failed: u32, passed: u32) -> Option<(Breaker, Permit)> {
    let mut b = Breaker::new();
    let calls =
        std::iter::repeat_n(FAIL, failed as usize).chain(std::iter::repeat_n(OK, passed as usize));
    for call in calls {
        if !b.is_closed() {
            return None;
        }
        let _ = request(&mut b, p, T0, call);
    }
    if !b.is_closed() {
        return None;
    }
    let permit = admitted(b.admit(p, T0, &mut rng()));
    Some((b, permit))
}

#[test]
fn a_success_is_held_back_only_when_it_would_just_add_to_the_window() {
    let p = rate_policy(0.5, 20);
    let (b, permit) = windowed(&p, 0, 3).expect("closed");
    assert!(b.takes_success_later(permit, OK));
    assert!(b.takes_success_later(permit, SLOW));
    assert!(
        !b.takes_success_later(permit, FAIL),
        "a failure is recorded at once"
    );
    let both = policy_with(|p| p.failure_rate = rate_policy(0.5, 20).failure_rate);
    let (counting, permit) = windowed(&both, 2, 0).expect("two failures open nothing");
    assert!(
        !counting.takes_success_later(permit, OK),
        "a success with consecutive failures to reset is recorded at once"
    );
    let opened = opened(&policy(), T0);
    assert!(!opened.takes_success_later(permit, OK), "not closed");
}

#[test]
fn successes_that_complete_minimum_requests_open_the_breaker_where_the_last_needed_one_would() {
    // 10 failures in the window, minimum 20: the 10th success makes 20 calls at a rate of 0.5.
    let p = rate_policy(0.5, 20);
    let (mut b, permit) = windowed(&p, 10, 0).expect("below minimum_requests");
    let step = b.record_successes(
        &p,
        Successes {
            epoch: permit.epoch(),
            total: 15,
            slow: 0,
        },
        T0 + 100,
        &mut rng(),
    );
    assert_eq!(
        b.phase(),
        Phase::Open,
        "as the 10th of 15 successes would have"
    );
    assert!(step.changed);
}

proptest! {
    #[test]
    fn a_closed_breaker_admits_without_the_time_as_the_full_admission_does(
        failed in 0..30u32,
        passed in 0..30u32,
        minimum in 1..40u32,
        later in any::<u64>(),
        mode in prop_oneof![
            Just(BreakerMode::Enforce),
            Just(BreakerMode::Shadow),
            Just(BreakerMode::Disabled),
            Just(BreakerMode::ForcedOpen),
        ],
    ) {
        let mut p = rate_policy(0.5, minimum);
        let Some((b, _)) = windowed(&p, failed, passed) else {
            return Ok(());
        };
        p.mode = mode;
        let Some(admission) = b.admit_closed(&p) else {
            prop_assert_eq!(mode, BreakerMode::ForcedOpen, "only forced_open goes the full way");
            return Ok(());
        };
        let mut full = b.clone();
        prop_assert_eq!(full.admit(&p, later, &mut rng()).value, admission);
    }

    #[test]
    fn recording_successes_together_is_recording_them_one_after_the_other(
        failed in 0..30u32,
        passed in 0..30u32,
        total in 0..40u32,
        slow in 0..40u32,
        minimum in 1..40u32,
        threshold in prop_oneof![Just(0.2), Just(0.5), Just(0.9)],
        with_slow in any::<bool>(),
        later in 0..20_000u64,
    ) {
        let mut p = rate_policy(threshold, minimum);
        if with_slow {
            p.slow_call = Some(SlowCall { duration: Duration::from_secs(2), rate_threshold: 0.5 });
        }
        let Some((start, permit)) = windowed(&p, failed, passed) else {
            return Ok(());
        };
        let slow = slow.min(total);
        let now = T0 + later;

        let mut one_by_one = start.clone();
        let mut opened = false;
        for i in 0..total {
            let call = if i >= total - slow { SLOW } else { OK };
            let step = one_by_one.record(&p, permit, call, now, &mut rng());
            opened |= step.events.opened().is_some();
        }
        let mut together = start.clone();
        let step = together.record_successes(
            &p,
            Successes { epoch: permit.epoch(), total, slow },
            now,
            &mut rng(),
        );
        prop_assert_eq!(&together, &one_by_one);
        prop_assert_eq!(step.events.opened().is_some(), opened);
        prop_assert_eq!(step.changed, together != start);
    }
}
