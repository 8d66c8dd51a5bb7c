//! Reading the policy out of the JSON tree in one pass: each value's JSON type (its shape) and
//! its rule are checked where it is read, every problem is recorded with its path, and the walk
//! carries on.
//!
//! # Why not serde's derives
//!
//! A derived `Deserialize` stops at the first error, and a user who fixes one typo per Envoy
//! rejection would need as many rounds as typos. The [`super::raw`] types still describe the
//! JSON for serde and for the schema; a property test holds this reader to accept exactly the
//! shapes they accept.
//!
//! # Why one shared reader per kind of value
//!
//! Every field is one line of the field table (`fields`) calling one of the readers below (a
//! count, a duration, an outcome list, ...), which check the JSON type and the field's bounds
//! together. Deriving,
//! then converting, then checking each field in its own code cost several times more in the
//! `.wasm`, which must stay small.

use super::duration::{self, DurationError};
use super::json::{quote, show, show_number, Node};
use super::problem::At;
use super::raw::Toggle;
use super::rule::Rule;
use super::suggest::did_you_mean;
use super::types::{OutcomeClass, OutcomeMatcher};
use std::ops::RangeInclusive;
use std::time::Duration;

/// Walks a JSON object whose fields are `known`: `read` gets each known field once, at its path;
/// unknown and repeated fields are reported. False when `node` is not an object.
#[inline(never)]
pub(crate) fn object(
    node: &Node,
    at: &mut At,
    known: &'static [&'static str],
    read: &mut dyn FnMut(&str, &Node, &mut At),
) -> bool {
    let Node::Object(entries) = node else {
        at.shape(show(node), Rule::NotAnObject);
        return false;
    };
    let mut seen: Vec<&str> = Vec::with_capacity(entries.len());
    for (key, value) in entries {
        at.field(key, |at| {
            if !known.contains(&key.as_str()) {
                let did_you_mean = did_you_mean(key, known);
                at.shape(
                    show(value),
                    Rule::UnknownField {
                        did_you_mean,
                        known,
                    },
                );
            } else if seen.contains(&key.as_str()) {
                at.shape(show(value), Rule::RepeatedField);
            } else {
                seen.push(key);
                read(key, value, at);
            }
        });
    }
    true
}

/// A part that `null` turns off: `Off` for null, `On` with what `read` reads, `Unset` when
/// that fails (the problem is reported).
pub(crate) fn toggle<T>(
    node: &Node,
    at: &mut At,
    read: impl FnOnce(&Node, &mut At) -> Option<T>,
) -> Toggle<T> {
    match node {
        Node::Null => Toggle::Off,
        other => read(other, at).map_or(Toggle::Unset, Toggle::On),
    }
}

/// An integer within `bounds`.
#[inline(never)]
pub(crate) fn integer(node: &Node, at: &mut At, bounds: RangeInclusive<i64>) -> Option<i64> {
    let value = match node {
        Node::Number(n) if n.is_f64() => return shape(at, node, Rule::NotAnInteger),
        Node::Number(n) => match n.as_i64() {
            Some(i) => i,
            None => return shape(at, node, Rule::IntegerTooLarge),
        },
        _ => return shape(at, node, Rule::NotANumberMustBeInteger),
    };
    if bounds.contains(&value) {
        Some(value)
    } else {
        out_of_range(
            at,
            show(node),
            bounds.start().to_string(),
            bounds.end().to_string(),
        )
    }
}

/// A count within `bounds` (which fit a `u32`).
pub(crate) fn count(node: &Node, at: &mut At, bounds: RangeInclusive<i64>) -> Option<u32> {
    integer(node, at, bounds).and_then(|n| u32::try_from(n).ok())
}

/// A number within `bounds`.
#[inline(never)]
pub(crate) fn number(node: &Node, at: &mut At, bounds: RangeInclusive<f64>) -> Option<f64> {
    let value = float(node, at)?;
    if bounds.contains(&value) {
        Some(value)
    } else {
        let (low, high) = (show_number(*bounds.start()), show_number(*bounds.end()));
        out_of_range(at, show_number(value), low, high)
    }
}

/// A fraction at which a rate trigger fires: above 0, at most 1.
pub(crate) fn rate(node: &Node, at: &mut At) -> Option<f64> {
    let value = float(node, at)?;
    if value > 0.0 && value <= super::bounds::RATE_THRESHOLD_MAX {
        Some(value)
    } else {
        at.problem(show_number(value), Rule::RateOutOfRange);
        None
    }
}

fn float(node: &Node, at: &mut At) -> Option<f64> {
    match node {
        Node::Number(n) => n.as_f64().or_else(|| shape(at, node, Rule::NotANumber)),
        _ => shape(at, node, Rule::NotANumber),
    }
}

/// A duration within `bounds`: a number of seconds or a string with a unit.
#[inline(never)]
pub(crate) fn time(node: &Node, at: &mut At, bounds: RangeInclusive<Duration>) -> Option<Duration> {
    let (parsed, written) = match node {
        Node::Number(n) => {
            let seconds = n.as_f64().unwrap_or(f64::NAN);
            (duration::from_seconds(seconds), show_number(seconds))
        }
        Node::String(text) => (duration::parse_text(text), quote(text)),
        _ => return shape(at, node, Rule::NotADuration),
    };
    match parsed {
        Ok(d) if bounds.contains(&d) => Some(d),
        Ok(_) | Err(DurationError::TooLarge) => {
            let low = duration::format(*bounds.start());
            out_of_range(at, written, low, duration::format(*bounds.end()))
        }
        Err(e) => {
            at.problem(written, e.into());
            None
        }
    }
}

