//! What the client receives from the filter itself: the breaker's fallback, and the final
//! response of a retried request; and what a retry sends upstream.

use std::time::Duration;

use proxy_wasm::hostcalls;
use proxy_wasm::types::MapType;

use crate::core::breaker::{Admission, Phase};
use crate::core::outcome::Cause;
use crate::core::Millis;
use crate::policy::{BreakerMode, BreakerPolicy};

use super::exchange::Exchange;
use super::host;
use super::metrics::Counter;
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
pub fn is_copied(name: &str, value: &str) -> bool {
    if name == "te" {
        return value.eq_ignore_ascii_case("trailers");
    }
    !HOP_BY_HOP.contains(&name) && !name.starts_with("x-breakwater-")
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
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    /// A call response to relay: its headers without pseudo and hop-by-hop ones, and `body`.
    pub fn from_call(status: u16, headers: Vec<(String, String)>, body: Vec<u8>) -> Reply {
        let headers = headers
            .into_iter()
            .filter(|(name, value)| !name.starts_with(':') && is_copied(name, value))
            .collect();
        Reply {
            status,
            headers,
            body,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A retry about to be dispatched.
pub struct Call<'a> {
    exchange: &'a Exchange,
    attempt: String,
    pub body: Option<&'a [u8]>,
    pub timeout: Duration,
}

impl<'a> Call<'a> {
    pub fn headers(&self) -> Vec<(&str, &str)> {
        let mut headers: Vec<(&str, &str)> = self
            .exchange
            .copy
            .iter()
            .flat_map(|c| c.headers.iter_str())
            .filter(|(n, v)| is_copied(n, v))
            .collect();
        headers.push((ATTEMPT_HEADER, &self.attempt));
        headers
    }

    pub fn trailers(&self) -> Vec<(&str, &str)> {
        self.exchange
            .copy
            .iter()
            .flat_map(|c| c.trailers.iter())
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect()
    }
}

/// The dispatch of attempt `attempt` of `exchange`; `None` without a request copy or policy.
pub fn call_for(exchange: &Exchange, attempt: u32) -> Option<Call<'_>> {
    let copy = exchange.copy.as_ref()?;
    let timeout = exchange.effective().retry.as_ref()?.per_try_timeout;
    Some(Call {
        exchange,
        attempt: attempt.to_string(),
        body: (!copy.body.is_empty()).then_some(copy.body.as_slice()),
        timeout,
    })
}

/// Sends the breaker's fallback on the current stream.
pub fn send_fallback(policy: &BreakerPolicy, phase: Phase, retry_after: Duration) {
    let seconds = host::retry_after_seconds(retry_after).to_string();
    let state = match phase {
        Phase::HalfOpen => "half-open",
        _ => "open",
    };
    let mut headers: Vec<(&str, &str)> = policy
        .fallback
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    headers.push(("retry-after", &seconds));
    headers.push((BREAKER_HEADER, state));
    let body = policy.fallback.body.as_bytes();
    let _ = hostcalls::send_http_response(
        u32::from(policy.fallback.status),
        headers,
        (!body.is_empty()).then_some(body),
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
            let mut headers: Vec<(&str, &str)> = reply
                .headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            if retried {
                headers.push((ATTEMPTS_HEADER, &attempts));
            }
            let _ = hostcalls::send_http_response(
                u32::from(reply.status),
                headers,
                (!reply.body.is_empty()).then_some(reply.body.as_slice()),
            );
        }
        Last::Failed => {
            let (status, body) = match job.outcome.cause {
                Cause::Timeout => (504, "upstream request timeout"),
                Cause::ConnectFailure => (503, "upstream connect error: connection failure"),
                _ => (503, "upstream reset before response"),
            };
            let mut headers = vec![("content-type", "text/plain")];
            if retried {
                headers.push((ATTEMPTS_HEADER, &attempts));
            }
            let _ = hostcalls::send_http_response(status, headers, Some(body.as_bytes()));
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
