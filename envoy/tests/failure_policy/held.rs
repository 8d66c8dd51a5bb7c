//! A client whose response the filter holds for a retry when its worker's VM traps: nothing
//! in the dead VM will ever send the retry or give the response back, and Envoy does not fail
//! the stream either, so only an idle timeout answers it.
//!
//! # Why nothing else does
//! Proxy-wasm-cpp-host fails a stream whose VM has failed only at that stream's next callback
//! (`CHECK_FAIL` / `failStream` in `src/context.cc`). A stream whose response headers the filter
//! paused gets no further callback: Envoy buffers the rest of the upstream's response itself
//! (ABI 0.2.1: `StopAllIterationAndWatermark`), and the retry's timer and the dispatched call
//! belonged to the dead VM's root context. The connection manager's stream idle timer then ends
//! the stream (`ActiveStream::onIdleTimeout`: 504 once the request was received whole, 408
//! before, flag `SI`): the route's `idle_timeout` if set, else `stream_idle_timeout` (5 minutes
//! by default).

use std::sync::Arc;
use std::time::{Duration, Instant};

use breakwater_envoy::WasmFilter;
use breakwater_envoy::{AccessLogEntry, Envoy, EnvoyConfig, FailurePolicy, Route, Upstream};
use serde_json::json;

use crate::common::{breakwater_trap_wasm, start, trap_breakwater, trapped, upstream};
use crate::sink::{put_waiting, Answer};

/// Where the retry is when the VM traps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retry {
    /// Waiting out a 1 minute delay (far beyond every idle timeout here).
    Waiting,
    /// Dispatched after 200 ms, and held by the upstream until the VM has trapped.
    InFlight,
}

impl Retry {
    fn delay(self) -> &'static str {
        match self {
            Retry::Waiting => "1m",
            Retry::InFlight => "200ms",
        }
    }
}
/// How late Envoy's idle timer may fire on a loaded machine and still count as on time.
const SLACK: Duration = Duration::from_secs(3);
/// How early it may seem to fire, seen from the client: Envoy arms its timers from the event
/// loop's cached time, which can trail the clock by a few milliseconds (measured: 1.998 s for a
/// 2 s timeout once in several runs).
const EARLY: Duration = Duration::from_millis(50);

/// Envoy with one worker, the trapping Breakwater under FAIL_RELOAD, and cluster `a` whose
/// failures are retried once, after the delay of `retry`.
fn envoy(
    upstream: &Upstream,
    retry: Retry,
    route: Route,
    stream_idle_timeout: Option<Duration>,
) -> Envoy {
    let policy = json!({
        "default": { "circuit_breaker": null, "retry": null },
        "clusters": { "a": { "retry": {
            "max_attempts": 2,
            "base_delay": retry.delay(),
            "max_delay": retry.delay(),
            "jitter": false,
            "per_try_timeout": "10s",
            "deadline": "10m",
            "budget": null
        } } }
    });
    let mut config = EnvoyConfig::new()
        .cluster("a", upstream.addr())
        .route(route)
        .concurrency(1)
        .filter(
            WasmFilter::new(breakwater_trap_wasm())
                .configuration(&policy.to_string())
                .failure_policy(FailurePolicy::FailReload),
        );
    if let Some(timeout) = stream_idle_timeout {
        config = config.stream_idle_timeout(timeout);
    }
    start(&config)
}

/// What the held client got, and when (from sending its request).
struct Held {
    answer: Option<Answer>,
    after: Duration,
    entry: AccessLogEntry,
}

