//! What stops retries: `max_attempts`, `per_try_timeout` and `deadline`, each with the metric
//! that says so (the budget has its own file, `budget.rs`).

use breakwater_host_tests::{ms, AttemptKind, Reply, World};
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
