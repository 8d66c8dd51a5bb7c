//! The story the demo tells: what the upstream does in each phase, and for how long.
//!
//! # Phases
//! 1. **healthy**: every request succeeds.
//! 2. **flaky**: the catalog fails 30% of attempts with 503; Breakwater retries them, so clients
//!    still get 200s (with `x-breakwater-attempts`).
//! 3. **down**: the catalog answers 503 to everything. Retries cannot help; after
//!    `failure_threshold` failed requests the breaker opens and clients get the fallback at once,
//!    while the catalog sees only the odd probe.
//! 4. **recovering**: the catalog is back but still fails 10% of attempts. After the open time one
//!    probe gets through and closes the breaker (a failed probe opens it again, for longer).
//! 5. **healthy**: all good again.
//!
//! The reviews upstream stays healthy throughout: its breaker never opens, because each cluster
//! has its own (a breaker shared across services would let one outage stop them all).
//!
//! # Phases that wait for the story
//! A phase lasts its duration, but `down` goes on until the catalog's breaker has opened and
//! `recovering` until every breaker is closed again (each for at most [`MAX_OVERTIME`] more), so
//! the demo shows the whole cycle however the probes' timing falls.

use std::time::Duration;

use breakwater_envoy::{Reply, Upstream};

/// The longest a phase runs past its duration while it waits for its goal.
pub const MAX_OVERTIME: Duration = Duration::from_secs(30);
/// The seed of the upstream's random failures, so that runs are alike.
const SEED: u64 = 2024;

/// What the catalog upstream does during a phase.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Condition {
    /// Every request gets 200.
    Healthy,
    /// This share of requests gets 503, the rest 200.
    Flaky { failure_ratio: f64 },
    /// Every request gets 503.
    Down,
}

impl Condition {
    /// Makes `upstream` behave so.
    pub fn apply(self, upstream: &Upstream) {
        match self {
            Condition::Healthy => {
                upstream.no_failures();
                upstream.respond_with(200);
            }
            Condition::Flaky { failure_ratio } => {
                upstream.respond_with(200);
                upstream.fail_ratio(failure_ratio, Reply::Status(503), SEED);
            }
            Condition::Down => {
                upstream.no_failures();
                upstream.respond_with(503);
            }
        }
    }

    pub fn describe(self) -> String {
        match self {
            Condition::Healthy => "answers 200".to_string(),
            Condition::Flaky { failure_ratio } => {
                format!("fails {:.0}% of attempts with 503", failure_ratio * 100.0)
            }
            Condition::Down => "answers 503 to everything".to_string(),
        }
    }
}

/// When a phase may end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// When its duration is over.
    Elapsed,
    /// When its duration is over and the catalog's breaker has opened.
    CatalogOpened,
    /// When its duration is over and every breaker is closed.
    AllClosed,
}

/// One phase of the demo.
#[derive(Debug, Clone, PartialEq)]
pub struct Phase {
    pub name: &'static str,
    /// What the catalog does; the reviews upstream is always healthy.
    pub catalog: Condition,
    pub duration: Duration,
    pub until: Until,
    /// What to watch for, in one line.
    pub story: &'static str,
}

fn phase(
    name: &'static str,
    catalog: Condition,
    seconds: u64,
    until: Until,
    story: &'static str,
) -> Phase {
    Phase {
        name,
        catalog,
        duration: Duration::from_secs(seconds),
        until,
        story,
    }
}

/// The phases with their durations in seconds, in order.
fn phases(seconds: [u64; 5]) -> Vec<Phase> {
    vec![
        phase(
            "healthy",
            Condition::Healthy,
            seconds[0],
            Until::Elapsed,
            "everything succeeds; Breakwater only watches",
        ),
        phase(
            "flaky",
            Condition::Flaky { failure_ratio: 0.3 },
            seconds[1],
            Until::Elapsed,
            "retries with jittered backoff turn the catalog's 503s into 200s",
        ),
        phase(
            "down",
            Condition::Down,
            seconds[2],
            Until::CatalogOpened,
            "the breaker opens: fallbacks at once, the catalog is spared",
        ),
        phase(
            "recovering",
            Condition::Flaky { failure_ratio: 0.1 },
            seconds[3],
            Until::AllClosed,
            "after the open time one probe goes through; a good one closes the breaker",
        ),
        phase(
            "healthy",
            Condition::Healthy,
            seconds[4],
            Until::Elapsed,
            "closed again: traffic flows",
        ),
    ]
}

/// The full demo: about 45 seconds.
pub fn standard() -> Vec<Phase> {
    phases([6, 10, 8, 12, 8])
}

/// A short run of the same story (about 15 seconds), for `--quick` and the tests.
pub fn quick() -> Vec<Phase> {
    phases([2, 3, 3, 4, 3])
}
