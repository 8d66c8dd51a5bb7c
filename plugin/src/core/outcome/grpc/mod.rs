//! gRPC replies: where their status is, when it is known, and what a reply without one means.
//!
//! # Where the status is
//!
//! A gRPC call is an HTTP/2 request with `content-type: application/grpc…`. Its reply is HTTP
//! `200` whatever happened; the call's status is the `grpc-status` field (a decimal code, `0` is
//! OK), sent either
//!
//! - in the response headers, which then end the stream: a **trailers-only** reply, the shape of
//!   an error before any message and of every reply Envoy makes itself to a gRPC request
//!   (`sendLocalReply` maps its HTTP status to a gRPC status: `503` → `14` UNAVAILABLE, and so on);
//! - or in the **trailers**, after the messages.
//!
//! So the outcome of a gRPC attempt is known at the response headers for a trailers-only reply,
//! and only at the trailers otherwise ([`at_headers`] says which, [`at_trailers`] reads the
//! trailers).
//!
//! # What a client library reports, and so what counts
//!
//! The outcome is the status the caller's gRPC library reports, so that `failure_on` means
//! what the application sees. tonic 0.14 and grpc-go agree on the cases that are not a plain
//! `grpc-status`:
//!
//! - a value that is not a known code (`"abc"`, `"99"`, empty) is [`UNKNOWN`];
//! - a `200` stream that ends cleanly without any `grpc-status` (trailers without it, or no
//!   trailers at all) is [`UNKNOWN`]: the protocol requires the status, and its absence is a
//!   truncation the client cannot explain;
//! - a reply whose HTTP status is not `200` is not a gRPC reply at all (a hop that is not gRPC
//!   answered): its outcome is the HTTP one, classified like any HTTP reply, with no gRPC code;
//! - a stream that the upstream reset after the headers is a [`Cause::Reset`], as for HTTP.
//!
//! # The stream ends without a status
//!
//! [`ended`] decides for a stream that ends while its status is still awaited: the client left
//! (Envoy's downstream flags) → no outcome, as for any request whose client goes away; Envoy's
//! details name an upstream failure (a reset or a timeout after the response started) → that
//! failure (a stream idle or duration timeout, `SI` or `DT`, is a timeout: the upstream stopped
//! sending); otherwise the stream ended cleanly without a status → [`UNKNOWN`] from the upstream.

use super::{envoy, Cause, Outcome};

/// A gRPC status code (`0..=16`; anything else is read as [`UNKNOWN`]).
pub type GrpcCode = u8;

/// The call succeeded.
pub const OK: GrpcCode = 0;
/// What a client library reports for a status it cannot read, or for none at all.
pub const UNKNOWN: GrpcCode = 2;
/// The highest code gRPC defines (`UNAUTHENTICATED`).
pub const MAX_CODE: GrpcCode = 16;

/// The canonical names of the codes `1..=16`, in code order, as `failure_on` spells them:
/// gRPC's own names, lower-cased with `-` for `_` (Envoy's `retry_on` spells the five it knows
/// the same way).
pub const NAMES: [&str; 16] = [
    "cancelled",
    "unknown",
    "invalid-argument",
    "deadline-exceeded",
    "not-found",
    "already-exists",
    "permission-denied",
    "resource-exhausted",
    "failed-precondition",
    "aborted",
    "out-of-range",
    "unimplemented",
    "internal",
    "unavailable",
    "data-loss",
    "unauthenticated",
];

/// The prefix of a gRPC code written by number in an outcome list: `grpc-14`.
pub const NUMBERED: &str = "grpc-";

/// Whether a request with this `content-type` is a gRPC call, exactly as Envoy decides it
/// (`Grpc::Common::hasGrpcContentType`): `application/grpc`, alone or followed by `+` and a
/// codec (`application/grpc+proto`), compared as written. Envoy turns its local replies to those
/// requests, and only those, into gRPC replies, so the fallback's shape depends on the same
/// test. `application/grpc-web…` is not gRPC: a gRPC-Web reply carries its status in the body,
/// and Envoy answers it as plain HTTP.
pub fn is_grpc_content_type(value: &[u8]) -> bool {
    value
        .strip_prefix(b"application/grpc")
        .is_some_and(|rest| rest.is_empty() || rest.first() == Some(&b'+'))
}

/// The name of code `1..=16` (`None` for OK and for anything else).
pub fn name(code: GrpcCode) -> Option<&'static str> {
    NAMES.get(usize::from(code).checked_sub(1)?).copied()
}

