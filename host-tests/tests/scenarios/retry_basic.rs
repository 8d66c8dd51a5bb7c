//! A failed idempotent request is retried after a jittered backoff; the retry replays the
//! request and the client gets the retry's response.

use std::collections::BTreeSet;
use std::time::Duration;

use breakwater_host_tests::{ms, Reply, Source, World};
use serde_json::{json, Value};

use crate::common::{
    assert_no_errors, builder, count, policy, response, retries_sent, retry_only, CLUSTER,
};

/// Gaps between the upstream's consecutive attempts.
fn gaps(w: &World) -> Vec<Duration> {
    let at: Vec<Duration> = w
        .upstream_attempts(CLUSTER)
        .iter()
        .map(|a| a.request.at)
        .collect();
    at.windows(2).map(|p| p[1] - p[0]).collect()
}

fn world_seeded(retry: Value, seed: u64) -> World {
    builder(2, &retry_only(retry))
        .seed(seed)
        .build()
        .expect("starts")
}

#[test]
fn a_get_failing_with_503_is_retried_and_the_client_gets_the_retrys_response() {
    let mut w = world_seeded(json!({ "base_delay": "100ms", "max_delay": "1s" }), 7);
    w.upstream(
        CLUSTER,
        Reply::sequence([
            Reply::status(503).body("busy"),
            Reply::status(503).body("still busy"),
            Reply::ok()
                .header("content-type", "text/plain")
                .header("x-upstream", "third")
                .body("done"),
        ]),
    );
    let s = w.request(1).path("/orders/9").cluster(CLUSTER).send();
    w.run_until_idle();

    let r = response(&w, s);
    assert_eq!(r.status, 200, "the third attempt's response");
    assert_eq!(r.body_text(), "done");
    assert_eq!(r.header("x-upstream"), Some("third"));
    assert_eq!(r.header("content-type"), Some("text/plain"));
    assert_eq!(r.header("x-breakwater-attempts"), Some("3"));
    assert_eq!(
        r.source,
        Source::Upstream,
        "the held response, rewritten in place"
    );
    assert_eq!(w.upstream_attempts(CLUSTER).len(), 3);
    assert_eq!(count(&w, "retries_total"), 2);
    assert_eq!(
        count(&w, "retry_successes_total"),
        1,
        "a success after retries"
    );
    assert_eq!(count(&w, "retries_exhausted_total"), 0);
    assert_eq!(count(&w, "requests_total"), 1, "one client request");
    assert_no_errors(&w);
}

#[test]
fn retry_delays_stay_inside_the_proportional_jitter_bounds_and_vary() {
    let mut first = BTreeSet::new();
    for seed in 0..16 {
        let mut w = world_seeded(json!({ "base_delay": "100ms", "max_delay": "1s" }), seed);
        w.upstream(
            CLUSTER,
            Reply::sequence([Reply::status(503), Reply::status(503), Reply::ok()]),
        );
        w.request(0).cluster(CLUSTER).send();
        w.run_until_idle();
        let g = gaps(&w);
        assert_eq!(g.len(), 2, "seed {seed}: two retries");
        assert!(
            (ms(50)..=ms(150)).contains(&g[0]),
            "seed {seed}: retry 1 waits 100 ms × U[0.5, 1.5], got {:?}",
            g[0]
        );
        assert!(
            (ms(100)..=ms(300)).contains(&g[1]),
            "seed {seed}: retry 2 waits 200 ms × U[0.5, 1.5], got {:?}",
            g[1]
        );
        first.insert(g[0]);
    }
    assert!(
        first.len() > 8,
        "jitter spreads the delays (host randomness): {first:?}"
    );
}

#[test]
fn without_jitter_the_delays_follow_the_exponential_schedule_capped_at_max_delay() {
    let retry = json!({
        "max_attempts": 5, "base_delay": "100ms", "exponential_base": 3.0,
        "max_delay": "500ms", "jitter": false
    });
    let mut w = world_seeded(retry, 1);
    w.upstream(CLUSTER, Reply::status(503));
    let s = w.request(0).cluster(CLUSTER).send();
    w.run_until_idle();
    assert_eq!(
        gaps(&w),
        vec![ms(100), ms(300), ms(500), ms(500)],
        "100 ms · 3^(n-1), capped at 500 ms"
    );
    assert_eq!(response(&w, s).header("x-breakwater-attempts"), Some("5"));
}

