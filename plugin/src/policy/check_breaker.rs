//! The rules of the `circuit_breaker` fields, one scope at a time: the raw breaker becomes a
//! [`BreakerLayer`] holding the values it sets.

use super::bounds::*;
use super::check::{self, duration, field, integer, rate_threshold, toggle};
use super::duration as durations;
use super::json::show;
use super::layer::{BreakerLayer, FailureRateLayer, FallbackLayer, SlowCallLayer};
use super::problem::At;
use super::raw::{Entries, RawBreaker, RawFailureRate, RawFallback, RawMode, RawSlowCall, Toggle};
use super::types::BreakerMode;

/// Checks the fields of a `circuit_breaker` object; `at` is at that object.
pub(crate) fn breaker(at: &mut At, raw: &RawBreaker) -> BreakerLayer {
    let mut layer = fields(at, raw);
    // Both written here: a cap below the start is a mistake. Written in different scopes, the
    // cap follows the raised timeout instead (see `resolve`).
    if let (Some(timeout), Some(max)) = (layer.timeout, layer.max_timeout) {
        if max < timeout {
            at.field("max_timeout", |at| {
                let written = raw.max_timeout.as_ref().map(check::show_duration);
                at.problem(
                    written.unwrap_or_default(),
                    &format!(
                        "is shorter than circuit_breaker.timeout {}, must be at least that",
                        durations::show(timeout)
                    ),
                )
            });
            layer.max_timeout = None;
        }
    }
    layer
}

fn fields(at: &mut At, raw: &RawBreaker) -> BreakerLayer {
    BreakerLayer {
        failure_threshold: field(at, "failure_threshold", &raw.failure_threshold, |at, v| {
            let n: u32 = integer(at, *v, FAILURE_THRESHOLD)?;
            if n > 0 && n < FAILURE_THRESHOLD_WARN_BELOW {
                at.warning(
                    n.to_string(),
                    "is below 3, so the breaker trips on transient errors",
                );
            }
            Some(n)
        }),
        failure_rate: toggle(at, "failure_rate", &raw.failure_rate, failure_rate),
        slow_call: toggle(at, "slow_call", &raw.slow_call, slow_call),
        timeout: field(at, "timeout", &raw.timeout, |at, v| {
            duration(at, v, OPEN_TIME)
        }),
        max_timeout: field(at, "max_timeout", &raw.max_timeout, |at, v| {
            duration(at, v, OPEN_TIME)
        }),
        half_open_attempts: field(
            at,
            "half_open_attempts",
            &raw.half_open_attempts,
            |at, v| integer(at, *v, HALF_OPEN_ATTEMPTS),
        ),
        probe_timeout: field(at, "probe_timeout", &raw.probe_timeout, |at, v| {
            duration(at, v, PROBE_TIMEOUT)
        }),
        failure_on: field(at, "failure_on", &raw.failure_on, |at, v| {
            check::outcomes(
                at,
                v,
                |code| FAILURE_CODES.contains(&code),
                "is not a failure status, a failure_on code must be 400..=599",
            )
        }),
        count_retries: raw.count_retries,
        fallback: match &raw.fallback {
            Some(raw) => Toggle::On(at.field("fallback", |at| fallback(at, raw))),
            None => Toggle::Unset,
        },
        mode: raw.mode.map(|mode| match mode {
            RawMode::Enforce => BreakerMode::Enforce,
            RawMode::Shadow => BreakerMode::Shadow,
            RawMode::ForcedOpen => BreakerMode::ForcedOpen,
            RawMode::Disabled => BreakerMode::Disabled,
        }),
    }
}

fn failure_rate(at: &mut At, raw: &RawFailureRate) -> FailureRateLayer {
    FailureRateLayer {
        threshold: field(at, "threshold", &raw.threshold, |at, v| {
            rate_threshold(at, *v)
        }),
        minimum_requests: field(at, "minimum_requests", &raw.minimum_requests, |at, v| {
            integer(at, *v, MINIMUM_REQUESTS)
        }),
        window: field(at, "window", &raw.window, |at, v| duration(at, v, WINDOW)),
    }
}

fn slow_call(at: &mut At, raw: &RawSlowCall) -> SlowCallLayer {
    SlowCallLayer {
        duration: field(at, "duration", &raw.duration, |at, v| {
            duration(at, v, SLOW_CALL_DURATION)
        }),
        rate_threshold: field(at, "rate_threshold", &raw.rate_threshold, |at, v| {
            rate_threshold(at, *v)
        }),
    }
}

fn fallback(at: &mut At, raw: &RawFallback) -> FallbackLayer {
    FallbackLayer {
        status: field(at, "status", &raw.status, |at, v| {
            integer(at, *v, FALLBACK_STATUS)
        }),
        headers: field(at, "headers", &raw.headers, headers),
        body: field(at, "body", &raw.body, |at, body| {
            if body.len() <= MAX_FALLBACK_BODY_BYTES {
                Some(body.clone())
            } else {
                at.problem(
                    show(body),
                    &format!(
                        "is {} bytes long, must be at most {MAX_FALLBACK_BODY_BYTES}",
                        body.len()
                    ),
                );
                None
            }
        }),
    }
}

/// The fallback headers: lower-cased valid names, each once, valid values, and none of the
/// headers that the filter or Envoy set themselves.
fn headers(at: &mut At, raw: &Entries<String>) -> Option<Vec<(String, String)>> {
    let mut headers: Vec<(String, String)> = Vec::with_capacity(raw.0.len());
    let mut complete = true;
    for (name, value) in &raw.0 {
        complete &= at.field(name, |at| {
            let Some(lower) = check::header_name(at, name) else {
                return false;
            };
            let refused = if headers.iter().any(|(seen, _)| *seen == lower) {
                Some("is a second value for this header (names are case-insensitive)")
            } else if lower == "retry-after" || lower.starts_with("x-breakwater-") {
                Some("is under a header that the filter sets on every fallback reply")
            } else if lower == "content-length" || lower == "transfer-encoding" {
                Some("is under a header that Envoy sets from the body")
            } else if !check::is_header_value(value) {
                Some("is not a header value, must have no control characters and no spaces at either end")
            } else {
                None
            };
            match refused {
                Some(rule) => at.problem(show(value), rule),
                None => headers.push((lower, value.clone())),
            }
            refused.is_none()
        });
    }
    complete.then_some(headers)
}
