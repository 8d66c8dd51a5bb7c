use super::*;
use proptest::prelude::*;
use rand::{rngs::StdRng, SeedableRng};

/// 1994-11-06T08:49:37Z, RFC 9110's example date, in Unix milliseconds.
const EXAMPLE_MS: Millis = 784_111_777_000;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn delay_seconds_are_whole_seconds() {
    assert_eq!(parse("120", 0), Ok(secs(120)));
    assert_eq!(parse("0", 0), Ok(Duration::ZERO));
    assert_eq!(parse("007", 0), Ok(secs(7)));
    assert_eq!(
        parse(" 5\t", 0),
        Ok(secs(5)),
        "surrounding whitespace is not part of it"
    );
}

#[test]
fn delay_seconds_do_not_depend_on_the_clock() {
    assert_eq!(parse("30", EXAMPLE_MS), parse("30", 0));
}

#[test]
fn delay_seconds_too_large_saturate_and_the_cap_applies() {
    let huge = "99999999999999999999999999";
    assert_eq!(parse(huge, 0), Ok(secs(u64::MAX)));
    assert_eq!(parse_capped(huge, 0, secs(60)), Ok(secs(60)));
    assert_eq!(
        parse_capped("5", 0, secs(60)),
        Ok(secs(5)),
        "below the cap it stays"
    );
}

#[test]
fn every_http_date_form_is_read_against_the_clock() {
    let now = EXAMPLE_MS - 30_000;
    for date in [
        "Sun, 06 Nov 1994 08:49:37 GMT",  // IMF-fixdate
        "Sunday, 06-Nov-94 08:49:37 GMT", // obsolete RFC 850
        "Sun Nov  6 08:49:37 1994",       // obsolete asctime
    ] {
        assert_eq!(parse(date, now), Ok(secs(30)), "{date}");
    }
}

#[test]
fn an_http_date_keeps_the_clocks_milliseconds() {
    let now = EXAMPLE_MS - 1_500;
    assert_eq!(
        parse("Sun, 06 Nov 1994 08:49:37 GMT", now),
        Ok(Duration::from_millis(1_500))
    );
}

#[test]
fn a_date_in_the_past_means_now() {
    let now = EXAMPLE_MS + 3_600_000;
    assert_eq!(
        parse("Sun, 06 Nov 1994 08:49:37 GMT", now),
        Ok(Duration::ZERO)
    );
    assert_eq!(
        parse("Sun, 06 Nov 1994 08:49:37 GMT", EXAMPLE_MS),
        Ok(Duration::ZERO)
    );
}

#[test]
fn anything_else_is_an_error_naming_the_value() {
    assert_eq!(parse("", 0), Err(RetryAfterError::Empty));
    assert_eq!(parse("  ", 0), Err(RetryAfterError::Empty));
    for bad in [
        "soon",
        "-1",
        "+5",
        "1.5",
        "5s",
        "١٢٠", // Arabic-Indic digits are not DIGIT
        "Sun, 06 Nov 1994 08:49:37 PST",
        "Mon, 06 Nov 1994 08:49:37 GMT", // 6 Nov 1994 was a Sunday
        "Sun, 31 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 25:49:37 GMT",
    ] {
        let err = parse(bad, 0).expect_err(bad);
        assert_eq!(
            err,
            RetryAfterError::Invalid {
                value: bad.to_string()
            }
        );
        assert!(err.to_string().contains(bad), "the log line quotes {bad:?}");
    }
}

#[test]
fn a_long_bad_value_is_quoted_cut_short() {
    let long = "é".repeat(500);
    match parse(&long, 0) {
        Err(RetryAfterError::Invalid { value }) => {
            assert_eq!(value.chars().count(), MAX_QUOTED_CHARS);
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
}

// --- spread ---

fn spreads(asked: Duration, max: Duration) -> Vec<Duration> {
    let mut rng = StdRng::seed_from_u64(5);
    (0..2000).map(|_| spread(asked, max, &mut rng)).collect()
}

#[test]
fn clients_told_one_second_come_back_spread_over_a_tenth_of_it_never_earlier() {
    let seen = spreads(secs(1), secs(60));
    assert!(
        seen.iter().all(|d| *d >= secs(1)),
        "never earlier than the upstream asked"
    );
    assert!(seen.iter().all(|d| *d <= Duration::from_millis(1100)));
    assert!(
        seen.iter().any(|d| *d < Duration::from_millis(1010))
            && seen.iter().any(|d| *d > Duration::from_millis(1090)),
        "spread over [1s, 1.1s], not in lockstep"
    );
    let distinct: std::collections::HashSet<_> = seen.iter().collect();
    assert!(distinct.len() > 1900, "hardly two clients share an instant");
}

#[test]
fn the_spread_is_at_most_one_second_and_stays_within_max_delay() {
    let long = spreads(secs(30), secs(60));
    assert!(long.iter().all(|d| *d >= secs(30) && *d <= secs(31)));
    assert!(long.iter().any(|d| *d > Duration::from_millis(30_900)));
    let near_cap = spreads(Duration::from_millis(59_500), secs(60));
    assert!(
        near_cap.iter().all(|d| *d <= secs(60)),
        "never past max_delay"
    );
    assert_eq!(
        spreads(secs(60), secs(60)),
        vec![secs(60); 2000],
        "a value of exactly max_delay is not spread"
    );
    assert_eq!(
        spread(Duration::ZERO, secs(60), &mut StdRng::seed_from_u64(1)),
        Duration::ZERO
    );
}

proptest! {
    #[test]
    fn a_spread_delay_is_never_earlier_than_asked_nor_later_than_a_tenth_or_the_cap(
        asked_ms in 0u64..7_200_000, max_ms in 0u64..7_200_000, seed in any::<u64>(),
    ) {
        let (asked, max) = (Duration::from_millis(asked_ms), Duration::from_millis(max_ms));
        let got = spread(asked, max, &mut StdRng::seed_from_u64(seed));
        prop_assert!(got >= asked, "{got:?} earlier than {asked:?}");
        prop_assert!(got <= asked + (asked / 10).min(SPREAD_CAP));
        prop_assert!(got <= max.max(asked), "{got:?} past max_delay {max:?}");
    }
}

proptest! {
    #[test]
    fn any_string_gives_a_result_and_never_panics(value in ".*", now in any::<u64>()) {
        let trimmed = value.trim_matches([' ', '\t']);
        match parse(&value, now) {
            Ok(_) => {}
            Err(RetryAfterError::Empty) => prop_assert!(trimmed.is_empty()),
            Err(RetryAfterError::Invalid { value: quoted }) => {
                prop_assert!(trimmed.starts_with(&quoted), "quotes the value it read");
                prop_assert!(quoted.chars().count() <= MAX_QUOTED_CHARS);
            }
        }
    }

    #[test]
    fn any_digits_are_that_many_seconds(n in any::<u64>()) {
        prop_assert_eq!(parse(&n.to_string(), 0), Ok(secs(n)));
    }

    #[test]
    fn any_formatted_date_is_read_back_to_the_second(
        date_secs in 0u64..253_402_300_799, before_ms in 0u64..10_000_000,
    ) {
        let date = httpdate::fmt_http_date(UNIX_EPOCH + secs(date_secs));
        let now = (date_secs * 1000).saturating_sub(before_ms);
        let expected = Duration::from_millis(date_secs * 1000 - now);
        prop_assert_eq!(parse(&date, now), Ok(expected), "{}", date);
    }
}
