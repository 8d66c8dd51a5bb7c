//! Retries (POLICY.md "Retry"): what the client gets, what the upstream sees, which requests may be
//! retried, and which failures are retried.

use std::thread;

use breakwater_envoy::{Reply, Request};
use serde_json::json;

use crate::common::{
    envoy_with, from_upstream, send_on_both_workers, upstream, wait_until, Metrics,
};

/// Quick retries, no budget and a breaker that does not trip on the failures of these tests.
fn quick_retries(max_attempts: u32) -> serde_json::Value {
    json!({
        "default": {
            "circuit_breaker": { "failure_threshold": 50 },
            "retry": {
                "max_attempts": max_attempts,
                "base_delay": "10ms",
                "max_delay": "50ms",
                "budget": null
            }
        }
    })
}

#[test]
fn retries_turn_a_flaky_upstreams_503s_into_200s_on_both_workers() {
    let upstream = upstream("a");
    let envoy = envoy_with(&upstream, "a", &quick_retries(3));
    // Every request fails its first two attempts, however the workers interleave them.
    upstream.fail_first_per_path(2, Reply::Status(503));

    let responses = send_on_both_workers(&envoy, 8, 4, |c, i| {
        Request::get(&format!("/items/{c}-{i}")).header("x-request-tag", &format!("{c}-{i}"))
    });

    for response in &responses {
        assert_eq!(
            response.status, 200,
            "the third attempt succeeded: {response:?}"
        );
        assert_eq!(
            response.header("x-breakwater-attempts"),
            Some("3"),
            "the client learns that its request took three attempts"
        );
        assert!(from_upstream(response), "the upstream's own 200 is relayed");
    }
    let record = upstream.record();
    assert_eq!(
        record.total(),
        32 * 3,
        "three attempts per request reached the upstream"
    );
    let by_attempt = record.by_attempt_header();
    assert_eq!(
        by_attempt.get(&None),
        Some(&32),
        "first attempts carry no attempt header"
    );
    assert_eq!(by_attempt.get(&Some("2".into())), Some(&32));
    assert_eq!(by_attempt.get(&Some("3".into())), Some(&32));
    for c in 0..8 {
        for i in 0..4 {
            let path = format!("/items/{c}-{i}");
            let attempts: Vec<_> = record
                .requests()
                .iter()
                .filter(|r| r.path == path)
                .map(|r| {
                    assert_eq!(r.method, "GET");
                    assert_eq!(
                        r.header("x-request-tag"),
                        Some(format!("{c}-{i}").as_str()),
                        "a retry replays the client's headers"
                    );
                    r.attempt()
                })
                .collect();
            assert_eq!(
                attempts,
                vec![None, Some(Ok(2)), Some(Ok(3))],
                "{path}: attempts in order, each retry numbered"
            );
        }
    }

    let metrics = Metrics::read(&envoy, "a");
    assert_eq!(metrics.get("requests_total"), 32);
    assert_eq!(
        metrics.get("retries_total"),
        64,
        "two retries dispatched per request"
    );
    assert_eq!(metrics.get("retry_successes_total"), 32);
    assert_eq!(metrics.get("retries_exhausted_total"), 0);
    assert_eq!(
        metrics.get("failures_total"),
        0,
        "the breaker sees one outcome per client request, after its retries: all succeeded"
    );
}

