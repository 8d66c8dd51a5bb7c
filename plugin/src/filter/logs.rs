//! Warnings that could repeat on every request, limited per cluster and kind.
//!
//! During an outage or a storm of shared-data writes, a warning per request would flood Envoy's
//! log (every worker writes its own). So each worker logs a repetitive warning at most once per
//! [`INTERVAL`] for each cluster and kind, and the next line it logs says how many it held back
//! meanwhile. The metrics still count every occurrence; the log only tells that it happens.
//! Breaker transitions are not limited: they are rare by construction (an open breaker stays open
//! for its open time) and each one matters.

use hashbrown::HashMap;

use crate::core::Millis;

/// The least time between two lines of the same kind for the same cluster, per worker.
pub const INTERVAL: Millis = 10_000;

/// The warnings that are limited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A shared-data update given up after too many conflicting writes.
    Contention,
    /// Shared-data bytes that did not decode.
    StateError,
}

/// When each (cluster, kind) last logged, and what was held back since.
#[derive(Debug, Default)]
pub struct Limiter {
    last: HashMap<(String, Kind), Entry>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    at: Millis,
    held_back: u64,
}

impl Limiter {
    /// Whether to log a line of `kind` for `cluster` now: `Some(n)` with the lines held back
    /// since the last one, `None` to hold this one back.
    pub fn allow(&mut self, cluster: &str, kind: Kind, now: Millis) -> Option<u64> {
        if let Some(entry) = self.last.get_mut(&(cluster.to_owned(), kind)) {
            if now.saturating_sub(entry.at) < INTERVAL && now >= entry.at {
                entry.held_back += 1;
                return None;
            }
            let held_back = entry.held_back;
            *entry = Entry {
                at: now,
                held_back: 0,
            };
            return Some(held_back);
        }
        self.last.insert(
            (cluster.to_owned(), kind),
            Entry {
                at: now,
                held_back: 0,
            },
        );
        Some(0)
    }
}

/// The suffix that tells how many lines were held back.
pub fn held_back(n: u64) -> String {
    if n == 0 {
        String::new()
    } else {
        format!(" ({n} more since the last such line, not logged)")
    }
}
