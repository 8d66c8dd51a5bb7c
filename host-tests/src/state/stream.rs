//! A stream's record: the request and response as Envoy holds them, how far each direction got
//! through the filter, Envoy's stream info, and what the stream cost. Only data: how a stream
//! moves is [`crate::stream`].

use super::feed::{Feed, Part, Sent};
use crate::events::EventKey;
use crate::headers::Message;
use crate::local_reply::RequestKind;
use crate::observe::{Callback, Response, Source, StreamId, StreamState};
use crate::upstream::UpstreamFailure;
use std::collections::BTreeMap;
use std::time::Duration;

/// A stream's data and where it is.
pub(crate) struct Stream {
    pub id: StreamId,
    pub worker: usize,
    /// The world slot of the worker's VM.
    pub slot: usize,
    pub ctx: u32,
    pub root: u32,
    pub state: StreamState,
    /// The request as the filter sees it: its headers, the body it is handed (the chunk of the
    /// current body callback, or all it holds), its trailers.
    pub request: Message,
    /// The request's pieces as they reach Envoy over time.
    pub feed: Feed,
    /// What of the request passed the filter on to the router.
    pub sent: Sent,
    pub response: Option<Message>,
    pub info: Info,
    pub req: Flow,
    pub resp: Flow,
    pub ptr: Pointers,
    /// A response reached the filter chain (from the upstream or a local reply).
    pub response_started: bool,
    /// The response headers passed the filter and went to the client.
    pub headers_sent: bool,
    /// The upstream cut its response short ([`crate::Reply::reset_after_headers`],
    /// [`crate::Reply::reset_mid_body`]): no part of it ends the stream, and its reset follows,
    /// which Envoy's router answers as this failure.
    pub cut: Option<UpstreamFailure>,
    pub source: Source,
    /// Whether the request is gRPC or `HEAD`, as its headers reached Envoy
    /// ([`crate::local_reply`]).
    pub kind: RequestKind,
    /// The upstream attempt in flight (an index into the world's attempts).
    pub upstream: Option<usize>,
    /// The attempt the router still sends request bytes to.
    pub sending: Option<usize>,
    /// An early answer's scheduled event, until it comes.
    pub early_answer: Option<EventKey>,
    /// The request headers reached the router, which looked its cluster up
    /// ([`crate::clusters`]).
    pub routed: bool,
    /// The cluster's script was asked (the request headers reached the upstream).
    pub forwarded: bool,
    /// The response's end reached Envoy's filter chain (Envoy's `local_complete_`), even if the
    /// filter holds it: later request chunks are dropped.
    pub response_ended: bool,
    pub route_timeout: Option<Duration>,
    pub result: Option<Response>,
    pub fuel: u64,
    /// Every callback run in this stream's context, in order.
    pub callbacks: Vec<Callback>,
}

/// Envoy's stream info, as properties expose it.
#[derive(Default)]
pub(crate) struct Info {
    pub cluster: String,
    /// The route's cluster did not exist when the request arrived: no upstream cluster info,
    /// so `xds.cluster_name` has no answer ([`crate::clusters`]).
    pub cluster_missing: bool,
    pub route: String,
    pub start: Duration,
    /// The wall clock when the request arrived (`request.time`), in Unix nanoseconds.
    pub start_unix: u64,
    pub end: Option<Duration>,
    pub code: Option<u16>,
    pub details: Option<String>,
    pub flags: u64,
    pub filter_state: BTreeMap<String, Vec<u8>>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Flow {
    /// The response's next part (the request's progress is its [`Feed`]).
    pub next: Part,
    pub paused: bool,
    /// The part whose callback paused the direction.
    pub held: Option<Part>,
    /// A local reply took over: the rest of this direction never reaches the filter.
    pub aborted: bool,
}

impl Flow {
    pub fn start() -> Self {
        Flow {
            next: Part::Headers,
            paused: false,
            held: None,
            aborted: false,
        }
    }
}

/// The maps and buffers Envoy's context can reach right now (see [`crate::abi`]).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Pointers {
    pub req_headers: bool,
    pub req_body: bool,
    pub req_trailers: bool,
    pub resp_headers: bool,
    pub resp_body: bool,
    pub resp_trailers: bool,
    /// `end_of_stream` of the last headers or body callback.
    pub end_of_stream: bool,
    /// `on_log` is running: reads see the final maps.
    pub log_phase: bool,
}

impl Stream {
    pub fn new(
        id: StreamId,
        (worker, slot): (usize, usize),
        request: Message,
        feed: Feed,
        info: Info,
    ) -> Self {
        Stream {
            id,
            worker,
            slot,
            ctx: 0,
            root: 0,
            state: StreamState::Scheduled,
            request,
            feed,
            sent: Sent::default(),
            response: None,
            info,
            req: Flow::start(),
            resp: Flow::start(),
            ptr: Pointers::default(),
            response_started: false,
            headers_sent: false,
            cut: None,
            source: Source::Upstream,
            kind: RequestKind::default(),
            upstream: None,
            sending: None,
            early_answer: None,
            routed: false,
            forwarded: false,
            response_ended: false,
            route_timeout: None,
            result: None,
            fuel: 0,
            callbacks: Vec::new(),
        }
    }

    pub fn finished(&self) -> bool {
        !matches!(self.state, StreamState::Scheduled | StreamState::Open)
    }
}
