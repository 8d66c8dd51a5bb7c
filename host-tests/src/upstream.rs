//! Scripted upstream clusters: what a test says a cluster answers, and what Envoy makes of it.
//!
//! # How failures reach the filter
//! The same [`Reply`] answers a request the filter let through (the "stream path", through
//! Envoy's router) and a call the filter dispatched with `proxy_http_call` (through Envoy's
//! `AsyncClient`, which also runs the router). Envoy presents them like this
//! (`source/common/router/router.cc`, `source/extensions/common/wasm/context.cc`):
//!
//! | reply | stream path: the filter's `on_http_response_headers` sees | dispatched call |
//! | --- | --- | --- |
//! | [`Reply::refuse`] | Envoy's local reply 503, flag UF, details `upstream_reset_before_response_started{connection_failure}` | a synthesized 503 with the same body |
//! | [`Reply::reset`] | local reply 503, flag UR, details `upstream_reset_before_response_started{remote_reset}` | a synthesized 503 with that body |
//! | [`Reply::timeout`] (or any reply later than the timeout) | local reply 504, flag UT, details `upstream_response_timeout`, body `upstream request timeout` | a synthesized 504 at the call's timeout; never, if the call had no timeout |
//! | [`Reply::reset_after_headers`] | the upstream headers; then, if the filter let them pass, a reset of the client's stream with flag UR, details `upstream_reset_after_response_started{remote_reset}`; if the filter held them, Envoy's own 503 (same flag and details) straight to the client, past the filter (see below) | `proxy_on_http_call_response` with 0 headers, 0 body; `get_status` says 11 (`BrokenConnection`), `reset` |
//! | [`Reply::reset_mid_body`] | the upstream headers (and, if the filter let them pass, half the body); then, if they went to the client, a reset with flag UPE, details `upstream_reset_after_response_started{protocol_error}`; if the filter held them, Envoy's own 502 straight to the client, past the filter (see below) | at the reset, `proxy_on_http_call_response` with 0 headers, 0 body, `get_status` 11, `reset`, as above |
//!
//! # An upstream that resets after its head
//! [`Reply::reset_after_headers`] and [`Reply::reset_mid_body`] are upstreams that send their
//! head and then reset: the first at once, with a stream reset (`RemoteReset`); the second after
//! the first half of the body (the head announcing the whole body's `content-length`), by
//! resetting the connection, what Envoy's HTTP/1 codec calls a protocol error. The router's
//! `Filter::onUpstreamReset` (`source/common/router/router.cc`) answers both through
//! `Filter::onUpstreamAbort`, that is `sendLocalReply` with:
//!
//! | reply | status | flag | details |
//! | --- | --- | --- | --- |
//! | [`Reply::reset_after_headers`] | 503 (`ServiceUnavailable`: every reset but a protocol error) | UR (`UpstreamRemoteReset`, bit 4) | `upstream_reset_after_response_started{remote_reset}` |
//! | [`Reply::reset_mid_body`] | 502 (`BadGateway`: `reset_reason == ProtocolError`) | UPE (`UpstreamProtocolError`, bit 23) | `upstream_reset_after_response_started{protocol_error}` |
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
//! that wants that case uses [`Reply::reset_mid_body`] (the filter sees the same either way).
//!
//! A dispatched call's response is buffered whole by the `AsyncClient`, so a call that meets
//! either reply comes back as a reset call when the upstream resets.
//!
//! The bodies are Envoy's: `upstream connect error or disconnect/reset before headers. reset
//! reason: connection failure` (or `remote reset`), and `upstream request timeout`. A response
//! that really came from the upstream carries the router's `x-envoy-upstream-service-time` on
//! both paths; Envoy's own replies never do (see [`UPSTREAM_SERVICE_TIME`]).

use crate::observe::{StreamId, VmId};
use crate::HeaderMap;
use std::time::Duration;

/// What an upstream answers one request. Build with [`Reply::status`] (or [`Reply::ok`]) and
/// the builder methods, or one of the failures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub(crate) kind: ReplyKind,
    pub(crate) delay: Duration,
    /// Answers once the request headers arrive, not once the whole request did
    /// ([`Reply::early`]).
    pub(crate) early: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ReplyKind {
    Respond {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        trailers: Vec<(String, String)>,
        cut: Option<Cut>,
    },
    Reset,
    Refuse,
    Timeout,
}

/// How a response the upstream began is cut short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cut {
    /// [`Reply::reset_after_headers`]: a stream reset (remote reset) right after the headers.
    AfterHeaders,
    /// [`Reply::reset_mid_body`]: half the body, then a reset (protocol error) `after` the head.
    MidBody { after: Duration },
}

