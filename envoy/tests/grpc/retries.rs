//! The filter never retries a gRPC call: a failure that `retry_on` would retry for HTTP is
//! counted as a skipped retry (reason `grpc`) and the client gets the failure as Envoy sent it.

use std::net::TcpListener;

use breakwater_envoy::{Envoy, EnvoyConfig};
use serde_json::json;

use crate::common::*;

#[test]
fn a_grpc_call_is_never_retried_by_the_filter_and_the_skip_says_grpc() {
    let closed = TcpListener::bind("127.0.0.1:0").expect("a port");
    let addr = closed.local_addr().expect("its address");
    drop(closed);
    // POST may be retried and a failed connection is retried: an HTTP request would be.
    let retrying = json!({ "default": {
        "circuit_breaker": { "failure_threshold": 50 },
        "retry": {
            "max_attempts": 3,
            "methods": ["POST"],
            "retry_on": ["connect-failure", "reset", "5xx"],
            "base_delay": "10ms",
            "max_delay": "20ms",
            "budget": null
        }
    }});
    let envoy = Envoy::start(
        &EnvoyConfig::new()
            .h2c_cluster(CLUSTER, addr)
            .filter(breakwater(&retrying)),
    )
    .expect("Envoy starts");
    let client = client(&envoy);
    for _ in 0..2 {
        let status = client
            .unary(Call::new("once"), None)
            .expect_err("no server");
        assert_eq!(status.code(), Code::Unavailable);
        assert!(
            status.message().starts_with("upstream connect error"),
            "Envoy's own reply, passed through: {status:?}"
        );
        assert!(
            status.metadata().get("x-breakwater-attempts").is_none(),
            "one attempt: {status:?}"
        );
    }
    let m = metrics(&envoy);
    assert_eq!(
        m.skipped("grpc"),
        2,
        "each wanted retry was skipped for being gRPC"
    );
    assert_eq!(m.get("retries_total"), 0);
    assert_eq!(
        m.get("failures_total"),
        2,
        "and each call still counted once"
    );
}
