use super::*;
use proptest::prelude::*;

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
