//! Upstreams that reset mid-body (`Reply::reset_mid_body`), as measured on Envoy 1.40
//! (`envoy/tests/faults/mid_body.rs`):
//! - a 503 that Breakwater holds for a retry never reached the client, so Envoy's router answers
//!   with its own 502 (flag UPE, `upstream_reset_after_response_started{protocol_error}`) past
//!   the filter and ends the stream. The filter only sees the stream end; it reads that outcome
//!   (`Outcome::of_ended_stream`), counts it as the request's failure, and drops the retry it
//!   held (giving its budget back, or dropping the answer of one in flight);
//! - a 2xx already flowing to the client can only be cut: the client sees a reset, and nothing
//!   retries it;
//! - a client that left first is not a failure of the upstream.
//!
//! An upstream whose stream is reset right after its head (`Reply::reset_after_headers`: an
//! HTTP/2 upstream's `RST_STREAM`) takes the same path in Envoy's router
//! (`Filter::onUpstreamReset`), with a remote reset's 503 (flag UR,
//! `upstream_reset_after_response_started{remote_reset}`) instead of the 502: the last
//! scenarios check that Breakwater treats it alike. (An HTTP/1.1 upstream that resets its
//! connection right after the head gets the 502 of a reset mid-body: measured in
//! `envoy/tests/faults/mid_body.rs`.)

#[allow(dead_code)] // the scenarios use some of the checks
#[path = "../faults/invariants.rs"]
mod invariants;

use breakwater_host_tests::{flags, ms, Reply, Source, StreamState, World};
use serde_json::{json, Value};

use self::invariants::Invariants;
use crate::common::{
    assert_no_errors, count, get, is_fallback, policy, response, retries_sent, skipped, world,
    CLUSTER,
};

const DETAILS: &str = "upstream_reset_after_response_started{protocol_error}";

/// A breaker of `threshold` failures; two attempts 200 ms apart (no jitter), a budget of one
/// retry per 10 s window.
fn held_policy(threshold: u32) -> Value {
    policy(
        json!({ "failure_threshold": threshold, "timeout": "30s" }),
        json!({
            "max_attempts": 2, "base_delay": "200ms", "jitter": false,
            "budget": { "ratio": 0.0, "min_per_second": 1, "window": "10s" }
        }),
    )
}

/// How a held 503's upstream fails after its head, and the reply Envoy then sends past the
/// filter.
#[derive(Debug, Clone, Copy)]
struct Cut {
    status: u16,
    flag: u64,
    details: &'static str,
}

/// A reset mid-body: what an HTTP/1.1 upstream gets (measured).
const MID_BODY: Cut = Cut {
    status: 502,
    flag: flags::UPSTREAM_PROTOCOL_ERROR,
    details: DETAILS,
};

/// A remote reset right after the head: what the router gives a stream reset.
const AFTER_HEADERS: Cut = Cut {
    status: 503,
    flag: flags::UPSTREAM_REMOTE_RESET,
    details: "upstream_reset_after_response_started{remote_reset}",
};

/// Asserts that `s` got Envoy's own reply for `cut` under a held response, at `at`.
#[track_caller]
fn assert_envoys_reply(
    w: &World,
    s: breakwater_host_tests::StreamId,
    at: std::time::Duration,
    cut: Cut,
) {
    let r = response(w, s);
    assert_eq!(r.status, cut.status, "{r:?}");
    assert_eq!(r.source, Source::Envoy);
    assert_eq!(r.flags, cut.flag);
    assert_eq!(r.details, cut.details);
    assert_eq!(r.at, at);
    assert_eq!(
        r.header("x-breakwater-attempts"),
        None,
        "Envoy's reply, not Breakwater's"
    );
}

/// After Envoy ended the held stream `s` at `at`: the retry it held never goes out, the reply
/// is the request's one failure, the tick is off, and the retry's budget came back (the next
/// request, on the other worker, retries).
#[track_caller]
fn the_held_retry_is_dropped_and_its_budget_given_back(
    w: &mut World,
    policy: &Value,
    s: breakwater_host_tests::StreamId,
) {
    assert_eq!(
        w.tick_period(0),
        Some(ms(1_000) - w.now()),
        "the 503 was held for a retry, which nothing waits for any more: the tick is left to \
         the flush of the worker's counts, due a second after the request"
    );
    w.advance(ms(1_000));
    assert!(
        retries_sent(w, CLUSTER).is_empty(),
        "the retry of the ended stream never reached the upstream"
    );
    assert_eq!(w.upstream_attempts(CLUSTER).len(), 1);
    assert_eq!(
        count(w, "failures_total"),
        1,
        "Envoy's reply is the request's one outcome, and a failure"
    );
    assert_eq!(count(w, "retries_total"), 0);
    assert_eq!(count(w, "retries_exhausted_total"), 0);
    assert!(w.late_actions().is_empty(), "{:?}", w.late_actions());
    Invariants {
        world: &mut *w,
        policy,
        streams: &[s],
    }
    .hold();

    w.upstream(CLUSTER, Reply::sequence([Reply::status(503), Reply::ok()]));
    let next = get(w, 1);
    w.advance(ms(300));
    assert_eq!(response(w, next).status, 200);
    assert_eq!(response(w, next).header("x-breakwater-attempts"), Some("2"));
    assert_eq!(skipped(w, "budget"), 0);
    assert_no_errors(w);
}

