//! Envoy's own replies to gRPC calls (trailers-only, HTTP 200, a mapped `grpc-status`) count as
//! the failures their HTTP twins are; a call whose client gives up first counts for nothing.

use std::net::TcpListener;
use std::time::Duration;

use breakwater_envoy::config::Route;
use breakwater_envoy::{Envoy, EnvoyConfig};

use crate::common::*;

#[test]
fn envoys_route_timeout_on_a_slow_server_is_a_timeout_and_opens_the_breaker() {
    let server = server();
    server.behave(Behaviour::Delay(Duration::from_secs(3)));
    let route = Route::prefix("default", "/", CLUSTER).timeout(Duration::from_millis(300));
    let envoy = envoy(&server, &policy(None), Some(route));
    let client = client(&envoy);
    for i in 0..3 {
        let status = client
            .unary(Call::new(&format!("slow-{i}")), None)
            .expect_err("Envoy's timeout");
        assert_eq!(
            (status.code(), status.message()),
            (Code::Unavailable, "upstream request timeout"),
            "Envoy's trailers-only timeout reply, as tonic reads it"
        );
    }
    let log = envoy.wait_for_access_log(3).expect("three calls logged");
    assert!(
        log.iter()
            .all(|e| e.response_code == 200 && e.response_flags == "UT"),
        "HTTP 200 with flag UT: {log:?}"
    );
    let m = metrics(&envoy);
    assert_eq!(m.get("failures_total"), 3, "`timeout` counts by default");
    assert_eq!(m.get("breaker_opened_total"), 1);
    let rejected = client.unary(Call::new("open"), None).expect_err("fallback");
    assert_grpc_fallback(&rejected, Code::Unavailable, "open");
}

#[test]
fn envoys_reply_to_a_failed_connection_is_connect_failure_not_unavailable() {
    let closed = TcpListener::bind("127.0.0.1:0").expect("a port");
    let addr = closed.local_addr().expect("its address");
    drop(closed);
    // `connect-failure` listed alone: were Envoy's UNAVAILABLE read as the gRPC status, nothing
    // would count.
    let only_connect_failure = policy(Some(serde_json::json!(["connect-failure"])));
    let envoy = Envoy::start(
        &EnvoyConfig::new()
            .h2c_cluster(CLUSTER, addr)
            .filter(breakwater(&only_connect_failure)),
    )
    .expect("Envoy starts");
    let client = client(&envoy);
    for _ in 0..3 {
        let status = client
            .unary(Call::new("nobody"), None)
            .expect_err("no server");
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        assert!(
            status.message().starts_with("upstream connect error"),
            "Envoy's own reply: {status:?}"
        );
    }
    let m = metrics(&envoy);
    assert_eq!(m.get("failures_total"), 3);
    assert_eq!(m.get("breaker_opened_total"), 1);
    let rejected = client.unary(Call::new("open"), None).expect_err("fallback");
    assert_grpc_fallback(&rejected, Code::Unavailable, "open");

    let listed_unavailable = policy(Some(serde_json::json!(["unavailable"])));
    let envoy = Envoy::start(
        &EnvoyConfig::new()
            .h2c_cluster(CLUSTER, addr)
            .filter(breakwater(&listed_unavailable)),
    )
    .expect("Envoy starts");
    let client = crate::common::client(&envoy);
    for _ in 0..4 {
        let status = client
            .unary(Call::new("nobody"), None)
            .expect_err("no server");
        assert!(status.metadata().get("x-breakwater-breaker").is_none());
    }
    assert_eq!(
        metrics(&envoy).get("failures_total"),
        0,
        "Envoy's failed connection is `connect-failure`, never `unavailable`"
    );
}

/// The client cancels each call after 100 ms (tonic resets the stream) while the server takes
/// 2 s: Envoy logs `DR`, and the breaker hears nothing of them.
#[test]
fn a_call_its_client_cancels_counts_for_nothing() {
    let server = server();
    server.behave(Behaviour::Delay(Duration::from_secs(2)));
    let envoy = envoy(&server, &policy(None), None);
    let client = client(&envoy);
    for _ in 0..4 {
        let cancelled =
            client.unary_cancelled_after(Call::new("impatient"), Duration::from_millis(100));
        assert!(cancelled.is_none(), "no reply within 100 ms: {cancelled:?}");
    }
    let log = envoy.wait_for_access_log(4).expect("four calls logged");
    assert!(
        log.iter()
            .all(|e| e.response_flags == "DR" && e.response_code == 0),
        "Envoy saw the client reset each stream: {log:?}"
    );
    let m = flushed_metrics(&envoy);
    assert_eq!(m.get("requests_total"), 4);
    assert_eq!(
        m.get("failures_total"),
        0,
        "the client left: no evidence about the server"
    );
    assert_eq!(m.get("breaker_opened_total"), 0);
}

