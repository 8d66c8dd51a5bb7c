//! The script language: how a test says what an upstream cluster answers.
//!
//! A cluster's script ([`UpstreamScript`]) is asked once per request that reaches the cluster,
//! with the request as the upstream received it ([`UpstreamRequest`]), and answers a [`Reply`]:
//! a response (status, headers, body, trailers, after a delay), a failure (refused connection,
//! reset, timeout), or a response cut short after its head. A [`Reply`] answers every request
//! the same way, a [`Sequence`] answers in order, a closure decides per request.
//!
//! The language says only what the upstream does. What Envoy then makes of it (its own replies,
//! flags and details) is [`super::envoy`]; what the harness keeps of each request and answer is
//! [`super::attempt`]. Keeping them apart lets a test script an upstream without knowing how
//! Envoy reports its failures, and lets the failure model be read (and checked against Envoy)
//! on its own.

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
    /// 503 (see [`super::envoy`]). Trailers are never sent.
    pub fn reset_after_headers(mut self) -> Self {
        if let ReplyKind::Respond { cut, .. } = &mut self.kind {
            *cut = Some(Cut::AfterHeaders);
        }
        self
    }

    /// Sends the head (its `content-length` announcing the whole body) and the first half of
    /// the body, then resets the connection at once: Envoy's late reset with flag UPE (see
    /// [`super::envoy`] for what the filter and the client see). A reply without a body announces
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
    /// A bare request as unit tests need one: the `number`th to `cluster`, from stream 0, no
    /// headers, complete.
    #[cfg(test)]
    pub(crate) fn bare(cluster: &str, number: usize) -> UpstreamRequest {
        UpstreamRequest {
            cluster: cluster.into(),
            kind: AttemptKind::Stream {
                stream: StreamId(0),
                worker: 0,
            },
            at: Duration::ZERO,
            headers: HeaderMap::new(),
            body: Vec::new(),
            trailers: HeaderMap::new(),
            complete: true,
            number,
        }
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sequence_repeats_its_last_reply() {
        let mut seq = Reply::sequence([Reply::status(503), Reply::ok()]);
        let req = UpstreamRequest::bare("c", 1);
        let statuses: Vec<ReplyKind> = (0..3).map(|_| seq.reply(&req).kind).collect();
        assert_eq!(statuses[0], Reply::status(503).kind);
        assert_eq!(statuses[1], Reply::ok().kind);
        assert_eq!(statuses[2], Reply::ok().kind, "the last reply repeats");
    }
}