impl Cut {
    /// The time from the head to the reset.
    pub fn after(self) -> Duration {
        match self {
            Cut::AfterHeaders => Duration::ZERO,
            Cut::MidBody { after } => after,
        }
    }

    /// What Envoy's router makes of the reset (`Filter::onUpstreamReset`).
    pub fn failure(self) -> UpstreamFailure {
        match self {
            Cut::AfterHeaders => UpstreamFailure::ResetAfterHeaders,
            Cut::MidBody { .. } => UpstreamFailure::MidBodyReset,
        }
    }

    /// The body the head announces, given the script's.
    pub fn announced(self, body: Vec<u8>) -> Vec<u8> {
        match self {
            Cut::MidBody { .. } if body.is_empty() => vec![b'x'; MID_BODY_DEFAULT_LEN],
            _ => body,
        }
    }

    /// How many bytes of an announced body of `len` come before the reset.
    pub fn sent(self, len: usize) -> usize {
        match self {
            Cut::AfterHeaders => 0,
            Cut::MidBody { .. } => len / 2,
        }
    }
}

/// The body [`Reply::reset_mid_body`] announces when the script sets none (its first half is
/// sent), as in `envoy/tests/faults/mid_body.rs`.
pub const MID_BODY_DEFAULT_LEN: usize = 2048;

impl Reply {
    /// A response with this status, no headers, no body, at once.
    pub fn status(status: u16) -> Self {
        Reply {
            kind: ReplyKind::Respond {
                status,
                headers: Vec::new(),
                body: Vec::new(),
                trailers: Vec::new(),
                cut: None,
            },
            delay: Duration::ZERO,
            early: false,
        }
    }

    /// `Reply::status(200)`.
    pub fn ok() -> Self {
        Self::status(200)
    }

    /// The upstream resets the stream before sending response headers.
    pub fn reset() -> Self {
        Self::failure(ReplyKind::Reset)
    }

    /// The connection to the upstream is refused. Always early (see [`Reply::early`]): the
    /// router learns it from the connection pool while the request body may still be coming.
    pub fn refuse() -> Self {
        Self::failure(ReplyKind::Refuse).early()
    }

    /// The upstream never answers; the route's (or the call's) timeout decides what happens.
    pub fn timeout() -> Self {
        Self::failure(ReplyKind::Timeout)
    }

    fn failure(kind: ReplyKind) -> Self {
        Reply {
            kind,
            delay: Duration::ZERO,
            early: false,
        }
    }

    /// Adds a response header (ignored on failures).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        if let ReplyKind::Respond { headers, .. } = &mut self.kind {
            headers.push((name.to_ascii_lowercase(), value.to_string()));
        }
        self
    }

    /// Sets the response body (ignored on failures).
    pub fn body(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        if let ReplyKind::Respond { body, .. } = &mut self.kind {
            *body = bytes.into();
        }
        self
    }

    /// Adds a response trailer (ignored on failures).
    pub fn trailer(mut self, name: &str, value: &str) -> Self {
        if let ReplyKind::Respond { trailers, .. } = &mut self.kind {
            trailers.push((name.to_ascii_lowercase(), value.to_string()));
        }
        self
    }

    /// Sends the headers (a body set on the reply is announced by `content-length`, never
    /// sent), then resets the stream instead of finishing the response: Envoy's late reset with
    /// flag UR, a reset of the client's stream if the filter let the head pass, else Envoy's own
    /// 503 (see the module docs). Trailers are never sent.
    pub fn reset_after_headers(mut self) -> Self {
        if let ReplyKind::Respond { cut, .. } = &mut self.kind {
            *cut = Some(Cut::AfterHeaders);
        }
        self
    }

    /// Sends the head (its `content-length` announcing the whole body) and the first half of
    /// the body, then resets the connection at once: Envoy's late reset with flag UPE (see the
    /// module docs for what the filter and the client see). A reply without a body announces
    /// [`MID_BODY_DEFAULT_LEN`] bytes. Trailers are never sent.
    pub fn reset_mid_body(self) -> Self {
        self.reset_mid_body_after(Duration::ZERO)
    }

    /// [`Reply::reset_mid_body`], with the reset `after` the head: meanwhile the response is
    /// open (a filter that holds the head can act on it; a filter that let it pass has sent the
    /// half body on to the client). Envoy's route timeout is not applied once the head came (as
    /// for every started response here).
    pub fn reset_mid_body_after(mut self, after: Duration) -> Self {
        if let ReplyKind::Respond { cut, .. } = &mut self.kind {
            *cut = Some(Cut::MidBody { after });
        }
        self
    }

    /// Answers (or fails) this long after the request reached the upstream: after its end of
    /// stream, or after its headers for an [`Reply::early`] reply.
    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Answers as soon as the request headers reach the upstream (plus [`Reply::after`]),
    /// without waiting for the request body to end, like a server that rejects a request on its
    /// headers. A request sent whole (`.body(..)`) sees no difference. For a streamed body (see
    /// the module docs): the response carries no `x-envoy-upstream-service-time` if it came
    /// before the request ended, and once it is complete the router stops sending the request
    /// upstream and Envoy drops the rest of the request body. A dispatched call is sent whole,
    /// so `early` changes nothing for it. `Reply::timeout().early()` is a plain timeout.
    pub fn early(mut self) -> Self {
        self.early = true;
        self
    }

    /// Replies in order, the last one repeating once the others are used.
    pub fn sequence(replies: impl IntoIterator<Item = Reply>) -> Sequence {
        Sequence {
            replies: replies.into_iter().collect(),
            next: 0,
        }
    }
}

