//! Requests through Envoy: routing, counting, both workers.

use breakwater_envoy::{EnvoyConfig, Request, Route};

use crate::common::{counting, noop, start, upstream};

#[test]
fn requests_through_envoy_reach_the_upstream_and_the_counters_agree() {
    let upstream = upstream("a");
    let envoy = start(
        &EnvoyConfig::new()
            .cluster("a", upstream.addr())
            .filter(counting("noop.requests")),
    );
    for i in 0..5 {
        let response = envoy.get(&format!("/items/{i}")).expect("a response");
        assert_eq!(response.status, 200);
        assert_eq!(
            response.header("x-upstream"),
            Some("a"),
            "the upstream answered"
        );
    }
    envoy
        .send(&Request::post("/items", "hello").header("x-breakwater-attempt", "2"))
        .expect("a response");

    assert_eq!(upstream.total(), 6);
    assert_eq!(upstream.count("GET", "/items/3"), 1);
    assert_eq!(upstream.count("POST", "/items"), 1);
    let post = &upstream.requests()[5];
    assert_eq!(post.body, b"hello", "the body arrives");
    assert_eq!(
        post.attempt(),
        Some(Ok(2)),
        "headers are recorded, the attempt header too"
    );
    assert_eq!(upstream.record().by_attempt_header().get(&None), Some(&5));

    let stats = envoy.stats().expect("stats");
    assert_eq!(stats.number("cluster.a.upstream_rq_total"), Some(6));
    assert_eq!(stats.number("cluster.a.upstream_rq_200"), Some(6));
    assert_eq!(stats.number("http.ingress_http.downstream_rq_2xx"), Some(6));
    assert_eq!(
        stats.wasm_metric("noop.requests"),
        Some(6),
        "the filter saw every request"
    );

    let log = envoy.wait_for_access_log(6).expect("access log");
    assert_eq!(log.len(), 6);
    assert!(log
        .iter()
        .all(|e| e.route_name.as_deref() == Some("default")));
    assert!(log
        .iter()
        .all(|e| e.upstream_cluster.as_deref() == Some("a")));
    assert!(log.iter().all(|e| e.response_flags == "-"));
    assert_eq!(log[5].method.as_deref(), Some("POST"));
}

#[test]
fn named_routes_pick_clusters_by_path_prefix_and_by_header() {
    let a = upstream("a");
    let b = upstream("b");
    let istio = "outbound|8080||reviews.default.svc.cluster.local";
    let envoy = start(
        &EnvoyConfig::new()
            .cluster("a", a.addr())
            .cluster("b", b.addr())
            .cluster(istio, b.addr())
            .route(Route::header("by-header", "x-route-to", "reviews", istio))
            .route(Route::prefix("to-b", "/b/", "b"))
            .route(Route::prefix("to-a", "/", "a"))
            .filter(noop("")),
    );
    let via = |request: Request| {
        let response = envoy.send(&request).expect("a response");
        assert_eq!(response.status, 200);
        response
            .header("x-upstream")
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(via(Request::get("/a/1")), "a");
    assert_eq!(via(Request::get("/b/1")), "b");
    assert_eq!(
        via(Request::get("/a/2").header("x-route-to", "reviews")),
        "b"
    );

    let log = envoy.wait_for_access_log(3).expect("access log");
    let seen: Vec<_> = log
        .iter()
        .map(|e| {
            (
                e.route_name.clone().unwrap_or_default(),
                e.upstream_cluster.clone().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            ("to-a".to_string(), "a".to_string()),
            ("to-b".to_string(), "b".to_string()),
            ("by-header".to_string(), istio.to_string()),
        ],
        "each request went through the named route to its cluster; two clusters share upstream b"
    );
    let stats = envoy.stats().expect("stats");
    assert_eq!(
        stats.number(&format!("cluster.{istio}.upstream_rq_total")),
        Some(1)
    );
}

#[test]
fn concurrent_connections_are_served_by_both_workers() {
    let upstream = upstream("a");
    let envoy = start(
        &EnvoyConfig::new()
            .cluster("a", upstream.addr())
            .filter(counting("noop.requests")),
    );
    let outcomes = envoy
        .send_concurrently(8, 5, |c, i| Request::get(&format!("/c{c}/r{i}")))
        .expect("connections open");
    for (c, connection) in outcomes.iter().enumerate() {
        assert_eq!(
            connection.len(),
            5,
            "connection {c} carried all its requests"
        );
        for outcome in connection {
            assert!(
                matches!(outcome, Ok(r) if r.status == 200),
                "connection {c}: {outcome:?}"
            );
        }
    }
    assert_eq!(upstream.total(), 40);
    let stats = envoy.stats().expect("stats");
    let per_worker: Vec<u64> = (0..2)
        .map(|w| stats.number_or_zero(&breakwater_envoy::worker_stat(w, "downstream_cx_total")))
        .collect();
    assert_eq!(
        per_worker.iter().sum::<u64>(),
        8,
        "every connection was counted: {per_worker:?}"
    );
    assert_eq!(
        per_worker,
        vec![4, 4],
        "exact balance spreads connections held open together evenly over the workers"
    );
}

#[test]
fn without_a_filter_requests_pass_and_no_wasm_is_loaded() {
    let upstream = upstream("a");
    let envoy = start(&EnvoyConfig::new().cluster("a", upstream.addr()));
    assert_eq!(envoy.get("/").expect("a response").status, 200);
    let stats = envoy.stats().expect("stats");
    assert_eq!(
        stats.with_prefix("wasm.").count(),
        0,
        "no wasm VM exists: {:?}",
        stats.with_prefix("wasm.").collect::<Vec<_>>()
    );
}

#[test]
fn envoy_native_retries_retry_a_failed_attempt() {
    let upstream = upstream("a");
    let envoy = start(
        &EnvoyConfig::new()
            .cluster("a", upstream.addr())
            .native_resilience(breakwater_envoy::NativeResilience::default()),
    );
    upstream.script([breakwater_envoy::Reply::Status(503)]);
    let response = envoy.get("/flaky").expect("a response");
    assert_eq!(response.status, 200, "Envoy retried the 503");
    assert_eq!(
        upstream.count("GET", "/flaky"),
        2,
        "two attempts reached the upstream"
    );
    let stats = envoy.stats().expect("stats");
    assert_eq!(stats.number("cluster.a.upstream_rq_retry"), Some(1));
    let dump = envoy
        .admin()
        .config_dump(Some("static_clusters"))
        .expect("config dump");
    assert!(
        dump.to_string().contains("\"consecutive_5xx\":5"),
        "outlier detection is configured: {dump}"
    );
}

#[test]
fn a_session_keeps_its_requests_on_one_connection() {
    let upstream = upstream("a");
    let envoy = start(
        &EnvoyConfig::new()
            .cluster("a", upstream.addr())
            .filter(noop("")),
    );
    let connections = || {
        envoy
            .stats()
            .expect("stats")
            .number_or_zero("http.ingress_http.downstream_cx_total")
    };
    let before = connections();
    let mut session = envoy.session().expect("a connection");
    for i in 0..3 {
        let response = session
            .send(&Request::get(&format!("/s/{i}")))
            .expect("a response");
        assert_eq!(response.status, 200);
    }
    assert_eq!(connections() - before, 1, "three requests, one connection");
    assert_eq!(upstream.total(), 3);
}
