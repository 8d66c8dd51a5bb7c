//! The circuit breaker (POLICY.md "Circuit breaker"): one breaker per cluster shared by both
//! workers, the fallback while open, one probe at a time while half-open, closing once the
//! upstream heals; resets and refused connections count as failures.

use std::thread;

use breakwater_envoy::{Envoy, Reply, Request, Response, Upstream};
use serde_json::json;

use crate::common::{
    connections_per_worker, envoy_with, from_upstream, get_until_admitted, is_fallback,
    send_on_both_workers, upstream, wait_until, Metrics,
};

/// A breaker that opens after 4 failed client requests and stays open 2 s; no retries, so every
/// client request is one upstream request and one outcome.
fn breaker_policy() -> serde_json::Value {
    json!({
        "default": {
            "circuit_breaker": {
                "failure_threshold": 4,
                "timeout": "2s",
                "max_timeout": "2s",
                "half_open_attempts": 1,
                "fallback": {
                    "status": 503,
                    "headers": { "content-type": "application/json" },
                    "body": "{\"source\":\"fallback\"}"
                }
            },
            "retry": null
        }
    })
}

fn assert_fallback(response: &Response, state: &str) {
    assert_eq!(response.status, 503, "{response:?}");
    assert_eq!(
        response.header("x-breakwater-breaker"),
        Some(state),
        "{response:?}"
    );
    assert_eq!(
        response.text(),
        "{\"source\":\"fallback\"}",
        "the policy's fallback body"
    );
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert!(
        response.header("retry-after").is_some(),
        "the fallback says when to come back: {response:?}"
    );
    assert!(!from_upstream(response), "the upstream never saw it");
}

/// Opens the breaker of cluster `a` with four failed requests: one on each worker, then two more
/// on whichever workers. No single worker saw `failure_threshold` failures, so only the breaker the
/// workers share can have opened.
fn open_across_both_workers(envoy: &Envoy, upstream: &Upstream) {
    upstream.respond_with(503);
    let before = connections_per_worker(envoy);
    let first = send_on_both_workers(envoy, 2, 1, |c, _| Request::get(&format!("/first/{c}")));
    let after = connections_per_worker(envoy);
    assert_eq!(
        after
            .iter()
            .zip(&before)
            .map(|(a, b)| a - b)
            .collect::<Vec<_>>(),
        vec![1, 1],
        "one failure on each worker"
    );
    assert!(first.iter().all(|r| r.status == 503 && from_upstream(r)));

    let third = envoy.get("/third").expect("a response");
    assert!(from_upstream(&third), "admitted while closed: {third:?}");
    let metrics = Metrics::read(envoy, "a");
    assert_eq!(metrics.get("failures_total"), 3);
    assert_eq!(
        metrics.get("breaker_opened_total"),
        0,
        "three failures are below the threshold"
    );
    assert_ne!(metrics.state(), Some(1), "not open");

    let fourth = envoy.get("/fourth").expect("a response");
    assert!(from_upstream(&fourth), "admitted while closed: {fourth:?}");
    let metrics = Metrics::read(envoy, "a");
    assert_eq!(metrics.get("failures_total"), 4);
    assert_eq!(
        metrics.get("breaker_opened_total"),
        1,
        "the fourth failure, counted across both workers, opened the breaker"
    );
    assert_eq!(metrics.state(), Some(1), "the state gauge says open");
    assert_eq!(upstream.total(), 4);
}

#[test]
fn the_breaker_opens_after_failure_threshold_failures_across_workers_and_spares_the_upstream() {
    let upstream = upstream("a");
    let envoy = envoy_with(&upstream, "a", &breaker_policy());
    open_across_both_workers(&envoy, &upstream);

    upstream.respond_with(200);
    let rejected =
        send_on_both_workers(&envoy, 4, 3, |c, i| Request::get(&format!("/open/{c}/{i}")));
    for response in &rejected {
        assert_fallback(response, "open");
    }
    assert_eq!(
        upstream.total(),
        4,
        "no request reached the upstream while the breaker was open"
    );
    let metrics = Metrics::read(&envoy, "a");
    assert_eq!(metrics.get("rejected_total"), 12);
    assert_eq!(
        metrics.get("requests_total"),
        16,
        "rejected requests are requests too"
    );
    assert_eq!(metrics.get("breaker_half_opened_total"), 0);
    let log = envoy.log();
    assert!(
        log.contains("circuit breaker 'a' OPEN after"),
        "the opening is logged as the seed logs it"
    );
}

