//! What the filter itself sends and holds: the breaker's fallback, the headers a retry sends
//! upstream, a retry's response held to relay ([`Reply`]), and the rest of a relayed response
//! still to write ([`Relay`]). How a retried request's final response reaches its client, with
//! the worker, is `relay`'s.

use std::time::Duration;

use crate::core::breaker::Phase;
use crate::core::pairs::Pairs;
use crate::policy::BreakerPolicy;

use super::copy::RequestCopy;
use super::host;
use super::memory::Lease;
use super::outbound;

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
    pub trailers: Pairs,
    /// The headers, body and trailers, held against the worker's byte budget until the reply is
    /// dropped.
    pub held: Lease,
}

impl Reply {
    /// A call response to relay: its headers without pseudo and hop-by-hop ones, `body` and
    /// `trailers`.
    pub fn from_call(
        status: u16,
        headers: &Pairs,
        body: Vec<u8>,
        trailers: Pairs,
        lease: Lease,
    ) -> Reply {
        let headers = Pairs::collect(
            headers
                .iter()
                .filter(|(name, value)| !name.starts_with(b":") && is_copied(name, value)),
        );
        Reply {
            status,
            headers,
            body,
            trailers,
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

/// The body and trailers of a response whose head has replaced the held response's head; they
/// replace the held response's body and trailers as those pass the filter (`relay::write_body`,
/// `relay::write_trailers`).
#[derive(Debug)]
pub struct Relay {
    pub body: Vec<u8>,
    pub trailers: Pairs,
    /// The body went into the first body callback; later ones are emptied.
    pub written: bool,
    _held: Option<Lease>,
}

impl Relay {
    /// A relay of `body` and `trailers`, not yet written, holding `held` until it goes.
    pub fn new(body: Vec<u8>, trailers: Pairs, held: Option<Lease>) -> Relay {
        Relay {
            body,
            trailers,
            written: false,
            _held: held,
        }
    }
}

/// The relays a worker keeps, by HTTP context id.
pub type Relays = hashbrown::HashMap<u32, Relay, crate::policy::names::FnvBuildHasher>;

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

/// Sends the breaker's fallback on the current stream.
pub fn send_fallback(policy: &BreakerPolicy, phase: Phase, retry_after: Duration) {
    let (status, headers, body) = fallback(policy, phase, retry_after);
    let _ = outbound::reply(status, &headers, &body);
}

/// The breaker's fallback: status, headers and body.
pub fn fallback(
    policy: &BreakerPolicy,
    phase: Phase,
    retry_after: Duration,
) -> (u16, Pairs, Vec<u8>) {
    let seconds = host::retry_after_seconds(retry_after).to_string();
    let state = phase.rejecting();
    // Envoy's local reply adds a `text/plain` content type to a body that has none; a fallback
    // written into a held response's place gets the same.
    let typed = policy
        .fallback
        .headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
        || policy.fallback.body.is_empty();
    let content_type = (!typed).then_some((&b"content-type"[..], &b"text/plain"[..]));
    let headers = Pairs::collect(
        policy
            .fallback
            .headers
            .iter()
            .map(|(n, v)| (n.as_bytes(), v.as_bytes()))
            .chain([
                (&b"retry-after"[..], seconds.as_bytes()),
                (BREAKER_HEADER.as_bytes(), state.as_bytes()),
            ])
            .chain(content_type),
    );
    (
        policy.fallback.status,
        headers,
        policy.fallback.body.as_bytes().to_vec(),
    )
}