#[test]
fn the_retry_replays_the_method_path_headers_body_and_trailers_plus_the_attempt_number() {
    let mut w = world_seeded(json!({ "base_delay": "10ms" }), 3);
    w.upstream(CLUSTER, Reply::sequence([Reply::status(502), Reply::ok()]));
    let s = w
        .request(0)
        .method("PUT")
        .path("/carts/1?v=2")
        .authority("shop.example")
        .header("content-type", "application/json")
        .header("content-length", "11")
        .header("x-tenant", "acme")
        .header("x-multi", "a")
        .header("x-multi", "b")
        .body(r#"{"qty": 3}"#.to_string() + " ")
        .trailer("x-checksum", "c0ffee")
        .cluster(CLUSTER)
        .send();
    w.run_until_idle();
    assert_eq!(response(&w, s).status, 200);

    let attempts = w.upstream_attempts(CLUSTER);
    let (first, retry) = (&attempts[0].request, &attempts[1].request);
    // Envoy sets content-length itself from the body it sends, so the filter leaves it out.
    let message =
        |headers: &breakwater_host_tests::HeaderMap, skip: &[&str]| -> Vec<(String, String)> {
            headers
                .iter()
                .filter(|(n, _)| !skip.contains(n))
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect()
        };
    assert_eq!(
        message(&retry.headers, &["x-breakwater-attempt", "content-length"]),
        message(&first.headers, &["content-length"]),
        "the retry carries the client's headers, in order, repeated ones included"
    );
    assert_eq!(retry.header("content-length"), Some("11"));
    assert_eq!(retry.header("x-breakwater-attempt"), Some("2"));
    assert_eq!(retry.body, first.body, "the body is replayed");
    assert_eq!(retry.trailers, first.trailers, "the trailers are replayed");
    assert_eq!(retry.method(), "PUT");
    assert_eq!(retry.path(), "/carts/1?v=2");
    assert_eq!(retries_sent(&w, CLUSTER).len(), 1);
}

#[test]
fn the_retry_goes_out_with_per_try_timeout_as_its_timeout() {
    let mut w = world_seeded(
        json!({ "base_delay": "10ms", "per_try_timeout": "750ms" }),
        3,
    );
    w.upstream(CLUSTER, Reply::sequence([Reply::status(503), Reply::ok()]));
    w.request(0).cluster(CLUSTER).send();
    w.run_until_idle();
    match &retries_sent(&w, CLUSTER)[0].request.kind {
        breakwater_host_tests::AttemptKind::Call { timeout, .. } => {
            assert_eq!(*timeout, Some(ms(750)))
        }
        other => panic!("a retry is a dispatched call, got {other:?}"),
    }
}

#[test]
fn a_retry_that_also_fails_reaches_the_client_as_the_last_failure_with_its_attempt_count() {
    let mut w = world_seeded(json!({ "base_delay": "10ms", "max_attempts": 2 }), 3);
    w.upstream(
        CLUSTER,
        Reply::sequence([
            Reply::status(503).body("first"),
            Reply::status(500).header("x-why", "db").body("second"),
        ]),
    );
    let s = w.request(0).cluster(CLUSTER).send();
    w.run_until_idle();
    let r = response(&w, s);
    assert_eq!(r.status, 500, "the last attempt's response, not the first");
    assert_eq!(r.body_text(), "second");
    assert_eq!(r.header("x-why"), Some("db"));
    assert_eq!(r.header("x-breakwater-attempts"), Some("2"));
    assert_eq!(count(&w, "retries_exhausted_total"), 1);
    assert_eq!(count(&w, "retry_successes_total"), 0);
}

#[test]
fn retries_count_once_against_the_breaker_by_default() {
    let p = policy(
        json!({ "failure_threshold": 3 }),
        json!({ "base_delay": "10ms", "max_attempts": 3 }),
    );
    let mut w = builder(1, &p).build().expect("starts");
    w.upstream(CLUSTER, Reply::status(503));
    w.request(0).cluster(CLUSTER).send();
    w.run_until_idle();
    assert_eq!(w.upstream_attempts(CLUSTER).len(), 3);
    assert_eq!(
        count(&w, "failures_total"),
        1,
        "count_retries false: one outcome per client request, after its retries"
    );
    assert_eq!(count(&w, "breaker_opened_total"), 0);
}
