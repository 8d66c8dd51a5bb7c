//! What may be retried (never a POST without a key, never a 4xx but 408/409/429) and how long a
//! `Retry-After` makes the retry wait.

use std::time::Duration;

use breakwater_host_tests::{ms, Reply, StreamId, World};
use serde_json::{json, Value};

use crate::common::{assert_no_errors, count, response, retry_only, skipped, world, CLUSTER};

fn gaps(w: &World) -> Vec<Duration> {
    let at: Vec<Duration> = w
        .upstream_attempts(CLUSTER)
        .iter()
        .map(|a| a.request.at)
        .collect();
    at.windows(2).map(|p| p[1] - p[0]).collect()
}

/// Retries after exactly 100 ms (no jitter) unless told otherwise.
fn retrying(extra: Value) -> World {
    let mut retry = json!({ "base_delay": "100ms", "jitter": false, "max_delay": "5s" });
    if let (Some(r), Some(e)) = (retry.as_object_mut(), extra.as_object()) {
        r.extend(e.clone());
    }
    world(2, &retry_only(retry))
}

fn send(w: &mut World, method: &str, key: Option<&str>) -> StreamId {
    let mut request = w.request(0).method(method).path("/charge").cluster(CLUSTER);
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    let s = request.body("amount=5").send();
    w.run_until_idle();
    s
}

#[test]
fn a_post_without_an_idempotency_key_is_never_retried() {
    let mut w = retrying(json!({}));
    w.upstream(CLUSTER, Reply::status(503));
    let s = send(&mut w, "POST", None);
    assert_eq!(
        w.upstream_attempts(CLUSTER).len(),
        1,
        "a POST may create a record twice"
    );
    let r = response(&w, s);
    assert_eq!(r.status, 503, "the client gets the failure as it came");
    assert_eq!(r.header("x-breakwater-attempts"), None);
    assert_eq!(
        skipped(&w, "not_eligible"),
        1,
        "a retry was wanted but not allowed"
    );
    assert_eq!(count(&w, "retries_total"), 0);
}

#[test]
fn a_post_with_an_idempotency_key_is_retried_with_its_key() {
    let mut w = retrying(json!({}));
    w.upstream(CLUSTER, Reply::sequence([Reply::status(503), Reply::ok()]));
    let s = send(&mut w, "POST", Some("order-42"));
    let attempts = w.upstream_attempts(CLUSTER);
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[1].request.method(), "POST");
    assert_eq!(
        attempts[1].request.header("idempotency-key"),
        Some("order-42")
    );
    assert_eq!(attempts[1].request.body, b"amount=5");
    assert_eq!(response(&w, s).status, 200);
}

#[test]
fn the_idempotency_header_name_comes_from_the_policy() {
    let mut w = retrying(json!({ "idempotency_header": "x-request-key", "methods": ["GET"] }));
    w.upstream(CLUSTER, Reply::sequence([Reply::status(503), Reply::ok()]));
    send(&mut w, "PATCH", Some("ignored: wrong header"));
    assert_eq!(
        w.upstream_attempts(CLUSTER).len(),
        1,
        "idempotency-key is not this policy's"
    );
    w.upstream(CLUSTER, Reply::sequence([Reply::status(503), Reply::ok()]));
    w.request(1)
        .method("PATCH")
        .header("x-request-key", "k1")
        .cluster(CLUSTER)
        .send();
    w.run_until_idle();
    assert_eq!(
        w.upstream_attempts(CLUSTER).len(),
        3,
        "x-request-key makes it retryable"
    );
}

#[test]
fn client_errors_400_and_404_are_never_retried_and_nothing_counts_as_skipped() {
    let mut w = retrying(json!({ "retry_on": ["5xx", "reset", "connect-failure", 429, 409] }));
    for status in [400, 404] {
        w.upstream(CLUSTER, Reply::status(status));
        let s = send(&mut w, "GET", None);
        assert_eq!(response(&w, s).status, status);
    }
    assert_eq!(w.upstream_attempts(CLUSTER).len(), 2, "one attempt each");
    for reason in ["not_eligible", "budget", "deadline", "breaker"] {
        assert_eq!(
            skipped(&w, reason),
            0,
            "a 4xx is final, not a skipped retry"
        );
    }
}

