//! Shared fixtures: Envoy with Breakwater in front of the tonic server over HTTP/2, a tonic
//! client through Envoy, and Breakwater's metrics.

use std::thread;
use std::time::{Duration, Instant};

use breakwater_envoy::config::Route;
use breakwater_envoy::grpc::{GrpcClient, GrpcServer};
use breakwater_envoy::{Envoy, EnvoyConfig, WasmFilter};
use serde_json::{json, Value};

pub use breakwater_envoy::grpc::{answer_for, Behaviour, Call, Code, Status};
pub use breakwater_envoy::metrics::Metrics;

/// The cluster of the gRPC server.
pub const CLUSTER: &str = "grpc";
/// How long a poll for something that must happen may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(30);

pub fn server() -> GrpcServer {
    GrpcServer::start().unwrap_or_else(|e| panic!("the gRPC server must start: {e}"))
}

/// The Breakwater filter with `policy`.
pub fn breakwater(policy: &Value) -> WasmFilter {
    let wasm =
        breakwater_wasm::breakwater().unwrap_or_else(|e| panic!("breakwater.wasm must build: {e}"));
    WasmFilter::new(wasm).configuration(&policy.to_string())
}

/// Envoy (HTTP/2 from clients, h2c to the server) with Breakwater and `policy` in front of
/// `server`; `route` changes the one route when given.
pub fn envoy(server: &GrpcServer, policy: &Value, route: Option<Route>) -> Envoy {
    let mut config = EnvoyConfig::new()
        .h2c_cluster(CLUSTER, server.addr())
        .filter(breakwater(policy));
    if let Some(route) = route {
        config = config.route(route);
    }
    Envoy::start(&config).unwrap_or_else(|e| panic!("Envoy must start: {e}"))
}

/// A tonic client whose calls go through Envoy.
pub fn client(envoy: &Envoy) -> GrpcClient {
    GrpcClient::connect(envoy.listener()).unwrap_or_else(|e| panic!("a connection to Envoy: {e}"))
}

/// A breaker that opens after 3 failed calls, stays open 1 s and closes on 1 good probe; no
/// retries (gRPC is never retried anyway). `failure_on` when given.
pub fn policy(failure_on: Option<Value>) -> Value {
    let mut breaker = json!({
        "failure_threshold": 3,
        "timeout": "1s",
        "max_timeout": "1s",
        "half_open_attempts": 1
    });
    if let Some(list) = failure_on {
        breaker["failure_on"] = list;
    }
    json!({ "default": { "circuit_breaker": breaker, "retry": null } })
}

/// Breakwater's metrics of the gRPC cluster, read at once: the breakers here stay open for 1 s,
/// shorter than the wait for the workers' batched `requests_total`, which these tests do not read.
pub fn metrics(envoy: &Envoy) -> Metrics {
    Metrics::now(envoy, CLUSTER)
}

/// The same once the workers' batched counts are in (`requests_total`, and the rate windows'
/// held successes and slow calls, which reach the breaker within a second).
pub fn flushed_metrics(envoy: &Envoy) -> Metrics {
    Metrics::read(envoy, CLUSTER)
}

/// A metadata value as text.
pub fn meta<'a>(metadata: &'a tonic::metadata::MetadataMap, name: &str) -> Option<&'a str> {
    metadata.get(name).and_then(|v| v.to_str().ok())
}

/// Asserts that `status` is Breakwater's gRPC fallback saying `state` with gRPC code `code`.
pub fn assert_grpc_fallback(status: &Status, code: Code, state: &str) {
    assert_eq!(status.code(), code, "{status:?}");
    let metadata = status.metadata();
    assert_eq!(
        meta(metadata, "x-breakwater-breaker"),
        Some(state),
        "{status:?}"
    );
    assert!(
        meta(metadata, "retry-after").is_some_and(|s| s.parse::<u64>().is_ok_and(|s| s >= 1)),
        "the fallback keeps the retry hint: {status:?}"
    );
    let pushback = meta(metadata, "grpc-retry-pushback-ms")
        .and_then(|ms| ms.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("gRFC A6 pushback in milliseconds: {status:?}"));
    assert!(
        pushback <= 1_100,
        "at most the open time, jitter included: {pushback}"
    );
}

/// Polls `condition` until it holds; fails the test with `what` after [`DEADLINE`].
pub fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "gave up after {DEADLINE:?} waiting for {what}"
        );
        thread::sleep(Duration::from_millis(20));
    }
}
