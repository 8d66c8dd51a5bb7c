//! The worker's flush: `requests_total` and the retry budget's request counts are counted in
//! each worker and added to Envoy's stats and shared data by the root's tick, at most a second
//! after the first request counted since the last flush. The flush shares the root's timer with
//! the waiting retries: the period is the nearer of the two, so neither waits for the other.
//!
//! With a rate trigger, a success that would only add to the window waits in its worker too:
//! the flush (or 32 of them, or the worker's next failure of the cluster, which brings them
//! along first) records them together, exactly as their records one by one would have, so
//! `minimum_requests` and the threshold are met at the flush as they would have been at the
//! last success. The window, and an opening that successes complete, lag by at most a second
//! per worker.

use breakwater_host_tests::{ms, Reply};
use serde_json::json;

use crate::common::{budget_key, count, get, policy, retries_sent, world, CLUSTER};

#[test]
fn requests_reach_envoys_stats_at_most_a_second_after_the_first_one_counted() {
    let mut w = world(2, &policy(json!({}), json!({})));
    w.upstream(CLUSTER, Reply::ok());
    get(&mut w, 0);
    assert_eq!(w.tick_period(0), Some(ms(1_000)), "the flush is armed");
    assert_eq!(w.tick_period(1), None, "the other worker counted nothing");
    w.advance(ms(600));
    get(&mut w, 0);
    get(&mut w, 1);
    w.advance(ms(399));
    assert_eq!(count(&w, "requests_total"), 0, "nothing flushed yet");
    assert!(w.shared_data(budget_key(CLUSTER)).is_none());
    w.advance(ms(1));
    assert_eq!(
        count(&w, "requests_total"),
        2,
        "worker 0 flushed both its requests a second after the first"
    );
    assert_eq!(w.tick_period(0), None, "nothing waits: its timer is off");
    assert!(
        w.shared_data(budget_key(CLUSTER)).is_some(),
        "and its budget count"
    );
    w.advance(ms(599));
    assert_eq!(count(&w, "requests_total"), 2);
    w.advance(ms(1));
    assert_eq!(
        count(&w, "requests_total"),
        3,
        "worker 1 a second after its own"
    );
}

#[test]
fn a_retry_due_before_the_flush_keeps_its_time_and_the_flush_keeps_its_own() {
    let mut w = world(
        1,
        &policy(json!({}), json!({ "base_delay": "200ms", "jitter": false })),
    );
    w.upstream(CLUSTER, Reply::sequence([Reply::status(503), Reply::ok()]));
    get(&mut w, 0);
    assert_eq!(w.tick_period(0), Some(ms(200)), "the retry is nearer");
    w.advance(ms(200));
    assert_eq!(
        retries_sent(&w, CLUSTER).len(),
        1,
        "the retry went out on time"
    );
    assert_eq!(
        count(&w, "requests_total"),
        1,
        "that tick flushed too (any tick of the root flushes)"
    );
    assert_eq!(w.tick_period(0), None, "nothing waits any more");
}

#[test]
fn a_flush_due_before_a_waiting_retry_runs_first_and_the_retry_keeps_its_time() {
    let mut w = world(
        1,
        &policy(
            json!({}),
            json!({ "base_delay": "100ms", "max_delay": "5s", "jitter": false }),
        ),
    );
    w.upstream(
        CLUSTER,
        Reply::sequence([Reply::status(503).header("retry-after", "3"), Reply::ok()]),
    );
    let s = get(&mut w, 0);
    assert_eq!(
        w.tick_period(0),
        Some(ms(1_000)),
        "the flush, due in a second, is nearer than the retry the upstream asked to wait 3 s for"
    );
    w.advance(ms(1_000));
    assert_eq!(count(&w, "requests_total"), 1, "flushed on time");
    let retry_due = w.now() + w.tick_period(0).expect("the timer points at the retry");
    assert!(
        retry_due >= ms(3_000) && retry_due <= ms(3_300),
        "then at the retry, 3 s after the failure (a Retry-After is spread by at most a tenth): \
         {retry_due:?}"
    );
    w.advance_to(retry_due - ms(1));
    assert!(retries_sent(&w, CLUSTER).is_empty());
    w.advance_to(retry_due);
    assert_eq!(
        retries_sent(&w, CLUSTER).len(),
        1,
        "the retry went out on time"
    );
    w.run_until_idle();
    assert_eq!(w.response(s).map(|r| r.status), Some(200));
}

/// `failure_rate` alone: 50% over at least 4 calls, the consecutive trigger off.
fn rate_world() -> breakwater_host_tests::World {
    let breaker = json!({
        "failure_threshold": 0,
        "failure_rate": { "threshold": 0.5, "minimum_requests": 4, "window": "10s" },
        "timeout": "30s"
    });
    let mut w = world(2, &policy(breaker, serde_json::Value::Null));
    w.upstream(CLUSTER, Reply::ok());
    w
}

fn answer(w: &mut breakwater_host_tests::World, worker: usize, status: u16) {
    w.upstream(
        CLUSTER,
        if status == 200 {
            Reply::ok()
        } else {
            Reply::status(status)
        },
    );
    get(w, worker);
    w.settle();
}

#[test]
fn successes_that_complete_minimum_requests_open_the_breaker_at_their_workers_flush() {
    let mut w = rate_world();
    answer(&mut w, 1, 503);
    answer(&mut w, 1, 503);
    answer(&mut w, 0, 200);
    answer(&mut w, 0, 200);
    assert_eq!(
        count(&w, "breaker_opened_total"),
        0,
        "worker 0 holds its two successes: the shared window has 2 calls, under the minimum"
    );
    w.advance(ms(1_000));
    assert_eq!(
        count(&w, "breaker_opened_total"),
        1,
        "at worker 0's flush the window has 4 calls at 50%: it opens, a second late at most"
    );
    assert_eq!(
        w.logs_containing("OPEN after failure rate 50.0% over 4 requests")
            .len(),
        1,
        "{:?}",
        w.logs()
    );
}

#[test]
fn a_failure_brings_its_workers_held_successes_into_the_window_first() {
    let mut w = rate_world();
    answer(&mut w, 0, 200);
    answer(&mut w, 0, 200);
    answer(&mut w, 0, 503);
    assert_eq!(count(&w, "breaker_opened_total"), 0, "3 calls, 1 failed");
    answer(&mut w, 1, 503);
    assert_eq!(
        count(&w, "breaker_opened_total"),
        1,
        "2 failed of 4 at once: worker 0's failure had brought its successes along (without \
         them the window would hold 2 calls, under the minimum)"
    );
}