/// A `PUT /held` whose first attempt fails and whose retry is where `retry` says, then a request
/// that traps the VM on the same (only) worker; returns what the held client got.
fn hold_then_trap(envoy: &Envoy, upstream: &Upstream, retry: Retry) -> Held {
    let sent = Instant::now();
    let client = put_waiting(
        envoy.listener(),
        "/held".to_string(),
        Arc::new(b"payload".to_vec()),
        Duration::from_secs(60),
    );
    // Envoy counts the upstream's 503 in the same event that hands it to the filter, which
    // pauses it for the retry; a moment later it is held for sure.
    envoy
        .wait_for("the upstream's 503", || {
            Ok(envoy.stats()?.number_or_zero("cluster.a.upstream_rq_503") == 1)
        })
        .unwrap_or_else(|e| panic!("{e}"));
    match retry {
        Retry::Waiting => std::thread::sleep(Duration::from_millis(100)),
        Retry::InFlight => {
            upstream.hold();
            envoy
                .wait_for("the retry to reach the upstream", || {
                    Ok(upstream.count("PUT", "/held") == 2)
                })
                .unwrap_or_else(|e| panic!("{e}"));
        }
    }
    assert_eq!(trap_breakwater(envoy).status, 503, "the trapping request");
    assert!(trapped(envoy), "Envoy logged the VM's trap");
    // The retry's answer now goes to the dead VM.
    upstream.release();
    let answer = client.join().expect("the held client's thread");
    let after = sent.elapsed();
    let entries = envoy
        .wait_for_access_log(2)
        .unwrap_or_else(|e| panic!("{e}"));
    let entry = entries
        .into_iter()
        .find(|e| e.path.as_deref() == Some("/held"))
        .expect("the held request's access log entry");
    let attempts = match retry {
        Retry::Waiting => 1,
        Retry::InFlight => 2,
    };
    assert_eq!(
        upstream.count("PUT", "/held"),
        attempts,
        "{retry:?}: the upstream saw the first attempt, and the retry only if it was dispatched"
    );
    Held {
        answer,
        after,
        entry,
    }
}

#[track_caller]
fn assert_ended_by_idle_timeout(held: &Held, envoy: &Envoy, timeout: Duration) {
    let answer = held
        .answer
        .as_ref()
        .expect("the held client gets an answer");
    assert_eq!(
        answer.status, 504,
        "Envoy's stream timeout for a request received whole: {answer:?}"
    );
    assert!(!answer.from_sink, "not the upstream's answer: {answer:?}");
    assert_eq!(held.entry.response_flags, "SI", "{:?}", held.entry);
    assert_eq!(
        held.entry.response_code_details.as_deref(),
        Some("stream_idle_timeout")
    );
    assert!(
        held.after + EARLY >= timeout && held.after < timeout + SLACK,
        "answered {:?} after the request, when its stream had been idle for {timeout:?}",
        held.after
    );
    let stats = envoy.stats().expect("stats");
    assert_eq!(
        stats.number_or_zero("http.ingress_http.downstream_rq_idle_timeout"),
        1
    );
}

#[test]
fn a_client_held_for_a_retry_when_its_vm_traps_is_answered_by_the_routes_idle_timeout() {
    let upstream = upstream("a");
    upstream.respond_with(503);
    let idle = Duration::from_secs(2);
    let envoy = envoy(
        &upstream,
        Retry::Waiting,
        Route::prefix("held", "/", "a").idle_timeout(idle),
        None,
    );
    let held = hold_then_trap(&envoy, &upstream, Retry::Waiting);
    eprintln!(
        "route idle_timeout {idle:?}: the held client got {:?} after {:?}",
        held.answer, held.after
    );
    assert_ended_by_idle_timeout(&held, &envoy, idle);
}

#[test]
fn without_a_route_idle_timeout_the_held_client_waits_for_the_stream_idle_timeout() {
    // Envoy's default `stream_idle_timeout` is 5 minutes; 4 s stands in for it here, to show
    // that it is the timer that ends the stream (examples/failure-policy.md has the default's
    // measured figure).
    let upstream = upstream("a");
    upstream.respond_with(503);
    let idle = Duration::from_secs(4);
    let envoy = envoy(
        &upstream,
        Retry::Waiting,
        Route::prefix("held", "/", "a"),
        Some(idle),
    );
    let held = hold_then_trap(&envoy, &upstream, Retry::Waiting);
    eprintln!(
        "stream_idle_timeout {idle:?}, no route idle_timeout: the held client got {:?} after {:?}",
        held.answer, held.after
    );
    assert_ended_by_idle_timeout(&held, &envoy, idle);
}

#[test]
fn a_retry_in_flight_when_its_vm_traps_answers_nobody_and_the_idle_timeout_ends_the_stream() {
    // The retry reaches the upstream and its answer comes back while the client still waits,
    // but to the dead VM's root context: the client gets the idle timeout's 504, not the answer.
    let upstream = upstream("a");
    upstream.respond_with(503);
    let idle = Duration::from_secs(2);
    let envoy = envoy(
        &upstream,
        Retry::InFlight,
        Route::prefix("held", "/", "a").idle_timeout(idle),
        None,
    );
    let held = hold_then_trap(&envoy, &upstream, Retry::InFlight);
    eprintln!(
        "retry in flight, route idle_timeout {idle:?}: the held client got {:?} after {:?}",
        held.answer, held.after
    );
    assert_ended_by_idle_timeout(&held, &envoy, idle);
}
