//! The real filter (`breakwater.wasm`, built fresh) under faults of its host: other workers that
//! keep winning shared-data writes, dispatches Envoy refuses at once, callbacks for clients that
//! already left, reconfigurations while retries wait or fly, garbage in shared data. Whatever
//! happens, nothing traps, every client gets one answer (or left), and the counters and the
//! shared state stay consistent ([`invariants`]).

#[path = "../scenarios/common.rs"]
mod common;
mod invariants;

mod cas_storm;
mod finished;
mod garbage;
mod races;
mod reconfigure;
mod refused;

use serde_json::{json, Value};

/// A breaker that opens after `threshold` failures in a row; up to 3 attempts 100 ms apart (no
/// jitter); a budget over a 60 s window (longer than any scenario) with a floor of 120 retries.
pub fn resilient(threshold: u32) -> Value {
    common::policy(
        json!({ "failure_threshold": threshold, "timeout": "10s", "probe_timeout": "5s" }),
        json!({
            "max_attempts": 3, "base_delay": "100ms", "jitter": false, "max_delay": "1s",
            "budget": { "ratio": 0.2, "min_per_second": 2, "window": "60s" }
        }),
    )
}