/// Three held 503s whose upstream fails with `reply` open a breaker of threshold 3; the next
/// request gets the fallback.
fn three_held_503s_open_the_breaker(reply: Reply, cut: Cut) {
    let policy = held_policy(3);
    let mut w = world(2, &policy);
    w.upstream(CLUSTER, reply);
    let ended: Vec<_> = (0..3)
        .map(|i| {
            let s = get(&mut w, i % 2);
            w.advance(ms(10));
            s
        })
        .collect();
    for (i, s) in ended.iter().enumerate() {
        assert_envoys_reply(&w, *s, ms(10 * i as u64), cut);
    }
    assert_eq!(count(&w, "failures_total"), 3);
    assert_eq!(count(&w, "breaker_opened_total"), 1, "3 failures of 3");
    assert_eq!(w.upstream_attempts(CLUSTER).len(), 3, "no retry went out");
    let next = get(&mut w, 1);
    assert!(
        is_fallback(&response(&w, next)),
        "the breaker is open: {:?}",
        response(&w, next)
    );
    assert_eq!(
        w.upstream_attempts(CLUSTER).len(),
        3,
        "the upstream is spared"
    );
    let mut all = ended;
    all.push(next);
    w.run_until_idle();
    Invariants {
        world: &mut w,
        policy: &policy,
        streams: &all,
    }
    .hold();
    assert_no_errors(&w);
}

#[test]
fn a_held_503_cut_mid_body_while_its_retry_waits_is_envoys_502_and_one_failure() {
    let policy = held_policy(5);
    let mut w = world(2, &policy);
    w.upstream(CLUSTER, Reply::status(503).reset_mid_body_after(ms(50)));
    let s = get(&mut w, 0);
    assert_eq!(
        w.tick_period(0),
        Some(ms(200)),
        "the 503 is held; its retry waits for the tick"
    );
    w.advance(ms(50));
    assert_envoys_reply(&w, s, ms(50), MID_BODY);
    the_held_retry_is_dropped_and_its_budget_given_back(&mut w, &policy, s);
}

#[test]
fn three_held_503s_cut_mid_body_open_the_breaker() {
    three_held_503s_open_the_breaker(Reply::status(503).reset_mid_body(), MID_BODY);
}

#[test]
fn a_held_503_cut_mid_body_while_its_retry_is_in_flight_drops_the_retrys_answer() {
    let policy = held_policy(5);
    let mut w = world(1, &policy);
    w.upstream(
        CLUSTER,
        Reply::sequence([
            Reply::status(503).reset_mid_body_after(ms(250)),
            Reply::ok().after(ms(200)),
        ]),
    );
    let s = get(&mut w, 0);
    w.advance(ms(249));
    assert_eq!(
        retries_sent(&w, CLUSTER).len(),
        1,
        "the retry left at 200 ms and is in flight"
    );
    assert_eq!(w.stream_state(s), StreamState::Open);
    w.advance(ms(1));
    assert_envoys_reply(&w, s, ms(250), MID_BODY);

    w.advance(ms(1_000));
    let sent = retries_sent(&w, CLUSTER);
    assert_eq!(sent.len(), 1);
    assert!(
        sent[0].delivered,
        "its 200 came back to the root at 400 ms, which dropped it"
    );
    assert!(
        w.late_actions().is_empty(),
        "nothing was sent to (or resumed in) the ended stream: {:?}",
        w.late_actions()
    );
    assert_eq!(count(&w, "failures_total"), 1, "the 502 is the outcome");
    assert_eq!(
        count(&w, "retry_successes_total"),
        0,
        "the late 200 answered no client"
    );
    assert_eq!(count(&w, "retries_total"), 1);
    assert_eq!(w.tick_period(0), None);
    Invariants {
        world: &mut w,
        policy: &policy,
        streams: &[s],
    }
    .hold();
    assert_no_errors(&w);
}