#[test]
fn after_the_timeout_one_probe_at_a_time_goes_through_and_a_healed_upstream_closes_the_breaker() {
    let upstream = upstream("a");
    let envoy = envoy_with(&upstream, "a", &breaker_policy());
    open_across_both_workers(&envoy, &upstream);

    // First probe: caught in flight while the upstream still fails.
    upstream.hold();
    thread::scope(|s| {
        let prober = s.spawn(|| get_until_admitted(&envoy, "/probe/1", "open"));
        wait_until("the first probe to reach the upstream", || {
            upstream.total() == 5
        });
        let during = send_on_both_workers(&envoy, 4, 2, |c, i| {
            Request::get(&format!("/half-open/{c}/{i}"))
        });
        for response in &during {
            assert_fallback(response, "half-open");
        }
        assert_eq!(
            upstream.total(),
            5,
            "half_open_attempts: 1 lets one probe through, across both workers"
        );
        let metrics = Metrics::read(&envoy, "a");
        assert_eq!(metrics.get("breaker_half_opened_total"), 1);
        assert_eq!(metrics.state(), Some(2), "the state gauge says half-open");
        upstream.release();
        let probe = prober.join().expect("the prober");
        assert_eq!(probe.status, 503, "the probe got the upstream's failure");
        assert!(from_upstream(&probe));
    });
    let metrics = Metrics::read(&envoy, "a");
    assert_eq!(
        metrics.get("breaker_opened_total"),
        2,
        "the failed probe opened it again"
    );
    assert_eq!(metrics.state(), Some(1));
    assert_eq!(metrics.get("breaker_closed_total"), 0);

    // The upstream heals; the next probe succeeds and closes the breaker.
    upstream.respond_with(200);
    let probe = get_until_admitted(&envoy, "/probe/2", "open");
    assert_eq!(probe.status, 200, "{probe:?}");
    assert!(from_upstream(&probe));
    let metrics = Metrics::read(&envoy, "a");
    assert_eq!(metrics.get("breaker_half_opened_total"), 2);
    assert_eq!(
        metrics.get("breaker_closed_total"),
        1,
        "the successful probe closed it"
    );
    assert_eq!(metrics.state(), Some(0), "the state gauge says closed");

    let hits = upstream.total();
    let after = send_on_both_workers(&envoy, 4, 3, |c, i| {
        Request::get(&format!("/closed/{c}/{i}"))
    });
    assert!(
        after.iter().all(|r| r.status == 200 && from_upstream(r)),
        "closed again: traffic flows on both workers: {after:?}"
    );
    assert_eq!(upstream.total(), hits + 12);
    let log = envoy.log();
    assert!(log.contains("circuit breaker 'a' entering HALF_OPEN"));
    assert!(log.contains("circuit breaker 'a' closed"));
}

#[test]
fn resets_closed_connections_and_refused_connections_count_as_failures() {
    let upstream = upstream("a");
    let mut policy = breaker_policy();
    policy["default"]["circuit_breaker"]["failure_threshold"] = json!(3);
    policy["default"]["circuit_breaker"]["timeout"] = json!("30s");
    policy["default"]["circuit_breaker"]["max_timeout"] = json!("30s");
    let envoy = envoy_with(&upstream, "a", &policy);

    upstream.script([Reply::Reset, Reply::Close]);
    let reset = envoy.get("/reset").expect("a response");
    let closed = envoy.get("/close").expect("a response");
    upstream.stop_listening();
    let refused = envoy.get("/refused").expect("a response");
    for response in [&reset, &closed, &refused] {
        assert_eq!(
            response.status, 503,
            "Envoy's own failure reply: {response:?}"
        );
        assert!(
            !is_fallback(response),
            "admitted while closed: {response:?}"
        );
    }
    let metrics = Metrics::read(&envoy, "a");
    assert_eq!(
        metrics.get("failures_total"),
        3,
        "a reset, a close and a refusal are failures"
    );
    assert_eq!(
        metrics.get("breaker_opened_total"),
        1,
        "and they open the breaker"
    );

    upstream.start_listening().expect("listening again");
    let next = envoy.get("/after").expect("a response");
    assert!(is_fallback(&next), "the breaker is open: {next:?}");
    assert_eq!(
        upstream.total(),
        2,
        "only the reset and the close reached the upstream"
    );
}

#[test]
fn each_cluster_has_its_own_breaker() {
    let payments = upstream("payments");
    let reviews = upstream("reviews");
    let envoy = crate::common::start(
        &breakwater_envoy::EnvoyConfig::new()
            .cluster("payments", payments.addr())
            .cluster("reviews", reviews.addr())
            .route(breakwater_envoy::Route::prefix(
                "reviews",
                "/reviews/",
                "reviews",
            ))
            .route(breakwater_envoy::Route::prefix("payments", "/", "payments"))
            .filter(crate::common::breakwater(&breaker_policy())),
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
        None,
        "reviews never left closed"
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

#[test]
fn a_probe_that_never_reports_gives_its_slot_back_after_probe_timeout() {
    let upstream = upstream("a");
    let mut policy = breaker_policy();
    policy["default"]["circuit_breaker"]["probe_timeout"] = json!("1s");
    let envoy = envoy_with(&upstream, "a", &policy);
    open_across_both_workers(&envoy, &upstream);

    upstream.respond_with(200);
    upstream.hold();
    thread::scope(|s| {
        let first = s.spawn(|| get_until_admitted(&envoy, "/probe/stuck", "open"));
        wait_until("the first probe to reach the upstream", || {
            upstream.total() == 5
        });
        // The first probe hangs; after probe_timeout its slot is reclaimed and another probe is
        // let through, while the first is still in flight.
        let second = s.spawn(|| get_until_admitted(&envoy, "/probe/next", "half-open"));
        wait_until("a second probe to reach the upstream", || {
            upstream.total() == 6
        });
        let metrics = Metrics::read(&envoy, "a");
        assert_eq!(metrics.get("probes_reclaimed_total"), 1);
        assert_eq!(
            metrics.get("breaker_half_opened_total"),
            1,
            "still the same half-open"
        );
        upstream.release();
        for probe in [first, second] {
            let response = probe.join().expect("a prober");
            assert_eq!(response.status, 200, "{response:?}");
        }
    });
    let metrics = Metrics::read(&envoy, "a");
    assert_eq!(
        metrics.get("breaker_closed_total"),
        1,
        "a successful probe closed the breaker"
    );
    assert_eq!(metrics.state(), Some(0));
}
