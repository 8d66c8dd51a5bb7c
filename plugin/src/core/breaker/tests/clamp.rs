//! Implausible times in a stored state: an open time, a probe lease or a window bucket further
//! ahead than the policy allows is brought within it on the next `admit` or `record`, written
//! back and reported, once.

use proptest::prelude::*;

use super::super::closed::Counts;
use super::super::probes::{Lease, Probes};
use super::super::state::State;
use super::super::window::Bucket;
use super::*;
use crate::core::breaker::Event;

const DAY: Millis = 24 * 3600 * 1000;
const YEAR: Millis = 365 * DAY;
/// `max_timeout` 60s with the most jitter: 66s.
const LONGEST: Millis = 66_000;
/// The slack the breaker allows for workers' clock readings.
const SLACK: Millis = 1000;

fn open_until_at(until: Millis) -> Breaker {
    Breaker {
        epoch: 7,
        state: State::Open {
            until,
            escalation: 0,
        },
    }
}

fn half_open_with(expiries: &[Millis]) -> Breaker {
    let mut probes = Probes::new(0);
    for expires in expiries {
        probes.lease(*expires);
    }
    Breaker {
        epoch: 3,
        state: State::HalfOpen(probes),
    }
}

fn leases(b: &Breaker) -> Vec<Lease> {
    match &b.state {
        State::HalfOpen(probes) => probes.leases.clone(),
        other => panic!("expected half-open, found {other:?}"),
    }
}

/// A closed breaker whose window holds these buckets, each of 10 calls, the last all failed.
fn closed_with_buckets(starts: &[Millis]) -> Breaker {
    let mut counts = Counts::default();
    for (i, start) in starts.iter().enumerate() {
        let failed = if i + 1 == starts.len() { 10 } else { 0 };
        let bucket = Bucket {
            start: *start,
            total: 10,
            failed,
            slow: 0,
        };
        assert!(counts.window.push(bucket));
    }
    Breaker {
        epoch: 1,
        state: State::Closed(counts),
    }
}

fn bucket_starts(b: &Breaker) -> Vec<Millis> {
    match &b.state {
        State::Closed(counts) => counts.window.buckets().iter().map(|b| b.start).collect(),
        other => panic!("expected closed, found {other:?}"),
    }
}

#[test]
fn an_open_time_a_year_ahead_is_clamped_to_the_longest_the_policy_allows() {
    let p = policy();
    let mut b = through_shared_data(&open_until_at(T0 + YEAR));
    let step = b.admit(&p, T0, &mut rng());
    assert!(
        step.events.clamped(),
        "reported, for the glue to log and count"
    );
    assert!(
        step.changed,
        "written back, so other workers see the clamped time"
    );
    assert_eq!(open_until(&b), T0 + LONGEST, "now + max_timeout · 1.1");
    let r = rejected(step);
    assert_eq!(r.retry_after, Duration::from_millis(LONGEST));
    let again = b.admit(&p, T0 + 1, &mut rng());
    assert!(!again.events.clamped() && !again.changed, "once");
    let later = admitted(b.admit(&p, T0 + LONGEST, &mut rng()));
    assert!(
        later.is_probe(),
        "66s later the breaker half-opens as usual"
    );
}

#[test]
fn an_open_time_within_the_clock_slack_is_left_alone() {
    let p = policy();
    for until in [T0 + LONGEST, T0 + LONGEST + SLACK] {
        let mut b = open_until_at(until);
        let step = b.admit(&p, T0, &mut rng());
        assert!(!step.events.clamped() && !step.changed, "{until}");
        assert_eq!(open_until(&b), until);
    }
    let mut b = open_until_at(T0 + LONGEST + SLACK + 1);
    assert!(b.admit(&p, T0, &mut rng()).events.clamped());
}

#[test]
fn a_lowered_max_timeout_shortens_an_open_breaker_once() {
    let long = policy_with(|p| {
        p.timeout = Duration::from_secs(600);
        p.max_timeout = Duration::from_secs(600);
    });
    let mut b = opened(&long, T0);
    assert!(open_until(&b) >= T0 + 540_000);
    let step = b.admit(&policy(), T0 + 1000, &mut rng());
    assert!(step.events.clamped());
    assert_eq!(open_until(&b), T0 + 1000 + LONGEST);
}

#[test]
fn a_probe_lease_that_would_never_expire_is_clamped_to_probe_timeout() {
    let p = policy(); // one probe slot, 30s probe timeout
    let mut b = through_shared_data(&half_open_with(&[u64::MAX - 1]));
    let step = b.admit(&p, T0, &mut rng());
    assert!(step.events.clamped() && step.changed);
    assert_eq!(leases(&b)[0].expires, T0 + 30_000);
    assert_eq!(
        rejected(step).phase,
        Phase::HalfOpen,
        "the slot is still held"
    );
    let probe = admitted(b.admit(&p, T0 + 30_000, &mut rng()));
    assert!(
        probe.is_probe(),
        "its slot comes back after probe_timeout, not never"
    );
}

