//! The retry budget: retries per window across all workers, pending ones included, and the
//! request counts that workers add to it in batches.

use breakwater_host_tests::{ms, Reply, StreamId, World};
use serde_json::{json, Value};

use crate::common::{budget_key, response, retries_sent, retry_only, skipped, world, CLUSTER};

/// Two attempts at most; retries after exactly 50 ms.
fn world_with(retry: Value) -> World {
    let mut r = json!({ "jitter": false, "base_delay": "50ms", "max_attempts": 2 });
    if let (Some(r), Some(e)) = (r.as_object_mut(), retry.as_object()) {
        r.extend(e.clone());
    }
    world(2, &retry_only(r))
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
        "budget": { "ratio": 0.5, "min_per_second": 0, "window": "10s" }
    }));
    w.upstream(CLUSTER, Reply::status(503).after(ms(5)));
    failing_together(&mut w, 4);
    assert_eq!(retries_sent(&w, CLUSTER).len(), 2, "0.5 × 4 requests");
    assert_eq!(skipped(&w, "budget"), 2);
}

#[test]
fn without_a_budget_every_failure_may_retry() {
    let mut w = world_with(json!({ "budget": null }));
    w.upstream(CLUSTER, Reply::status(503).after(ms(5)));
    failing_together(&mut w, 20);
    assert_eq!(retries_sent(&w, CLUSTER).len(), 20);
    assert!(w.shared_data(budget_key(CLUSTER)).is_none());
}

/// Half a retry per request, no floor.
fn by_ratio() -> World {
    world_with(json!({ "budget": { "ratio": 0.5, "min_per_second": 0, "window": "10s" } }))
}

/// `n` healthy requests on worker 1, at once.
fn healthy_on_worker_1(w: &mut World, n: usize) {
    w.upstream(CLUSTER, Reply::ok());
    for _ in 0..n {
        w.request(1).cluster(CLUSTER).send();
    }
    w.run_until_idle();
}

/// Whether a failing request on worker 0 gets its retry.
fn failure_on_worker_0_is_retried(w: &mut World) -> bool {
    let before = retries_sent(w, CLUSTER).len();
    w.upstream(CLUSTER, Reply::sequence([Reply::status(503), Reply::ok()]));
    w.request(0).cluster(CLUSTER).send();
    w.run_until_idle();
    retries_sent(w, CLUSTER).len() > before
}

#[test]
fn another_workers_requests_reach_the_budget_in_batches_of_32() {
    let mut w = by_ratio();
    healthy_on_worker_1(&mut w, 31);
    assert!(
        !failure_on_worker_0_is_retried(&mut w),
        "31 requests are still counted only on worker 1: 0.5 × 1 request allows no retry"
    );
    assert_eq!(skipped(&w, "budget"), 1);
    healthy_on_worker_1(&mut w, 1);
    assert!(
        failure_on_worker_0_is_retried(&mut w),
        "the 32nd request flushed worker 1's count: 0.5 × 34 allows retries"
    );
}

#[test]
fn another_workers_requests_reach_the_budget_after_a_second_at_the_latest() {
    let mut w = by_ratio();
    healthy_on_worker_1(&mut w, 5);
    w.advance(ms(999));
    healthy_on_worker_1(&mut w, 1);
    assert!(
        !failure_on_worker_0_is_retried(&mut w),
        "6 requests within a second: not yet"
    );

    let mut w = by_ratio();
    healthy_on_worker_1(&mut w, 5);
    w.advance(ms(1_000));
    healthy_on_worker_1(&mut w, 1);
    assert!(
        failure_on_worker_0_is_retried(&mut w),
        "a request a second after the first flushes all 6: 0.5 × 7 allows a retry"
    );
}
