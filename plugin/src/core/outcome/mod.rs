//! What happened to one attempt, told from what Envoy gives the filter.
//!
//! The breaker (`failure_on`) and the retry decision (`retry_on`) both ask one question of an
//! attempt: was it a real reply from the upstream, Envoy's own reply, or a failure to get any reply
//! at all (a reset, a failed connection, a timeout)? A 503 alone does not say: Envoy answers 503
//! itself when the connection fails and when a circuit of its own overflows, and an upstream may
//! answer 503 too. This module turns Envoy's evidence into an [`Outcome`]: a status (if any) and a
//! [`Cause`].
//!
//! # Two sources of evidence
//!
//! - **The client's own stream** ([`Outcome::from_response`]): in `on_http_response_headers` the
//!   filter reads `:status` and the properties `response.code_details` and `response.flags`. The
//!   details say `via_upstream` for a real reply and name the reason for Envoy's own replies; the
//!   flags are Envoy's response flag bits. See [`envoy`] for the exact strings and bit positions and
//!   where they come from in Envoy's source.
//! - **A dispatched call** ([`Outcome::from_call`], [`Outcome::dispatch_failed`]): retries are sent
//!   with `dispatch_http_call`, which has no stream info, so neither property exists. Envoy's
//!   AsyncClient presents failures in three shapes: `dispatch_http_call` returns an error at once
//!   (unknown cluster, missing pseudo-headers); the callback gets a reply that Envoy's router
//!   synthesized (503 with `upstream connect error or disconnect/reset before headers. reset
//!   reason: …`, 504 with `upstream request timeout`); or the callback gets zero headers (the stream
//!   was reset, `get_status` says `reset`). A real upstream reply always carries
//!   `x-envoy-upstream-service-time`, which the AsyncClient's router adds and never suppresses, and
//!   a synthesized one never does: that header, not the body text, tells the two apart, so an
//!   upstream (say another Envoy) that itself answers with Envoy's error text stays an upstream
//!   reply.
//!
//! # Matching: statuses and named causes never overlap
//!
//! [`OutcomeMatcher::matches`] applies `failure_on` / `retry_on`, which name outcomes in three
//! ways:
//!
//! - **By status**: `5xx` (500..=599), `gateway-error` (502, 503, 504) and status codes listed by
//!   number match the upstream's own reply ([`Cause::Upstream`]). A reply that Envoy or another
//!   filter made for a reason of its own ([`Cause::Local`]: no route, no cluster, a rate limit,
//!   an authorization filter's refusal or failure, …) matches nothing: the upstream was never
//!   asked, so it says nothing of the upstream's health, and a retry (dispatched straight to the
//!   cluster) would go around the very filter that refused.
//! - **By cause**: `reset`, `connect-failure`, `timeout`, `no-healthy-upstream` and `overflow`
//!   match their cause, whatever status Envoy put on it, and nothing else matches them.
//!
//! - **By gRPC status**: `unavailable`, `deadline-exceeded`, … (every gRPC code by its name, or
//!   `grpc-N`) match a gRPC reply ([`Outcome::grpc`]) with that status whose status speaks for
//!   itself, as above: the upstream's, or Envoy's for a reason without a name. Envoy answers a
//!   gRPC request that it could not connect for with a trailers-only `grpc-status: 14`, and that
//!   is `connect-failure`, not `unavailable`: gRPC names follow the same rule as status codes.
//!   An HTTP outcome has no gRPC status, so a gRPC name never matches an HTTP request.
//!
//! So the 503 that Envoy answers when it could not connect is `connect-failure`, not `5xx`; and
//! the 503 it answers when it protects itself (its own circuit breaker overflowed, the overload
//! manager, maintenance mode, `drop_overload`) is `overflow`, and neither `5xx`, `gateway-error`
//! nor a listed `503`. A policy that writes `"5xx"` therefore never counts Envoy's refusals as
//! the upstream failing: to count or retry one, list its name. Whether a 4xx may be retried at
//! all is the retry decision's rule (`core::retry`), not the matcher's: `failure_on` may list any
//! code.
//!
//! # Envoy's refusals in the defaults
//!
//! `policy::defaults` decides, per named cause, whether it is a failure (`failure_on`) and
//! whether it is retried (`retry_on`), and says why there: `overflow` is neither (a client flood
//! that trips Envoy's own limits at a gateway must not open the breaker for everyone), and
//! `no-healthy-upstream` is a failure that is not retried.