#[test]
fn a_429_is_retried_only_when_listed() {
    let mut w = retrying(json!({}));
    w.upstream(CLUSTER, Reply::status(429));
    send(&mut w, "GET", None);
    assert_eq!(
        w.upstream_attempts(CLUSTER).len(),
        1,
        "429 is not in the default retry_on"
    );

    let mut w = retrying(json!({ "retry_on": ["5xx", 429] }));
    w.upstream(CLUSTER, Reply::sequence([Reply::status(429), Reply::ok()]));
    let s = send(&mut w, "GET", None);
    assert_eq!(
        response(&w, s).status,
        200,
        "listed by number, 429 is retried"
    );
}

#[test]
fn retry_after_in_seconds_sets_the_delay_on_the_first_attempt_and_on_retries() {
    let mut w = retrying(json!({ "retry_on": ["5xx", 429], "max_attempts": 3 }));
    w.upstream(
        CLUSTER,
        Reply::sequence([
            Reply::status(429).header("retry-after", "1"),
            Reply::status(503).header("retry-after", "2"),
            Reply::ok(),
        ]),
    );
    let s = send(&mut w, "GET", None);
    let gaps = gaps(&w);
    assert_eq!(gaps.len(), 2);
    for (gap, asked) in gaps.iter().zip([ms(1_000), ms(2_000)]) {
        assert!(
            *gap >= asked && *gap <= asked + asked / 10,
            "the upstream said when: never earlier, and spread by at most a tenth so clients told \
             the same value do not return in lockstep ({gap:?} for {asked:?})"
        );
    }
    assert_eq!(response(&w, s).header("x-breakwater-attempts"), Some("3"));
}

#[test]
fn retry_after_as_an_http_date_waits_until_that_date() {
    let mut w = retrying(json!({ "retry_on": ["5xx", 429] }));
    // The world starts at 2026-01-01T00:00:00Z (a Thursday) and the request arrives then.
    w.upstream(
        CLUSTER,
        Reply::sequence([
            Reply::status(429).header("retry-after", "Thu, 01 Jan 2026 00:00:03 GMT"),
            Reply::ok(),
        ]),
    );
    send(&mut w, "GET", None);
    let gaps = gaps(&w);
    assert!(
        gaps.len() == 1 && gaps[0] >= ms(3_000) && gaps[0] <= ms(3_300),
        "at the date, spread by at most a tenth: {gaps:?}"
    );
}

#[test]
fn a_retry_after_longer_than_max_delay_means_no_retry() {
    let mut w = retrying(json!({ "retry_on": ["5xx", 429], "max_delay": "2s" }));
    w.upstream(
        CLUSTER,
        Reply::sequence([Reply::status(503).header("retry-after", "120"), Reply::ok()]),
    );
    let s = send(&mut w, "GET", None);
    assert!(
        gaps(&w).is_empty(),
        "retrying sooner than the upstream asked would be rude, and waiting 2 minutes breaks the \
         policy's own max_delay: no retry"
    );
    let r = response(&w, s);
    assert_eq!(r.status, 503);
    assert_eq!(
        r.header("retry-after"),
        Some("120"),
        "the client gets the reply, Retry-After included"
    );
    assert_eq!(skipped(&w, "retry_after"), 1);
}

#[test]
fn retry_after_garbage_is_ignored_and_the_backoff_applies() {
    for garbage in ["soon", "-1", "1.5", "Thu, 32 Jan 2026 00:00:03 GMT", ""] {
        let mut w = retrying(json!({}));
        w.upstream(
            CLUSTER,
            Reply::sequence([
                Reply::status(503).header("retry-after", garbage),
                Reply::ok(),
            ]),
        );
        let s = send(&mut w, "GET", None);
        assert_eq!(gaps(&w), vec![ms(100)], "{garbage:?}: the backoff's 100 ms");
        assert_eq!(response(&w, s).status, 200);
        assert_no_errors(&w);
    }
}

