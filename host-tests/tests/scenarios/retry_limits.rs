//! What stops retries: `max_attempts`, `per_try_timeout`, `deadline` and the budget, each with
//! the metric that says so.

use breakwater_host_tests::{ms, AttemptKind, Reply, StreamId, World};
use serde_json::{json, Value};

use crate::common::{count, response, retries_sent, retry_only, skipped, world, CLUSTER};

/// No jitter: delays are exactly `base_delay · 2^(n-1)`.
fn world_with(retry: Value) -> World {
    let mut r = json!({ "jitter": false, "max_delay": "10s" });
    if let (Some(r), Some(e)) = (r.as_object_mut(), retry.as_object()) {
        r.extend(e.clone());
    }
    world(2, &retry_only(r))
}

#[test]
fn max_attempts_bounds_the_attempts_and_counts_the_request_as_exhausted() {
    let mut w = world_with(json!({ "max_attempts": 4, "base_delay": "10ms" }));
    w.upstream(CLUSTER, Reply::status(503).body("down"));
    let s = w.request(0).cluster(CLUSTER).send();
    w.run_until_idle();
    assert_eq!(
        w.upstream_attempts(CLUSTER).len(),
        4,
        "4 attempts in all, the first included"
    );
    let r = response(&w, s);
    assert_eq!((r.status, r.body_text().as_str()), (503, "down"));
    assert_eq!(r.header("x-breakwater-attempts"), Some("4"));
    assert_eq!(count(&w, "retries_total"), 3);
    assert_eq!(count(&w, "retries_exhausted_total"), 1);
    for reason in ["not_eligible", "budget", "deadline", "breaker"] {
        assert_eq!(skipped(&w, reason), 0, "exhausted is not a skip");
    }
}

#[test]
fn max_attempts_of_one_turns_retries_off() {
    let mut w = world_with(json!({ "max_attempts": 1 }));
    w.upstream(CLUSTER, Reply::status(503));
    w.request(0).cluster(CLUSTER).send();
    w.run_until_idle();
    assert_eq!(w.upstream_attempts(CLUSTER).len(), 1);
    assert_eq!(
        count(&w, "retries_exhausted_total"),
        0,
        "nothing was wanted"
    );
}

#[test]
fn per_try_timeout_cuts_a_slow_retry_into_a_504_that_the_client_gets() {
    let mut w = world_with(json!({
        "base_delay": "100ms", "per_try_timeout": "300ms", "deadline": "10s",
        "retry_on": ["5xx"], "max_attempts": 3
    }));
    w.upstream(
        CLUSTER,
        Reply::sequence([Reply::status(503), Reply::ok().after(ms(2_000))]),
    );
    let s = w.request(0).cluster(CLUSTER).send();
    w.run_until_idle();
    let r = response(&w, s);
    assert_eq!(r.status, 504, "the retry timed out after per_try_timeout");
    assert_eq!(r.at, ms(100 + 300), "sent at 100 ms, given up 300 ms later");
    assert_eq!(
        w.upstream_attempts(CLUSTER).len(),
        2,
        "a timeout is not in this retry_on: no third attempt"
    );
    assert_eq!(r.header("x-breakwater-attempts"), Some("2"));
}

#[test]
fn per_try_timeout_counts_toward_the_deadline_so_a_retry_that_could_not_finish_is_skipped() {
    // Deadline 1 s. Retry 1 at 100 ms could finish by 100 + 600 = 700 ms; after it times out at
    // 700 ms, retry 2 (200 ms later) could only finish at 700 + 200 + 600 = 1500 ms.
    let mut w = world_with(json!({
        "base_delay": "100ms", "per_try_timeout": "600ms", "deadline": "1s",
        "retry_on": ["5xx", "timeout"], "max_attempts": 5
    }));
    w.upstream(
        CLUSTER,
        Reply::sequence([Reply::status(503), Reply::timeout()]),
    );
    let s = w.request(0).cluster(CLUSTER).send();
    w.run_until_idle();
    assert_eq!(w.upstream_attempts(CLUSTER).len(), 2);
    assert_eq!(skipped(&w, "deadline"), 1);
    assert_eq!(
        response(&w, s).status,
        504,
        "the last failure: the timed-out retry"
    );
}

