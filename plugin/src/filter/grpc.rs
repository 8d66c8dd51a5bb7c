//! gRPC requests: their outcome, which comes at the response headers (trailers-only) or at the
//! trailers, and their fallback, which is a gRPC reply.
//!
//! The rules are `core::outcome::grpc`'s; this reads what they need from the host. A gRPC
//! request is never retried by the filter (see `copy::Dropped::Grpc`), so its first attempt's
//! outcome is its final one: the stream judges it once it is known, at the response headers, at
//! the trailers, or when the stream ends first.
//!
//! # The fallback
//! Envoy answers a local reply to a gRPC request (`sendLocalReply`, which is what
//! `proxy_send_local_response` calls) as a trailers-only gRPC reply: HTTP 200,
//! `content-type: application/grpc`, `grpc-status` from the call's `grpc_status` argument (or
//! mapped from the HTTP status without one), `grpc-message` from the body, percent-encoded, and
//! the extra headers added. So the fallback passes the policy's `grpc_status` and a short message
//! as the body, and keeps the breaker's headers (`retry-after`, `x-breakwater-breaker`) plus
//! `grpc-retry-pushback-ms`, the time left before the breaker lets probes through, which a gRPC
//! client with a retry policy waits for (gRFC A6). The policy's fallback headers are kept but for
//! `content-type`, which a gRPC reply must not change.

use std::time::Duration;

use proxy_wasm::types::MapType;

use crate::core::breaker::Phase;
use crate::core::millis;
use crate::core::outcome::grpc::{self, AtHeaders};
use crate::core::outcome::Outcome;
use crate::core::pairs::Pairs;
use crate::policy::BreakerPolicy;

use super::exchange::Exchange;
use super::host;
use super::outbound;
use super::reply::BREAKER_HEADER;

/// The header a gRPC server (or the fallback) uses to tell a client when to retry (gRFC A6).
pub const PUSHBACK_HEADER: &str = "grpc-retry-pushback-ms";

/// The response headers of a gRPC request: its outcome if they carry it, else `Pending` (the
/// status comes in the trailers). `end_of_stream`: the headers end the response.
pub fn at_headers(end_of_stream: bool) -> AtHeaders {
    let status = host::status(MapType::HttpResponseHeaders);
    let grpc_status = host::header(MapType::HttpResponseHeaders, "grpc-status");
    if status == Some(200) && grpc_status.is_none() && !end_of_stream {
        // The common case, a reply whose status comes in the trailers: nothing more to read.
        return AtHeaders::Pending;
    }
    // Envoy's flags and details tell its own trailers-only replies from the upstream's, so they
    // are read whatever the status (an HTTP request only needs them on a 5xx).
    let flags = host::property_u64(host::path::RESPONSE_FLAGS).unwrap_or(0);
    let details = host::property_str(host::path::RESPONSE_CODE_DETAILS).unwrap_or_default();
    grpc::at_headers(
        status,
        grpc_status.as_deref().map(str::as_bytes),
        end_of_stream,
        flags,
        &details,
    )
}

/// The status will come in the trailers: a slow call is timed to these headers (see
/// [`Exchange::responded`]).
pub fn await_status(exchange: Option<&mut Exchange>) {
    if let Some(exchange) = exchange {
        if exchange.times_calls() {
            exchange.responded = Some(host::now());
        }
    }
}

/// The response trailers of a gRPC request.
pub fn at_trailers() -> Outcome {
    let grpc_status = host::header(MapType::HttpResponseTrailers, "grpc-status");
    grpc::at_trailers(grpc_status.as_deref().map(str::as_bytes))
}

/// The stream ended while its status was awaited: `None` when the client left first.
pub fn ended() -> Option<Outcome> {
    let flags = host::property_u64(host::path::RESPONSE_FLAGS).unwrap_or(0);
    let details = host::property_str(host::path::RESPONSE_CODE_DETAILS).unwrap_or_default();
    grpc::ended(flags, &details)
}

/// The `grpc-message` of the fallback.
fn message(phase: Phase) -> &'static str {
    match phase {
        Phase::HalfOpen => "breakwater: circuit breaker half-open, probes in flight",
        _ => "breakwater: circuit breaker open",
    }
}

/// Sends the breaker's fallback to a gRPC request, as a trailers-only gRPC reply (see the
/// module docs).
pub fn send_fallback(policy: &BreakerPolicy, phase: Phase, retry_after: Duration) {
    let seconds = host::retry_after_seconds(retry_after).to_string();
    let pushback = millis(retry_after).to_string();
    let state = phase.rejecting();
    let fallback = &policy.fallback;
    let headers = Pairs::collect(
        fallback
            .headers
            .iter()
            .filter(|(name, _)| name != "content-type")
            .map(|(n, v)| (n.as_bytes(), v.as_bytes()))
            .chain([
                (&b"retry-after"[..], seconds.as_bytes()),
                (BREAKER_HEADER.as_bytes(), state.as_bytes()),
                (PUSHBACK_HEADER.as_bytes(), pushback.as_bytes()),
            ]),
    );
    let _ = outbound::reply_grpc(
        fallback.status,
        &headers,
        message(phase).as_bytes(),
        fallback.grpc_status,
    );
}
