//! [`RequestBuilder`]: a downstream request to one worker.
//!
//! The request reaches the filter as Envoy's connection manager hands it over: pseudo-headers
//! `:method`, `:path`, `:authority`, `:scheme` first, then the test's headers (names
//! lower-cased), then `x-forwarded-proto` and a generated `x-request-id` (unless given), the
//! two headers Envoy adds to every request.
//!
//! The body comes whole with the headers ([`RequestBuilder::body`]) or in chunks over virtual
//! time ([`RequestBuilder::body_chunk`], [`RequestBuilder::stream_body`],
//! [`RequestBuilder::end_stream_after`]), the way a client uploads it: each chunk reaches the
//! filter in its own `on_http_request_body`, `end_of_stream` on the last (see the `stream`
//! module docs for what Envoy does with chunks that come after the response).

use crate::error::Failure;
use crate::events::EventKind;
use crate::headers::Message;
use crate::observe::StreamId;
use crate::state::{arrivals, Feed, Info, Stream};
use crate::world::World;
use crate::HeaderMap;
use rand::Rng;
use std::time::Duration;

/// Describes one request; finish with [`RequestBuilder::send`] or [`RequestBuilder::enqueue`].
pub struct RequestBuilder<'w> {
    world: &'w mut World,
    worker: usize,
    method: String,
    path: String,
    authority: String,
    scheme: String,
    headers: Vec<(String, Vec<u8>)>,
    /// Body chunks and when they arrive, measured from the headers.
    chunks: Vec<(Duration, Vec<u8>)>,
    end_after: Option<Duration>,
    trailers: Vec<(String, String)>,
    cluster: Option<String>,
    route: String,
    timeout: Option<Option<Duration>>,
    delay: Duration,
    disconnect_after: Option<Duration>,
}

impl<'w> RequestBuilder<'w> {
    pub(crate) fn new(world: &'w mut World, worker: usize) -> Self {
        RequestBuilder {
            world,
            worker,
            method: "GET".into(),
            path: "/".into(),
            authority: "breakwater.test".into(),
            scheme: "http".into(),
            headers: Vec::new(),
            chunks: Vec::new(),
            end_after: None,
            trailers: Vec::new(),
            cluster: None,
            route: String::new(),
            timeout: None,
            delay: Duration::ZERO,
            disconnect_after: None,
        }
    }

    /// `:method` (default `GET`).
    pub fn method(mut self, method: &str) -> Self {
        self.method = method.into();
        self
    }

    /// `:path` (default `/`).
    pub fn path(mut self, path: &str) -> Self {
        self.path = path.into();
        self
    }

    /// `:authority` (default `breakwater.test`).
    pub fn authority(mut self, authority: &str) -> Self {
        self.authority = authority.into();
        self
    }

    /// `:scheme` (default `http`).
    pub fn scheme(mut self, scheme: &str) -> Self {
        self.scheme = scheme.into();
        self
    }

    /// Adds a request header.
    pub fn header(self, name: &str, value: &str) -> Self {
        self.header_bytes(name, value.as_bytes())
    }

