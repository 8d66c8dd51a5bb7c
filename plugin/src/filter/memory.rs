//! The worker's byte budget for what it holds on behalf of clients: the copies of requests kept
//! for a retry (headers, body, trailers) and the responses of dispatched retries waiting to be
//! relayed.
//!
//! # Why one budget per worker
//! A VM's linear memory only grows, and a VM that cannot grow traps, which fails every request on
//! that worker. Per-request limits (`max_request_body`) bound one request, not a thousand
//! concurrent uploads; so everything the worker holds for clients is counted in one place, and a
//! request that would take the worker past its budget is simply not kept for a retry (it is still
//! forwarded, untouched).
//!
//! # Leases
//! Bytes are held through a [`Lease`], which gives them back when it is dropped. The counter is a
//! thread-local `Cell` of its own, outside the worker's `RefCell`, so a lease can be dropped
//! anywhere, even while the worker's state is borrowed, and nothing a client does can leave bytes
//! counted after the request is gone.

use std::cell::Cell;

thread_local! {
    static HELD: Cell<u64> = const { Cell::new(0) };
}

/// Bytes this worker holds for clients right now.
pub fn held() -> u64 {
    HELD.with(Cell::get)
}

/// Bytes held against the worker's budget; given back on drop.
#[derive(Debug, Default)]
pub struct Lease {
    bytes: u64,
}

impl Lease {
    /// A lease of `bytes`, if the worker stays within `limit` with them.
    pub fn take(bytes: u64, limit: u64) -> Option<Lease> {
        let mut lease = Lease::default();
        lease.grow(bytes, limit).then_some(lease)
    }

    /// Adds `bytes` to the lease if the worker stays within `limit`; `false` (and nothing taken)
    /// otherwise.
    pub fn grow(&mut self, bytes: u64, limit: u64) -> bool {
        if bytes == 0 {
            // Nothing to hold: fits even when a lowered limit is already passed.
            return true;
        }
        HELD.with(|held| {
            let total = held.get().saturating_add(bytes);
            if total > limit {
                return false;
            }
            held.set(total);
            self.bytes += bytes;
            true
        })
    }
}

impl Lease {
    /// Bytes held by this lease.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let bytes = self.bytes;
        HELD.with(|held| held.set(held.get().saturating_sub(bytes)));
    }
}
