//! Reading `circuit_breaker` (in `default` or `clusters.<name>`) into a [`BreakerLayer`]: the
//! values it sets, checked.

use super::bounds::*;
use super::duration;
use super::json::{quote, show, Node};
use super::layer::{BreakerLayer, FailureRateLayer, FallbackLayer, SlowCallLayer};
use super::names::{seen_before, NameMap};
use super::problem::At;
use super::raw::Toggle;
use super::read::{self, count, integer, object, rate, text, time, toggle};
use super::types::BreakerMode;

const FIELDS: &[&str] = &[
    "failure_threshold",
    "failure_rate",
    "slow_call",
    "timeout",
    "max_timeout",
    "half_open_attempts",
    "probe_timeout",
    "failure_on",
    "count_retries",
    "fallback",
    "mode",
];

/// Reads a `circuit_breaker` object; `at` is at it.
pub(crate) fn breaker(node: &Node, at: &mut At) -> Option<BreakerLayer> {
    let mut l = BreakerLayer::default();
    let mut written_max = None;
    let is_object = object(node, at, FIELDS, &mut |name, node, at| match name {
        "failure_threshold" => {
            l.failure_threshold = count(node, at, FAILURE_THRESHOLD);
            if let Some(n) = l.failure_threshold {
                if n > 0 && n < FAILURE_THRESHOLD_WARN_BELOW {
                    let rule = "is below 3, so the breaker trips on transient errors";
                    at.warning(n.to_string(), rule);
                }
            }
        }
        "failure_rate" => l.failure_rate = toggle(node, at, failure_rate),
        "slow_call" => l.slow_call = toggle(node, at, slow_call),
        "timeout" => l.timeout = time(node, at, OPEN_TIME),
        "max_timeout" => {
            l.max_timeout = time(node, at, OPEN_TIME);
            written_max = Some(show_written(node));
        }
        "half_open_attempts" => l.half_open_attempts = count(node, at, HALF_OPEN_ATTEMPTS),
        "probe_timeout" => l.probe_timeout = time(node, at, PROBE_TIMEOUT),
        "failure_on" => {
            l.failure_on = read::outcomes(
                node,
                at,
                |code| FAILURE_CODES.contains(&code),
                "is not a failure status, a failure_on code must be 400..=599",
                None,
            )
        }
        "count_retries" => l.count_retries = read::flag(node, at),
        // Not a part that null turns off: an open breaker must answer something.
        "fallback" => l.fallback = fallback(node, at).map_or(Toggle::Unset, Toggle::On),
        "mode" => l.mode = mode(node, at),
        _ => {}
    });
    // Both written here: a cap below the start is a mistake. Written in different scopes, the
    // cap follows the raised timeout instead (see `resolve`).
    if let (Some(timeout), Some(max), Some(written)) = (l.timeout, l.max_timeout, written_max) {
        if max < timeout {
            let rule = format!(
                "is shorter than circuit_breaker.timeout {}, must be at least that",
                duration::show(timeout)
            );
            at.field("max_timeout", |at| at.problem(written, &rule));
            l.max_timeout = None;
        }
    }
    is_object.then_some(l)
}

/// A duration as written: `90`, not `90.0`.
fn show_written(node: &Node) -> String {
    match node {
        Node::Number(n) => super::json::show_number(n.as_f64().unwrap_or(f64::NAN)),
        other => show(other),
    }
}

fn mode(node: &Node, at: &mut At) -> Option<BreakerMode> {
    let mode = match node {
        Node::String(s) => match s.as_str() {
            "enforce" => Some(BreakerMode::Enforce),
            "shadow" => Some(BreakerMode::Shadow),
            "forced_open" => Some(BreakerMode::ForcedOpen),
            "disabled" => Some(BreakerMode::Disabled),
            _ => None,
        },
        _ => None,
    };
    if mode.is_none() {
        let rule =
            "is not a mode, must be \"enforce\", \"shadow\", \"forced_open\" or \"disabled\"";
        at.shape(show(node), rule);
    }
    mode
}

