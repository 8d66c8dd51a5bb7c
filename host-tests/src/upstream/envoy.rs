//! Envoy's failure model: what Envoy makes of what a scripted upstream did, as the filter and
//! the client see it (its own replies, their flags and details, the router's header on real
//! responses). The script language ([`super::script`]) says what the upstream does; this module
//! alone says how Envoy reports it.
//!
//! # How failures reach the filter
//! The same [`Reply`](super::Reply) answers a request the filter let through (the "stream path", through
//! Envoy's router) and a call the filter dispatched with `proxy_http_call` (through Envoy's
//! `AsyncClient`, which also runs the router). Envoy presents them like this
//! (`source/common/router/router.cc`, `source/extensions/common/wasm/context.cc`):
//!
//! | reply | stream path: the filter's `on_http_response_headers` sees | dispatched call |
//! | --- | --- | --- |
//! | [`Reply::refuse`](super::Reply::refuse) | Envoy's local reply 503, flag UF, details `upstream_reset_before_response_started{connection_failure}` | a synthesized 503 with the same body |
//! | [`Reply::reset`](super::Reply::reset) | local reply 503, flag UR, details `upstream_reset_before_response_started{remote_reset}` | a synthesized 503 with that body |
//! | [`Reply::timeout`](super::Reply::timeout) (or any reply later than the timeout) | local reply 504, flag UT, details `upstream_response_timeout`, body `upstream request timeout` | a synthesized 504 at the call's timeout; never, if the call had no timeout |
//! | [`Reply::reset_after_headers`](super::Reply::reset_after_headers) | the upstream headers; then, if the filter let them pass, a reset of the client's stream with flag UR, details `upstream_reset_after_response_started{remote_reset}`; if the filter held them, Envoy's own 503 (same flag and details) straight to the client, past the filter (see below) | `proxy_on_http_call_response` with 0 headers, 0 body; `get_status` says 11 (`BrokenConnection`), `reset` |
//! | [`Reply::reset_mid_body`](super::Reply::reset_mid_body) | the upstream headers (and, if the filter let them pass, half the body); then, if they went to the client, a reset with flag UPE, details `upstream_reset_after_response_started{protocol_error}`; if the filter held them, Envoy's own 502 straight to the client, past the filter (see below) | at the reset, `proxy_on_http_call_response` with 0 headers, 0 body, `get_status` 11, `reset`, as above |
//!
//! # An upstream that resets after its head
//! [`Reply::reset_after_headers`](super::Reply::reset_after_headers) and [`Reply::reset_mid_body`](super::Reply::reset_mid_body) are upstreams that send their
//! head and then reset: the first at once, with a stream reset (`RemoteReset`); the second after
//! the first half of the body (the head announcing the whole body's `content-length`), by
//! resetting the connection, what Envoy's HTTP/1 codec calls a protocol error. The router's
//! `Filter::onUpstreamReset` (`source/common/router/router.cc`) answers both through
//! `Filter::onUpstreamAbort`, that is `sendLocalReply` with:
//!
//! | reply | status | flag | details |
//! | --- | --- | --- | --- |
//! | [`Reply::reset_after_headers`](super::Reply::reset_after_headers) | 503 (`ServiceUnavailable`: every reset but a protocol error) | UR (`UpstreamRemoteReset`, bit 4) | `upstream_reset_after_response_started{remote_reset}` |
//! | [`Reply::reset_mid_body`](super::Reply::reset_mid_body) | 502 (`BadGateway`: `reset_reason == ProtocolError`) | UPE (`UpstreamProtocolError`, bit 23) | `upstream_reset_after_response_started{protocol_error}` |
//!
//! The body is the router's `upstream connect error or disconnect/reset before headers. reset
//! reason: remote reset` (or `protocol error`): it says "before headers" for every reset. The
//! details start with `LateUpstreamReset` because the router set `downstream_response_started_`
//! when it passed the upstream head to the filter chain (`Filter::onUpstreamHeaders`), whether or
//! not a filter then held it; for the same reason the router never retries such a reset
//! (`maybeRetryReset`).
//! `FilterManager::sendLocalReply` (`source/common/http/filter_manager.cc`) then has two cases:
//! - the filter let the head pass (`non_100_response_headers_encoded_`): the head (and the body
//!   so far) is with the client, so Envoy resets the stream. The client holds a cut-off response
//!   (the harness reports [`crate::StreamState::Reset`]); `response.code` stays the upstream's.
//! - the filter paused the head: nothing reached the client, so `sendDirectLocalReply` writes
//!   Envoy's reply straight to the codec, past the filter chain (no `on_http_response_headers`
//!   for it), and the stream ends. The filter sees only `on_log`, `on_done`, `on_delete`, with
//!   `response.code` the reply's status (503 or 502) and the flag and details above.
//!
//! The harness runs both through one path (a cut response whose reset is a late
//! `UpstreamFailure`). The mid-body case was measured on Envoy 1.40
//! (`envoy/tests/faults/mid_body.rs`). The reset after headers takes the remote reset's status,
//! flag and details, which is what the router gives a stream reset (an HTTP/2 upstream's
//! `RST_STREAM`); an HTTP/1.1 upstream that resets its connection right after the head was
//! measured too (`a_held_503_reset_right_after_its_head_is_envoys_502_and_one_failure`) and gets
//! the protocol error's 502, UPE, `…{protocol_error}`, exactly like a reset mid-body: a script
//! that wants that case uses [`Reply::reset_mid_body`](super::Reply::reset_mid_body) (the filter sees the same either way).
//!
//! A dispatched call's response is buffered whole by the `AsyncClient`, so a call that meets
//! either reply comes back as a reset call when the upstream resets.
//!
//! The bodies are Envoy's: `upstream connect error or disconnect/reset before headers. reset
//! reason: connection failure` (or `remote reset`), and `upstream request timeout`. A response
//! that really came from the upstream carries the router's `x-envoy-upstream-service-time` on
//! both paths; Envoy's own replies never do (see [`UPSTREAM_SERVICE_TIME`]).

