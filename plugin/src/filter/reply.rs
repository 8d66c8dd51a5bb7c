//! What the client receives from the filter itself: the breaker's fallback, and the final
//! response of a retried request; and what a retry sends upstream.

use std::time::Duration;

use proxy_wasm::hostcalls;
use proxy_wasm::types::MapType;

use crate::core::breaker::{Admission, Phase};
use crate::core::outcome::Cause;
use crate::core::Millis;
use crate::policy::{BreakerMode, BreakerPolicy};

use crate::core::pairs::Pairs;

use super::copy::RequestCopy;
use super::exchange::Exchange;
use super::host;
use super::memory::Lease;
use super::metrics::Counter;
use super::outbound;
use super::retries::{Job, Last};
use super::worker::{read_breaker, Worker};

/// Headers that describe one connection, not the message: never copied between hops
/// (RFC 9110 §7.6.1), plus `content-length`, which Envoy sets from the body it sends.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "content-length",
    "expect",
];

/// Whether a header is copied onto a replayed request or a relayed response. `te: trailers` is
/// the one `te` that HTTP/2 allows end to end (gRPC needs it), so it is kept.
pub fn is_copied(name: &[u8], value: &[u8]) -> bool {
    if name == b"te" {
        return value.eq_ignore_ascii_case(b"trailers");
    }
    !HOP_BY_HOP.iter().any(|h| h.as_bytes() == name) && !name.starts_with(b"x-breakwater-")
}

/// The request header that tells the upstream which attempt this is (N ≥ 2).
pub const ATTEMPT_HEADER: &str = "x-breakwater-attempt";
/// The response header that tells the client how many attempts its request took.
pub const ATTEMPTS_HEADER: &str = "x-breakwater-attempts";
/// The fallback header that says why the request was not sent.
pub const BREAKER_HEADER: &str = "x-breakwater-breaker";

/// A response received from a dispatched retry, ready to relay.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    /// As the host serialized them, without pseudo and hop-by-hop headers.
    pub headers: Pairs,
    pub body: Vec<u8>,
    /// The headers and body, held against the worker's byte budget until the reply is dropped.
    held: Lease,
}

impl Reply {
    /// A call response to relay: its headers without pseudo and hop-by-hop ones, and `body`.
    pub fn from_call(status: u16, headers: &Pairs, body: Vec<u8>, lease: Lease) -> Reply {
        let headers = Pairs::collect(
            headers
                .iter()
                .filter(|(name, value)| !name.starts_with(b":") && is_copied(name, value)),
        );
        Reply {
            status,
            headers,
            body,
            held: lease,
        }
    }

    /// Bytes this reply holds against the worker's budget.
    pub fn held(&self) -> u64 {
        self.held.bytes()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        std::str::from_utf8(self.headers.get(name)?).ok()
    }
}

/// The request headers of attempt `attempt` of `copy`: the client's, without hop-by-hop ones,
/// plus `x-breakwater-attempt`.
pub fn call_headers(copy: &RequestCopy, attempt: u32) -> Pairs {
    let attempt = attempt.to_string();
    Pairs::collect(
        copy.headers
            .iter()
            .filter(|(n, v)| is_copied(n, v))
            .chain(std::iter::once((
                ATTEMPT_HEADER.as_bytes(),
                attempt.as_bytes(),
            ))),
    )
}

/// The headers of a reply: `headers`, plus `x-breakwater-attempts` after a retry.
fn with_attempts<'a>(
    headers: impl Iterator<Item = (&'a [u8], &'a [u8])>,
    attempts: &'a str,
    retried: bool,
) -> Pairs {
    let extra = retried.then_some((ATTEMPTS_HEADER.as_bytes(), attempts.as_bytes()));
    Pairs::collect(headers.chain(extra))
}

/// Sends the breaker's fallback on the current stream.
pub fn send_fallback(policy: &BreakerPolicy, phase: Phase, retry_after: Duration) {
    let seconds = host::retry_after_seconds(retry_after).to_string();
    let state = match phase {
        Phase::HalfOpen => "half-open",
        _ => "open",
    };
    let headers = Pairs::collect(
        policy
            .fallback
            .headers
            .iter()
            .map(|(n, v)| (n.as_bytes(), v.as_bytes()))
            .chain([
                (&b"retry-after"[..], seconds.as_bytes()),
                (BREAKER_HEADER.as_bytes(), state.as_bytes()),
            ]),
    );
    let _ = outbound::reply(
        policy.fallback.status,
        &headers,
        policy.fallback.body.as_bytes(),
    );
}

/// Hands a finished job's response to its stream; nothing if the stream is gone. When the
/// retries stopped because the breaker opened, an enforcing breaker serves its fallback instead.
pub fn deliver(w: &mut Worker, root_id: u32, id: u32, job: &Job, breaker_stop: bool, now: Millis) {
    if hostcalls::set_effective_context(id).is_err() {
        return;
    }
    let exchange = &job.exchange;
    if breaker_stop && fallback_served(w, exchange, now) {
        let _ = hostcalls::set_effective_context(root_id);
        return;
    }
    let attempts = exchange.attempts.to_string();
    let retried = exchange.attempts > 1;
    match &job.last {
        Last::Held => {
            if retried {
                let _ = hostcalls::set_map_value(
                    MapType::HttpResponseHeaders,
                    ATTEMPTS_HEADER,
                    Some(&attempts),
                );
            }
            let _ = hostcalls::resume_http_response();
        }
        Last::Reply(reply) => {
            let headers = with_attempts(reply.headers.iter(), &attempts, retried);
            let _ = outbound::reply(reply.status, &headers, &reply.body);
        }
        Last::Failed => {
            let (status, body) = match job.outcome.cause {
                Cause::Timeout => (504, "upstream request timeout"),
                Cause::ConnectFailure => (503, "upstream connect error: connection failure"),
                _ => (503, "upstream reset before response"),
            };
            let content_type = (&b"content-type"[..], &b"text/plain"[..]);
            let headers = with_attempts(std::iter::once(content_type), &attempts, retried);
            let _ = outbound::reply(status, &headers, body.as_bytes());
        }
    }
    let _ = hostcalls::set_effective_context(root_id);
}

/// Serves the fallback if the cluster's breaker enforces and would reject a request now.
fn fallback_served(w: &mut Worker, exchange: &Exchange, now: Millis) -> bool {
    let Some(policy) = exchange.effective().breaker.as_ref() else {
        return false;
    };
    if policy.mode != BreakerMode::Enforce {
        return false;
    }
    let key = exchange.config.keys.breaker(&exchange.cluster);
    // A dry run on a copy: what a new request would get, without taking a probe slot.
    let mut breaker = read_breaker(w, &exchange.cluster, &key);
    match breaker.admit(policy, now, &mut w.rng).value {
        Admission::Rejected(rejection) => {
            send_fallback(policy, rejection.phase, rejection.retry_after);
            w.metrics.add(&exchange.cluster, Counter::Rejected, 1);
            true
        }
        Admission::Admitted(_) => false,
    }
}