#[test]
fn a_record_clamps_too() {
    let p = policy_with(|p| p.half_open_attempts = 2);
    let (mut b, probe, at) = half_open(&p);
    if let State::HalfOpen(probes) = &mut b.state {
        probes.leases[0].expires = at + YEAR;
    }
    let step = b.record(&p, probe, OK, at, &mut rng());
    assert!(step.events.clamped());
    assert_eq!(
        step.events.iter().next(),
        Some(Event::Clamped),
        "reported first"
    );
}

#[test]
fn a_window_bucket_from_the_future_is_dropped_so_the_window_slides_again() {
    let p = rate_policy(0.5, 4);
    // Another worker's clock was a day ahead, and its failures sit in a bucket there.
    let mut b = through_shared_data(&closed_with_buckets(&[T0 - 2000, T0 + DAY]));
    let admission = b.admit(&p, T0, &mut rng());
    assert!(admission.events.clamped() && admission.changed);
    let step = b.record(&p, admitted(admission), OK, T0, &mut rng());
    assert!(!step.events.clamped(), "once");
    assert_eq!(
        b.phase(),
        Phase::Closed,
        "its 10 failures are forgotten, not counted"
    );
    assert_eq!(
        bucket_starts(&b),
        [T0 - 2000, T0],
        "the past stays, the future goes"
    );
    let mut near = closed_with_buckets(&[T0 + 10_000]);
    let step = near.admit(&p, T0, &mut rng());
    assert!(
        !step.events.clamped(),
        "a bucket up to a whole window ahead is a clock disagreement, kept"
    );
}

#[test]
fn modes_that_touch_no_state_clamp_nothing() {
    for mode in [BreakerMode::ForcedOpen, BreakerMode::Disabled] {
        let p = policy_with(|p| p.mode = mode);
        let mut b = open_until_at(T0 + YEAR);
        let step = b.admit(&p, T0, &mut rng());
        assert!(!step.events.clamped() && !step.changed, "{mode:?}");
    }
    let shadow = policy_with(|p| p.mode = BreakerMode::Shadow);
    let mut b = open_until_at(T0 + YEAR);
    assert!(
        b.admit(&shadow, T0, &mut rng()).events.clamped(),
        "shadow runs the machine"
    );
}

#[test]
fn the_clamp_event_has_a_log_line() {
    let line = Event::Clamped.to_string();
    assert!(line.contains("clamped"), "{line}");
}

/// A stored state with times anywhere, relative to `now`.
fn stored() -> impl Strategy<Value = Breaker> {
    let offset = prop_oneof![0..200_000u64, 0..u64::MAX / 4];
    prop_oneof![
        offset.clone().prop_map(|o| open_until_at(T0 + o)),
        prop::collection::vec(offset.clone(), 0..4).prop_map(|os| {
            let expiries: Vec<Millis> = os.iter().map(|o| T0 + o).collect();
            half_open_with(&expiries)
        }),
        prop::collection::btree_set(offset, 0..5).prop_map(|os| {
            let starts: Vec<Millis> = os.iter().map(|o| T0 - 5000 + o).collect();
            closed_with_buckets(&starts)
        }),
    ]
}

proptest! {
    /// Whatever times a stored state holds, after one `admit` or `record` none lies further
    /// ahead than the policy allows (plus the clock slack), and a clamp is reported exactly
    /// when one did before.
    #[test]
    fn after_a_transition_no_time_lies_beyond_what_the_policy_allows(
        state in stored(),
        by_record in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let p = rate_policy(0.5, 1000);
        let span = p.window.window.as_millis() as Millis;
        let beyond = |b: &Breaker| match &b.state {
            State::Open { until, .. } => *until > T0 + LONGEST + SLACK,
            State::HalfOpen(probes) => probes.leases.iter().any(|l| l.expires > T0 + 30_000 + SLACK),
            State::Closed(counts) => counts.window.buckets().iter().any(|b| b.start > T0 + span),
        };
        let mut b = through_shared_data(&state);
        let was_beyond = beyond(&b);
        let mut rng = StdRng::seed_from_u64(seed);
        let events = if by_record {
            let permit = Permit::counted(b.epoch());
            b.record(&p, permit, FAIL, T0, &mut rng).events
        } else {
            b.admit(&p, T0, &mut rng).events
        };
        prop_assert!(!beyond(&b), "{b:?}");
        prop_assert_eq!(events.clamped(), was_beyond);
        let _ = through_shared_data(&b);
    }
}