#[test]
fn a_post_is_retried_only_with_an_idempotency_key() {
    let upstream = upstream("a");
    let envoy = envoy_with(&upstream, "a", &quick_retries(3));
    upstream.fail_first_per_path(1, Reply::Status(503));

    let plain = envoy
        .send(&Request::post("/orders", "{\"sku\":1}"))
        .expect("a response");
    assert_eq!(
        plain.status, 503,
        "the failure reaches the client as it was"
    );
    assert!(from_upstream(&plain));
    assert_eq!(
        plain.header("x-breakwater-attempts"),
        None,
        "no retry was made"
    );
    assert_eq!(
        upstream.count("POST", "/orders"),
        1,
        "a POST without an idempotency key reaches the upstream exactly once"
    );

    let keyed = envoy
        .send(&Request::post("/orders-keyed", "{\"sku\":2}").header("idempotency-key", "k-42"))
        .expect("a response");
    assert_eq!(
        keyed.status, 200,
        "the keyed POST was retried and succeeded"
    );
    assert_eq!(keyed.header("x-breakwater-attempts"), Some("2"));
    let attempts: Vec<_> = upstream
        .requests()
        .into_iter()
        .filter(|r| r.path == "/orders-keyed")
        .collect();
    assert_eq!(attempts.len(), 2);
    for (n, attempt) in attempts.iter().enumerate() {
        assert_eq!(attempt.method, "POST");
        assert_eq!(attempt.body, b"{\"sku\":2}", "attempt {n} carries the body");
        assert_eq!(attempt.header("idempotency-key"), Some("k-42"));
    }
    assert_eq!(attempts[1].attempt(), Some(Ok(2)));

    let metrics = Metrics::read(&envoy, "a");
    assert_eq!(
        metrics.skipped("not_eligible"),
        1,
        "the plain POST's retry was skipped"
    );
    assert_eq!(metrics.get("retries_total"), 1);
    assert_eq!(metrics.get("retry_successes_total"), 1);
}

#[test]
fn resets_and_closed_connections_are_retried() {
    let upstream = upstream("a");
    let envoy = envoy_with(&upstream, "a", &quick_retries(3));
    upstream.script([Reply::Reset, Reply::Close]);

    let response = envoy.get("/fragile").expect("a response");
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.header("x-breakwater-attempts"), Some("3"));
    let replies: Vec<_> = upstream
        .requests()
        .iter()
        .map(|r| (r.reply, r.attempt()))
        .collect();
    assert_eq!(
        replies,
        vec![
            (Reply::Reset, None),
            (Reply::Close, Some(Ok(2))),
            (Reply::Status(200), Some(Ok(3)))
        ],
        "a reset first attempt and a closed retry were both retried"
    );
}

#[test]
fn refused_connections_are_retried_until_the_upstream_listens_again() {
    let upstream = upstream("a");
    let envoy = envoy_with(
        &upstream,
        "a",
        &json!({
            "default": {
                "circuit_breaker": { "failure_threshold": 50 },
                "retry": {
                    "max_attempts": 6,
                    "base_delay": "200ms",
                    "max_delay": "2s",
                    "jitter": false,
                    "budget": null
                }
            }
        }),
    );
    upstream.stop_listening();
    let connect_failures = || {
        envoy
            .stats()
            .expect("stats")
            .number_or_zero("cluster.a.upstream_cx_connect_fail")
    };

    let response = thread::scope(|s| {
        let client = s.spawn(|| envoy.get("/refused").expect("a response"));
        // The retries back off 200 ms, 400 ms, 800 ms, 1.6 s: the upstream comes back while they
        // run, whichever attempt that is.
        wait_until("a refused connection attempt", || connect_failures() >= 1);
        upstream
            .start_listening()
            .expect("the upstream listens again");
        client.join().expect("the client thread")
    });

    assert_eq!(
        response.status, 200,
        "a later attempt reached the upstream: {response:?}"
    );
    let attempts: u32 = response
        .header("x-breakwater-attempts")
        .and_then(|a| a.parse().ok())
        .expect("the response says how many attempts it took");
    assert!(attempts >= 2, "at least the first attempt was refused");
    let requests = upstream.requests();
    assert_eq!(
        requests.len(),
        1,
        "refused attempts never reached the upstream"
    );
    assert_eq!(
        requests[0].attempt(),
        Some(Ok(attempts)),
        "the attempt that got through is the one the client was told about"
    );
    assert!(
        connect_failures() >= u64::from(attempts - 1),
        "Envoy counted each refused attempt as a connect failure"
    );
}
