//! `Retry-After` parsing on arbitrary text and clocks: never a panic; delay-seconds read as
//! whole seconds (saturating); an HTTP-date written by `httpdate` comes back as the time until
//! it; the capped form never exceeds its cap; an error quotes at most 64 characters.

#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use arbitrary::Arbitrary;
use breakwater::core::retry_after::{parse, parse_capped, RetryAfterError, MAX_QUOTED_CHARS};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    value: String,
    now_unix_ms: u64,
    cap_ms: u64,
    /// A date to format as IMF-fixdate and read back, seconds since the epoch.
    date_secs: u32,
    padding: (u8, u8),
}

fn pad(n: u8) -> &'static str {
    ["", " ", "\t", "  \t "][usize::from(n % 4)]
}

fuzz_target!(|input: Input| {
    let now = input.now_unix_ms;
    match parse(&input.value, now) {
        Ok(delay) => {
            let trimmed = input.value.trim_matches([' ', '\t']);
            if trimmed.bytes().all(|b| b.is_ascii_digit()) {
                let secs = trimmed.parse::<u64>().unwrap_or(u64::MAX);
                assert_eq!(
                    delay,
                    Duration::from_secs(secs),
                    "delay-seconds {trimmed:?}"
                );
            }
        }
        Err(RetryAfterError::Empty) => {
            assert!(
                input.value.trim_matches([' ', '\t']).is_empty(),
                "only blank is empty"
            );
        }
        Err(RetryAfterError::Invalid { value }) => {
            assert!(
                value.chars().count() <= MAX_QUOTED_CHARS,
                "the quoted value is cut"
            );
        }
    }

    let cap = Duration::from_millis(input.cap_ms);
    if let Ok(capped) = parse_capped(&input.value, now, cap) {
        assert!(capped <= cap, "{capped:?} exceeds the cap {cap:?}");
    }

    let date = UNIX_EPOCH + Duration::from_secs(u64::from(input.date_secs));
    let text = format!(
        "{}{}{}",
        pad(input.padding.0),
        httpdate::fmt_http_date(date),
        pad(input.padding.1)
    );
    let expected = (u64::from(input.date_secs) * 1000).saturating_sub(now);
    assert_eq!(
        parse(&text, now),
        Ok(Duration::from_millis(expected)),
        "an HTTP-date {text:?} is the time until it, 0 when past"
    );
});
