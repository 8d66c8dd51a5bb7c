//! The breaker among clusters and retries: one breaker per cluster, the breaker outside the
//! retries (or around every attempt with `count_retries`), and retries that stop when it opens.

use std::thread;

use breakwater_envoy::{EnvoyConfig, Request, Route};
use serde_json::json;

use crate::common::{
    assert_fallback, breaker_policy, breakwater, envoy_with, from_upstream, is_fallback,
    send_on_both_workers, start, upstream, wait_until, Metrics,
};

#[test]
fn each_cluster_has_its_own_breaker() {
    let payments = upstream("payments");
    let reviews = upstream("reviews");
    let envoy = start(
        &EnvoyConfig::new()
            .cluster("payments", payments.addr())
            .cluster("reviews", reviews.addr())
            .route(Route::prefix("reviews", "/reviews/", "reviews"))
            .route(Route::prefix("payments", "/", "payments"))
            .filter(breakwater(&breaker_policy())),
    );
    payments.respond_with(503);
    for i in 0..4 {
        envoy.get(&format!("/pay/{i}")).expect("a response");
    }
    assert!(is_fallback(&envoy.get("/pay/after").expect("a response")));
    let responses = send_on_both_workers(&envoy, 4, 2, |c, i| {
        Request::get(&format!("/reviews/{c}/{i}"))
    });
    assert!(
        responses
            .iter()
            .all(|r| r.status == 200 && from_upstream(r)),
        "the reviews cluster is unaffected by the payments breaker: {responses:?}"
    );
    assert_eq!(Metrics::read(&envoy, "payments").state(), Some(1));
    assert_eq!(
        Metrics::read(&envoy, "reviews").state(),
        Some(0),
        "reviews never left closed (the gauge exists from its first request)"
    );
}

#[test]
fn with_count_retries_every_attempt_counts_towards_the_threshold() {
    let upstream = upstream("a");
    let envoy = envoy_with(
        &upstream,
        "a",
        &json!({
            "default": {
                "circuit_breaker": { "failure_threshold": 3, "timeout": "30s", "count_retries": true },
                "retry": { "max_attempts": 3, "base_delay": "10ms", "budget": null }
            }
        }),
    );
    upstream.respond_with(503);
    let response = envoy.get("/one").expect("a response");
    assert_eq!(response.status, 503);
    assert_eq!(response.header("x-breakwater-attempts"), Some("3"));
    let metrics = Metrics::read(&envoy, "a");
    assert_eq!(
        metrics.get("failures_total"),
        3,
        "each attempt was one outcome"
    );
    assert_eq!(
        metrics.get("breaker_opened_total"),
        1,
        "one client request's three failed attempts opened the breaker"
    );
    assert!(is_fallback(&envoy.get("/two").expect("a response")));
}

#[test]
fn a_breaker_that_opens_while_a_retry_waits_drops_the_retry_and_serves_the_fallback() {
    let upstream = upstream("a");
    let envoy = envoy_with(
        &upstream,
        "a",
        &json!({
            "default": {
                "circuit_breaker": { "failure_threshold": 3, "timeout": "30s" },
                // A long wait before the retry: the breaker opens meanwhile.
                "retry": { "max_attempts": 2, "base_delay": "3s", "jitter": false, "budget": null }
            }
        }),
    );
    upstream.respond_with(503);
    let response = thread::scope(|s| {
        let waiting = s.spawn(|| envoy.get("/waiting").expect("a response"));
        wait_until("the first attempt", || {
            upstream.count("GET", "/waiting") == 1
        });
        // Three POSTs without an idempotency key: not retried, three failures, the breaker opens.
        for i in 0..3 {
            let post = envoy
                .send(&Request::post(&format!("/orders/{i}"), "x"))
                .expect("a response");
            assert!(from_upstream(&post), "admitted while closed: {post:?}");
        }
        assert_eq!(Metrics::read(&envoy, "a").get("breaker_opened_total"), 1);
        waiting.join().expect("the waiting client")
    });
    assert_fallback(&response, "open");
    assert_eq!(
        upstream.count("GET", "/waiting"),
        1,
        "the retry was dropped, not dispatched to an upstream the breaker protects"
    );
    assert_eq!(Metrics::read(&envoy, "a").skipped("breaker"), 1);
}
