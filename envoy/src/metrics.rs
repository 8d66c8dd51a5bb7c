//! Breakwater's own metrics as Envoy's `/stats` names them, for tests and tools.
//!
//! The filter puts the cluster (and a skip's reason) into the metric's name as `key=.=value;.;`
//! segments, which the configs' `stats_tags` turn into Prometheus labels; Envoy lists wasm
//! metrics under `wasmcustom.` (README, "Metrics").

use std::time::Duration;

use crate::{Envoy, Stats};

/// How long after its last request Breakwater's batched counters are surely in Envoy's stats:
/// each worker counts `requests_total` locally and adds it at its flush, at most a second after
/// the request (plus the lateness of Envoy's timer).
pub const FLUSH_WAIT: Duration = Duration::from_millis(1_500);

/// Waits [`FLUSH_WAIT`]: every counter of the requests sent so far is in Envoy's stats after it.
pub fn wait_for_flush() {
    std::thread::sleep(FLUSH_WAIT);
}

/// The `/stats` name of Breakwater's `metric` (`requests_total`, ...) for `cluster`.
pub fn stat(cluster: &str, metric: &str) -> String {
    format!("wasmcustom.breakwater.breakwater_cluster=.={cluster};.;{metric}")
}

/// The `/stats` name of the skipped-retries counter for `cluster` and `reason`.
pub fn skipped_stat(cluster: &str, reason: &str) -> String {
    stat(
        cluster,
        &format!("reason=.={reason};.;retries_skipped_total"),
    )
}

/// Breakwater's counters and gauge of one cluster, read from `/stats` at one moment.
pub struct Metrics {
    stats: Stats,
    cluster: String,
}

impl Metrics {
    /// Reads Envoy's `/stats` once the workers' batched counters are in it ([`wait_for_flush`]);
    /// panics if the admin endpoint does not answer (for tests).
    pub fn read(envoy: &Envoy, cluster: &str) -> Metrics {
        wait_for_flush();
        Metrics {
            stats: envoy.stats().expect("Envoy's /stats answers"),
            cluster: cluster.to_string(),
        }
    }

    /// Reads Envoy's `/stats` now, without waiting for the flush: every counter but the batched
    /// `requests_total` is current (for tests whose timing a second's wait would upset, such as
    /// one that reads a breaker's counts before its open time ends).
    pub fn now(envoy: &Envoy, cluster: &str) -> Metrics {
        Metrics {
            stats: envoy.stats().expect("Envoy's /stats answers"),
            cluster: cluster.to_string(),
        }
    }

    /// A counter (`requests_total`, ...); 0 while the filter has not defined it (it defines
    /// each metric on first use).
    pub fn get(&self, metric: &str) -> u64 {
        self.stats.number_or_zero(&stat(&self.cluster, metric))
    }

    /// Retries skipped for `reason` (`budget`, `deadline`, ...).
    pub fn skipped(&self, reason: &str) -> u64 {
        self.stats
            .number_or_zero(&skipped_stat(&self.cluster, reason))
    }

    /// The breaker-state gauge: 0 closed, 1 open, 2 half-open; `None` before the cluster's
    /// first request.
    pub fn state(&self) -> Option<u64> {
        self.stats.number(&stat(&self.cluster, "breaker_state"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_filters_tag_segments() {
        assert_eq!(
            stat("catalog", "requests_total"),
            "wasmcustom.breakwater.breakwater_cluster=.=catalog;.;requests_total"
        );
        assert_eq!(
            skipped_stat("catalog", "budget"),
            "wasmcustom.breakwater.breakwater_cluster=.=catalog;.;reason=.=budget;.;retries_skipped_total"
        );
    }
}
