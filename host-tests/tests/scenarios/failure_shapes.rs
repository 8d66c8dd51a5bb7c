//! How failures reach the filter, and that each is a failure for the breaker and retried per
//! `retry_on`: on the client's own stream Envoy's local replies (refused 503 UF, reset 503 UR,
//! route timeout 504 UT); on a dispatched retry a synthesized 503 or 504, or a callback with no
//! headers at all (a reset after the response started).

use breakwater_host_tests::{ms, Reply, Source, StreamState, World};
use serde_json::{json, Value};

use crate::common::{count, policy, response, retries_sent, world, CLUSTER};

/// Every attempt counts (`count_retries`), the breaker never trips here; retries after 10 ms.
fn counting(retry_on: Value, max_attempts: u32) -> World {
    world(
        2,
        &policy(
            json!({ "failure_threshold": 100, "count_retries": true }),
            json!({ "base_delay": "10ms", "jitter": false, "max_attempts": max_attempts,
                    "retry_on": retry_on, "per_try_timeout": "200ms" }),
        ),
    )
}

#[test]
fn every_failure_shape_of_a_dispatched_retry_is_a_failure_and_is_retried() {
    let mut w = counting(json!(["reset", "connect-failure", "timeout"]), 6);
    w.upstream(
        CLUSTER,
        Reply::sequence([
            Reply::refuse(),                   // stream: Envoy's 503, flag UF
            Reply::refuse(),                   // call: a synthesized 503, connection failure
            Reply::reset(),                    // call: a synthesized 503, remote reset
            Reply::ok().after(ms(500)),        // call: a synthesized 504 at per_try_timeout
            Reply::ok().reset_after_headers(), // call: the callback gets no headers
            Reply::ok().body("finally"),
        ]),
    );
    let s = w.request(0).cluster(CLUSTER).send();
    w.run_until_idle();
    let r = response(&w, s);
    assert_eq!((r.status, r.body_text().as_str()), (200, "finally"));
    assert_eq!(r.header("x-breakwater-attempts"), Some("6"));
    assert_eq!(retries_sent(&w, CLUSTER).len(), 5);
    assert_eq!(
        count(&w, "failures_total"),
        5,
        "refused, refused, reset, timed out and reset-after-headers: five failures"
    );
    assert_eq!(count(&w, "retry_successes_total"), 1);
}

#[test]
fn a_failure_shape_not_in_retry_on_is_final() {
    for (shape, reply) in [
        ("refused", Reply::refuse()),
        ("reset", Reply::reset()),
        ("timed out", Reply::ok().after(ms(500))),
        ("reset after headers", Reply::ok().reset_after_headers()),
    ] {
        // Only `5xx` is retried: a connection failure, reset or timeout is not a 5xx reply,
        // whatever status Envoy put on it.
        let mut w = counting(json!(["5xx"]), 3);
        w.upstream(CLUSTER, Reply::sequence([Reply::status(500), reply]));
        let s = w.request(0).cluster(CLUSTER).send();
        w.run_until_idle();
        assert_eq!(
            retries_sent(&w, CLUSTER).len(),
            1,
            "{shape}: the 500 was retried once"
        );
        // A call that comes back with no headers after an answered attempt may be a response
        // Envoy dropped for its size (it reports those as plain resets): no evidence for the
        // breaker, counted apart.
        let inconclusive = shape == "reset after headers";
        assert_eq!(
            count(&w, "failures_total"),
            if inconclusive { 1 } else { 2 },
            "{shape}: a failure for the breaker unless inconclusive"
        );
        assert_eq!(
            count(&w, "retry_responses_dropped_total"),
            u64::from(inconclusive),
            "{shape}"
        );
        assert_eq!(
            response(&w, s).header("x-breakwater-attempts"),
            Some("2"),
            "{shape}: the client gets the second attempt's outcome"
        );
    }
}

#[test]
fn the_client_gets_envoys_reply_for_a_final_retry_that_failed() {
    let cases = [
        (Reply::refuse(), 503, "reset reason: connection failure"),
        (Reply::reset(), 503, "reset reason: remote reset"),
        (Reply::ok().after(ms(500)), 504, "upstream request timeout"),
    ];
    for (reply, status, body) in cases {
        let mut w = counting(json!(["5xx", "reset", "connect-failure", "timeout"]), 2);
        w.upstream(CLUSTER, Reply::sequence([Reply::status(503), reply]));
        let s = w.request(0).cluster(CLUSTER).send();
        w.run_until_idle();
        let r = response(&w, s);
        assert_eq!(r.status, status, "{body}");
        assert!(
            r.body_text().contains(body),
            "{body:?} in {:?}",
            r.body_text()
        );
        assert_eq!(r.header("x-breakwater-attempts"), Some("2"));
        assert_eq!(r.source, Source::Filter);
    }
}

