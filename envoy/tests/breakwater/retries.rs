//! Retries (POLICY.md "Retry"): what the client gets, what the upstream sees, which requests may be
//! retried, and which failures are retried.

use std::thread;
use std::time::Duration;

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
fn a_retry_slower_than_per_try_timeout_is_cut_off_and_counts_as_a_failure() {
    let upstream = upstream("a");
    let envoy = envoy_with(
        &upstream,
        "a",
        &json!({
            "default": {
                "circuit_breaker": { "failure_threshold": 50 },
                "retry": {
                    "max_attempts": 2,
                    "base_delay": "10ms",
                    "per_try_timeout": "300ms",
                    "budget": null
                }
            }
        }),
    );
    // Every reply takes 1.5 s: the first attempt (bound only by the route's 15 s timeout) gets
    // its 503; the retry is cut off after 300 ms.
    upstream.set_delay(Duration::from_millis(1500));
    upstream.script([Reply::Status(503)]);
    let response = envoy.get("/slow").expect("a response");
    assert_eq!(
        response.status, 504,
        "the timed-out retry is the final answer: {response:?}"
    );
    assert_eq!(response.header("x-breakwater-attempts"), Some("2"));
    assert!(
        !from_upstream(&response),
        "the upstream never answered the retry in time"
    );
    assert_eq!(
        upstream.count("GET", "/slow"),
        2,
        "the retry did reach the upstream"
    );
    let metrics = Metrics::read(&envoy, "a");
    assert_eq!(
        metrics.get("failures_total"),
        1,
        "a timeout is a failure (failure_on)"
    );
}

#[test]
fn the_retry_budget_is_shared_by_both_workers() {
    let upstream = upstream("a");
    let envoy = envoy_with(
        &upstream,
        "a",
        &json!({
            "default": {
                "circuit_breaker": { "failure_threshold": 100 },
                "retry": {
                    "max_attempts": 2,
                    "base_delay": "10ms",
                    // No share of the traffic, a floor of 1/s over 20 s: 20 retries in all.
                    "budget": { "ratio": 0.0, "min_per_second": 1, "window": "20s" }
                }
            }
        }),
    );
    upstream.respond_with(503);
    let responses = send_on_both_workers(&envoy, 8, 5, |c, i| Request::get(&format!("/b/{c}/{i}")));
    assert!(responses.iter().all(|r| r.status == 503));
    let retried = responses
        .iter()
        .filter(|r| r.header("x-breakwater-attempts").is_some())
        .count();
    assert_eq!(
        retried, 20,
        "exactly the budget's 20 retries ran, across both workers"
    );
    assert_eq!(upstream.total(), 40 + 20);
    let metrics = Metrics::read(&envoy, "a");
    assert_eq!(metrics.get("retries_total"), 20);
    assert_eq!(
        metrics.skipped("budget"),
        20,
        "the other 20 wanted retries were skipped"
    );
}

#[test]
fn a_client_that_leaves_while_its_retry_waits_gets_no_retry_sent() {
    use std::io::Write;
    use std::net::TcpStream;

    let upstream = upstream("a");
    let envoy = envoy_with(
        &upstream,
        "a",
        &json!({
            "default": {
                "circuit_breaker": { "failure_threshold": 50 },
                "retry": { "max_attempts": 2, "base_delay": "1s", "jitter": false, "budget": null }
            }
        }),
    );
    upstream.fail_first_per_path(1, Reply::Status(503));
    let stat = |name: &str| envoy.stats().expect("stats").number_or_zero(name);

    let mut client = TcpStream::connect(envoy.listener()).expect("connects");
    client
        .write_all(b"GET /gone HTTP/1.1\r\nhost: breakwater\r\n\r\n")
        .expect("sends");
    wait_until("the first attempt's 503 to pass the router", || {
        stat("cluster.a.upstream_rq_503") == 1
    });
    drop(client);
    wait_until("Envoy to see the client leave", || {
        stat("http.ingress_http.downstream_cx_destroy_remote_active_rq") == 1
    });

    // A later request with the same backoff: its retry is due after the one that was dropped.
    let later = envoy.get("/later").expect("a response");
    assert_eq!(
        later.header("x-breakwater-attempts"),
        Some("2"),
        "{later:?}"
    );
    assert_eq!(
        upstream.count("GET", "/gone"),
        1,
        "no retry was dispatched for a client that had gone"
    );
    assert_eq!(Metrics::read(&envoy, "a").get("retries_total"), 1);
}
