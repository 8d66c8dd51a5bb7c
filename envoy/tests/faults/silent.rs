//! An upstream that accepts connections, reads requests and never answers.
//!
//! Only timeouts get a client out: Envoy's route timeout (15 s, Envoy's default; the configs set
//! none) ends the first attempt with Envoy's own 504, and Breakwater's `per_try_timeout` ends each
//! retry it dispatches. A timeout is retried only when `retry_on` lists `timeout` (the default
//! list does not: a slow upstream is not hammered twice as long), so the policy here lists it,
//! and sets a `deadline` above the route timeout (the default equals it, so that no retry would
//! follow a first attempt the route timed out). Every client gets an answer, every count agrees,
//! and once the breaker has seen enough timeouts it spares the silent upstream.

use std::thread;

use breakwater_envoy::{Reply, Request};
use serde_json::json;

use crate::common::{
    assert_no_wasm_errors, assert_nothing_in_flight, envoy_with, place, stat, upstream,
    wasm_health, Metrics, WORKERS,
};

/// Clients, each with one request, spread over both workers.
const CLIENTS: usize = 8;

#[test]
fn requests_to_a_silent_upstream_end_in_504s_bounded_by_the_timeouts_then_the_breaker_opens() {
    let upstream = upstream("a");
    let envoy = envoy_with(
        &upstream,
        "a",
        &json!({
            "default": {
                "circuit_breaker": { "failure_threshold": CLIENTS, "timeout": "60s" },
                "retry": {
                    "max_attempts": 3,
                    "base_delay": "10ms",
                    "per_try_timeout": "500ms",
                    "deadline": "20s",
                    "retry_on": ["5xx", "reset", "connect-failure", "timeout"],
                    "budget": null
                }
            }
        }),
    );
    let health = wasm_health(&envoy);
    upstream.set_default(Reply::Never);

    let mut by_worker = vec![0; WORKERS];
    let sessions: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (session, worker) = place(&envoy, || envoy.session().expect("a connection"));
            by_worker[worker] += 1;
            session
        })
        .collect();
    assert!(
        by_worker.iter().all(|&n| n > 0),
        "both workers serve: {by_worker:?}"
    );
    let responses: Vec<_> = thread::scope(|s| {
        let clients: Vec<_> = sessions
            .into_iter()
            .enumerate()
            .map(|(c, mut session)| {
                s.spawn(move || {
                    session
                        .send(&Request::get(&format!("/silent/{c}")))
                        .unwrap_or_else(|e| panic!("client {c} got no answer: {e}"))
                })
            })
            .collect();
        clients
            .into_iter()
            .map(|c| c.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });

    for response in &responses {
        assert_eq!(response.status, 504, "{response:?}");
        assert_eq!(response.text(), "upstream request timeout");
        assert_eq!(
            response.header("x-breakwater-attempts"),
            Some("3"),
            "the route timeout ended the first attempt, per_try_timeout the two retries"
        );
    }
    let attempts = upstream.record().by_attempt_header();
    let count = |attempt: Option<&str>| attempts.get(&attempt.map(str::to_string)).copied();
    assert_eq!(count(None), Some(CLIENTS), "every first attempt was read");
    assert_eq!(count(Some("2")), Some(CLIENTS));
    assert_eq!(count(Some("3")), Some(CLIENTS));
    assert_eq!(
        stat(&envoy, "cluster.a.upstream_rq_timeout"),
        3 * CLIENTS as u64,
        "Envoy timed out every attempt: the route timeout and the dispatched calls' timeouts"
    );
    let metrics = Metrics::read(&envoy, "a");
    assert_eq!(metrics.get("requests_total"), CLIENTS as u64);
    assert_eq!(metrics.get("retries_total"), 2 * CLIENTS as u64);
    assert_eq!(metrics.get("retries_exhausted_total"), CLIENTS as u64);
    assert_eq!(
        metrics.get("failures_total"),
        CLIENTS as u64,
        "one failure per client request (count_retries: false)"
    );
    assert_nothing_in_flight(&envoy);

    let hits = upstream.total();
    let spared = envoy.get("/spared").expect("a response");
    assert_eq!(
        spared.header("x-breakwater-breaker"),
        Some("open"),
        "after {CLIENTS} timeouts in a row the breaker is open: {spared:?}"
    );
    assert_eq!(upstream.total(), hits, "the silent upstream is spared");
    assert_eq!(Metrics::read(&envoy, "a").get("breaker_opened_total"), 1);
    assert_no_wasm_errors(&envoy, &health);
}
