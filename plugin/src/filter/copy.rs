//! The copy of a request kept for its retries: the bytes the client sent, and whether it has
//! sent them all.
//!
//! # Complete or nothing
//! A retry must carry exactly what the client sent. The copy is [`complete`](RequestCopy::complete)
//! once the client ended its stream (`end_of_stream` on the headers or on a body chunk, or
//! trailers). The upstream (or Envoy itself: no healthy host, an overflowing connection pool) may
//! answer before that, and Envoy then passes no more of the body to the filters, so a request
//! answered before its copy is complete is not retried. A copy that would outgrow
//! `max_request_body` or the worker's byte budget is dropped whole, never cut: the request is
//! then no longer retried, and [`Dropped`] says why.
//!
//! # What is counted
//! The budget counts what the copy allocates, not only what it holds: the headers and trailers,
//! and the body buffer's capacity. The buffer grows as bytes arrive, by doubling, never past an
//! announced `content-length` nor `max_request_body`, and each growth is counted before it is
//! made; so an upload that announces a large body and sends nothing costs nothing, and the
//! copies' buffers never pass the budget. Allocations that fail drop the copy instead of
//! aborting: a full VM costs a retry, never the worker.
//!
//! # Bytes as received
//! Headers and trailers are kept in the host's serialized layout ([`Pairs`]), as the host wrote
//! them. The SDK dispatches only UTF-8 names and values (see [`super::outbound`]), so a request
//! with any other header bytes is not kept: it is forwarded untouched and never replayed altered.

use crate::core::outcome::grpc::is_grpc_content_type;
use crate::core::pairs::Pairs;

use super::memory::Lease;

/// Why a request's copy was given up (the retry that would need it is skipped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropped {
    /// The body outgrew `max_request_body` (announced by `content-length`, or as it streamed).
    BodyTooLarge,
    /// Keeping it would take the worker past its byte budget.
    Memory,
    /// The host would not hand over a body chunk: the copy could not be exact.
    Unreadable,
    /// A header or trailer name or value is not UTF-8, which a dispatch cannot send.
    NotUtf8,
    /// A gRPC request: its retried response could not be relayed intact (Envoy turns a local
    /// reply to a gRPC request into a trailers-only error).
    Grpc,
    /// A HEAD request: a relayed response to it would lose its `content-length` (Envoy's local
    /// reply without a body drops it), which is what a HEAD asks for.
    Head,
    /// The attempt was answered before the client's body ended; Envoy then passes no more of the
    /// body to the filters, so the copy can never be completed.
    Incomplete,
}

/// The bounds of a copy: `max_request_body`, and the worker's `max_worker_buffer`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub body: u64,
    pub worker: u64,
}

/// What the request's headers say, read in one pass over them (each lookup in a header map is a
/// scan of it, and this runs on every request): whether the filter must strip headers, whether
/// it is gRPC, and what matters for replaying it.
#[derive(Debug, Default)]
pub struct Shape<'a> {
    pub method: Option<&'a str>,
    /// The policy's idempotency header is present.
    pub keyed: bool,
    /// An `upgrade` header: the request asks for a tunnel (websocket, h2c).
    pub upgrade: bool,
    /// A gRPC call as Envoy decides it (`application/grpc`, or `+` a codec): judged by its
    /// gRPC status, answered with a gRPC fallback.
    pub grpc: bool,
    /// Any `content-type: application/grpc…` (gRPC-Web included): never kept for a retry.
    pub grpc_family: bool,
    /// `content-length`, when present and a number.
    pub length: Option<u64>,
    /// Some name starts with `x-breakwater-`: a client trying to steer the filter (the headers
    /// are removed before the request goes on).
    pub steered: bool,
}

