//! Retries (POLICY.md "Retry"): what the client gets, what the upstream sees, and which requests
//! may be retried.

use breakwater_envoy::{Reply, Request};
use serde_json::json;

use crate::common::{
    envoy_with, from_upstream, quick_retries, send_on_both_workers, upstream, Metrics,
};

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
fn clients_cannot_send_breakwater_headers_upstream() {
    let upstream = upstream("a");
    let envoy = envoy_with(&upstream, "a", &quick_retries(2));
    upstream.script([Reply::Status(503)]);
    let response = envoy
        .send(
            &Request::get("/steer")
                .header("x-breakwater-attempt", "9")
                .header("x-breakwater-breaker", "open"),
        )
        .expect("a response");
    assert_eq!(response.status, 200);
    let seen: Vec<Vec<(String, String)>> = upstream
        .requests()
        .iter()
        .map(|r| {
            r.headers
                .iter()
                .filter(|(n, _)| n.starts_with("x-breakwater-"))
                .cloned()
                .collect()
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            vec![],
            vec![("x-breakwater-attempt".to_string(), "2".to_string())]
        ],
        "the client's x-breakwater-* headers were removed; the retry carries only the filter's own"
    );
}

#[test]
fn request_bodies_are_replayed_whole_and_too_large_ones_are_not_retried() {
    let upstream = upstream("a");
    let mut policy = quick_retries(2);
    policy["default"]["retry"]["max_request_body"] = json!(65536);
    let envoy = envoy_with(&upstream, "a", &policy);
    upstream.fail_first_per_path(1, Reply::Status(503));
    let body = |len: usize| -> Vec<u8> { (0..len).map(|i| b'a' + (i % 26) as u8).collect() };

    let fits = body(40_000);
    let response = envoy
        .send(&Request::new("PUT", "/docs/fits?v=1").body(fits.clone()))
        .expect("a response");
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.header("x-breakwater-attempts"), Some("2"));
    let attempts: Vec<_> = upstream
        .requests()
        .into_iter()
        .filter(|r| r.path == "/docs/fits?v=1")
        .collect();
    assert_eq!(
        attempts.len(),
        2,
        "the query string is part of the replayed path"
    );
    assert!(
        attempts.iter().all(|r| r.method == "PUT" && r.body == fits),
        "both attempts carry the whole 40,000-byte body, however Envoy chunked it"
    );

    let too_large = body(100_000);
    let response = envoy
        .send(&Request::new("PUT", "/docs/large").body(too_large.clone()))
        .expect("a response");
    assert_eq!(
        response.status, 503,
        "not retried: the failure reaches the client"
    );
    assert_eq!(response.header("x-breakwater-attempts"), None);
    let attempts: Vec<_> = upstream
        .requests()
        .into_iter()
        .filter(|r| r.path == "/docs/large")
        .collect();
    assert_eq!(attempts.len(), 1);
    assert_eq!(
        attempts[0].body, too_large,
        "a body over max_request_body is still forwarded whole"
    );
    assert_eq!(Metrics::read(&envoy, "a").skipped("not_eligible"), 1);
}

#[test]
fn a_retrys_deadline_counts_from_the_requests_start_though_no_clock_was_read_when_it_arrived() {
    // Breakwater reads no clock when a request arrives at a quiet breaker: the first failure
    // derives the start from Envoy's `request.time`. Every attempt takes 300 ms; the deadline
    // (1.2 s) leaves room for a retry at ~310 ms and ~620 ms (each ends by 1,020 ms with its
    // 400 ms per-try timeout) but not at ~930 ms (1,330 ms). Had the start been taken at the
    // first failure, the deadline would end at 1.5 s and a fourth attempt would run.
    let upstream = upstream("a");
    upstream.respond_with(503);
    upstream.set_delay(std::time::Duration::from_millis(300));
    let policy = json!({
        "default": {
            "circuit_breaker": null,
            "retry": {
                "max_attempts": 6, "base_delay": "10ms", "max_delay": "10ms", "jitter": false,
                "per_try_timeout": "400ms", "deadline": "1200ms", "budget": null
            }
        }
    });
    let envoy = envoy_with(&upstream, "a", &policy);
    let response = envoy.get("/slow").expect("a response");
    assert_eq!(response.status, 503, "every attempt failed");
    assert_eq!(
        upstream.total(),
        3,
        "two retries fit the deadline counted from the request's start, a third does not"
    );
    assert_eq!(response.header("x-breakwater-attempts"), Some("3"));
    let metrics = Metrics::read(&envoy, "a");
    assert_eq!(metrics.skipped("deadline"), 1);
    assert_eq!(metrics.get("requests_total"), 1);
}