pub mod envoy;
pub mod grpc;

use crate::policy::{OutcomeClass, OutcomeMatcher};

/// Why an attempt ended the way it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cause {
    /// A real reply from the upstream (`via_upstream`), whatever its status.
    Upstream,
    /// Envoy's own reply for a reason without a name of its own: no route, a local rate limit,
    /// another filter's reply, a direct response, … The upstream was never asked: it matches no
    /// status class or code, and it is no outcome for the breaker at all.
    Local,
    /// Envoy found no healthy host in the cluster (`UH`) and answered itself: nothing was sent.
    NoHealthyUpstream,
    /// Envoy refused to send the request to protect itself or the upstream, by its own limits or
    /// orders: the cluster's circuit breaker thresholds overflowed (`UO`), the cluster is in
    /// maintenance mode, `drop_overload` dropped it (`DO`, `UDO`), or the overload manager shed it
    /// (`OM`). Nothing says the upstream failed.
    Overflow,
    /// The upstream reset the stream or closed the connection before a complete reply.
    Reset,
    /// No connection to the upstream could be made (refused, unreachable, connect timeout).
    ConnectFailure,
    /// The upstream did not answer in time (route timeout, per-try timeout, max stream duration).
    Timeout,
}

/// What happened to one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Outcome {
    /// The status the client would see, if there is one (a reset call has none).
    pub status: Option<u16>,
    pub cause: Cause,
    /// The gRPC status of a gRPC reply (`200` with `grpc-status`, or without one where a client
    /// library reads `UNKNOWN`: see [`grpc`]); `None` for every other outcome.
    pub grpc: Option<grpc::GrpcCode>,
}

impl Outcome {
    /// An HTTP outcome: a status (if any) and its cause, no gRPC status.
    pub fn http(status: Option<u16>, cause: Cause) -> Outcome {
        Outcome {
            status,
            cause,
            grpc: None,
        }
    }

    /// The same outcome, as a gRPC reply with status `code`.
    pub fn with_grpc(self, code: grpc::GrpcCode) -> Outcome {
        Outcome {
            grpc: Some(code),
            ..self
        }
    }

    /// The client stream's response as seen in `on_http_response_headers`: its `:status` (`None`
    /// when absent or not a number), the `response.flags` bits and the `response.code_details`
    /// string (empty when the property could not be read).
    pub fn from_response(status: Option<u16>, flags: u64, details: &str) -> Outcome {
        Outcome::http(status, envoy::cause_of_response(flags, details))
    }

    /// How a stream that Envoy ended on its own, without a response through the filter, ended
    /// for the upstream: `Some` when Envoy's evidence names an upstream failure (a reset, or a
    /// timeout) and the client did not leave first, `None` otherwise (the client went away, or
    /// nothing names the upstream).
    ///
    /// This is the case of a response the filter holds for a retry whose upstream then fails
    /// mid-body: the response has started, so Envoy's router answers the client directly
    /// (`sendDirectLocalReply`, past the filter chain, for example a `502` with
    /// `upstream_reset_after_response_started{protocol_error}`) and destroys the stream. The
    /// filter only sees the stream end, and reads what the client got from the stream's info.
    pub fn of_ended_stream(status: Option<u16>, flags: u64, details: &str) -> Option<Outcome> {
        if flags & envoy::flags::DOWNSTREAM_CONNECTION_TERMINATION != 0 {
            return None;
        }
        let cause = envoy::cause_of_upstream_failure(details)?;
        Some(Outcome::http(status, cause))
    }

