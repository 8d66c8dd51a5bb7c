//! The retry budget: how many retries a cluster may run, counted across all Envoy workers.
//!
//! # Why a budget and not only `max_attempts`
//!
//! `max_attempts` bounds one request, not the load: when an upstream fails everything, three
//! attempts per request triple its traffic exactly when it can least take it (a retry storm). A
//! budget bounds retries relative to real traffic: retries started in the last `window`, pending
//! ones included, may not exceed `ratio × requests in that window + min_per_second × window
//! seconds`. The ratio lets retries grow with traffic (0.2: at most one retry per five requests);
//! the floor lets a quiet service still retry (the first failures of the morning). This is the
//! budget of Finagle and linkerd, and of tower's `retry::budget`.
//!
//! # Window
//!
//! A sliding window of [`BUCKETS`] buckets, each `window / BUCKETS` wide (rounded up, at least
//! 1 ms), aligned to multiples of that width on the host clock. Counts expire a bucket at a time:
//! the window holds the current bucket and the nine before it. Only buckets with counts are
//! stored. The clock never runs backwards inside a budget: a worker whose `now` is behind the
//! newest bucket (another worker wrote in between) counts into that newest bucket.
//!
//! # Shared data
//!
//! One budget per cluster lives in proxy-wasm shared data, so every worker reads, changes and
//! writes it back with a CAS ([`Budget::encode`] / [`Budget::decode`], layout in `codec`). The
//! glue batches its request counts per worker and flushes them with
//! [`Budget::record_requests`]; [`Budget::try_withdraw`] counts a retry as started when it is
//! scheduled (so pending retries count) and [`Budget::refund`] gives it back if it is dropped
//! before it is dispatched.
//!
//! # Policy changes
//!
//! The bucket width is stored with the buckets. When a new policy brings another width, the
//! counts still inside the new window are collapsed into the current bucket: nothing is forgotten
//! early (so a window change cannot open the door to a burst of retries), and everything expires
//! at most one new window later. Withdrawals taken under the old width can no longer be refunded.

mod codec;

pub use codec::{DecodeError, ENCODED_MAX_LEN, MAGIC, VERSION};

use crate::core::{millis, Millis};
use crate::policy::BudgetPolicy;

/// Buckets per window.
pub const BUCKETS: usize = 10;

/// One cluster's retry budget.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Budget {
    /// Bucket width in milliseconds; 0 only while there are no buckets.
    width: Millis,
    /// Ascending by start, at most [`BUCKETS`], each start a multiple of `width`.
    buckets: Vec<Bucket>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Bucket {
    start: Millis,
    requests: u32,
    retries: u32,
}

/// A retry counted by [`Budget::try_withdraw`]: which bucket holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Withdrawal {
    start: Millis,
    width: Millis,
}

/// The budget had no room for another retry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("retry budget spent: {in_window} retries in the window, {allowed} allowed")]
pub struct Exhausted {
    /// Retries started in the window, pending ones included.
    pub in_window: u32,
    /// Retries the window allows (rounded down).
    pub allowed: u32,
}

/// What the window holds now.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Usage {
    pub requests: u32,
    pub retries: u32,
    /// `ratio × requests + min_per_second × window seconds`.
    pub allowed: f64,
}

impl Budget {
    /// Adds `n` client requests at `now`.
    pub fn record_requests(&mut self, p: &BudgetPolicy, n: u32, now: Millis) {
        self.update(p, now, |b| b.requests = b.requests.saturating_add(n));
    }

    /// Counts one retry as started at `now` if the window has room for it.
    pub fn try_withdraw(&mut self, p: &BudgetPolicy, now: Millis) -> Result<Withdrawal, Exhausted> {
        let usage = self.usage(p, now);
        if f64::from(usage.retries) + 1.0 > usage.allowed || usage.allowed.is_nan() {
            return Err(Exhausted {
                in_window: usage.retries,
                allowed: usage.allowed as u32, // `as` saturates (and NaN is 0)
            });
        }
        let start = self.update(p, now, |b| b.retries = b.retries.saturating_add(1));
        Ok(Withdrawal {
            start,
            width: self.width,
        })
    }

    /// Gives back a retry that was dropped before it was dispatched. Refund each withdrawal at
    /// most once; a no-op when its bucket has expired or the bucket width has changed since.
    pub fn refund(&mut self, p: &BudgetPolicy, w: Withdrawal, now: Millis) {
        self.advance(p, now);
        if w.width != self.width {
            return;
        }
        if let Some(bucket) = self.buckets.iter_mut().find(|b| b.start == w.start) {
            bucket.retries = bucket.retries.saturating_sub(1);
        }
    }

    /// The counts in the window at `now`, and what they allow.
    pub fn usage(&mut self, p: &BudgetPolicy, now: Millis) -> Usage {
        self.advance(p, now);
        let (requests, retries) = self.buckets.iter().fold((0u32, 0u32), |(q, r), b| {
            (q.saturating_add(b.requests), r.saturating_add(b.retries))
        });
        let window_secs = millis(p.window) as f64 / 1000.0;
        let allowed = p.ratio * f64::from(requests) + f64::from(p.min_per_second) * window_secs;
        Usage {
            requests,
            retries,
            allowed,
        }
    }

    /// Applies `f` to the bucket for `now` (created if needed, after expiring old ones) and
    /// returns that bucket's start.
    fn update(&mut self, p: &BudgetPolicy, now: Millis, f: impl FnOnce(&mut Bucket)) -> Millis {
        let start = self.advance(p, now);
        match self.buckets.last_mut() {
            Some(bucket) if bucket.start == start => f(bucket),
            _ => {
                let mut bucket = Bucket {
                    start,
                    requests: 0,
                    retries: 0,
                };
                f(&mut bucket);
                self.buckets.push(bucket);
            }
        }
        start
    }

    /// Adopts the policy's width, drops buckets older than the window, and returns the start of
    /// the current bucket (never before the newest stored bucket).
    fn advance(&mut self, p: &BudgetPolicy, now: Millis) -> Millis {
        let width = bucket_width(p);
        let now = now.max(self.buckets.last().map_or(0, |b| b.start));
        if self.width != width {
            self.rebase(width, now);
        }
        let start = now - now % width;
        let oldest = start.saturating_sub(width.saturating_mul(BUCKETS as u64 - 1));
        self.buckets.retain(|b| b.start >= oldest);
        start
    }

    /// Collapses the counts still inside a window of the new width into the current bucket.
    fn rebase(&mut self, width: Millis, now: Millis) {
        let horizon = now.saturating_sub(width.saturating_mul(BUCKETS as u64));
        let old_width = self.width;
        let (requests, retries) = self
            .buckets
            .iter()
            .filter(|b| b.start.saturating_add(old_width) > horizon)
            .fold((0u32, 0u32), |(q, r), b| {
                (q.saturating_add(b.requests), r.saturating_add(b.retries))
            });
        self.width = width;
        self.buckets.clear();
        if requests > 0 || retries > 0 {
            self.buckets.push(Bucket {
                start: now - now % width,
                requests,
                retries,
            });
        }
    }
}

/// `window / BUCKETS`, rounded up, at least 1 ms.
fn bucket_width(p: &BudgetPolicy) -> Millis {
    millis(p.window).div_ceil(BUCKETS as u64).max(1)
}

#[cfg(test)]
mod tests;
