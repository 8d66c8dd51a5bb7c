//! Reading `circuit_breaker` (in `default` or `clusters.<name>`) into a [`BreakerLayer`]: the
//! values it sets, checked. The field table (`fields`) reads each field; here are the readers
//! of its own kinds of value and the rule between two fields of one scope.

use super::bounds::*;
use super::json::{quote, show, Node};
use super::layer::{BreakerLayer, Fields};
use super::names::{seen_before, NameMap};
use super::problem::At;
use super::read::{self, count, object, text};
use super::rule::Rule;
use super::types::BreakerMode;
use std::ops::RangeInclusive;

/// Reads a `circuit_breaker` object; `at` is at it.
pub(crate) fn breaker(node: &Node, at: &mut At) -> Option<BreakerLayer> {
    let mut l = BreakerLayer::default();
    let mut written_max = None;
    let is_object = object(node, at, BreakerLayer::FIELDS, &mut |name, node, at| {
        if name == "max_timeout" {
            written_max = Some(show_written(node));
        }
        l.read_field(name, node, at);
    });
    // Both written here: a cap below the start is a mistake. Written in different scopes, the
    // cap follows the raised timeout instead (see `resolve`).
    if let (Some(timeout), Some(max), Some(written)) = (l.timeout, l.max_timeout, written_max) {
        if max < timeout {
            let rule = Rule::MaxTimeoutBelowTimeout(timeout);
            at.field("max_timeout", |at| at.problem(written, rule));
            l.max_timeout = None;
        }
    }
    is_object.then_some(l)
}

/// `failure_threshold`: a count within `bounds`, with a warning when it is low enough to trip
/// on transient errors.
pub(crate) fn failure_threshold(
    node: &Node,
    at: &mut At,
    bounds: RangeInclusive<i64>,
) -> Option<u32> {
    let threshold = count(node, at, bounds);
    if let Some(n) = threshold {
        if n > 0 && n < FAILURE_THRESHOLD_WARN_BELOW {
            at.warning(n.to_string(), Rule::LowFailureThreshold);
        }
    }
    threshold
}

/// A duration as written: `90`, not `90.0`.
fn show_written(node: &Node) -> String {
    match node {
        Node::Number(n) => super::json::show_number(n.as_f64().unwrap_or(f64::NAN)),
        other => show(other),
    }
}

pub(crate) fn mode(node: &Node, at: &mut At) -> Option<BreakerMode> {
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
        at.shape(show(node), Rule::NotAMode);
    }
    mode
}

/// The fallback `body`: at most [`MAX_FALLBACK_BODY_BYTES`].
pub(crate) fn body(body: &str, at: &mut At) -> Option<String> {
    if body.len() <= MAX_FALLBACK_BODY_BYTES {
        return Some(body.to_owned());
    }
    at.problem(quote(body), Rule::BodyTooLong(body.len()));
    None
}

/// The fallback headers: lower-cased valid names, each once, valid values, and none of the
/// headers that the filter or Envoy set themselves. In the order written.
pub(crate) fn headers(node: &Node, at: &mut At) -> Option<Vec<(String, String)>> {
    let Node::Object(entries) = node else {
        at.shape(show(node), Rule::NotAnObject);
        return None;
    };
    let mut headers: Vec<(String, String)> = Vec::with_capacity(entries.len());
    let (mut written, mut complete) = (NameMap::default(), true);
    for (name, value) in entries {
        complete &= at.field(name, |at| {
            if seen_before(&mut written, name) {
                at.shape(show(value), Rule::RepeatedKey);
                return false;
            }
            let value = text(value, at);
            let lower = read::header_name(name, at);
            let (Some(value), Some(lower)) = (value, lower) else {
                return false;
            };
            let refused = if headers.iter().any(|(seen, _)| *seen == lower) {
                Some(Rule::RepeatedHeader)
            } else if lower == "retry-after" || lower.starts_with("x-breakwater-") {
                Some(Rule::FilterSetsHeader)
            } else if lower.starts_with("grpc-") {
                Some(Rule::GrpcHeader)
            } else if lower == "content-length" || lower == "transfer-encoding" {
                Some(Rule::EnvoySetsFromBody)
            } else if !read::is_header_value(value) {
                Some(Rule::NotAHeaderValue)
            } else {
                None
            };
            match refused {
                Some(rule) => {
                    at.problem(quote(value), rule);
                    false
                }
                None => {
                    headers.push((lower, value.to_owned()));
                    true
                }
            }
        });
    }
    complete.then_some(headers)
}
