//! The copy of a request kept for its retries: the bytes the client sent, and whether it has
//! sent them all.
//!
//! # Complete or nothing
//! A retry must carry exactly what the client sent. The upstream (or Envoy itself: no healthy
//! host, an overflowing connection pool) may answer before the request body has ended, and the
//! client's chunks keep arriving after that answer, so the copy keeps growing while a retry
//! waits, and a retry is only sent once the copy is [`complete`](RequestCopy::complete): the
//! client ended its stream (`end_of_stream` on the headers, on a body chunk, or trailers). A copy
//! that would outgrow `max_request_body` or the worker's byte budget is dropped whole, never cut:
//! the request is then no longer retried, and [`Dropped`] says why.
//!
//! # What the budget counts
//! The body's buffer as the VM allocates it, leased before it is allocated: an announced
//! `content-length` at once (so many uploads that announce large bodies cannot reserve past the
//! VM's memory before their bytes arrive), a streamed body as its buffer doubles. Allocations
//! that fail drop the copy instead of aborting, so a full VM costs a retry, never the worker.
//!
//! # Bytes as received
//! Headers and trailers are kept in the host's serialized layout ([`Pairs`]), as the host wrote
//! them. The SDK dispatches only UTF-8 names and values (see [`super::outbound`]), so a request
//! with any other header bytes is not kept: it is forwarded untouched and never replayed altered.

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
    /// Envoy answered the request itself before its body ended, and then stops passing the rest
    /// of the body to the filters: the copy can never be completed.
    Incomplete,
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
    /// Limits, from the request's retry policy and the worker.
    max_body: u64,
    worker_limit: u64,
    /// The bytes above, held against the worker's budget.
    lease: Lease,
}

impl RequestCopy {
    /// Starts a copy with the request's headers; `complete` when the headers ended the stream.
    /// A `content-length` over `max_body` gives the copy up at once, before any byte is held.
    pub fn start(
        headers: Pairs,
        complete: bool,
        max_body: u64,
        worker_limit: u64,
    ) -> Result<RequestCopy, Dropped> {
        let announced = headers
            .get("content-length")
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if announced.is_some_and(|length| length > max_body) {
            return Err(Dropped::BodyTooLarge);
        }
        if !headers.is_utf8() {
            return Err(Dropped::NotUtf8);
        }
        // An announced length is reserved at once and leased with the headers: the buffer then
        // never reallocates on its way there, and the budget counts what the VM allocates, not
        // only what has arrived (concurrent uploads announcing 16 MiB each would otherwise
        // reserve past the VM's memory before their bodies come).
        let reserved = announced.unwrap_or(0);
        let size = (headers.as_bytes().len() as u64).saturating_add(reserved);
        let lease = Lease::take(size, worker_limit).ok_or(Dropped::Memory)?;
        let mut body = Vec::new();
        body.try_reserve_exact(usize::try_from(reserved).unwrap_or(usize::MAX))
            .map_err(|_| Dropped::Memory)?;
        Ok(RequestCopy {
            headers,
            body,
            trailers: Pairs::default(),
            complete,
            max_body,
            worker_limit,
            lease,
        })
    }

    /// Whether a chunk of `size` bytes still fits: the body under `max_request_body`, the worker
    /// under its budget. A chunk that does not fit means the copy must be dropped.
    pub fn room_for(&self, size: usize) -> Result<(), Dropped> {
        let growth = self.growth(size)?;
        let held = super::memory::held().saturating_add(growth as u64);
        if held > self.worker_limit {
            return Err(Dropped::Memory);
        }
        Ok(())
    }

    /// Appends a body chunk that [`room_for`](Self::room_for) accepted; `end` when it ended the
    /// client's stream.
    pub fn add_body(&mut self, chunk: &[u8], end: bool) -> Result<(), Dropped> {
        let growth = self.growth(chunk.len())?;
        if growth > 0 {
            // Leased before it is allocated, and allocated without aborting: a VM that cannot
            // grow its memory drops this copy instead of trapping.
            if !self.lease.grow(growth as u64, self.worker_limit) {
                return Err(Dropped::Memory);
            }
            let capacity = self.body.capacity() + growth;
            self.body
                .try_reserve_exact(capacity - self.body.len())
                .map_err(|_| Dropped::Memory)?;
        }
        self.body.extend_from_slice(chunk);
        self.complete |= end;
        Ok(())
    }

    /// By how many bytes the body's buffer must grow to take `size` more; `BodyTooLarge` past
    /// `max_request_body`. A body without an announced length grows by doubling (few copies for
    /// a streamed upload), never past `max_request_body`; the lease always covers the whole
    /// buffer.
    fn growth(&self, size: usize) -> Result<usize, Dropped> {
        let needed = self.body.len().saturating_add(size);
        if needed as u64 > self.max_body {
            return Err(Dropped::BodyTooLarge);
        }
        let capacity = self.body.capacity();
        if needed <= capacity {
            return Ok(0);
        }
        let max = usize::try_from(self.max_body).unwrap_or(usize::MAX);
        let doubled = capacity.saturating_mul(2).min(max);
        Ok(needed.max(doubled) - capacity)
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
