//! Opening: consecutive failures counted across all workers open the cluster's breaker at
//! exactly `failure_threshold`; while open, the fallback answers and the upstream rests; other
//! clusters carry on.

use breakwater_host_tests::{ms, Interleaving, Reply, Source, StreamId};
use serde_json::json;

use crate::common::{
    answer_now, assert_no_errors, breaker_only, builder, count, fail_in_turn, flush, get,
    is_fallback, open_instants, open_times, response, state_gauge, world, CLUSTER, OTHER,
};

fn failing_world(workers: usize, threshold: u32) -> breakwater_host_tests::World {
    let mut w = world(
        workers,
        &breaker_only(json!({ "failure_threshold": threshold, "timeout": "30s" })),
    );
    w.upstream(CLUSTER, Reply::status(503));
    w
}

#[test]
fn failures_spread_over_four_workers_open_the_breaker_at_exactly_the_threshold() {
    let mut w = failing_world(4, 6);
    fail_in_turn(&mut w, 5);
    assert_eq!(
        w.upstream_attempts(CLUSTER).len(),
        5,
        "below the threshold every request is forwarded"
    );
    assert!(
        open_times(&w, CLUSTER).is_empty(),
        "5 failures of 6: still closed"
    );
    assert_eq!(state_gauge(&w, CLUSTER), Some(0));

    fail_in_turn(&mut w, 1);
    assert_eq!(
        open_times(&w, CLUSTER).len(),
        1,
        "the 6th failure, on a worker that saw only one of them, opens the breaker: the count \
         is shared, not per worker"
    );
    assert_eq!(count(&w, "breaker_opened_total"), 1);
    assert_eq!(count(&w, "failures_total"), 6);
    assert_eq!(state_gauge(&w, CLUSTER), Some(1), "the gauge says open");

    for worker in 0..4 {
        let s = get(&mut w, worker);
        assert!(
            is_fallback(&response(&w, s)),
            "worker {worker} rejects too: every worker sees the one breaker"
        );
    }
    assert_eq!(
        w.upstream_attempts(CLUSTER).len(),
        6,
        "no request reached the upstream"
    );
    assert!(
        w.logs_containing("OPEN after 6 consecutive failures").len() == 1,
        "one warning names the reason:\n{}",
        crate::common::log_text(&w)
    );
    assert_no_errors(&w);
}

#[test]
fn one_failure_on_each_of_four_workers_opens_a_threshold_of_four() {
    let mut w = failing_world(4, 4);
    fail_in_turn(&mut w, 4);
    assert_eq!(
        count(&w, "breaker_opened_total"),
        1,
        "4 workers × 1 failure = 4"
    );
}

#[test]
fn simultaneous_failures_on_four_workers_lose_no_count_under_preempted_read_modify_writes() {
    // Eight requests arrive at once, two per worker, and fail together; each worker may be
    // preempted between its read of the breaker and its compare-and-swap write.
    let mut preempted = 0;
    for seed in 0..8 {
        let mut w = builder(
            4,
            &breaker_only(json!({ "failure_threshold": 8, "timeout": "30s" })),
        )
        .interleaving(Interleaving::seeded(seed))
        .build()
        .expect("starts");
        w.upstream(CLUSTER, Reply::status(503).after(ms(5)));
        let streams: Vec<StreamId> = (0..8)
            .map(|i| w.request(i % 4).cluster(CLUSTER).enqueue())
            .collect();
        w.run_until_idle();
        preempted += usize::from(
            w.trace()
                .iter()
                .any(|t| t.contains("preempted in proxy_set_shared_data")),
        );
        assert_eq!(w.upstream_attempts(CLUSTER).len(), 8, "seed {seed}");
        assert_eq!(
            count(&w, "breaker_opened_total"),
            1,
            "seed {seed}: all 8 failures were counted once each, so the 8th opened the breaker"
        );
        assert!(streams.iter().all(|s| response(&w, *s).status == 503));
        assert!(
            is_fallback(&answer_now(&mut w, 3)),
            "seed {seed}: open after exactly 8"
        );
    }
    assert!(preempted > 0, "some seeds split a read from its write");
}

