//! Events: what the glue logs and counts.

use super::*;
use crate::core::breaker::{Event, Events, OpenReason, Opening};

fn lines(events: Events) -> Vec<String> {
    events.iter().map(|e| e.to_string()).collect()
}

#[test]
fn events_and_steps_are_copy_so_the_closed_path_allocates_nothing() {
    fn is_copy<T: Copy>() {}
    is_copy::<Events>();
    is_copy::<Event>();
    is_copy::<Step<Admission>>();
    is_copy::<Permit>();
}

#[test]
fn every_open_reason_reads_well_in_a_log_line() {
    let cases = [
        (OpenReason::ConsecutiveFailures(5), "5 consecutive failures"),
        (
            OpenReason::FailureRate {
                rate: 0.55,
                requests: 20,
            },
            "failure rate 55.0% over 20 requests",
        ),
        (
            OpenReason::SlowCallRate {
                rate: 0.8,
                requests: 40,
            },
            "slow-call rate 80.0% over 40 requests",
        ),
        (OpenReason::ProbeFailed, "a half-open probe failed"),
        (OpenReason::ProbeSlow, "a half-open probe was slow"),
    ];
    for (reason, line) in cases {
        assert_eq!(reason.to_string(), line);
    }
}

#[test]
fn an_opening_step_describes_itself() {
    let p = policy_with(|p| p.failure_threshold = 2);
    let mut b = Breaker::new();
    let _ = request(&mut b, &p, T0, FAIL);
    let step = request(&mut b, &p, T0, FAIL);
    let open_for = open_until(&b) - T0;
    assert_eq!(
        lines(step.events),
        [format!(
            "breaker opened for {open_for}ms: 2 consecutive failures"
        )],
        "one event, naming the duration and the reason"
    );
}

#[test]
fn events_come_out_in_the_order_they_happened() {
    let p = policy_with(|p| p.probe_timeout = Duration::from_secs(1));
    let (mut b, lost, at) = half_open(&p);
    let step = b.record(&p, lost, FAIL, at + 5_000, &mut rng());
    let kinds: Vec<_> = step.events.iter().collect();
    assert!(
        matches!(
            kinds.as_slice(),
            [
                Event::ProbesReclaimed(1),
                Event::Opened(Opening {
                    reason: OpenReason::ProbeFailed,
                    ..
                })
            ]
        ),
        "first the expired lease is reclaimed, then the late failure re-opens: {kinds:?}"
    );
    assert_eq!(
        lines(step.events)[0],
        "breaker reclaimed 1 probe slot(s) whose probes never reported"
    );
}

#[test]
fn the_other_events_have_log_lines_too() {
    let shadow = Opening {
        reason: OpenReason::ProbeFailed,
        open_for: Duration::from_secs(60),
    };
    let cases = [
        (Event::HalfOpened, "breaker half-open: admitting probes"),
        (Event::Closed, "breaker closed: probes succeeded"),
        (
            Event::WouldOpen(shadow),
            "breaker would open for 60000ms (shadow mode): a half-open probe failed",
        ),
        (
            Event::Rejected(Phase::HalfOpen),
            "request rejected: breaker half-open",
        ),
        (
            Event::WouldReject(Phase::Open),
            "request would be rejected (shadow mode): breaker open",
        ),
    ];
    for (event, line) in cases {
        assert_eq!(event.to_string(), line);
    }
}

#[test]
fn phases_have_gauge_values_and_header_names() {
    let phases = [Phase::Closed, Phase::Open, Phase::HalfOpen];
    assert_eq!(phases.map(Phase::gauge), [0, 1, 2]);
    assert_eq!(phases.map(Phase::as_str), ["closed", "open", "half-open"]);
}
