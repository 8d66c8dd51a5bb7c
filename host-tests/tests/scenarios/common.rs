//! Shared fixtures for the scenarios.

use breakwater_host_tests::World;
use serde_json::Value;

/// A world of `workers` workers running the current breakwater.wasm with `policy`.
pub fn world(workers: usize, policy: &Value) -> World {
    World::builder()
        .breakwater()
        .workers(workers)
        .plugin_name("breakwater")
        .configuration(policy.to_string())
        .seed(7)
        .build()
        .unwrap_or_else(|e| panic!("the world must build: {e}"))
}

/// The Prometheus-facing stat name of a per-cluster metric, as the filter defines it.
pub fn stat(cluster: &str, metric: &str) -> String {
    format!("breakwater.breakwater_cluster=.={cluster};.;{metric}")
}
