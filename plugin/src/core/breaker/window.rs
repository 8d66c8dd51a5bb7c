//! The sliding time window of the rate triggers (`failure_rate`, `slow_call`).
//!
//! # Buckets
//! The window (`window.window`, e.g. 10s) is cut into [`BUCKETS`] buckets of equal width (1s).
//! A bucket counts the calls that finished in its slice of time: all of them, the failed ones,
//! the slow ones. Each bucket keeps its absolute start time, so a bucket expires by itself when
//! the clock has moved `BUCKETS × width` past its start, whatever the order of calls, and the
//! rates are the sums over the live buckets. Memory and encoding stay bounded (at most
//! [`BUCKETS`] buckets) however many requests pass, and the window slides by one bucket width.
//!
//! # Robustness
//! Buckets are kept oldest first. The policy may change between two calls (another width): old
//! buckets keep their start times and expire on the new schedule. Workers' clocks may disagree
//! by a little, so a call that arrives "before" the newest bucket is counted in the newest bucket
//! rather than breaking the order. The storage is a fixed array: no allocation per request.

use crate::core::{millis, Millis};
use crate::policy::RateWindow;

/// Buckets per window: the window slides by a tenth of its length.
pub(super) const BUCKETS: usize = 10;

/// One slice of the window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Bucket {
    /// Absolute start time of the slice (a multiple of the width it was created with).
    pub(super) start: Millis,
    /// Calls that finished in the slice.
    pub(super) total: u32,
    /// Of those, the failed ones.
    pub(super) failed: u32,
    /// Of those, the slow ones.
    pub(super) slow: u32,
}

/// Sums over the live buckets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Tally {
    pub(super) total: u32,
    pub(super) failed: u32,
    pub(super) slow: u32,
}

/// The geometry the policy asks for: bucket width and the span of [`BUCKETS`] of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Geometry {
    width: Millis,
}

impl Geometry {
    pub(super) fn of(window: &RateWindow) -> Self {
        Geometry {
            width: (millis(window.window) / BUCKETS as Millis).max(1),
        }
    }

    fn span(self) -> Millis {
        self.width.saturating_mul(BUCKETS as Millis)
    }

    fn start_of(self, now: Millis) -> Millis {
        now - now % self.width
    }

    fn is_live(self, bucket: &Bucket, now: Millis) -> bool {
        now.saturating_sub(bucket.start) < self.span()
    }
}

/// Up to [`BUCKETS`] buckets, oldest first, in a fixed array.
#[derive(Clone, Debug, Default)]
pub(super) struct Window {
    slots: [Bucket; BUCKETS],
    len: usize,
}

impl PartialEq for Window {
    fn eq(&self, other: &Self) -> bool {
        self.buckets() == other.buckets()
    }
}

impl Eq for Window {}

impl Window {
    /// Appends a bucket newer than the others; `false` when the window is full.
    pub(super) fn push(&mut self, bucket: Bucket) -> bool {
        match self.slots.get_mut(self.len) {
            Some(slot) => {
                *slot = bucket;
                self.len += 1;
                true
            }
            None => false,
        }
    }

    /// The stored buckets, oldest first (expired ones included until the next `record`).
    pub(super) fn buckets(&self) -> &[Bucket] {
        self.slots.get(..self.len).unwrap_or(&[])
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Counts one finished call at `now`, forgetting the buckets that left the window.
    pub(super) fn record(&mut self, geometry: Geometry, now: Millis, failed: bool, slow: bool) {
        let expired = self
            .buckets()
            .iter()
            .take_while(|b| !geometry.is_live(b, now))
            .count();
        self.drop_oldest(expired);
        let start = geometry.start_of(now);
        let newest_is_current = self.buckets().last().is_some_and(|b| b.start >= start);
        if !newest_is_current {
            if self.len == BUCKETS {
                self.drop_oldest(1);
            }
            self.push(Bucket {
                start,
                ..Bucket::default()
            });
        }
        if let Some(bucket) = self.len.checked_sub(1).and_then(|i| self.slots.get_mut(i)) {
            bucket.total = bucket.total.saturating_add(1);
            bucket.failed = bucket.failed.saturating_add(u32::from(failed));
            bucket.slow = bucket.slow.saturating_add(u32::from(slow));
        }
    }

    /// The sums over the buckets still in the window at `now`.
    pub(super) fn tally(&self, geometry: Geometry, now: Millis) -> Tally {
        self.buckets()
            .iter()
            .filter(|b| geometry.is_live(b, now))
            .fold(Tally::default(), |t, b| Tally {
                total: t.total.saturating_add(b.total),
                failed: t.failed.saturating_add(b.failed),
                slow: t.slow.saturating_add(b.slow),
            })
    }

    /// Forgets the buckets that start more than a whole window after `now` (a clock that jumped
    /// back, or bytes no breaker wrote): counted into, they would never expire. Whether any did.
    pub(super) fn drop_future(&mut self, geometry: Geometry, now: Millis) -> bool {
        let latest = now.saturating_add(geometry.span());
        let before = self.len;
        // Oldest first: the ones from the future are at the end.
        while let Some(slot) = self.len.checked_sub(1).and_then(|i| self.slots.get_mut(i)) {
            if slot.start <= latest {
                break;
            }
            *slot = Bucket::default();
            self.len -= 1;
        }
        self.len != before
    }

    fn drop_oldest(&mut self, n: usize) {
        let n = n.min(self.len);
        // A move, not `rotate_left`: the dropped buckets are cleared below anyway, and the
        // general rotation costs most of a kilobyte of `.wasm`.
        if let Some(stored) = self.slots.get_mut(..self.len) {
            stored.copy_within(n.., 0);
        }
        self.len -= n;
        for slot in self.slots.iter_mut().skip(self.len) {
            *slot = Bucket::default();
        }
    }
}
