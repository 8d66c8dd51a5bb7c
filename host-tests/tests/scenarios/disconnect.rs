//! Clients that leave: while their retry waits, while it is in flight, while they hold a probe
//! slot. Nothing is dispatched for them afterwards, nothing panics, and what they held (budget,
//! probe slot) goes back. A client that leaves after an attempt failed leaves with that failure:
//! the breaker counts it, so an outage whose clients give up early still opens it.

use breakwater_host_tests::{ms, Reply, StreamState, World};
use serde_json::{json, Value};

use crate::common::{
    answer_now, assert_no_errors, breaker_only, count, fail_in_turn, get, is_fallback,
    open_instants, open_times, response, retries_sent, retry_only, skipped, world, CLUSTER,
};

/// Retries after exactly `delay_ms`; a budget of one retry per 1 s window.
fn tight_budget(delay_ms: u64) -> World {
    let retry: Value = json!({
        "base_delay": format!("{delay_ms}ms"), "jitter": false, "max_attempts": 2,
        "budget": { "ratio": 0.0, "min_per_second": 1, "window": "1s" }
    });
    world(2, &retry_only(retry))
}

#[test]
fn a_client_leaving_during_backoff_cancels_its_retry_and_gives_its_budget_back() {
    let mut w = tight_budget(500);
    w.upstream(CLUSTER, Reply::status(503));
    let leaving = get(&mut w, 0);
    assert_eq!(
        w.tick_period(0),
        Some(ms(500)),
        "the retry waits for the worker's tick"
    );
    w.advance(ms(200));
    w.disconnect(leaving);
    assert_eq!(w.stream_state(leaving), StreamState::Disconnected);

    w.advance(ms(100));
    w.upstream(CLUSTER, Reply::sequence([Reply::status(503), Reply::ok()]));
    let next = get(&mut w, 1);
    w.advance(ms(1_000));
    assert_eq!(
        retries_sent(&w, CLUSTER).len(),
        1,
        "only the second request's retry went out: nothing was dispatched for the client that left"
    );
    assert_eq!(retries_sent(&w, CLUSTER)[0].request.at, ms(800));
    assert_eq!(
        response(&w, next).status,
        200,
        "the one-retry budget was given back, so the next request could retry"
    );
    assert_eq!(skipped(&w, "budget"), 0);
    assert_eq!(
        w.tick_period(0),
        None,
        "worker 0's queue is empty: its tick is off"
    );
    assert_no_errors(&w);
}

#[test]
fn a_client_leaving_while_its_retry_is_in_flight_gets_nothing_more_and_nothing_panics() {
    let mut w = world(
        1,
        &crate::common::policy(
            json!({ "failure_threshold": 2 }),
            json!({ "base_delay": "100ms", "jitter": false, "max_attempts": 3 }),
        ),
    );
    w.upstream(
        CLUSTER,
        Reply::sequence([Reply::status(503), Reply::status(503).after(ms(500))]),
    );
    let s = get(&mut w, 0);
    w.advance(ms(300));
    assert_eq!(
        retries_sent(&w, CLUSTER).len(),
        1,
        "the retry left at 100 ms"
    );
    w.disconnect(s);
    w.advance(ms(2_000));
    let sent = retries_sent(&w, CLUSTER);
    assert_eq!(
        sent.len(),
        1,
        "its failure at 600 ms starts no third attempt"
    );
    assert!(
        sent[0].delivered,
        "the answer reached the filter, which dropped it"
    );
    assert_eq!(w.stream_state(s), StreamState::Disconnected);
    assert_eq!(
        count(&w, "failures_total"),
        1,
        "its first attempt had failed: the request is over with that failure, counted once"
    );
    assert_eq!(w.tick_period(0), None);
    assert_no_errors(&w);
}

#[test]
fn a_client_leaving_at_the_instant_its_retry_is_due_leaves_no_trace() {
    for leave_at in [99, 100, 101] {
        let mut w = tight_budget(100);
        w.upstream(CLUSTER, Reply::status(503).after(ms(10)));
        let s = w.request(0).cluster(CLUSTER).send();
        w.advance(ms(10));
        w.disconnect_after(s, ms(leave_at - 10));
        w.advance(ms(1_000));
        let late: Vec<_> = retries_sent(&w, CLUSTER)
            .into_iter()
            .filter(|a| a.request.at > ms(leave_at))
            .collect();
        assert!(
            late.is_empty(),
            "leaving at {leave_at} ms: nothing sent afterwards"
        );
        assert_eq!(w.stream_state(s), StreamState::Disconnected);
        assert_no_errors(&w);
    }
}

