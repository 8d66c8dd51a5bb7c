//! Many requests in flight at once against a breaker that counts consecutive failures
//! (`failure_threshold: 5`, no retries, so each client request is one upstream request and one
//! outcome).
//!
//! The promise: the breaker opens after five failures in a row as the outcomes come back, and
//! only then. With 64 requests in flight, a success must reset the count even when it was
//! admitted before the failures it follows: the breaker judges outcomes in the order they end,
//! whatever the order they started in.

use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use breakwater_envoy::client::Session;
use breakwater_envoy::upstream::{longest_run, Completion};
use breakwater_envoy::{Envoy, Reply, Request, Response};
use serde_json::json;

use super::prometheus_counter;
use crate::common::{assert_no_wasm_errors, envoy_with, upstream, wasm_health};

/// Client connections, each sending its next request when the last one is answered.
const CONNECTIONS: usize = 64;
const THRESHOLD: u64 = 5;
/// Upstream latency, drawn per request.
const LATENCY: (Duration, Duration) = (Duration::from_millis(100), Duration::from_millis(200));
/// How long a client waits after a fallback before its next request: an open breaker answers at
/// once, and 64 clients in a tight loop would only burn the two cores.
const AFTER_FALLBACK: Duration = Duration::from_millis(100);

/// Failures open the breaker after five in a row; it stays open `timeout`; no retries.
fn policy(timeout: &str) -> serde_json::Value {
    json!({
        "default": {
            "circuit_breaker": { "failure_threshold": THRESHOLD, "timeout": timeout },
            "retry": { "max_attempts": 1 }
        }
    })
}

/// What the clients got.
#[derive(Debug, Default)]
struct Tally {
    answered: AtomicU64,
    fallbacks: AtomicU64,
    broken: AtomicU64,
}

/// Runs [`CONNECTIONS`] closed-loop clients for `run` (or, with `stop_at_fallback`, until each
/// one has had a fallback), then waits for the last answers.
fn load(envoy: &Envoy, run: Duration, stop_at_fallback: bool) -> Tally {
    let tally = Tally::default();
    let sessions: Vec<Session> = (0..CONNECTIONS)
        .map(|_| envoy.session().expect("a connection"))
        .collect();
    let end = Instant::now() + run;
    thread::scope(|s| {
        for (c, mut session) in sessions.into_iter().enumerate() {
            let tally = &tally;
            s.spawn(move || {
                let mut i = 0;
                while Instant::now() < end {
                    i += 1;
                    match session.send(&Request::get(&format!("/load/{c}/{i}"))) {
                        Ok(response) => {
                            tally.answered.fetch_add(1, Ordering::Relaxed);
                            if is_fallback(&response) {
                                tally.fallbacks.fetch_add(1, Ordering::Relaxed);
                                if stop_at_fallback {
                                    return;
                                }
                                thread::sleep(AFTER_FALLBACK);
                            }
                        }
                        Err(_) => {
                            tally.broken.fetch_add(1, Ordering::Relaxed);
                            match envoy.session() {
                                Ok(fresh) => session = fresh,
                                Err(_) => return,
                            }
                        }
                    }
                }
            });
        }
    });
    tally
}

fn is_fallback(response: &Response) -> bool {
    response.header("x-breakwater-breaker").is_some()
}

fn failed(completion: &Completion) -> bool {
    !completion.reply.is_success()
}

/// About one request in ten fails (a 503), at random, with 100–200 ms latency, under 64 clients
/// for 10 s. The upstream decides each failure as its reply goes out and never fails more than
/// three in a row in that order, and the test checks the order it logged: no five failures ever
/// came back in a row, so the breaker must never open. (Measured today: it opens many times, as
/// a success admitted while the count was 0 skips its report and so never resets the failures
/// recorded meanwhile.)
#[test]
fn a_flaky_upstream_under_concurrency_never_opens_a_breaker_that_needs_five_failures_in_a_row() {
    let upstream = upstream("a");
    upstream.set_delay_range(LATENCY.0, LATENCY.1, 7);
    upstream.fail_at_completion(0.1, Reply::Status(503), 3, 11);
    let envoy = envoy_with(&upstream, "a", &policy("100ms"));
    let health = wasm_health(&envoy);

    let tally = load(&envoy, Duration::from_secs(10), false);
    let completions = upstream.completions();
    let failures = completions.iter().filter(|c| failed(c)).count();
    let run = longest_run(&completions, failed);
    let opened = prometheus_counter(&envoy, "breakwater_breaker_opened_total", "a");
    eprintln!(
        "flaky under concurrency: {} replies, {failures} failures, longest run {run}; clients \
         {tally:?}; breaker opened {opened} times",
        completions.len()
    );
    assert!(
        completions.len() > 500,
        "the load ran: {} replies",
        completions.len()
    );
    assert!(
        prometheus_counter(&envoy, "breakwater_requests_total", "a") > 0,
        "Breakwater counted the requests (its metrics are there to read)"
    );
    assert!(
        (run as u64) < THRESHOLD,
        "the premise: no {THRESHOLD} failures in a row in completion order, got {run}"
    );
    assert_eq!(
        opened,
        0,
        "the longest run of failures was {run} (of {failures} failures in {} replies), below \
         failure_threshold {THRESHOLD}, yet the breaker opened {opened} times; the clients got \
         {} fallbacks",
        completions.len(),
        tally.fallbacks.load(Ordering::Relaxed)
    );
    assert_no_wasm_errors(&envoy, &health);
}

/// The other side of the same promise: a full outage (every reply a 503, the same latency and 64
/// clients) opens the breaker promptly. Once it is open no new request reaches the upstream, so
/// at most the requests already in flight fail after it: the failures counted are at most
/// `failure_threshold` plus the connections.
#[test]
fn an_outage_under_concurrency_opens_the_breaker_within_threshold_plus_concurrency_failures() {
    let upstream = upstream("a");
    upstream.set_delay_range(LATENCY.0, LATENCY.1, 7);
    upstream.respond_with(503);
    let envoy = envoy_with(&upstream, "a", &policy("60s"));
    let health = wasm_health(&envoy);

    let tally = load(&envoy, Duration::from_secs(10), true);
    let opened = prometheus_counter(&envoy, "breakwater_breaker_opened_total", "a");
    let failures = prometheus_counter(&envoy, "breakwater_failures_total", "a");
    eprintln!(
        "outage under concurrency: breaker opened {opened} times after {failures} failures; \
         clients {tally:?}; upstream got {}",
        upstream.total()
    );
    assert_eq!(
        tally.fallbacks.load(Ordering::Relaxed),
        CONNECTIONS as u64,
        "every client met the open breaker"
    );
    assert_eq!(opened, 1, "opened once, and stayed open");
    assert!(
        failures <= THRESHOLD + CONNECTIONS as u64,
        "{failures} failures were counted; at most {THRESHOLD} before the opening and the \
         {CONNECTIONS} in flight then"
    );
    assert_eq!(
        upstream.total() as u64,
        failures,
        "every request that reached the upstream failed and was counted"
    );
    assert_no_wasm_errors(&envoy, &health);
}