/// A deadline (`grpc-timeout`, 100 ms) that the server cannot meet (2 s): tonic's client gives
/// up and resets the stream (`Cancelled` "Timeout expired", Envoy's `DR`), unless tonic's server,
/// which honours the same deadline, answers its own CANCELLED first (seen for some calls: the
/// two timers race). Neither counts: the client left, or CANCELLED, which is no failure by
/// default.
#[test]
fn a_call_whose_deadline_passes_counts_for_nothing() {
    let server = server();
    server.behave(Behaviour::Delay(Duration::from_secs(2)));
    let envoy = envoy(&server, &policy(None), None);
    let client = client(&envoy);
    for _ in 0..4 {
        let status = client
            .unary(Call::new("impatient"), Some(Duration::from_millis(100)))
            .expect_err("the deadline passes");
        assert_eq!(status.code(), Code::Cancelled, "{status:?}");
    }
    let log = envoy.wait_for_access_log(4).expect("four calls logged");
    assert!(
        log.iter().all(|e| e.response_flags == "DR"
            || (e.response_code == 200
                && e.response_code_details.as_deref() == Some("via_upstream"))),
        "the client's reset, or the server's own reply: {log:?}"
    );
    let m = flushed_metrics(&envoy);
    assert_eq!(m.get("requests_total"), 4);
    assert_eq!(m.get("failures_total"), 0);
}

/// A cluster whose only host fails its health checks: Envoy answers a gRPC call itself,
/// trailers-only with `grpc-status: 14` and flag `UH`. That is `no-healthy-upstream`, which the
/// default `failure_on` counts (the breaker opens), and never `unavailable`.
#[test]
fn envoys_no_healthy_upstream_reply_is_no_healthy_upstream() {
    let host = breakwater_envoy::Upstream::start("unhealthy").expect("an upstream");
    host.serve_health("/healthz", false);
    let health_checked = |policy: &serde_json::Value| {
        let mut config = EnvoyConfig::new()
            .health_checked_cluster(
                CLUSTER,
                host.addr(),
                breakwater_envoy::HealthCheck {
                    path: "/healthz".to_string(),
                    interval: Duration::from_millis(50),
                },
            )
            .filter(breakwater(policy));
        config.clusters[0].http2 = true;
        let envoy = Envoy::start(&config).expect("Envoy starts");
        envoy
            .wait_for("the host to fail its checks", || {
                let stats = envoy.stats()?;
                Ok(stats.number(&format!("cluster.{CLUSTER}.membership_healthy")) == Some(0))
            })
            .expect("Envoy's stats");
        envoy
    };

    let envoy = health_checked(&policy(None));
    let client = client(&envoy);
    for _ in 0..3 {
        let status = client
            .unary(Call::new("no-host"), None)
            .expect_err("no host");
        assert_eq!(
            (status.code(), status.message()),
            (Code::Unavailable, "no healthy upstream"),
            "Envoy's own reply, as tonic reads it"
        );
    }
    let log = envoy.wait_for_access_log(3).expect("logged");
    assert!(
        log.iter()
            .all(|e| e.response_flags == "UH" && e.response_code == 200),
        "{log:?}"
    );
    assert_eq!(metrics(&envoy).get("breaker_opened_total"), 1);
    let rejected = client.unary(Call::new("open"), None).expect_err("fallback");
    assert_grpc_fallback(&rejected, Code::Unavailable, "open");
    assert_eq!(host.total(), 0, "nothing reached the host");

    let envoy = health_checked(&policy(Some(serde_json::json!(["unavailable"]))));
    let client = crate::common::client(&envoy);
    for _ in 0..4 {
        client
            .unary(Call::new("no-host"), None)
            .expect_err("no host");
    }
    assert_eq!(
        metrics(&envoy).get("failures_total"),
        0,
        "Envoy's `no-healthy-upstream` is never `unavailable`"
    );
}