/// The code an outcome list names: a canonical name (`"unavailable"`) or `grpc-N` with `N` in
/// `1..=16` written without sign or leading zero. `None` for anything else, OK included (a
/// success is never an outcome to list).
pub fn from_name(text: &str) -> Option<GrpcCode> {
    if let Some(digits) = text.strip_prefix(NUMBERED) {
        let canonical = !digits.is_empty()
            && digits.len() <= 2
            && !digits.starts_with('0')
            && digits.bytes().all(|b| b.is_ascii_digit());
        return digits
            .parse()
            .ok()
            .filter(|code| canonical && (1..=MAX_CODE).contains(code));
    }
    let index = NAMES.iter().position(|n| *n == text)?;
    u8::try_from(index + 1).ok()
}

/// Reads a `grpc-status` value as a client library does: a decimal code `0..=16`, surrounding
/// spaces allowed; anything else is [`UNKNOWN`].
pub fn parse_status(value: &[u8]) -> GrpcCode {
    let value = value.trim_ascii();
    let digits = !value.is_empty() && value.len() <= 2 && value.iter().all(u8::is_ascii_digit);
    if !digits {
        return UNKNOWN;
    }
    let code = value.iter().fold(0u8, |n, d| n * 10 + (d - b'0'));
    if code <= MAX_CODE {
        code
    } else {
        UNKNOWN
    }
}

/// What the response headers of a gRPC request tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtHeaders {
    /// The outcome is known now: a trailers-only reply, a reply that is not gRPC (not `200`),
    /// or headers that end the stream without a status.
    Known(Outcome),
    /// A `200` whose status comes in the trailers.
    Pending,
}

/// The response headers of a gRPC request: `:status`, the `grpc-status` header if any, whether
/// the headers end the stream, and Envoy's flags and details (see [`Outcome::from_response`]):
/// they tell Envoy's own trailers-only replies (a failed connection, a timeout, an overflow)
/// from the upstream's, so those count as the same failures as their HTTP equivalents.
pub fn at_headers(
    status: Option<u16>,
    grpc_status: Option<&[u8]>,
    end_of_stream: bool,
    flags: u64,
    details: &str,
) -> AtHeaders {
    let http = Outcome::from_response(status, flags, details);
    if status != Some(200) {
        return AtHeaders::Known(http);
    }
    match grpc_status {
        Some(value) => AtHeaders::Known(http.with_grpc(parse_status(value))),
        None if end_of_stream => AtHeaders::Known(http.with_grpc(UNKNOWN)),
        None => AtHeaders::Pending,
    }
}

/// The trailers of a gRPC reply whose headers were a `200` from the upstream: the trailers'
/// `grpc-status` if any.
pub fn at_trailers(grpc_status: Option<&[u8]>) -> Outcome {
    Outcome {
        status: Some(200),
        cause: Cause::Upstream,
        grpc: Some(grpc_status.map_or(UNKNOWN, parse_status)),
    }
}

/// A gRPC reply whose headers were a `200` and whose stream ended before any trailers came,
/// from Envoy's flags and details at the end: `None` when the client left first (no outcome),
/// else the upstream failure Envoy names, else a clean end without a status ([`UNKNOWN`]).
pub fn ended(flags: u64, details: &str) -> Option<Outcome> {
    let client_left = envoy::flags::DOWNSTREAM_CONNECTION_TERMINATION
        | envoy::flags::DOWNSTREAM_REMOTE_RESET
        | envoy::flags::DOWNSTREAM_PROTOCOL_ERROR;
    if flags & client_left != 0 {
        return None;
    }
    let upstream_failed = envoy::flags::UPSTREAM_REMOTE_RESET
        | envoy::flags::UPSTREAM_CONNECTION_TERMINATION
        | envoy::flags::UPSTREAM_PROTOCOL_ERROR;
    // A stream that went idle for too long (`SI`): the upstream stopped sending.
    let idle = envoy::flags::STREAM_IDLE_TIMEOUT | envoy::flags::DURATION_TIMEOUT;
    let by_flags = if flags & upstream_failed != 0 {
        Some(Cause::Reset)
    } else if flags & idle != 0 {
        Some(Cause::Timeout)
    } else {
        None
    };
    let cause = envoy::cause_of_upstream_failure(details).or(by_flags);
    Some(match cause {
        Some(cause) => Outcome {
            status: Some(200),
            cause,
            grpc: None,
        },
        None => at_trailers(None),
    })
}

#[cfg(test)]
mod tests;