    /// A dispatched call's response, from the callback: the headers that
    /// `get_http_call_response_headers` returned (none when the call was reset) and the body.
    ///
    /// The headers, not just the status, are needed because only the
    /// `x-envoy-upstream-service-time` header tells a real upstream reply from one that Envoy
    /// synthesized (see the module docs); the body then tells which failure Envoy synthesized.
    pub fn from_call<K: AsRef<str>, V: AsRef<str>>(headers: &[(K, V)], body: &[u8]) -> Outcome {
        if headers.is_empty() {
            return Outcome::http(None, Cause::Reset);
        }
        let status = headers
            .iter()
            .find(|(name, _)| name.as_ref() == ":status")
            .and_then(|(_, value)| parse_status(value.as_ref()));
        let from_upstream = headers.iter().any(|(name, _)| {
            name.as_ref()
                .eq_ignore_ascii_case(envoy::UPSTREAM_SERVICE_TIME)
        });
        let cause = if from_upstream {
            Cause::Upstream
        } else {
            envoy::cause_of_local_reply(body)
        };
        Outcome::http(status, cause)
    }

    /// `dispatch_http_call` itself returned an error: nothing reached the upstream. Counted as a
    /// connection failure, the closest of the causes (Envoy could not open a stream to the
    /// cluster).
    pub fn dispatch_failed() -> Outcome {
        Outcome::http(None, Cause::ConnectFailure)
    }

    /// A real upstream reply with a status below 400 and, for a gRPC reply, status OK. Envoy's
    /// own replies are never successes: they say nothing good about the upstream.
    pub fn is_success(&self) -> bool {
        self.cause == Cause::Upstream
            && self.status.is_some_and(|s| s < 400)
            && self.grpc.is_none_or(|code| code == grpc::OK)
    }

    /// A complete answer the client can be given: the upstream's, or Envoy's for a reason
    /// without a name of its own. Envoy's named refusals (no healthy upstream, overflow) and
    /// failures to get a reply are not. (Only the upstream's replies match status classes and
    /// codes, see the module docs.)
    pub fn is_reply(&self) -> bool {
        matches!(self.cause, Cause::Upstream | Cause::Local)
    }
}

/// Parses a `:status` value: three digits, 100..=999 (RFC 9110 §15).
pub fn parse_status(value: &str) -> Option<u16> {
    let value = value.trim();
    if value.len() != 3 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok().filter(|s| *s >= 100)
}

impl OutcomeMatcher {
    /// Whether the outcome is in this set (see the module docs for the rules).
    pub fn matches(&self, o: &Outcome) -> bool {
        let upstream = o.cause == Cause::Upstream;
        let reply_status = if upstream { o.status } else { None };
        let reply_grpc = if upstream { o.grpc } else { None };
        let class_matches = |class: &OutcomeClass| match class {
            OutcomeClass::Status5xx => reply_status.is_some_and(|s| (500..=599).contains(&s)),
            OutcomeClass::GatewayError => reply_status.is_some_and(|s| matches!(s, 502..=504)),
            OutcomeClass::Reset => o.cause == Cause::Reset,
            OutcomeClass::ConnectFailure => o.cause == Cause::ConnectFailure,
            OutcomeClass::Timeout => o.cause == Cause::Timeout,
            OutcomeClass::NoHealthyUpstream => o.cause == Cause::NoHealthyUpstream,
            OutcomeClass::Overflow => o.cause == Cause::Overflow,
            OutcomeClass::Grpc(code) => reply_grpc == Some(*code),
        };
        self.classes.iter().any(class_matches)
            || reply_status.is_some_and(|s| self.codes.contains(&s))
    }
}

#[cfg(test)]
mod tests;