fn failure_rate(node: &Node, at: &mut At) -> Option<FailureRateLayer> {
    let mut l = FailureRateLayer::default();
    let known = &["threshold", "minimum_requests", "window"];
    let is_object = object(node, at, known, &mut |name, node, at| match name {
        "threshold" => l.threshold = rate(node, at),
        "minimum_requests" => l.minimum_requests = count(node, at, MINIMUM_REQUESTS),
        "window" => l.window = time(node, at, WINDOW),
        _ => {}
    });
    is_object.then_some(l)
}

fn slow_call(node: &Node, at: &mut At) -> Option<SlowCallLayer> {
    let mut l = SlowCallLayer::default();
    let known = &["duration", "rate_threshold"];
    let is_object = object(node, at, known, &mut |name, node, at| match name {
        "duration" => l.duration = time(node, at, SLOW_CALL_DURATION),
        "rate_threshold" => l.rate_threshold = rate(node, at),
        _ => {}
    });
    is_object.then_some(l)
}

fn fallback(node: &Node, at: &mut At) -> Option<FallbackLayer> {
    let mut l = FallbackLayer::default();
    let known = &["status", "grpc_status", "headers", "body"];
    let is_object = object(node, at, known, &mut |name, node, at| match name {
        "status" => {
            let status = integer(node, at, FALLBACK_STATUS);
            l.status = status.and_then(|s| u16::try_from(s).ok());
        }
        "grpc_status" => {
            let code = integer(node, at, FALLBACK_GRPC_STATUS);
            l.grpc_status = code.and_then(|c| u8::try_from(c).ok());
        }
        "headers" => l.headers = headers(node, at),
        "body" => l.body = text(node, at).and_then(|body| self::body(body, at)),
        _ => {}
    });
    is_object.then_some(l)
}

fn body(body: &str, at: &mut At) -> Option<String> {
    if body.len() <= MAX_FALLBACK_BODY_BYTES {
        return Some(body.to_owned());
    }
    let rule = format!(
        "is {} bytes long, must be at most {MAX_FALLBACK_BODY_BYTES}",
        body.len()
    );
    at.problem(quote(body), &rule);
    None
}

/// The fallback headers: lower-cased valid names, each once, valid values, and none of the
/// headers that the filter or Envoy set themselves. In the order written.
fn headers(node: &Node, at: &mut At) -> Option<Vec<(String, String)>> {
    let Node::Object(entries) = node else {
        at.shape(show(node), "is not an object");
        return None;
    };
    let mut headers: Vec<(String, String)> = Vec::with_capacity(entries.len());
    let (mut written, mut complete) = (NameMap::default(), true);
    for (name, value) in entries {
        complete &= at.field(name, |at| {
            if seen_before(&mut written, name) {
                at.shape(show(value), "is a second value for this key, set it once");
                return false;
            }
            let value = text(value, at);
            let lower = read::header_name(name, at);
            let (Some(value), Some(lower)) = (value, lower) else {
                return false;
            };
            let refused = if headers.iter().any(|(seen, _)| *seen == lower) {
                Some("is a second value for this header (names are case-insensitive)")
            } else if lower == "retry-after" || lower.starts_with("x-breakwater-") {
                Some("is under a header that the filter sets on every fallback reply")
            } else if lower.starts_with("grpc-") {
                Some("is under a gRPC header, which the filter and Envoy set on the fallback to a gRPC request")
            } else if lower == "content-length" || lower == "transfer-encoding" {
                Some("is under a header that Envoy sets from the body")
            } else if !read::is_header_value(value) {
                Some("is not a header value, must have no control characters and no spaces at either end")
            } else {
                None
            };
            match refused {
                Some(rule) => at.problem(quote(value), rule),
                None => headers.push((lower, value.to_owned())),
            }
            refused.is_none()
        });
    }
    complete.then_some(headers)
}