#[test]
fn a_success_between_failures_resets_the_consecutive_count() {
    let mut w = failing_world(2, 3);
    w.upstream(
        CLUSTER,
        Reply::sequence([
            Reply::status(503),
            Reply::status(503),
            Reply::ok(),
            Reply::status(503),
            Reply::status(503),
            Reply::status(503),
        ]),
    );
    fail_in_turn(&mut w, 5);
    assert_eq!(
        count(&w, "breaker_opened_total"),
        0,
        "2 failures, a success, 2 failures"
    );
    fail_in_turn(&mut w, 1);
    assert_eq!(
        count(&w, "breaker_opened_total"),
        1,
        "the third in a row opens"
    );
}

#[test]
fn an_open_breaker_serves_the_configured_fallback_with_a_correct_retry_after() {
    let fallback = json!({
        "status": 529,
        "headers": { "content-type": "application/json", "x-served-by": "breakwater" },
        "body": "{\"source\":\"fallback\"}"
    });
    let mut w = world(
        2,
        &breaker_only(json!({ "failure_threshold": 3, "timeout": "30s", "fallback": fallback })),
    );
    w.upstream(CLUSTER, Reply::status(503));
    fail_in_turn(&mut w, 3);
    let opened = open_instants(&w, CLUSTER)[0];
    let open_for = open_times(&w, CLUSTER)[0];
    assert!(
        (ms(27_000)..=ms(33_000)).contains(&open_for),
        "the open time is the timeout ±10% jitter: {open_for:?}"
    );

    for (i, wait) in [0u64, 10_000, 19_500].into_iter().enumerate() {
        w.advance_to(opened + ms(wait));
        let s = get(&mut w, i % 2);
        let r = response(&w, s);
        assert_eq!(r.status, 529, "the configured status");
        assert_eq!(
            r.source,
            Source::Filter,
            "the filter answered, not the upstream"
        );
        assert_eq!(r.body_text(), "{\"source\":\"fallback\"}");
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.header("x-served-by"), Some("breakwater"));
        assert_eq!(r.header("x-breakwater-breaker"), Some("open"));
        let left = (opened + open_for).saturating_sub(w.now());
        let expected = left.as_millis().div_ceil(1000).max(1).to_string();
        assert_eq!(
            r.header("retry-after"),
            Some(expected.as_str()),
            "retry-after is the whole seconds until half-open, rounded up ({left:?} left)"
        );
    }
    assert_eq!(
        w.upstream_attempts(CLUSTER).len(),
        3,
        "the upstream was not contacted"
    );
    assert_eq!(count(&w, "rejected_total"), 3);
    flush(&mut w);
    assert_eq!(
        count(&w, "requests_total"),
        6,
        "rejected requests are requests too"
    );
}

#[test]
fn an_open_breaker_leaves_other_clusters_alone() {
    let mut w = failing_world(2, 3);
    w.upstream(OTHER, Reply::ok().body("stock"));
    fail_in_turn(&mut w, 3);
    assert!(is_fallback(&answer_now(&mut w, 0)));

    let s = w.request(1).cluster(OTHER).send();
    w.run_until_idle();
    let r = response(&w, s);
    assert_eq!(
        r.status, 200,
        "a breaker is per cluster: one cluster's outage leaves the others alone"
    );
    assert_eq!(r.body_text(), "stock");
    assert_eq!(w.upstream_attempts(OTHER).len(), 1);
    assert_eq!(
        state_gauge(&w, OTHER),
        Some(0),
        "the other cluster's breaker is closed"
    );
    assert_eq!(state_gauge(&w, CLUSTER), Some(1));
}

#[test]
fn a_failure_from_another_cluster_does_not_count_against_this_one() {
    let mut w = failing_world(2, 3);
    w.upstream(OTHER, Reply::status(503));
    fail_in_turn(&mut w, 2);
    for worker in [0, 1, 0] {
        w.request(worker).cluster(OTHER).send();
    }
    w.run_until_idle();
    fail_in_turn(&mut w, 1);
    assert_eq!(
        count(&w, "breaker_opened_total"),
        1,
        "the 3rd failure of this cluster opens it (and the other cluster opened its own)"
    );
    assert_eq!(
        w.counter(&crate::common::stat(OTHER, "breaker_opened_total")),
        Some(1)
    );
}
