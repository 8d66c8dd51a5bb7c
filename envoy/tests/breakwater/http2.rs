//! Plain HTTP (not gRPC) over HTTP/2 on both sides, as between sidecars: the client speaks h2c
//! to Envoy's listener and Envoy speaks h2c to the upstream (a cluster with
//! `http2_protocol_options`). The filter's retries work the same as over HTTP/1.1.
//!
//! Measured with Envoy 1.40.0: an upstream HTTP/2 stream reset (hyper's server resets the
//! stream with RST_STREAM when its handler fails; the connection stays up) reaches the filter
//! with flag `UR` (remote reset): the `reset` outcome, retried like a TCP reset over HTTP/1.1.

use breakwater_envoy::client::send_h2;
use breakwater_envoy::{EnvoyConfig, Reply, Request, Upstream};

use crate::common::{breakwater, quick_retries, start, upstream};

fn envoy_h2(upstream: &Upstream, policy: &serde_json::Value) -> breakwater_envoy::Envoy {
    start(
        &EnvoyConfig::new()
            .h2c_cluster("a", upstream.addr())
            .filter(breakwater(policy)),
    )
}

/// Both hops spoke HTTP/2: Envoy's own counters say so.
fn assert_http2_both_ways(envoy: &breakwater_envoy::Envoy) {
    let stats = envoy.stats().expect("stats");
    assert!(
        stats.number_or_zero("http.ingress_http.downstream_cx_http2_total") >= 1,
        "the client's connection was HTTP/2"
    );
    assert!(
        stats.number_or_zero("cluster.a.upstream_cx_http2_total") >= 1,
        "Envoy's connections to the upstream were HTTP/2"
    );
    assert_eq!(stats.number_or_zero("cluster.a.upstream_cx_http1_total"), 0);
}

#[test]
fn a_503_over_http2_is_retried_and_the_client_gets_the_retry_s_answer() {
    let upstream = upstream("a");
    let envoy = envoy_h2(&upstream, &quick_retries(3));
    upstream.script([Reply::Status(503)]);
    let response = send_h2(envoy.listener(), &Request::get("/h2")).expect("a response");
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.header("x-breakwater-attempts"), Some("2"));
    assert_eq!(
        response.header("x-upstream"),
        Some("a"),
        "the upstream's own answer"
    );
    assert_eq!(upstream.count("GET", "/h2"), 2);
    assert_http2_both_ways(&envoy);
}

#[test]
fn an_upstream_stream_reset_over_http2_is_retried() {
    let upstream = upstream("a");
    let envoy = envoy_h2(&upstream, &quick_retries(3));
    upstream.script([Reply::Close]);
    let response = send_h2(envoy.listener(), &Request::get("/rst")).expect("a response");
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.header("x-breakwater-attempts"), Some("2"));
    assert_eq!(upstream.count("GET", "/rst"), 2);
    let log = envoy.wait_for_access_log(1).expect("logged");
    // The retry's answer is the filter's local reply, which leaves the details empty; the flag
    // of the first attempt stays.
    assert_eq!(
        log[0].response_flags, "UR",
        "the first attempt was an HTTP/2 stream reset (remote reset): {log:?}"
    );
    let stats = envoy.stats().expect("stats");
    assert_eq!(
        stats.number_or_zero("cluster.a.upstream_rq_rx_reset"),
        1,
        "one stream reset by the upstream"
    );
    assert_eq!(
        stats.number_or_zero("cluster.a.upstream_cx_destroy_remote"),
        0,
        "an RST_STREAM, not a closed connection"
    );
    assert_http2_both_ways(&envoy);
}

/// The upstream answers 503 and sends GOAWAY, twice: the first attempt's connection and the first
/// retry's both go away as they answer. Each retry goes out on a new connection (Envoy's pool
/// opens one after a GOAWAY) and the third attempt's answer reaches the client whole.
#[test]
fn retries_go_on_through_upstream_goaways() {
    let upstream = upstream("a");
    let envoy = envoy_h2(&upstream, &quick_retries(3));
    upstream.script([Reply::GoAway(503), Reply::GoAway(503)]);
    let response = send_h2(envoy.listener(), &Request::get("/goaway")).expect("a response");
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.header("x-breakwater-attempts"), Some("3"));
    assert_eq!(response.header("x-upstream"), Some("a"));
    assert_eq!(upstream.count("GET", "/goaway"), 3);
    let stats = envoy.stats().expect("stats");
    assert_eq!(
        stats.number_or_zero("cluster.a.upstream_cx_close_notify"),
        2,
        "Envoy heard both GOAWAYs"
    );
    assert_eq!(
        stats.number_or_zero("cluster.a.upstream_cx_http2_total"),
        3,
        "each attempt after a GOAWAY went out on a new connection"
    );
    assert_http2_both_ways(&envoy);
}