use super::script::Cut;
use crate::headers::Message;
use crate::HeaderMap;
use std::time::Duration;

/// The upstream failures Envoy turns into its own replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UpstreamFailure {
    Refused,
    Reset,
    Timeout,
    /// A remote reset after the response started ([`Reply::reset_after_headers`](super::Reply::reset_after_headers)).
    ResetAfterHeaders,
    /// A reset after the response started, which the codec reports as a protocol error
    /// ([`Reply::reset_mid_body`](super::Reply::reset_mid_body)).
    MidBodyReset,
    /// The route's cluster does not exist (see [`crate::clusters`]).
    ClusterNotFound,
    /// The route's cluster has no healthy host (see [`crate::clusters`]).
    NoHealthyUpstream,
}

impl UpstreamFailure {
    pub fn status(self) -> u16 {
        match self {
            UpstreamFailure::Refused
            | UpstreamFailure::Reset
            | UpstreamFailure::ResetAfterHeaders
            | UpstreamFailure::NoHealthyUpstream => 503,
            // The route's `cluster_not_found_response_code`, 503 unless configured.
            UpstreamFailure::ClusterNotFound => 503,
            UpstreamFailure::Timeout => 504,
            // `onUpstreamReset`: `ProtocolError` is a `BadGateway`, every other reset a 503.
            UpstreamFailure::MidBodyReset => 502,
        }
    }

