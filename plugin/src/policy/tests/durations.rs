//! Durations: strings with a unit or bare numbers of seconds, in milliseconds.

use super::super::duration::{format, from_seconds, parse_text, DurationError, MAX_MILLIS};
use super::*;
use proptest::prelude::*;
use std::time::Duration;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn every_unit_is_read() {
    assert_eq!(parse_text("250ms"), Ok(ms(250)), "milliseconds");
    assert_eq!(parse_text("1s"), Ok(ms(1_000)), "seconds");
    assert_eq!(parse_text("2m"), Ok(ms(120_000)), "minutes");
    assert_eq!(parse_text("1h"), Ok(ms(3_600_000)), "hours");
}

#[test]
fn decimals_are_read_exactly() {
    assert_eq!(parse_text("1.5s"), Ok(ms(1_500)));
    assert_eq!(parse_text("0.25m"), Ok(ms(15_000)));
    assert_eq!(
        parse_text("1.1s"),
        Ok(ms(1_100)),
        "no binary rounding error"
    );
    assert_eq!(
        parse_text("007s"),
        Ok(ms(7_000)),
        "leading zeros are harmless"
    );
}

#[test]
fn finer_than_a_millisecond_rounds_to_the_nearest_millisecond() {
    assert_eq!(parse_text("1.4ms"), Ok(ms(1)));
    assert_eq!(parse_text("1.5ms"), Ok(ms(2)), "half rounds up");
    assert_eq!(parse_text("0.0004s"), Ok(ms(0)));
    assert_eq!(
        parse_text("1.000499999999999999s"),
        Ok(ms(1_000)),
        "digits past the 12th are not read"
    );
    assert_eq!(
        parse_text("1.0005000000000001s"),
        Ok(ms(1_001)),
        "half rounds up"
    );
}

#[test]
fn bare_numbers_are_seconds() {
    assert_eq!(
        from_seconds(60.0),
        Ok(ms(60_000)),
        "a float of seconds, 60.0"
    );
    assert_eq!(from_seconds(0.25), Ok(ms(250)));
    assert_eq!(from_seconds(0.0), Ok(ms(0)));
    assert_eq!(
        breaker(r#"{"timeout": 60}"#).timeout,
        ms(60_000),
        "an integer in the JSON"
    );
    assert_eq!(
        breaker(r#"{"timeout": 1.5}"#).timeout,
        ms(1_500),
        "a float in the JSON"
    );
}

#[test]
fn negative_durations_are_refused() {
    assert_eq!(parse_text("-1s"), Err(DurationError::Negative));
    assert_eq!(from_seconds(-0.5), Err(DurationError::Negative));
    assert_eq!(
        breaker_problems(r#"{"timeout": -1, "probe_timeout": "-5s"}"#),
        [
            "circuit_breaker.timeout: -1 is negative, a duration must be at least 0 (at default)",
            "circuit_breaker.probe_timeout: \"-5s\" is negative, a duration must be at least 0 (at default)",
        ]
    );
}

#[test]
fn non_finite_numbers_are_refused() {
    assert_eq!(from_seconds(f64::NAN), Err(DurationError::Malformed));
    assert_eq!(from_seconds(f64::INFINITY), Err(DurationError::TooLarge));
    assert_eq!(parse_text("NaNs"), Err(DurationError::Malformed));
    assert_eq!(parse_text("infs"), Err(DurationError::Malformed));
}

#[test]
fn malformed_strings_are_refused() {
    for text in [
        "", "1", "s", "1 s", "1S", "1sec", "1.s", ".5s", "1.2.3s", "+1s", "1e3s", "1m30s", " 1s",
        "1s ", "1_000ms", "١s",
    ] {
        assert_eq!(parse_text(text), Err(DurationError::Malformed), "{text:?}");
    }
}

#[test]
fn a_malformed_duration_says_which_forms_are_accepted() {
    assert_eq!(
        retry_problems(r#"{"base_delay": "1 second"}"#),
        [
            "retry.base_delay: \"1 second\" is not a duration, must be a number of seconds or a \
          string such as \"250ms\", \"1.5s\", \"2m\" or \"1h\" (at default)"
        ]
    );
    assert_eq!(
        retry_problems(r#"{"base_delay": true}"#),
        [
            "retry.base_delay: true is not a duration, must be a number of seconds or a string \
          such as \"250ms\", \"1.5s\", \"2m\" or \"1h\" (at default)"
        ],
        "a value of the wrong JSON type gets the same message"
    );
}

#[test]
fn durations_beyond_2_to_the_53_milliseconds_are_too_large() {
    assert_eq!(parse_text(&format!("{}ms", MAX_MILLIS)), Ok(ms(MAX_MILLIS)));
    assert_eq!(
        parse_text(&format!("{}ms", MAX_MILLIS + 1)),
        Err(DurationError::TooLarge)
    );
    assert_eq!(
        parse_text("99999999999999999999999h"),
        Err(DurationError::TooLarge)
    );
    assert_eq!(from_seconds(1e300), Err(DurationError::TooLarge));
    assert_eq!(
        breaker_problems(r#"{"timeout": "99999999999999999999h"}"#),
        [
            r#"circuit_breaker.timeout: "99999999999999999999h" is out of range, must be 1ms..=24h (at default)"#
        ],
        "a user sees the field's range, not the parser's limit"
    );
}

#[test]
fn formatting_picks_the_largest_exact_unit() {
    assert_eq!(format(ms(0)), "0ms");
    assert_eq!(format(ms(1_500)), "1500ms");
    assert_eq!(format(ms(90_000)), "90s");
    assert_eq!(format(ms(120_000)), "2m");
    assert_eq!(format(ms(7_200_000)), "2h");
}

proptest! {
    #[test]
    fn a_formatted_duration_reads_back_unchanged(n in 0..=MAX_MILLIS) {
        prop_assert_eq!(parse_text(&format(ms(n))), Ok(ms(n)));
    }

    #[test]
    fn seconds_with_a_millisecond_fraction_read_the_same_as_a_string_or_a_number(
        n in 0u64..1_000_000_000_000,
    ) {
        let text = std::format!("{}.{:03}s", n / 1000, n % 1000);
        prop_assert_eq!(parse_text(&text), Ok(ms(n)), "{}", text);
        prop_assert_eq!(from_seconds(n as f64 / 1000.0), Ok(ms(n)), "{} / 1000", n);
    }

    #[test]
    fn the_unit_scales_the_number(n in 0u64..1_000_000) {
        prop_assert_eq!(parse_text(&std::format!("{n}h")), Ok(ms(n * 3_600_000)));
        prop_assert_eq!(parse_text(&std::format!("{n}m")), Ok(ms(n * 60_000)));
        prop_assert_eq!(parse_text(&std::format!("{n}s")), Ok(ms(n * 1_000)));
    }

    #[test]
    fn any_string_reads_or_fails_without_panicking(text in ".{0,24}") {
        let _ = parse_text(&text);
    }

    #[test]
    fn any_number_reads_or_fails_without_panicking(x in proptest::num::f64::ANY) {
        match from_seconds(x) {
            Ok(d) => prop_assert!(x >= 0.0 && d <= ms(MAX_MILLIS)),
            Err(_) => prop_assert!(!(0.0..=MAX_MILLIS as f64 / 1000.0).contains(&x) || x.is_nan()),
        }
    }
}
