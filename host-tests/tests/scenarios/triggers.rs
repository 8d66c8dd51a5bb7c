//! The other trip conditions (failure rate, slow calls, over a sliding window with a minimum
//! of requests) and the modes (`shadow`, `forced_open`, `disabled`).

use breakwater_host_tests::{ms, Reply, World};
use serde_json::{json, Value};

use crate::common::{
    answer_now, assert_no_errors, breaker_only, count, flush, get, is_fallback, log_text, policy,
    response, shadow_state_gauge, state_gauge, world, CLUSTER,
};

/// Failure rate ≥ 50% over 10 s once 10 requests finished; the consecutive trigger off.
fn rate_world(workers: usize) -> World {
    let breaker = json!({
        "failure_threshold": 0,
        "failure_rate": { "threshold": 0.5, "minimum_requests": 10, "window": "10s" },
        "timeout": "30s"
    });
    world(workers, &breaker_only(breaker))
}

/// Sends one request per entry (true = the upstream fails it), in turn over the workers, each
/// answered before the next; 100 ms apart.
fn outcomes(w: &mut World, failures: &[bool]) {
    let workers = w.workers();
    for (i, fail) in failures.iter().enumerate() {
        let reply = if *fail {
            Reply::status(500)
        } else {
            Reply::ok()
        };
        w.upstream(CLUSTER, reply);
        get(w, i % workers);
        w.advance(ms(100));
    }
}

fn opened(w: &World) -> u64 {
    count(w, "breaker_opened_total")
}

#[test]
fn the_failure_rate_waits_for_minimum_requests_then_opens_at_the_threshold() {
    let mut w = rate_world(4);
    outcomes(&mut w, &[true; 9]);
    assert_eq!(
        opened(&w),
        0,
        "9 failures of 9, but fewer than minimum_requests finished: a rate of few means nothing"
    );
    outcomes(&mut w, &[false]);
    assert_eq!(opened(&w), 1, "the 10th request makes 9/10 ≥ 50%");
    assert_eq!(
        w.logs_containing("OPEN after failure rate 90.0% over 10 requests")
            .len(),
        1,
        "{}",
        log_text(&w)
    );
    assert!(is_fallback(&answer_now(&mut w, 2)));
}

#[test]
fn a_failure_rate_below_the_threshold_keeps_the_breaker_closed() {
    let mut w = rate_world(2);
    // Three successes, two failures, repeated: at most 40% failed at any step.
    let pattern: Vec<bool> = (0..30).map(|i| i % 5 >= 3).collect();
    outcomes(&mut w, &pattern);
    assert_eq!(opened(&w), 0, "never more than 40% < 50%");
    assert_eq!(count(&w, "failures_total"), 12);
}

#[test]
fn failures_older_than_the_window_no_longer_count() {
    let mut w = rate_world(2);
    outcomes(&mut w, &[true; 9]);
    w.advance(ms(11_000));
    outcomes(&mut w, &[false]);
    assert_eq!(
        opened(&w),
        0,
        "the 9 failures left the 10 s window: 0 of 1 request failed"
    );
    outcomes(&mut w, &[true; 8]);
    assert_eq!(
        opened(&w),
        0,
        "8 of 9 in the window: below minimum_requests"
    );
    outcomes(&mut w, &[true]);
    assert_eq!(opened(&w), 1, "9 of 10 in the window");
}

#[test]
fn slow_successes_open_the_breaker_at_the_slow_call_rate() {
    let breaker = json!({
        "failure_threshold": 0,
        "failure_rate": { "threshold": 1.0, "minimum_requests": 4, "window": "10s" },
        "slow_call": { "duration": "500ms", "rate_threshold": 0.75 },
        "timeout": "30s"
    });
    let mut w = world(2, &breaker_only(breaker));
    let send = |w: &mut World, latency: u64| {
        w.upstream(CLUSTER, Reply::ok().after(ms(latency)));
        let s = get(w, 0);
        w.advance(ms(latency + 1));
        assert_eq!(response(w, s).status, 200, "a slow call is still answered");
    };
    for latency in [100, 600, 600, 100] {
        send(&mut w, latency);
    }
    flush(&mut w);
    assert_eq!(opened(&w), 0, "2 slow of 4 = 50% < 75%");
    for latency in [600, 600, 600, 600] {
        send(&mut w, latency);
    }
    // Successes reach the window at the worker's flush, at most a second later.
    flush(&mut w);
    assert_eq!(opened(&w), 1, "6 slow of 8 = 75%");
    assert_eq!(
        count(&w, "failures_total"),
        0,
        "slow successes are not failures"
    );
    assert_eq!(
        w.logs_containing("OPEN after slow-call rate 75.0% over 8 requests")
            .len(),
        1,
        "{}",
        log_text(&w)
    );
}

fn failing(mode: &str) -> (World, Value) {
    let p = policy(
        json!({ "failure_threshold": 3, "timeout": "10s", "mode": mode }),
        json!({ "base_delay": "10ms", "max_attempts": 2 }),
    );
    let mut w = world(2, &p);
    w.upstream(CLUSTER, Reply::status(503));
    (w, p)
}

