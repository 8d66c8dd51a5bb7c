//! Reading `retry` (in any scope) into a [`RetryLayer`]: the values it sets, checked.

use super::bounds::*;
use super::json::{show, Node};
use super::layer::{BudgetLayer, RetryLayer};
use super::problem::At;
use super::read::{self, count, integer, number, object, text, time, toggle};
use super::types::Jitter;

const FIELDS: &[&str] = &[
    "max_attempts",
    "base_delay",
    "max_delay",
    "exponential_base",
    "jitter",
    "retry_on",
    "methods",
    "idempotency_header",
    "per_try_timeout",
    "deadline",
    "respect_retry_after",
    "budget",
    "max_request_body",
];

/// Reads a `retry` object; `at` is at it.
pub(crate) fn retry(node: &Node, at: &mut At) -> Option<RetryLayer> {
    let mut l = RetryLayer::default();
    let is_object = object(node, at, FIELDS, &mut |name, node, at| match name {
        "max_attempts" => {
            l.max_attempts = count(node, at, MAX_ATTEMPTS);
            if let Some(n) = l.max_attempts.filter(|n| *n > MAX_ATTEMPTS_WARN_ABOVE) {
                let rule =
                    "is above 5, so every failure multiplies the load on a struggling upstream";
                at.warning(n.to_string(), rule);
            }
        }
        "base_delay" => l.base_delay = time(node, at, DELAY),
        "max_delay" => l.max_delay = time(node, at, DELAY),
        "exponential_base" => l.exponential_base = number(node, at, EXPONENTIAL_BASE),
        "jitter" => l.jitter = jitter(node, at),
        "retry_on" => {
            l.retry_on = read::outcomes(
                node,
                at,
                |code| RETRYABLE_5XX.contains(&code) || RETRYABLE_4XX.contains(&code),
                "is never retried, a retry_on code must be 408, 409, 429 or 500..=599",
            )
        }
        "methods" => l.methods = read::methods(node, at),
        "idempotency_header" => {
            l.idempotency_header = toggle(node, at, |node, at| {
                text(node, at).and_then(|name| read::header_name(name, at))
            })
        }
        "per_try_timeout" => l.per_try_timeout = time(node, at, REQUEST_TIME),
        "deadline" => l.deadline = time(node, at, REQUEST_TIME),
        "respect_retry_after" => l.respect_retry_after = read::flag(node, at),
        "budget" => l.budget = toggle(node, at, budget),
        "max_request_body" => {
            let bytes = integer(node, at, MAX_REQUEST_BODY);
            l.max_request_body = bytes.and_then(|b| u64::try_from(b).ok());
        }
        _ => {}
    });
    is_object.then_some(l)
}

fn jitter(node: &Node, at: &mut At) -> Option<Jitter> {
    let jitter = match node {
        Node::Bool(true) => Some(Jitter::Proportional),
        Node::Bool(false) => Some(Jitter::None),
        Node::String(s) => match s.as_str() {
            "proportional" => Some(Jitter::Proportional),
            "none" => Some(Jitter::None),
            "full" => Some(Jitter::Full),
            "equal" => Some(Jitter::Equal),
            "decorrelated" => Some(Jitter::Decorrelated),
            _ => None,
        },
        _ => None,
    };
    if jitter.is_none() {
        let rule = "is not a jitter, must be true, false, \"none\", \"proportional\", \"full\", \
                    \"equal\" or \"decorrelated\"";
        at.shape(show(node), rule);
    }
    jitter
}

fn budget(node: &Node, at: &mut At) -> Option<BudgetLayer> {
    let mut l = BudgetLayer::default();
    let known = &["ratio", "min_per_second", "window"];
    let is_object = object(node, at, known, &mut |name, node, at| match name {
        "ratio" => l.ratio = number(node, at, BUDGET_RATIO),
        "min_per_second" => l.min_per_second = count(node, at, MIN_PER_SECOND),
        "window" => l.window = time(node, at, WINDOW),
        _ => {}
    });
    is_object.then_some(l)
}
