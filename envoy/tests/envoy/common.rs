//! Shared fixtures.

use std::path::PathBuf;

use breakwater_envoy::{Envoy, EnvoyConfig, Upstream, WasmFilter};

/// The current no-op filter module, built once per test process.
pub fn noop_wasm() -> PathBuf {
    breakwater_wasm::build("breakwater-noop")
        .unwrap_or_else(|e| panic!("the no-op filter must build: {e}"))
}

/// The no-op filter with `configuration` (empty: counts nothing).
pub fn noop(configuration: &str) -> WasmFilter {
    WasmFilter::new(noop_wasm()).configuration(configuration)
}

/// The no-op filter counting every request as `stat`.
pub fn counting(stat: &str) -> WasmFilter {
    noop(&serde_json::json!({ "count_as": stat }).to_string())
}

pub fn upstream(name: &str) -> Upstream {
    Upstream::start(name).unwrap_or_else(|e| panic!("upstream {name} must start: {e}"))
}

pub fn start(config: &EnvoyConfig) -> Envoy {
    Envoy::start(config).unwrap_or_else(|e| panic!("Envoy must start: {e}"))
}

/// Envoy with the no-op filter in front of one upstream cluster `a`.
pub fn envoy_in_front_of(upstream: &Upstream, filter: WasmFilter) -> Envoy {
    start(
        &EnvoyConfig::new()
            .cluster("a", upstream.addr())
            .filter(filter),
    )
}