#[test]
fn the_deadline_stops_retries_that_could_not_finish_in_time() {
    // Deadline 1 s, per try 300 ms. Retries wait 200, 400, 800 ms: retry 1 starts at 200 (ends by
    // 500), retry 2 at 600 (ends by 900), retry 3 would start at 1400: past the deadline.
    let mut w = world_with(json!({
        "base_delay": "200ms", "per_try_timeout": "300ms", "deadline": "1s", "max_attempts": 5
    }));
    w.upstream(CLUSTER, Reply::status(503));
    let s = w.request(0).cluster(CLUSTER).send();
    w.run_until_idle();
    let at: Vec<_> = w
        .upstream_attempts(CLUSTER)
        .iter()
        .map(|a| a.request.at)
        .collect();
    assert_eq!(at, vec![ms(0), ms(200), ms(600)]);
    assert_eq!(skipped(&w, "deadline"), 1);
    assert_eq!(count(&w, "retries_exhausted_total"), 0);
    assert_eq!(response(&w, s).header("x-breakwater-attempts"), Some("3"));
}

/// `n` GETs that fail, arriving together on worker 0.
fn failing_together(w: &mut World, n: usize) -> Vec<StreamId> {
    let streams = (0..n)
        .map(|_| w.request(0).cluster(CLUSTER).enqueue())
        .collect();
    w.run_until_idle();
    streams
}

#[test]
fn the_budget_floor_allows_min_per_second_retries_per_window_pending_ones_included() {
    // ratio 0: only the floor, 1 retry per second over a 1 s window.
    let mut w = world_with(json!({
        "base_delay": "50ms", "max_attempts": 2,
        "budget": { "ratio": 0.0, "min_per_second": 1, "window": "1s" }
    }));
    w.upstream(CLUSTER, Reply::status(503).after(ms(5)));
    let streams = failing_together(&mut w, 3);
    assert_eq!(
        retries_sent(&w, CLUSTER).len(),
        1,
        "one retry fits the floor"
    );
    assert_eq!(
        skipped(&w, "budget"),
        2,
        "the other two were refused by the budget"
    );
    for s in streams {
        assert_eq!(response(&w, s).status, 503, "every client got its failure");
    }
    w.advance(ms(1_000));
    failing_together(&mut w, 1);
    assert_eq!(
        retries_sent(&w, CLUSTER).len(),
        2,
        "a window later the budget has room again"
    );
}

#[test]
fn the_budget_ratio_grows_with_the_requests_this_worker_counted() {
    // ratio 0.5, no floor: 4 requests counted before the first withdrawal allow 2 retries.
    let mut w = world_with(json!({
        "base_delay": "50ms", "max_attempts": 2,
        "budget": { "ratio": 0.5, "min_per_second": 0, "window": "10s" }
    }));
    w.upstream(CLUSTER, Reply::status(503).after(ms(5)));
    failing_together(&mut w, 4);
    assert_eq!(retries_sent(&w, CLUSTER).len(), 2, "0.5 × 4 requests");
    assert_eq!(skipped(&w, "budget"), 2);
}

#[test]
fn without_a_budget_every_failure_may_retry() {
    let mut w = world_with(json!({ "base_delay": "50ms", "max_attempts": 2, "budget": null }));
    w.upstream(CLUSTER, Reply::status(503).after(ms(5)));
    failing_together(&mut w, 20);
    assert_eq!(retries_sent(&w, CLUSTER).len(), 20);
    assert!(w.shared_data(crate::common::budget_key(CLUSTER)).is_none());
}

#[test]
fn retries_are_dispatched_to_the_same_cluster() {
    let mut w = world_with(json!({ "base_delay": "10ms" }));
    w.upstream(CLUSTER, Reply::sequence([Reply::status(503), Reply::ok()]));
    w.request(1).cluster(CLUSTER).send();
    w.run_until_idle();
    let retry = &retries_sent(&w, CLUSTER)[0];
    assert_eq!(retry.request.cluster, CLUSTER);
    assert!(matches!(retry.request.kind, AttemptKind::Call { vm, .. } if vm == 1.into()));
}