/// `true` or `false`.
pub(crate) fn flag(node: &Node, at: &mut At) -> Option<bool> {
    match node {
        Node::Bool(b) => Some(*b),
        _ => shape(at, node, Rule::NotABool),
    }
}

/// A string.
pub(crate) fn text<'n>(node: &'n Node, at: &mut At) -> Option<&'n str> {
    match node {
        Node::String(s) => Some(s),
        _ => shape(at, node, Rule::NotAString),
    }
}

/// A list whose items `item` reads, each at its index; `None` when any item is wrong (using the
/// rest would change the list's meaning).
pub(crate) fn list<T>(
    node: &Node,
    at: &mut At,
    mut item: impl FnMut(&Node, &mut At) -> Option<T>,
) -> Option<Vec<T>> {
    let Node::Array(items) = node else {
        return shape(at, node, Rule::NotAnArray);
    };
    let mut read = Vec::with_capacity(items.len());
    let mut complete = true;
    for (i, node) in items.iter().enumerate() {
        match at.index(i, |at| item(node, at)) {
            Some(value) => read.push(value),
            None => complete = false,
        }
    }
    complete.then_some(read)
}

/// `failure_on` or `retry_on`: class names, gRPC statuses and status codes, deduplicated.
/// `code_allowed` says which codes the list may hold and `code_rule` why the others are
/// refused; `grpc_refused`, when set, is why the list may hold no gRPC status.
#[inline(never)]
pub(crate) fn outcomes(
    node: &Node,
    at: &mut At,
    code_allowed: fn(u16) -> bool,
    code_rule: fn() -> Rule,
    grpc_refused: Option<fn() -> Rule>,
) -> Option<OutcomeMatcher> {
    let items = list(node, at, |node, at| {
        let code = match node {
            Node::Number(n) if !n.is_f64() => match n.as_i64() {
                Some(code) => code,
                None => return shape(at, node, Rule::NotAnOutcome),
            },
            Node::String(name) if is_digits(name) => name.parse().unwrap_or(i64::MAX),
            Node::String(name) => match (outcome_name(name), grpc_refused) {
                (Some(OutcomeClass::Grpc(_)), Some(rule)) => {
                    at.problem(show(node), rule());
                    return None;
                }
                (Some(class), _) => return Some(Err(class)),
                (None, _) => {
                    at.problem(show(node), Rule::NotAnOutcome);
                    return None;
                }
            },
            _ => return shape(at, node, Rule::NotAnOutcome),
        };
        match u16::try_from(code) {
            Ok(code) if code_allowed(code) => Some(Ok(code)),
            _ => {
                at.problem(show(node), code_rule());
                None
            }
        }
    })?;
    let mut matcher = OutcomeMatcher::default();
    for item in items {
        match item {
            Err(class) if !matcher.classes.contains(&class) => matcher.classes.push(class),
            Err(_) => {}
            // Kept sorted without duplicates as they come (the lists are short).
            Ok(code) => {
                if let Err(place) = matcher.codes.binary_search(&code) {
                    matcher.codes.insert(place, code);
                }
            }
        }
    }
    Some(matcher)
}

fn outcome_name(name: &str) -> Option<OutcomeClass> {
    Some(match name {
        "5xx" => OutcomeClass::Status5xx,
        "gateway-error" => OutcomeClass::GatewayError,
        "reset" => OutcomeClass::Reset,
        "connect-failure" => OutcomeClass::ConnectFailure,
        "timeout" => OutcomeClass::Timeout,
        "no-healthy-upstream" => OutcomeClass::NoHealthyUpstream,
        "overflow" => OutcomeClass::Overflow,
        other => OutcomeClass::Grpc(crate::core::outcome::grpc::from_name(other)?),
    })
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// `methods`: HTTP method tokens, upper-cased and deduplicated in the order written.
pub(crate) fn methods(node: &Node, at: &mut At) -> Option<Vec<String>> {
    let items = list(node, at, |node, at| {
        let method = text(node, at)?;
        if is_token(method) {
            return Some(method.to_ascii_uppercase());
        }
        at.problem(show(node), Rule::NotAMethod);
        None
    })?;
    let mut methods: Vec<String> = Vec::with_capacity(items.len());
    for method in items {
        if !methods.contains(&method) {
            methods.push(method);
        }
    }
    Some(methods)
}

/// A header name, lower-cased.
pub(crate) fn header_name(name: &str, at: &mut At) -> Option<String> {
    if is_token(name) {
        Some(name.to_ascii_lowercase())
    } else {
        at.problem(quote(name), Rule::NotAHeaderName);
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

/// Records that `node` has the wrong JSON type (see [`At::shape`]) and reads nothing.
fn shape<T>(at: &mut At, node: &Node, rule: Rule) -> Option<T> {
    at.shape(show(node), rule);
    None
}

fn out_of_range<T>(at: &mut At, value: String, low: String, high: String) -> Option<T> {
    at.problem(value, Rule::OutOfRange { low, high });
    None
}