#[test]
fn a_client_that_leaves_while_its_503_is_held_is_that_one_failure_even_if_the_upstream_resets_later(
) {
    let policy = held_policy(1);
    let mut w = world(1, &policy);
    w.upstream(CLUSTER, Reply::status(503).reset_mid_body_after(ms(100)));
    let s = w
        .request(0)
        .cluster(CLUSTER)
        .disconnect_after(ms(50))
        .send();
    w.advance(ms(1_000));
    assert_eq!(w.stream_state(s), StreamState::Disconnected);
    assert!(retries_sent(&w, CLUSTER).is_empty());
    assert_eq!(
        count(&w, "failures_total"),
        1,
        "its first attempt failed: a client leaving before the retry does not erase that, and the \
         later reset of the response it no longer waits for is not counted again"
    );
    assert_eq!(
        count(&w, "breaker_opened_total"),
        1,
        "a threshold of 1 opens on it"
    );
    Invariants {
        world: &mut w,
        policy: &policy,
        streams: &[s],
    }
    .hold();

    w.upstream(CLUSTER, Reply::ok());
    let next = get(&mut w, 0);
    assert!(
        is_fallback(&response(&w, next)),
        "the breaker opened on that failure"
    );
    assert_no_errors(&w);
}

#[test]
fn a_2xx_cut_mid_body_reaches_the_client_as_a_reset_and_is_not_retried() {
    let policy = held_policy(1);
    let mut w = world(1, &policy);
    w.upstream(
        CLUSTER,
        Reply::ok().body("a body that never ends").reset_mid_body(),
    );
    let s = get(&mut w, 0);
    w.advance(ms(1_000));
    assert_eq!(
        w.stream_state(s),
        StreamState::Reset {
            details: DETAILS.into()
        },
        "the head went on to the client: Envoy can only cut it"
    );
    assert!(w.response(s).is_none());
    assert!(retries_sent(&w, CLUSTER).is_empty(), "nothing retries it");
    assert_eq!(w.upstream_attempts(CLUSTER).len(), 1);
    assert_eq!(
        count(&w, "failures_total"),
        0,
        "judged a success at its headers, as in Envoy"
    );
    assert_eq!(count(&w, "breaker_opened_total"), 0);
    let invariants = Invariants {
        world: &mut w,
        policy: &policy,
        streams: &[s],
    };
    invariants.requests_counted_once();
    invariants.retries_counted_as_they_reached_the_upstream();
    invariants.budget_balanced();
    invariants.timers_off();
    assert_no_errors(&w);
}

#[test]
fn a_retry_cut_mid_body_is_a_failed_attempt_and_is_retried() {
    let policy = policy(
        json!({ "failure_threshold": 5 }),
        json!({ "max_attempts": 3, "base_delay": "100ms", "jitter": false }),
    );
    let mut w = world(1, &policy);
    w.upstream(
        CLUSTER,
        Reply::sequence([
            Reply::status(503),
            Reply::ok().reset_mid_body_after(ms(10)),
            Reply::ok().body("whole"),
        ]),
    );
    let s = get(&mut w, 0);
    w.run_until_idle();
    let r = response(&w, s);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body_text(), "whole", "never the cut retry's half body");
    assert_eq!(r.header("x-breakwater-attempts"), Some("3"));
    assert_eq!(count(&w, "retries_total"), 2);
    assert_eq!(count(&w, "retry_successes_total"), 1);
    assert_no_errors(&w);
}

#[test]
fn a_held_503_whose_upstream_resets_after_the_headers_is_envoys_503_and_one_failure() {
    let policy = held_policy(5);
    let mut w = world(2, &policy);
    w.upstream(
        CLUSTER,
        Reply::status(503).after(ms(20)).reset_after_headers(),
    );
    let s = get(&mut w, 0);
    w.advance(ms(19));
    assert_eq!(w.stream_state(s), StreamState::Open);
    w.advance(ms(1));
    assert_envoys_reply(&w, s, ms(20), AFTER_HEADERS);
    assert_eq!(
        response(&w, s).body_text(),
        "upstream connect error or disconnect/reset before headers. reset reason: remote reset"
    );
    the_held_retry_is_dropped_and_its_budget_given_back(&mut w, &policy, s);
}

#[test]
fn three_held_503s_reset_after_the_headers_open_the_breaker() {
    three_held_503s_open_the_breaker(Reply::status(503).reset_after_headers(), AFTER_HEADERS);
}
