//! Envoy's own gRPC retries under Breakwater, measured: what delegating gRPC retries to Envoy's
//! router gives. Breakwater does not retry gRPC itself (POLICY.md "gRPC requests"); these tests
//! pin what an operator gets from a route `retry_policy` with `retry_on: unavailable`, which runs
//! below the filter.
//!
//! Measured with Envoy 1.40.0: the router retries a trailers-only UNAVAILABLE and the client gets
//! the last attempt's answer intact, with one outcome for the filter; it never retries a status
//! that came after a message (the response had started), and it retries without waiting for a
//! `grpc-retry-pushback-ms`. The same retry asked for by the client itself with the request
//! headers `x-envoy-retry-grpc-on: unavailable` and `x-envoy-max-retries: 2` is not made: Envoy
//! sanitizes those headers on requests it does not consider internal (its "HTTP header
//! sanitizing"), which a loopback test client is not.

use std::time::Duration;

use breakwater_envoy::grpc::GrpcServer;
use breakwater_envoy::{Envoy, EnvoyConfig, NativeResilience};

use crate::common::*;

const RETRY_UNAVAILABLE: [(&str, &str); 2] = [
    ("x-envoy-retry-grpc-on", "unavailable"),
    ("x-envoy-max-retries", "2"),
];

/// Envoy with Breakwater ([`policy`]) and a route retry policy of two retries on UNAVAILABLE,
/// 10 ms apart (no outlier ejection).
fn envoy_retrying(server: &GrpcServer) -> Envoy {
    let native = NativeResilience {
        retry_on: "unavailable".to_string(),
        num_retries: 2,
        backoff_base: Duration::from_millis(10),
        backoff_max: Duration::from_millis(20),
        consecutive_5xx: 1000,
        ..NativeResilience::default()
    };
    Envoy::start(
        &EnvoyConfig::new()
            .h2c_cluster(CLUSTER, server.addr())
            .filter(breakwater(&policy(None)))
            .native_resilience(native),
    )
    .unwrap_or_else(|e| panic!("Envoy must start: {e}"))
}

#[test]
fn envoy_retries_a_trailers_only_unavailable_and_the_breaker_hears_one_success() {
    let server = server();
    let envoy = envoy_retrying(&server);
    let client = client(&envoy);
    server.script([
        Behaviour::fail(Code::Unavailable),
        Behaviour::fail(Code::Unavailable),
    ]);
    let answer = client
        .unary(Call::new("retried"), None)
        .expect("the third attempt answers");
    assert_eq!(answer.get_ref(), &answer_for("retried", 0), "intact");
    assert_eq!(
        server.unary_calls(),
        3,
        "Envoy's router made three attempts"
    );
    let stats = envoy.stats().expect("stats");
    assert_eq!(stats.number_or_zero("cluster.grpc.upstream_rq_retry"), 2);
    let m = flushed_metrics(&envoy);
    assert_eq!(
        m.get("failures_total"),
        0,
        "the filter sees only the final answer"
    );
    assert_eq!(m.get("requests_total"), 1);
}

#[test]
fn envoy_retries_neither_a_status_after_a_message_nor_after_the_pushback() {
    let server = server();
    let envoy = envoy_retrying(&server);
    let client = client(&envoy);
    server.script([Behaviour::FailAfterFirst {
        code: Code::Unavailable,
        message: "after one answer".into(),
    }]);
    let status = client
        .unary(Call::new("started"), None)
        .expect_err("not retried");
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(
        server.unary_calls(),
        1,
        "a response that started is never retried"
    );
    assert_eq!(metrics(&envoy).get("failures_total"), 1);

    server.script([Behaviour::FailBefore {
        code: Code::Unavailable,
        message: "come back in 700 ms".into(),
        pushback_ms: Some(700),
    }]);
    let before = server.arrivals().len();
    client
        .unary(Call::new("pushed-back"), None)
        .expect("the retry answers");
    let arrivals = server.arrivals();
    let gap = arrivals[before + 1] - arrivals[before];
    assert!(
        gap < Duration::from_millis(700),
        "Envoy's router retried after {gap:?}: it does not wait for grpc-retry-pushback-ms"
    );
}

#[test]
fn a_clients_own_x_envoy_retry_headers_are_removed_before_the_router() {
    let server = server();
    let envoy = envoy(&server, &policy(None), None);
    let client = client(&envoy);
    server.script([Behaviour::fail(Code::Unavailable)]);
    let status = client
        .unary_with(Call::new("asks"), None, &RETRY_UNAVAILABLE)
        .expect_err("not retried");
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(
        server.unary_calls(),
        1,
        "the client's retry headers did nothing"
    );
}

/// The same headers set by a filter in `on_http_request_headers` (the harness's fixture module,
/// which runs the header commands the request carries) do reach the router: it retries. A
/// filter runs after the connection manager's sanitizing. And at the response headers the
/// property `upstream.request_attempt_count` says how many attempts the router made, which a
/// budget could be charged with after the fact.
#[test]
fn x_envoy_retry_headers_set_by_a_filter_reach_the_router() {
    let server = server();
    let fixture = breakwater_wasm::build("breakwater-fixture")
        .unwrap_or_else(|e| panic!("the fixture module must build: {e}"));
    let envoy = Envoy::start(
        &EnvoyConfig::new()
            .h2c_cluster(CLUSTER, server.addr())
            .filter(breakwater_envoy::WasmFilter::new(fixture).configuration("")),
    )
    .unwrap_or_else(|e| panic!("Envoy must start: {e}"));
    let client = client(&envoy);
    server.script([
        Behaviour::fail(Code::Unavailable),
        Behaviour::fail(Code::Unavailable),
    ]);
    let commands = "header request add x-envoy-retry-grpc-on unavailable; \
                    header request add x-envoy-max-retries 2";
    let answer = client
        .unary_with(
            Call::new("set"),
            None,
            &[
                ("x-fixture-request", commands),
                (
                    "x-fixture-response",
                    "property-int upstream.request_attempt_count",
                ),
            ],
        )
        .expect("the router retried");
    assert_eq!(answer.get_ref(), &answer_for("set", 0));
    assert_eq!(server.unary_calls(), 3, "two retries by the router");
    let results: Vec<&str> = answer
        .metadata()
        .get_all("x-fixture-result")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    assert!(
        results.contains(&"property-int upstream.request_attempt_count=3"),
        "the filter can read how many attempts the router made, at the response headers: \
         {results:?}"
    );
}
