//! Which failures are retried and what bounds the retries: resets, closed and refused
//! connections, `per_try_timeout`, the shared retry budget, and clients that leave.

use std::thread;
use std::time::Duration;

use breakwater_envoy::{Reply, Request};
use serde_json::json;

use crate::common::{
    envoy_with, from_upstream, quick_retries, send_on_both_workers, upstream, wait_until, Metrics,
};

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
