//! The rules of single values: ranges, durations, outcomes, methods and header names. Each check
//! takes the raw value, reports what is wrong at the current path and returns the domain value.

use super::duration::{self, DurationError};
use super::json::{show, show_number};
use super::leaf::OUTCOME_RULE;
use super::problem::At;
use super::raw::{RawDuration, RawOutcome, Toggle};
use super::types::{OutcomeClass, OutcomeMatcher};
use std::fmt::Display;
use std::ops::RangeInclusive;
use std::time::Duration;

/// Runs `check` on a field when it is set.
pub(crate) fn field<R, T>(
    at: &mut At,
    name: &str,
    raw: &Option<R>,
    check: impl FnOnce(&mut At, &R) -> Option<T>,
) -> Option<T> {
    let raw = raw.as_ref()?;
    at.field(name, |at| check(at, raw))
}

/// Runs `check` on a field that null turns off, when it is set to a value.
pub(crate) fn toggle<R, T>(
    at: &mut At,
    name: &str,
    raw: &Toggle<R>,
    check: impl FnOnce(&mut At, &R) -> T,
) -> Toggle<T> {
    match raw {
        Toggle::Unset => Toggle::Unset,
        Toggle::Off => Toggle::Off,
        Toggle::On(raw) => Toggle::On(at.field(name, |at| check(at, raw))),
    }
}

/// An integer within `bounds`, in the domain's type.
pub(crate) fn integer<T: TryFrom<i64>>(
    at: &mut At,
    value: i64,
    bounds: RangeInclusive<i64>,
) -> Option<T> {
    let fits = bounds
        .contains(&value)
        .then(|| T::try_from(value).ok())
        .flatten();
    if fits.is_none() {
        out_of_range(at, value.to_string(), bounds.start(), bounds.end());
    }
    fits
}

/// A number within `bounds`.
pub(crate) fn number(at: &mut At, value: f64, bounds: RangeInclusive<f64>) -> Option<f64> {
    if bounds.contains(&value) {
        Some(value)
    } else {
        let (low, high) = (show_number(*bounds.start()), show_number(*bounds.end()));
        out_of_range(at, show_number(value), low, high);
        None
    }
}

/// A fraction at which a rate trigger fires: above 0, at most 1.
pub(crate) fn rate_threshold(at: &mut At, value: f64) -> Option<f64> {
    if value > 0.0 && value <= super::bounds::RATE_THRESHOLD_MAX {
        Some(value)
    } else {
        at.problem(
            show_number(value),
            "is out of range, must be greater than 0 and at most 1",
        );
        None
    }
}

/// A duration within `bounds`.
pub(crate) fn duration(
    at: &mut At,
    raw: &RawDuration,
    bounds: RangeInclusive<Duration>,
) -> Option<Duration> {
    let parsed = match raw {
        RawDuration::Seconds(seconds) => duration::from_seconds(*seconds),
        RawDuration::Text(text) => duration::parse_text(text),
    };
    match parsed {
        Ok(d) if bounds.contains(&d) => Some(d),
        Ok(_) | Err(DurationError::TooLarge) => {
            let (low, high) = (
                duration::format(*bounds.start()),
                duration::format(*bounds.end()),
            );
            out_of_range(at, show_duration(raw), low, high);
            None
        }
        Err(e) => {
            at.problem(show_duration(raw), &e.to_string());
            None
        }
    }
}

/// A duration as written.
pub(crate) fn show_duration(raw: &RawDuration) -> String {
    match raw {
        RawDuration::Seconds(seconds) => show_number(*seconds),
        RawDuration::Text(text) => show(text),
    }
}

fn out_of_range(at: &mut At, value: String, low: impl Display, high: impl Display) {
    at.problem(value, &format!("is out of range, must be {low}..={high}"));
}

/// `failure_on` or `retry_on`: class names and status codes, deduplicated. `code_allowed` says
/// which codes the list may hold and `code_rule` why the others are refused.
pub(crate) fn outcomes(
    at: &mut At,
    raw: &[RawOutcome],
    code_allowed: impl Fn(u16) -> bool,
    code_rule: &str,
) -> Option<OutcomeMatcher> {
    let mut matcher = OutcomeMatcher::default();
    let mut complete = true;
    for (i, item) in raw.iter().enumerate() {
        complete &= at.index(i, |at| match outcome(item) {
            Some(Outcome::Class(class)) => {
                if !matcher.classes.contains(&class) {
                    matcher.classes.push(class);
                }
                true
            }
            Some(Outcome::Code(code)) if code_allowed(code) => {
                // Kept sorted without duplicates as they come (lists are short; no sort code).
                if let Err(place) = matcher.codes.binary_search(&code) {
                    matcher.codes.insert(place, code);
                }
                true
            }
            Some(Outcome::Code(_)) => {
                at.problem(show(item), code_rule);
                false
            }
            None => {
                at.problem(show(item), OUTCOME_RULE);
                false
            }
        });
    }
    complete.then_some(matcher)
}

enum Outcome {
    Class(OutcomeClass),
    Code(u16),
}

fn outcome(raw: &RawOutcome) -> Option<Outcome> {
    let code = match raw {
        RawOutcome::Code(code) => *code,
        RawOutcome::Name(name) => {
            let class = match name.as_str() {
                "5xx" => OutcomeClass::Status5xx,
                "gateway-error" => OutcomeClass::GatewayError,
                "reset" => OutcomeClass::Reset,
                "connect-failure" => OutcomeClass::ConnectFailure,
                "timeout" => OutcomeClass::Timeout,
                digits if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
                    return digits.parse().ok().map(Outcome::Code);
                }
                _ => return None,
            };
            return Some(Outcome::Class(class));
        }
    };
    u16::try_from(code).ok().map(Outcome::Code)
}

/// `methods`: HTTP method tokens, upper-cased and deduplicated in the order written.
pub(crate) fn methods(at: &mut At, raw: &[String]) -> Option<Vec<String>> {
    let mut methods: Vec<String> = Vec::with_capacity(raw.len());
    let mut complete = true;
    for (i, method) in raw.iter().enumerate() {
        at.index(i, |at| {
            if is_token(method) {
                let upper = method.to_ascii_uppercase();
                if !methods.contains(&upper) {
                    methods.push(upper);
                }
            } else {
                at.problem(
                    show(method),
                    "is not an HTTP method, must be a token such as \"GET\"",
                );
                complete = false;
            }
        });
    }
    complete.then_some(methods)
}

/// A header name, lower-cased.
pub(crate) fn header_name(at: &mut At, name: &str) -> Option<String> {
    if is_token(name) {
        Some(name.to_ascii_lowercase())
    } else {
        at.problem(
            show(name),
            "is not a header name, must be letters, digits and !#$%&'*+-.^_`|~",
        );
        None
    }
}

/// Whether `s` is an RFC 9110 token: what method and header names are made of.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Whether `s` may be sent as a header value: no control characters but tab (a CR or LF would
/// split the header), no leading or trailing whitespace (RFC 9110 field values are trimmed).
pub(crate) fn is_header_value(s: &str) -> bool {
    let trimmed = s.trim_matches([' ', '\t']).len() == s.len();
    trimmed && s.chars().all(|c| c == '\t' || !c.is_control())
}