#[test]
fn shadow_mode_counts_and_reports_would_open_but_never_rejects() {
    let (mut w, _) = failing("shadow");
    for i in 0..6 {
        get(&mut w, i % 2);
        w.run_until_idle();
    }
    assert_eq!(
        w.upstream_attempts(CLUSTER).len(),
        12,
        "6 requests × 2 attempts all went"
    );
    assert_eq!(count(&w, "retries_total"), 6, "shadow never stops retries");
    assert_eq!(count(&w, "breaker_would_open_total"), 1);
    assert_eq!(count(&w, "breaker_opened_total"), 0);
    assert_eq!(count(&w, "rejected_total"), 0);
    assert_eq!(
        count(&w, "shadow_rejected_total"),
        3,
        "the 3 requests after the would-open are the ones enforce would have rejected"
    );
    assert_eq!(
        w.logs_containing("would OPEN after 3 consecutive failures (shadow mode)")
            .len(),
        1,
        "{}",
        log_text(&w)
    );
    assert_no_errors(&w);
}

#[test]
fn forced_open_answers_every_request_with_the_fallback_and_the_timeout_as_retry_after() {
    let (mut w, _) = failing("forced_open");
    for worker in [0, 1] {
        let r = answer_now(&mut w, worker);
        assert_eq!(r.status, 503);
        assert_eq!(r.header("x-breakwater-breaker"), Some("open"));
        assert_eq!(
            r.header("retry-after"),
            Some("10"),
            "the configured timeout"
        );
    }
    assert!(
        w.upstream_attempts(CLUSTER).is_empty(),
        "nothing reaches the upstream"
    );
    assert_eq!(count(&w, "rejected_total"), 2);
}

#[test]
fn disabled_mode_neither_rejects_nor_opens_and_retries_still_run() {
    let (mut w, _) = failing("disabled");
    for i in 0..6 {
        get(&mut w, i % 2);
        w.run_until_idle();
    }
    assert_eq!(w.upstream_attempts(CLUSTER).len(), 12);
    assert_eq!(count(&w, "retries_total"), 6);
    assert_eq!(count(&w, "breaker_opened_total"), 0);
    assert_eq!(count(&w, "breaker_would_open_total"), 0);
    assert_eq!(count(&w, "rejected_total"), 0);
    assert!(
        w.shared_data(crate::common::breaker_key(CLUSTER)).is_none(),
        "a disabled breaker writes no state"
    );
}

#[test]
fn in_shadow_mode_the_state_gauge_stays_closed_and_the_shadow_gauge_follows_the_phase() {
    let (mut w, _) = failing("shadow");
    w.upstream(CLUSTER, Reply::status(503));
    for i in 0..3 {
        w.request(i % 2).method("POST").cluster(CLUSTER).send();
    }
    w.run_until_idle();
    assert_eq!(count(&w, "breaker_would_open_total"), 1);
    assert_eq!(
        state_gauge(&w, CLUSTER),
        Some(0),
        "nothing is rejected: the canary's dashboard must not say open"
    );
    assert_eq!(
        shadow_state_gauge(&w, CLUSTER),
        Some(1),
        "would-open: enforce would be open now"
    );
    for worker in [0, 1] {
        get(&mut w, worker);
        w.run_until_idle();
        assert_eq!(
            state_gauge(&w, CLUSTER),
            Some(0),
            "a would-reject is no open either"
        );
    }
    w.advance(ms(12_000));
    w.upstream(CLUSTER, Reply::ok());
    get(&mut w, 0);
    w.run_until_idle();
    assert_eq!(count(&w, "breaker_half_opened_total"), 1);
    assert_eq!(
        count(&w, "breaker_closed_total"),
        1,
        "the shadow probe succeeded"
    );
    assert_eq!(state_gauge(&w, CLUSTER), Some(0));
    assert_eq!(shadow_state_gauge(&w, CLUSTER), Some(0));
}

#[test]
fn a_shadow_breaker_that_would_be_open_shows_open_once_enforced() {
    let (mut w, _) = failing("shadow");
    for i in 0..3 {
        w.request(i % 2).method("POST").cluster(CLUSTER).send();
    }
    w.run_until_idle();
    assert_eq!(state_gauge(&w, CLUSTER), Some(0));
    let enforce = policy(
        json!({ "failure_threshold": 3, "timeout": "10s", "mode": "enforce" }),
        json!({ "base_delay": "10ms", "max_attempts": 2 }),
    );
    assert!(w.reconfigure(enforce.to_string()));
    let s = get(&mut w, 0);
    w.run_until_idle();
    assert_eq!(
        response(&w, s).status,
        503,
        "enforced now: the open machine rejects"
    );
    assert_eq!(count(&w, "rejected_total"), 1);
    assert_eq!(state_gauge(&w, CLUSTER), Some(1), "and the gauge says open");
    assert_eq!(
        shadow_state_gauge(&w, CLUSTER),
        Some(0),
        "the shadow gauge is cleared once the mode is no longer shadow"
    );
}

#[test]
fn releasing_the_kill_switch_brings_the_state_gauge_back_to_the_real_phase() {
    let (mut w, _) = failing("forced_open");
    for worker in [0, 1] {
        answer_now(&mut w, worker);
    }
    assert_eq!(state_gauge(&w, CLUSTER), Some(1), "forced open shows open");
    let released = policy(
        json!({ "failure_threshold": 3, "timeout": "10s", "mode": "enforce" }),
        json!({ "base_delay": "10ms", "max_attempts": 2 }),
    );
    assert!(w.reconfigure(released.to_string()));
    w.upstream(CLUSTER, Reply::ok());
    for worker in [0, 1] {
        let r = answer_now(&mut w, worker);
        assert_eq!(r.status, 200);
    }
    assert_eq!(
        state_gauge(&w, CLUSTER),
        Some(0),
        "the breaker was never open: the gauge says closed again"
    );
    assert_no_errors(&w);
}
