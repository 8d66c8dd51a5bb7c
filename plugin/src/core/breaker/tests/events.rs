//! Events: what the glue logs and counts.

use super::*;
use crate::core::breaker::{Event, Events, OpenReason, Opening};
use proptest::prelude::*;

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

/// The log line of a failure-rate opening at `rate`, and the line that `{:.1}` would write.
fn rate_line_and_expected(rate: f64) -> (String, String) {
    let reason = OpenReason::FailureRate { rate, requests: 1 };
    let expected = format!("failure rate {:.1}% over 1 requests", rate * 100.0);
    (reason.to_string(), expected)
}

#[test]
fn rates_round_half_to_even_on_the_exact_value_like_one_decimal_formatting() {
    for (rate, shown) in [
        (0.0, "0.0"),
        (1.0, "100.0"),
        (1.0 / 16.0, "6.2"),
        (3.0 / 16.0, "18.8"),
        (0.0005, "0.1"),
        (0.9995, "100.0"),
        (1e-300, "0.0"),
    ] {
        let (line, expected) = rate_line_and_expected(rate);
        assert_eq!(line, expected, "rate {rate}");
        assert_eq!(line, format!("failure rate {shown}% over 1 requests"));
    }
}

#[test]
fn a_rate_outside_zero_to_one_is_clamped_in_the_log_line() {
    for (rate, shown) in [(f64::NAN, "0.0"), (-0.5, "0.0"), (1.5, "100.0")] {
        let reason = OpenReason::SlowCallRate { rate, requests: 3 };
        assert_eq!(
            reason.to_string(),
            format!("slow-call rate {shown}% over 3 requests"),
            "rate {rate}: the windows never produce it, but the line stays readable"
        );
    }
}

#[test]
fn every_rate_over_up_to_400_requests_prints_as_one_decimal_formatting_would() {
    for total in 1..=400u32 {
        for failed in 0..=total {
            let rate = f64::from(failed) / f64::from(total);
            let (line, expected) = rate_line_and_expected(rate);
            assert_eq!(line, expected, "{failed} of {total}");
        }
    }
}

proptest! {
    #[test]
    fn every_window_rate_prints_as_one_decimal_formatting_would(
        total in 1u32..=2_000_000,
        failed_per_mille in 0u32..=1000,
    ) {
        // The rates the windows produce: a count over a count.
        let failed = (u64::from(total) * u64::from(failed_per_mille) / 1000) as u32;
        let (line, expected) = rate_line_and_expected(f64::from(failed) / f64::from(total));
        prop_assert_eq!(line, expected);
    }

    #[test]
    fn every_fraction_prints_as_one_decimal_formatting_would(rate in 0.0f64..=1.0) {
        let (line, expected) = rate_line_and_expected(rate);
        prop_assert_eq!(line, expected);
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
    assert_eq!(
        phases.map(Phase::rejecting),
        ["open", "open", "half-open"],
        "a fallback names the breaker open unless a half-open one turned it away (a forced-open \
         breaker rejects while its phase is closed)"
    );
}