    pub fn body(self) -> &'static str {
        match self {
            UpstreamFailure::Refused => {
                "upstream connect error or disconnect/reset before headers. reset reason: \
                 connection failure"
            }
            // The router's text says "before headers" for every reset.
            UpstreamFailure::Reset | UpstreamFailure::ResetAfterHeaders => {
                "upstream connect error or disconnect/reset before headers. reset reason: \
                 remote reset"
            }
            UpstreamFailure::Timeout => "upstream request timeout",
            // The router's text says "before headers" for every reset.
            UpstreamFailure::MidBodyReset => {
                "upstream connect error or disconnect/reset before headers. reset reason: \
                 protocol error"
            }
            UpstreamFailure::ClusterNotFound => "",
            UpstreamFailure::NoHealthyUpstream => "no healthy upstream",
        }
    }

    pub fn details(self) -> &'static str {
        match self {
            UpstreamFailure::Refused => {
                "upstream_reset_before_response_started{connection_failure}"
            }
            UpstreamFailure::Reset => "upstream_reset_before_response_started{remote_reset}",
            UpstreamFailure::Timeout => "upstream_response_timeout",
            UpstreamFailure::ResetAfterHeaders => {
                "upstream_reset_after_response_started{remote_reset}"
            }
            UpstreamFailure::MidBodyReset => {
                "upstream_reset_after_response_started{protocol_error}"
            }
            UpstreamFailure::ClusterNotFound => "cluster_not_found",
            UpstreamFailure::NoHealthyUpstream => "no_healthy_upstream",
        }
    }

    pub fn flag(self) -> u64 {
        match self {
            UpstreamFailure::Refused => crate::flags::UPSTREAM_CONNECTION_FAILURE,
            UpstreamFailure::Reset | UpstreamFailure::ResetAfterHeaders => {
                crate::flags::UPSTREAM_REMOTE_RESET
            }
            UpstreamFailure::Timeout => crate::flags::UPSTREAM_REQUEST_TIMEOUT,
            UpstreamFailure::MidBodyReset => crate::flags::UPSTREAM_PROTOCOL_ERROR,
            UpstreamFailure::ClusterNotFound => crate::flags::NO_CLUSTER_FOUND,
            UpstreamFailure::NoHealthyUpstream => crate::flags::NO_HEALTHY_UPSTREAM,
        }
    }
}

impl Cut {
    /// What Envoy's router makes of the reset (`Filter::onUpstreamReset`).
    pub fn failure(self) -> UpstreamFailure {
        match self {
            Cut::AfterHeaders => UpstreamFailure::ResetAfterHeaders,
            Cut::MidBody { .. } => UpstreamFailure::MidBodyReset,
        }
    }
}

/// The router's header on every response that really came from the upstream: milliseconds from
/// the complete request to the response headers.
pub const UPSTREAM_SERVICE_TIME: &str = "x-envoy-upstream-service-time";

/// The message an upstream sends for a scripted response, as the filter sees it: `:status`, the
/// script's headers, `content-length` if the script did not set one, and the router's
/// [`UPSTREAM_SERVICE_TIME`] (`service_time` after the request was complete; `None` for a
/// response that came before the request's end, which gets no such header).
///
/// Envoy's router sets that header on every upstream response once the downstream request was
/// complete, unless `suppress_envoy_headers` (`Filter::onUpstreamHeaders` in
/// `source/common/router/router.cc`, `setEnvoyUpstreamServiceTime`: only when
/// `downstream_request_complete_time_` is set, "not a premature response"); it does so before the
/// encoder filters run, so the filter sees it on the stream path. The `AsyncClient` behind a
/// dispatched call runs the same router with `suppress_envoy_headers = false`
/// (`AsyncClientImpl`'s `Router::FilterConfig` in `source/common/http/async_client_impl.cc`), so
/// a call's real response carries it too, while the replies Envoy synthesizes never do.
pub(crate) fn upstream_message(
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
    trailers: &[(String, String)],
    service_time: Option<Duration>,
) -> Message {
    let mut map = HeaderMap::new();
    map.add(":status", &status.to_string());
    for (name, value) in headers {
        map.add(name, value);
    }
    if !body.is_empty() && map.get("content-length").is_none() {
        map.add("content-length", &body.len().to_string());
    }
    if let Some(service_time) = service_time {
        map.replace(UPSTREAM_SERVICE_TIME, &service_time.as_millis().to_string());
    }
    Message {
        headers: map,
        body: body.to_vec(),
        trailers: trailers.iter().collect(),
    }
}