/// A scripted upstream: called once per request that reaches the cluster.
pub trait UpstreamScript: 'static {
    fn reply(&mut self, request: &UpstreamRequest) -> Reply;
}

impl<F: FnMut(&UpstreamRequest) -> Reply + 'static> UpstreamScript for F {
    fn reply(&mut self, request: &UpstreamRequest) -> Reply {
        self(request)
    }
}

impl UpstreamScript for Reply {
    fn reply(&mut self, _: &UpstreamRequest) -> Reply {
        self.clone()
    }
}

/// Replies in order; see [`Reply::sequence`].
#[derive(Debug, Clone)]
pub struct Sequence {
    replies: Vec<Reply>,
    next: usize,
}

impl UpstreamScript for Sequence {
    fn reply(&mut self, _: &UpstreamRequest) -> Reply {
        let index = self.next.min(self.replies.len().saturating_sub(1));
        self.next += 1;
        self.replies
            .get(index)
            .cloned()
            .unwrap_or_else(|| Reply::status(200))
    }
}

/// How a request reached the upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptKind {
    /// A downstream request the filter let through.
    Stream { stream: StreamId, worker: usize },
    /// A call the filter dispatched (`proxy_http_call`).
    Call {
        vm: VmId,
        token: u32,
        /// The call's timeout; `None` when the filter passed 0.
        timeout: Option<Duration>,
    },
}

/// A request as the upstream received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamRequest {
    pub cluster: String,
    pub kind: AttemptKind,
    /// Virtual time its headers reached the upstream.
    pub at: Duration,
    pub headers: HeaderMap,
    /// The body bytes the upstream received. For a streamed request body this grows as chunks
    /// pass the filter; the script sees the bytes that had arrived when it was asked.
    pub body: Vec<u8>,
    pub trailers: HeaderMap,
    /// The whole request reached the upstream: its end of stream (last body chunk or trailers)
    /// got through. False while the body is still streaming, and for good when the router
    /// stopped sending it (the upstream answered early, or the stream ended first).
    pub complete: bool,
    /// 1 for the cluster's first request, 2 for its second, and so on.
    pub number: usize,
}

impl UpstreamRequest {
    /// A request header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }

    /// `:method`.
    pub fn method(&self) -> &str {
        self.headers.get(":method").unwrap_or_default()
    }

    /// `:path`.
    pub fn path(&self) -> &str {
        self.headers.get(":path").unwrap_or_default()
    }
}

/// One request that reached an upstream, with what the script answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub request: UpstreamRequest,
    pub reply: Reply,
    /// Whether the answer reached Envoy; false if the client or the filter gave up first.
    pub delivered: bool,
}

/// An HTTP message as Envoy hands it around: headers (with pseudo-headers), body, trailers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Message {
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub trailers: HeaderMap,
}

/// The upstream failures Envoy turns into its own replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UpstreamFailure {
    Refused,
    Reset,
    Timeout,
    /// A remote reset after the response started ([`Reply::reset_after_headers`]).
    ResetAfterHeaders,
    /// A reset after the response started, which the codec reports as a protocol error
    /// ([`Reply::reset_mid_body`]).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sequence_repeats_its_last_reply() {
        let mut seq = Reply::sequence([Reply::status(503), Reply::ok()]);
        let req = UpstreamRequest {
            cluster: "c".into(),
            kind: AttemptKind::Stream {
                stream: StreamId(0),
                worker: 0,
            },
            at: Duration::ZERO,
            headers: HeaderMap::new(),
            body: Vec::new(),
            trailers: HeaderMap::new(),
            complete: true,
            number: 1,
        };
        let statuses: Vec<ReplyKind> = (0..3).map(|_| seq.reply(&req).kind).collect();
        assert_eq!(statuses[0], Reply::status(503).kind);
        assert_eq!(statuses[1], Reply::ok().kind);
        assert_eq!(statuses[2], Reply::ok().kind, "the last reply repeats");
    }
}