#[test]
fn a_final_retry_reset_after_an_answered_attempt_leaves_the_client_that_answer() {
    // A dispatched retry that comes back with no headers after the first attempt was answered
    // may be a response Envoy dropped for its size: the client keeps the last real answer.
    let mut w = counting(json!(["5xx", "reset", "connect-failure", "timeout"]), 2);
    w.upstream(
        CLUSTER,
        Reply::sequence([
            Reply::status(503).body("busy"),
            Reply::ok().reset_after_headers(),
        ]),
    );
    let s = w.request(0).cluster(CLUSTER).send();
    w.run_until_idle();
    let r = response(&w, s);
    assert_eq!((r.status, r.body_text().as_str()), (503, "busy"));
    assert_eq!(r.header("x-breakwater-attempts"), Some("2"));
    assert_eq!(r.source, Source::Upstream);
}

/// A way for the upstream to fail.
type Failure = fn() -> Reply;

#[test]
fn a_refused_or_reset_first_attempt_is_a_failure_and_is_retried_by_default() {
    for (shape, failure) in [
        ("refused", Reply::refuse as Failure),
        ("reset", Reply::reset),
    ] {
        let p = policy(
            json!({ "failure_threshold": 2 }),
            json!({ "base_delay": "10ms" }),
        );
        let mut w = world(1, &p);
        w.upstream(CLUSTER, Reply::sequence([failure(), Reply::ok()]));
        let s = w.request(0).cluster(CLUSTER).send();
        w.run_until_idle();
        assert_eq!(
            response(&w, s).status,
            200,
            "{shape}: retried, and the retry succeeded"
        );
        assert_eq!(
            count(&w, "failures_total"),
            0,
            "{shape}: the request's outcome is its last"
        );

        w.upstream(CLUSTER, failure());
        let s = w.request(0).method("POST").cluster(CLUSTER).send();
        w.run_until_idle();
        let r = response(&w, s);
        assert_eq!(
            (r.status, r.source),
            (503, Source::Envoy),
            "{shape}: Envoy's own 503"
        );
        assert_eq!(
            count(&w, "failures_total"),
            1,
            "{shape}: counted by the breaker"
        );
    }
}

#[test]
fn a_first_attempt_that_times_out_is_a_failure_retried_only_when_timeout_is_listed() {
    let run = |retry_on: Value| {
        let mut w = world(
            1,
            &policy(
                json!({ "failure_threshold": 1 }),
                json!({ "base_delay": "10ms", "retry_on": retry_on }),
            ),
        );
        w.upstream(CLUSTER, Reply::sequence([Reply::timeout(), Reply::ok()]));
        let s = w.request(0).cluster(CLUSTER).timeout(ms(300)).send();
        w.run_until_idle();
        (response(&w, s), count(&w, "breaker_opened_total"))
    };
    let (r, opened) = run(json!(["5xx", "reset", "connect-failure"]));
    assert_eq!(r.status, 504, "the route timeout's 504 is final");
    assert_eq!(r.source, Source::Envoy);
    assert_eq!(opened, 1, "and a failure: threshold 1 opened the breaker");

    let (r, opened) = run(json!(["timeout"]));
    assert_eq!(r.status, 200, "listed: the timed-out request was retried");
    assert_eq!(r.header("x-breakwater-attempts"), Some("2"));
    assert_eq!(opened, 0);
}

#[test]
fn a_reset_after_the_response_started_on_the_stream_counts_as_the_reply_it_began() {
    let mut w = world(1, &policy(json!({ "failure_threshold": 1 }), json!({})));
    w.upstream(
        CLUSTER,
        Reply::status(503).body("partial").reset_after_headers(),
    );
    let s = w.request(0).method("POST").cluster(CLUSTER).send();
    w.run_until_idle();
    assert!(
        matches!(w.stream_state(s), StreamState::Reset { .. }),
        "the client saw a reset"
    );
    assert_eq!(
        count(&w, "breaker_opened_total"),
        1,
        "its 503 headers were judged: a failure opens a threshold of 1"
    );
}
