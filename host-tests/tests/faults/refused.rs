//! Retries Envoy refuses at once: `dispatch_http_call` answers `InternalFailure` (no healthy
//! upstream, the cluster's own circuit breaker overflowing) or `BadArgument` (the cluster went
//! away). Nothing reached the upstream, so the refused dispatch is no retry: it is counted as a
//! skipped retry (reason `refused`), not in `retries_total`, and its budget goes back. It still
//! uses one of the request's `max_attempts` (the filter did attempt it, and a cluster that keeps
//! refusing must not be retried forever), and the client gets the last response that did arrive.

use breakwater_host_tests::{ms, Refusal, Reply, World};
use serde_json::json;

use crate::common::{count, get, policy, response, retries_sent, skipped, world, CLUSTER};
use crate::invariants::{budgeted_retries, Invariants};
use crate::resilient;

fn refusals() -> [(&'static str, Refusal); 2] {
    [
        ("InternalFailure", Refusal::internal_failure().to(CLUSTER)),
        ("BadArgument", Refusal::bad_argument().to(CLUSTER)),
    ]
}

#[test]
fn a_refused_retry_is_no_retry_gives_its_budget_back_and_the_next_attempt_still_runs() {
    for (name, refusal) in refusals() {
        let policy = resilient(10);
        let mut w = world(2, &policy);
        w.upstream(
            CLUSTER,
            Reply::sequence([Reply::status(503), Reply::ok().body("third")]),
        );
        w.refuse_calls(refusal.times(1));
        let s = get(&mut w, 0);
        w.run_until_idle();

        let r = response(&w, s);
        assert_eq!(
            (r.status, r.body_text().as_str()),
            (200, "third"),
            "{name}: the attempt after the refused one ran"
        );
        assert_eq!(
            r.header("x-breakwater-attempts"),
            Some("3"),
            "{name}: three attempts, the refused one included"
        );
        let sent = retries_sent(&w, CLUSTER);
        assert_eq!(sent.len(), 1, "{name}: one retry reached the upstream");
        assert_eq!(
            sent[0].request.header("x-breakwater-attempt"),
            Some("3"),
            "{name}: as attempt 3"
        );
        assert_eq!(
            count(&w, "retries_total"),
            1,
            "{name}: the refused one is no retry"
        );
        assert_eq!(skipped(&w, "refused"), 1, "{name}");
        assert_eq!(
            budgeted_retries(&w, &policy),
            1,
            "{name}: the refused retry's budget went back"
        );
        assert_eq!(count(&w, "retry_successes_total"), 1);
        Invariants {
            world: &mut w,
            policy: &policy,
            streams: &[s],
        }
        .hold();
    }
}

#[test]
fn when_envoy_refuses_every_retry_the_client_gets_its_own_failure_after_max_attempts() {
    for (name, refusal) in refusals() {
        let policy = resilient(10);
        let mut w = world(2, &policy);
        w.upstream(CLUSTER, Reply::status(503).body("down"));
        w.refuse_calls(refusal);
        let streams = [get(&mut w, 0), get(&mut w, 1)];
        w.run_until_idle();
        for s in streams {
            let r = response(&w, s);
            assert_eq!(
                (r.status, r.body_text().as_str()),
                (503, "down"),
                "{name}: the held first response, resumed"
            );
            assert_eq!(r.header("x-breakwater-attempts"), Some("3"), "{name}");
        }
        assert_eq!(
            w.refused_calls().len(),
            4,
            "{name}: two refused retries each"
        );
        assert!(retries_sent(&w, CLUSTER).is_empty());
        assert_eq!(count(&w, "retries_exhausted_total"), 2, "{name}");
        assert_eq!(
            budgeted_retries(&w, &policy),
            0,
            "{name}: all four went back"
        );
        Invariants {
            world: &mut w,
            policy: &policy,
            streams: &streams,
        }
        .hold();
    }
}

#[test]
fn with_count_retries_each_refused_attempt_is_a_connect_failure_for_the_breaker() {
    let policy = policy(
        json!({ "failure_threshold": 3, "count_retries": true, "failure_on": ["connect-failure"] }),
        json!({ "max_attempts": 3, "base_delay": "100ms", "jitter": false }),
    );
    let mut w: World = world(1, &policy);
    w.upstream(CLUSTER, Reply::status(503));
    w.refuse_calls(Refusal::internal_failure());
    let s = get(&mut w, 0);
    w.run_until_idle();
    assert_eq!(response(&w, s).status, 503);
    assert_eq!(
        count(&w, "failures_total"),
        2,
        "the two refused attempts matched `connect-failure`, the 503 did not"
    );
    Invariants {
        world: &mut w,
        policy: &policy,
        streams: &[s],
    }
    .hold();
}

#[test]
fn the_breaker_hears_the_outcome_the_client_got_not_the_refusal_that_followed_it() {
    // Only 5xx counts; every retry is refused, so each client gets its first attempt's 503.
    let policy = policy(
        json!({ "failure_threshold": 2, "failure_on": ["5xx"] }),
        json!({ "max_attempts": 2, "base_delay": "100ms", "jitter": false }),
    );
    let mut w = world(1, &policy);
    w.upstream(CLUSTER, Reply::status(503));
    w.refuse_calls(Refusal::internal_failure());
    let streams = [get(&mut w, 0), get(&mut w, 0)];
    w.run_until_idle();
    for s in streams {
        assert_eq!(response(&w, s).status, 503);
    }
    assert_eq!(
        count(&w, "failures_total"),
        2,
        "each request ended with the 503 its client got: a 5xx failure"
    );
    assert_eq!(count(&w, "breaker_opened_total"), 1);
    Invariants {
        world: &mut w,
        policy: &policy,
        streams: &streams,
    }
    .hold();
}

#[test]
fn a_refused_attempt_does_not_reuse_the_retry_after_of_the_response_before_it() {
    let policy = policy(
        json!({ "failure_threshold": 10 }),
        json!({ "max_attempts": 4, "base_delay": "100ms", "max_delay": "10s", "jitter": false }),
    );
    let mut w = world(1, &policy);
    w.upstream(
        CLUSTER,
        Reply::sequence([
            Reply::status(503),
            Reply::status(503).header("retry-after", "2"),
            Reply::ok(),
        ]),
    );
    let s = get(&mut w, 0);
    w.advance(ms(2_050));
    w.refuse_calls(Refusal::internal_failure().times(1));
    w.run_until_idle();
    assert_eq!(response(&w, s).status, 200);
    let at: Vec<_> = retries_sent(&w, CLUSTER)
        .iter()
        .map(|a| a.request.at)
        .collect();
    assert!(
        at.len() == 2 && at[0] == ms(100) && at[1] >= ms(2_500) && at[1] <= ms(2_700),
        "attempt 3 (due 2.0-2.2 s after the retry-after, spread) was refused; attempt 4 waited \
         the backoff of its own turn, 400 ms, not the old retry-after again: {at:?}"
    );
    Invariants {
        world: &mut w,
        policy: &policy,
        streams: &[s],
    }
    .hold();
}