#[test]
fn clients_leaving_during_backoff_on_several_workers_all_give_their_budget_back() {
    let retry = json!({
        "base_delay": "400ms", "jitter": false, "max_attempts": 2,
        "budget": { "ratio": 0.0, "min_per_second": 2, "window": "1s" }
    });
    let mut w = world(4, &retry_only(retry));
    w.upstream(CLUSTER, Reply::status(503));
    let leaving: Vec<_> = (0..2).map(|worker| get(&mut w, worker)).collect();
    for s in &leaving {
        w.disconnect(*s);
    }
    let staying: Vec<_> = (2..4).map(|worker| get(&mut w, worker)).collect();
    w.advance(ms(1_000));
    assert_eq!(
        retries_sent(&w, CLUSTER).len(),
        2,
        "the two staying clients got both retries"
    );
    assert!(staying
        .iter()
        .all(|s| response(&w, *s).header("x-breakwater-attempts") == Some("2")));
    assert_eq!(skipped(&w, "budget"), 0);
}

#[test]
fn a_probe_whose_client_leaves_gives_its_slot_back_at_once() {
    let breaker = json!({ "failure_threshold": 3, "timeout": "5s", "half_open_attempts": 1,
                          "probe_timeout": "60s" });
    let mut w = world(2, &breaker_only(breaker));
    w.upstream(CLUSTER, Reply::status(503));
    fail_in_turn(&mut w, 3);
    w.advance_to(open_instants(&w, CLUSTER)[0] + open_times(&w, CLUSTER)[0]);

    w.upstream(CLUSTER, Reply::ok().after(ms(1_000)));
    let probe = get(&mut w, 0);
    w.advance(ms(100));
    assert_eq!(
        answer_now(&mut w, 1).header("x-breakwater-breaker"),
        Some("half-open"),
        "the only slot is taken"
    );
    w.disconnect(probe);
    w.upstream(CLUSTER, Reply::ok());
    let next = get(&mut w, 1);
    w.settle();
    assert_eq!(
        response(&w, next).status,
        200,
        "the slot came back when the client left, not 60 s later"
    );
    assert_eq!(
        count(&w, "probes_reclaimed_total"),
        0,
        "given back, not reclaimed"
    );
    assert_eq!(count(&w, "breaker_closed_total"), 1);
    assert_no_errors(&w);
}

#[test]
fn an_outage_whose_clients_leave_before_their_first_retry_still_opens_the_breaker() {
    // Impatient clients: each gives up 100 ms in, while its retry waits out a 500 ms backoff.
    // Every request's first attempt failed, so each is that failure; a full outage must open the
    // breaker even though no client ever waits for a retry.
    let policy = crate::common::policy(
        json!({ "failure_threshold": 3, "timeout": "30s" }),
        json!({ "max_attempts": 3, "base_delay": "500ms", "jitter": false }),
    );
    let mut w = crate::common::world(2, &policy);
    w.upstream(CLUSTER, Reply::status(503).after(ms(10)));
    let streams: Vec<_> = (0..3)
        .map(|i| {
            w.request(i % 2)
                .cluster(CLUSTER)
                .disconnect_after(ms(100))
                .send()
        })
        .collect();
    w.advance(ms(1_000));
    for s in &streams {
        assert_eq!(w.stream_state(*s), StreamState::Disconnected);
    }
    assert!(
        retries_sent(&w, CLUSTER).is_empty(),
        "no client stayed for its retry"
    );
    assert_eq!(count(&w, "failures_total"), 3, "one failure per request");
    assert_eq!(
        count(&w, "breaker_opened_total"),
        1,
        "three failed requests open a threshold of 3"
    );
    let next = get(&mut w, 0);
    assert!(is_fallback(&response(&w, next)), "the breaker is open");
    assert_no_errors(&w);
}

#[test]
fn a_client_leaving_before_any_attempt_failed_is_no_failure() {
    let policy = crate::common::policy(
        json!({ "failure_threshold": 1 }),
        json!({ "max_attempts": 3, "base_delay": "500ms" }),
    );
    let mut w = crate::common::world(1, &policy);
    w.upstream(CLUSTER, Reply::status(503).after(ms(300)));
    let s = w
        .request(0)
        .cluster(CLUSTER)
        .disconnect_after(ms(100))
        .send();
    w.advance(ms(1_000));
    assert_eq!(w.stream_state(s), StreamState::Disconnected);
    assert_eq!(
        count(&w, "failures_total"),
        0,
        "the client left while its first attempt was in flight: nothing failed yet"
    );
    assert_eq!(count(&w, "breaker_opened_total"), 0);
}