#[test]
fn retry_after_is_ignored_when_the_policy_says_so() {
    let mut w = retrying(json!({ "respect_retry_after": false }));
    w.upstream(
        CLUSTER,
        Reply::sequence([Reply::status(503).header("retry-after", "3"), Reply::ok()]),
    );
    send(&mut w, "GET", None);
    assert_eq!(gaps(&w), vec![ms(100)]);
}

#[test]
fn a_body_over_max_request_body_is_forwarded_but_not_retried() {
    let mut w = retrying(json!({ "max_request_body": 8 }));
    w.upstream(CLUSTER, Reply::status(503));
    let s = w
        .request(0)
        .method("PUT")
        .body("123456789")
        .cluster(CLUSTER)
        .send();
    w.run_until_idle();
    let attempts = w.upstream_attempts(CLUSTER);
    assert_eq!(attempts.len(), 1, "9 bytes > 8: not kept, so not retried");
    assert_eq!(
        attempts[0].request.body, b"123456789",
        "but forwarded whole"
    );
    assert_eq!(response(&w, s).status, 503);
    assert_eq!(skipped(&w, "not_eligible"), 1);

    w.upstream(CLUSTER, Reply::sequence([Reply::status(503), Reply::ok()]));
    let s = w
        .request(1)
        .method("PUT")
        .body("12345678")
        .cluster(CLUSTER)
        .send();
    w.run_until_idle();
    assert_eq!(response(&w, s).status, 200, "8 bytes fit and are replayed");
    assert_eq!(w.upstream_attempts(CLUSTER)[2].request.body, b"12345678");
}

#[test]
fn a_request_with_a_header_value_that_is_not_utf8_is_forwarded_as_is_but_not_retried() {
    let mut w = retrying(json!({}));
    w.upstream(CLUSTER, Reply::status(503));
    let s = w
        .request(0)
        .header_bytes("x-name", b"Jos\xe9")
        .header_bytes("x-breakwater-attempt", b"\xff")
        .cluster(CLUSTER)
        .send();
    w.run_until_idle();
    let attempts = w.upstream_attempts(CLUSTER);
    assert_eq!(
        attempts.len(),
        1,
        "the SDK can only send UTF-8 values, so a request it could not replay is not retried"
    );
    let sent = &attempts[0].request;
    assert_eq!(
        sent.headers.get_bytes("x-name"),
        Some(&b"Jos\xe9"[..]),
        "passed through"
    );
    assert_eq!(
        sent.headers.get_bytes("x-breakwater-attempt"),
        None,
        "removed all the same"
    );
    assert_eq!(response(&w, s).status, 503);
    assert_eq!(skipped(&w, "not_eligible"), 1);
    assert_no_errors(&w);
}

#[test]
fn grpc_requests_and_tunnels_are_never_retried() {
    let mut w = retrying(json!({}));
    w.upstream(CLUSTER, Reply::status(503));
    let grpc = w
        .request(0)
        .method("POST")
        .path("/shop.Cart/Add")
        .header("content-type", "application/grpc")
        .header("idempotency-key", "k1")
        .body("\0\0\0\0\0")
        .cluster(CLUSTER)
        .send();
    w.run_until_idle();
    assert_eq!(response(&w, grpc).status, 503);
    assert_eq!(
        skipped(&w, "grpc"),
        1,
        "a retried gRPC response cannot be relayed intact: not retried, and said so"
    );
    let websocket = w
        .request(0)
        .method("GET")
        .path("/chat")
        .header("upgrade", "websocket")
        .header("connection", "upgrade")
        .cluster(CLUSTER)
        .send();
    w.run_until_idle();
    assert_eq!(response(&w, websocket).status, 503);
    assert_eq!(
        w.upstream_attempts(CLUSTER).len(),
        2,
        "neither was sent twice"
    );
}
