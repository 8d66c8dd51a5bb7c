//! Reading `retry` (in any scope) into a [`RetryLayer`]: the values it sets, checked. The field
//! table (`fields`) reads each field; here are the readers of its own kinds of value.
//!
//! # The budget is per cluster
//!
//! All routes to a cluster draw on one retry budget in shared data, and the budget's buckets
//! take their width from the policy that touches them. Two routes with different `window`s
//! would each re-bucket the shared counts to their own width on every write, collapsing them
//! into the current bucket each time, so the counts would never expire: the window would become
//! a lifetime ratio. A route's `ratio` or `null` would likewise make one shared budget answer
//! differently per route. So `retry.budget` is refused under `routes.<name>` (any field of it,
//! and `null` too), and every route to a cluster uses the cluster's budget.
//!
//! # Which headers can be the idempotency key
//!
//! A request that carries `idempotency_header` is retried whatever its method, so the header
//! must be one that only a client sets, on purpose. Refused, each with its reason:
//!
//! - pseudo-headers (`:path`, …): every request has them;
//! - `x-breakwater-*`: the filter's own headers, which it leaves out of a retry;
//! - headers Envoy adds to every request: `x-request-id`, `x-forwarded-*` (`x-forwarded-for`,
//!   `x-forwarded-proto`, …), and any `x-envoy-*` (`x-envoy-expected-rq-timeout-ms` is on every
//!   request, and Envoy strips the others from untrusted clients);
//! - tracing context that Envoy's tracers add to every traced request (`traceparent`,
//!   `tracestate`, `b3`, `x-b3-*`): under Istio, tracing is on by default;
//! - hop-by-hop headers (`connection`, `keep-alive`, `proxy-connection`, `transfer-encoding`,
//!   `te`, `trailer`, `upgrade`): they describe one connection, and Envoy removes or rewrites
//!   them;
//! - `host` and `content-length`: on every request, or every request with a body.
//!
//! The check runs on the lower-cased name, which is also what the policy keeps and what the
//! filter looks up: Envoy hands the filter lower-case header names, compared exactly.

use super::bounds::*;
use super::json::{quote, show, Node};
use super::layer::{Fields, RetryLayer};
use super::problem::At;
use super::read::{self, count, object, text};
use super::rule::Rule;
use super::types::Jitter;
use std::ops::RangeInclusive;

/// Reads a `retry` object of `default` or `clusters.<name>`; `at` is at it.
pub(crate) fn retry(node: &Node, at: &mut At) -> Option<RetryLayer> {
    read(node, at, false)
}

/// Reads a `retry` object of `routes.<name>`, which may not set the budget.
pub(crate) fn route_retry(node: &Node, at: &mut At) -> Option<RetryLayer> {
    read(node, at, true)
}

fn read(node: &Node, at: &mut At, on_route: bool) -> Option<RetryLayer> {
    let mut l = RetryLayer::default();
    let is_object = object(node, at, RetryLayer::FIELDS, &mut |name, node, at| {
        if on_route && name == "budget" {
            at.shape(show(node), Rule::BudgetOnRoute);
        } else {
            l.read_field(name, node, at);
        }
    });
    is_object.then_some(l)
}

/// `max_attempts`: a count within `bounds`, with a warning when it is high enough to multiply
/// an outage.
pub(crate) fn max_attempts(node: &Node, at: &mut At, bounds: RangeInclusive<i64>) -> Option<u32> {
    let attempts = count(node, at, bounds);
    if let Some(n) = attempts.filter(|n| *n > MAX_ATTEMPTS_WARN_ABOVE) {
        at.warning(n.to_string(), Rule::ManyAttempts);
    }
    attempts
}

/// `idempotency_header`: a header name, lower-cased, that can mark a request safe to repeat
/// (see the module docs).
pub(crate) fn idempotency_header(node: &Node, at: &mut At) -> Option<String> {
    let written = text(node, at)?;
    if written.starts_with(':') {
        at.problem(quote(written), Rule::PseudoHeader);
        return None;
    }
    let name = read::header_name(written, at)?;
    if let Some(why) = unusable_key(&name) {
        at.problem(quote(written), why);
        return None;
    }
    Some(name)
}

/// Why a lower-cased header name cannot be the idempotency key, if it cannot. (The rules are
/// short: every byte of their wording is in the `.wasm`.)
pub(super) fn unusable_key(name: &str) -> Option<Rule> {
    Some(match name {
        _ if name.starts_with("x-breakwater-") => Rule::BreakwaterHeader,
        "x-request-id" => Rule::AddedByEnvoy,
        _ if name.starts_with("x-forwarded-") => Rule::AddedByEnvoy,
        _ if name.starts_with("x-envoy-") => Rule::EnvoyHeader,
        "traceparent" | "tracestate" | "b3" => Rule::TracingHeader,
        _ if name.starts_with("x-b3-") => Rule::TracingHeader,
        "connection" | "keep-alive" | "proxy-connection" | "transfer-encoding" | "te"
        | "trailer" | "upgrade" => Rule::HopByHopHeader,
        "host" => Rule::OnEveryRequest,
        "content-length" => Rule::OnEveryRequestWithBody,
        _ => return None,
    })
}

pub(crate) fn jitter(node: &Node, at: &mut At) -> Option<Jitter> {
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
        at.shape(show(node), Rule::NotAJitter);
    }
    jitter
}