    /// Adds a request header whose value may be any bytes, such as obs-text (0x80–0xFF), which
    /// Envoy accepts and hands to the filter as is (see [`HeaderMap`]).
    pub fn header_bytes(mut self, name: &str, value: &[u8]) -> Self {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_vec()));
        self
    }

    /// The whole request body, arriving with the headers (one body callback, `end_of_stream`
    /// set unless trailers follow). Replaces any chunks given before; an empty body means none.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        let body = body.into();
        self.chunks.clear();
        if !body.is_empty() {
            self.chunks.push((Duration::ZERO, body));
        }
        self
    }

    /// Adds a body chunk that reaches Envoy `after` the request headers. Chunks must be given in
    /// time order; the last one carries `end_of_stream` unless [`RequestBuilder::end_stream_after`]
    /// or trailers say otherwise. A chunk at zero comes with the headers.
    pub fn body_chunk(mut self, after: Duration, bytes: impl Into<Vec<u8>>) -> Self {
        self.chunks.push((after, bytes.into()));
        self
    }

    /// Adds body chunks, each `(after the headers, bytes)`; see [`RequestBuilder::body_chunk`].
    pub fn body_chunks<B: Into<Vec<u8>>>(
        mut self,
        chunks: impl IntoIterator<Item = (Duration, B)>,
    ) -> Self {
        self.chunks
            .extend(chunks.into_iter().map(|(after, b)| (after, b.into())));
        self
    }

    /// The body as `chunks` sent one `every` apart, the first `every` after the headers (so the
    /// headers come alone): chunk `i` arrives at `(i + 1) · every`.
    pub fn stream_body<B: Into<Vec<u8>>>(
        mut self,
        chunks: impl IntoIterator<Item = B>,
        every: Duration,
    ) -> Self {
        let start = self.chunks.last().map_or(Duration::ZERO, |(at, _)| *at);
        for (i, chunk) in chunks.into_iter().enumerate() {
            let n = u32::try_from(i + 1).unwrap_or(u32::MAX);
            self.chunks.push((start + every * n, chunk.into()));
        }
        self
    }

    /// The request ends `after` the headers, on its own: an empty last body chunk with
    /// `end_of_stream` (`on_http_request_body(0, true)`), or the trailers if there are any,
    /// instead of the end riding on the last chunk. Must not come before the last chunk.
    pub fn end_stream_after(mut self, after: Duration) -> Self {
        self.end_after = Some(after);
        self
    }

    /// Adds a request trailer; the trailers come with the request's end.
    pub fn trailer(mut self, name: &str, value: &str) -> Self {
        self.trailers
            .push((name.to_ascii_lowercase(), value.into()));
        self
    }

    /// The cluster the route sends this request to (property `xds.cluster_name`). Required.
    pub fn cluster(mut self, cluster: &str) -> Self {
        self.cluster = Some(cluster.into());
        self
    }

    /// The route's name (property `xds.route_name`; default empty).
    pub fn route(mut self, route: &str) -> Self {
        self.route = route.into();
        self
    }

    /// This request's route timeout (default: the world's, 15 s unless changed).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(Some(timeout));
        self
    }

    /// No route timeout for this request.
    pub fn no_timeout(mut self) -> Self {
        self.timeout = Some(None);
        self
    }

    /// Arrives `delay` from now instead of now.
    pub fn at(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// The client disconnects `after` the request arrived.
    pub fn disconnect_after(mut self, after: Duration) -> Self {
        self.disconnect_after = Some(after);
        self
    }

    /// Schedules the request without running anything; use it to let several requests arrive
    /// at the same instant, then [`World::settle`] or [`World::advance`].
    #[track_caller]
    pub fn enqueue(self) -> StreamId {
        self.submit().0
    }

    /// Schedules the request and runs everything due now: the filter sees the request at once
    /// (unless it arrives later, see [`RequestBuilder::at`]).
    #[track_caller]
    pub fn send(self) -> StreamId {
        match self.try_send() {
            Ok(id) => id,
            Err(failure) => panic!("{failure}"),
        }
    }

    /// [`RequestBuilder::send`], returning the failure if the module trapped.
    #[track_caller]
    pub fn try_send(self) -> Result<StreamId, Failure> {
        let (id, world) = self.submit();
        world.try_settle()?;
        Ok(id)
    }

    #[track_caller]
    fn submit(self) -> (StreamId, &'w mut World) {
        let Some(slot) = self.world.worker_slot(self.worker) else {
            panic!(
                "worker {} does not exist: the world has {} workers",
                self.worker,
                self.world.workers()
            );
        };
        let Some(cluster) = self.cluster else {
            panic!("the request needs a cluster: call .cluster(\"name\")");
        };
        let arrivals = match arrivals(self.chunks, self.end_after, !self.trailers.is_empty()) {
            Ok(arrivals) => arrivals,
            Err(problem) => panic!("request body: {problem}"),
        };
        let world = self.world;
        let mut state = world.core().state.borrow_mut();
        let id = StreamId(state.streams.len());
        let mut headers = HeaderMap::new();
        headers.add(":method", &self.method);
        headers.add(":path", &self.path);
        headers.add(":authority", &self.authority);
        headers.add(":scheme", &self.scheme);
        for (name, value) in &self.headers {
            headers.add_bytes(name, value);
        }
        if headers.get("x-forwarded-proto").is_none() {
            headers.add("x-forwarded-proto", &self.scheme);
        }
        if headers.get("x-request-id").is_none() {
            let id = request_id(state.rng.next_u64(), state.rng.next_u64());
            headers.add("x-request-id", &id);
        }
        let message = Message {
            headers,
            body: Vec::new(),
            trailers: self.trailers.iter().collect(),
        };
        let later: Vec<(usize, Duration)> = arrivals
            .iter()
            .enumerate()
            .filter(|(_, a)| !a.after.is_zero())
            .map(|(i, a)| (i, a.after))
            .collect();
        let feed = Feed::new(arrivals, !self.trailers.is_empty());
        let info = Info {
            cluster,
            route: self.route,
            ..Info::default()
        };
        let mut stream = Stream::new(id, (self.worker, slot), message, feed, info);
        stream.route_timeout = self.timeout.unwrap_or(state.settings.route_timeout);
        state.streams.push(stream);
        let at = state.now + self.delay;
        state.events.push(at, slot, EventKind::Arrive(id));
        for (index, after) in later {
            state.events.push(
                at + after,
                slot,
                EventKind::RequestChunk { stream: id, index },
            );
        }
        if let Some(after) = self.disconnect_after {
            state
                .events
                .push(at + after, slot, EventKind::Disconnect(id));
        }
        drop(state);
        (id, world)
    }
}

/// An x-request-id in UUID form.
fn request_id(a: u64, b: u64) -> String {
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        (b >> 48) | 0x8000,
        b & 0xffff_ffff_ffff
    )
}