impl<'a> Shape<'a> {
    pub fn of(headers: &'a Pairs, idempotency_header: Option<&str>) -> Shape<'a> {
        let key = idempotency_header.map(str::as_bytes);
        let mut shape = Shape::default();
        for (name, value) in headers.iter() {
            shape.keyed |= Some(name) == key;
            match name {
                b":method" => shape.method = std::str::from_utf8(value).ok(),
                b"upgrade" => shape.upgrade = true,
                b"content-type" => {
                    shape.grpc = is_grpc_content_type(value);
                    shape.grpc_family = value.starts_with(b"application/grpc");
                }
                b"content-length" => {
                    shape.length = std::str::from_utf8(value)
                        .ok()
                        .and_then(|t| t.trim().parse().ok());
                }
                _ => shape.steered |= name.starts_with(b"x-breakwater-"),
            }
        }
        shape
    }
}

/// The bytes of a retry-eligible request, replayed by each retry.
#[derive(Debug)]
pub struct RequestCopy {
    /// The request headers as the host serialized them when the request arrived.
    pub headers: Pairs,
    pub body: Vec<u8>,
    /// Serialized like `headers`; empty without trailers.
    pub trailers: Pairs,
    /// The client's stream has ended: the copy holds every byte it sent.
    pub complete: bool,
    /// The most the body may hold: `max_request_body`, or an announced length within it.
    max_body: u64,
    worker_limit: u64,
    /// What the copy allocated (headers, trailers, the body's capacity), against the worker's
    /// budget.
    lease: Lease,
}

impl RequestCopy {
    /// Starts a copy with the request's headers; `complete` when the headers ended the stream.
    /// A `content-length` over `max_body` gives the copy up at once, before any byte is held; one
    /// within it bounds the buffer. `length` is the announced `content-length` (see [`Shape`]).
    pub fn start(
        headers: Pairs,
        length: Option<u64>,
        complete: bool,
        limits: Limits,
    ) -> Result<RequestCopy, Dropped> {
        let Limits {
            body: max_body,
            worker: worker_limit,
        } = limits;
        if length.is_some_and(|length| length > max_body) {
            return Err(Dropped::BodyTooLarge);
        }
        if !headers.is_utf8() {
            return Err(Dropped::NotUtf8);
        }
        let size = headers.as_bytes().len() as u64;
        let lease = Lease::take(size, worker_limit).ok_or(Dropped::Memory)?;
        Ok(RequestCopy {
            headers,
            body: Vec::new(),
            trailers: Pairs::default(),
            complete,
            // The buffer never grows past an announced length (within `max_body`, checked above).
            max_body: length.unwrap_or(max_body),
            worker_limit,
            lease,
        })
    }

    /// The capacity the body buffer needs to take `size` more bytes: as it is if they fit,
    /// else doubled (the usual amortized growth), but never past `max_request_body`.
    fn capacity_for(&self, size: usize) -> usize {
        let needed = self.body.len().saturating_add(size);
        let capacity = self.body.capacity();
        if needed <= capacity {
            return capacity;
        }
        let ceiling = usize::try_from(self.max_body).unwrap_or(usize::MAX);
        needed.max(capacity.saturating_mul(2).min(ceiling))
    }

    /// Whether a chunk of `size` bytes still fits: the body under `max_request_body`, the worker
    /// under its budget with whatever the buffer must grow by. A chunk that does not fit means
    /// the copy must be dropped.
    pub fn room_for(&self, size: usize) -> Result<(), Dropped> {
        let body = self.body.len().saturating_add(size) as u64;
        if body > self.max_body {
            return Err(Dropped::BodyTooLarge);
        }
        let growth = (self.capacity_for(size) - self.body.capacity()) as u64;
        if super::memory::held().saturating_add(growth) > self.worker_limit {
            return Err(Dropped::Memory);
        }
        Ok(())
    }

    /// Appends a body chunk; `end` when it ended the client's stream.
    pub fn add_body(&mut self, chunk: &[u8], end: bool) -> Result<(), Dropped> {
        self.room_for(chunk.len())?;
        let capacity = self.capacity_for(chunk.len());
        let growth = capacity - self.body.capacity();
        if growth > 0 {
            if !self.lease.grow(growth as u64, self.worker_limit) {
                return Err(Dropped::Memory);
            }
            self.body
                .try_reserve_exact(capacity - self.body.len())
                .map_err(|_| Dropped::Memory)?;
        }
        self.body.extend_from_slice(chunk);
        self.complete |= end;
        Ok(())
    }

    /// The request's trailers: they end the client's stream.
    pub fn add_trailers(&mut self, trailers: Pairs) -> Result<(), Dropped> {
        if !trailers.is_utf8() {
            return Err(Dropped::NotUtf8);
        }
        if !self
            .lease
            .grow(trailers.as_bytes().len() as u64, self.worker_limit)
        {
            return Err(Dropped::Memory);
        }
        self.trailers = trailers;
        self.complete = true;
        Ok(())
    }
}
