//! Shared fixtures for the scenarios: worlds running the real filter, policies, requests, and
//! readers for what the filter reports (stats, log lines, shared-data keys).

#![allow(dead_code)] // each scenario file uses its own subset

use std::time::Duration;

use breakwater_host_tests::{
    ms, Attempt, AttemptKind, LogLevel, Response, StreamId, World, WorldBuilder,
};
use serde_json::{json, Value};

/// The cluster most scenarios send to.
pub const CLUSTER: &str = "payments";
/// A second cluster, to show that breakers are per cluster.
pub const OTHER: &str = "inventory";
/// The plugin name the worlds run under; the harness makes it the root id too, which names the
/// shared-data keys.
pub const PLUGIN: &str = "breakwater";

/// A builder for a world of `workers` workers running the current breakwater.wasm with
/// `policy`, seeded, with Envoy's canary and main-thread VM as in production.
pub fn builder(workers: usize, policy: &Value) -> WorldBuilder {
    World::builder()
        .breakwater()
        .workers(workers)
        .plugin_name(PLUGIN)
        .configuration(policy.to_string())
        .seed(7)
}

/// A world of `workers` workers running the current breakwater.wasm with `policy`.
pub fn world(workers: usize, policy: &Value) -> World {
    builder(workers, policy)
        .build()
        .unwrap_or_else(|e| panic!("the world must build: {e}"))
}

/// `{"default": {"circuit_breaker": breaker, "retry": retry}}`.
pub fn policy(breaker: Value, retry: Value) -> Value {
    json!({ "default": { "circuit_breaker": breaker, "retry": retry } })
}

/// A breaker alone: retries off (`retry: null`).
pub fn breaker_only(breaker: Value) -> Value {
    policy(breaker, Value::Null)
}

/// Retries alone: breaker off (`circuit_breaker: null`).
pub fn retry_only(retry: Value) -> Value {
    policy(Value::Null, retry)
}

/// The Prometheus-facing stat name of a per-cluster metric, as the filter defines it.
pub fn stat(cluster: &str, metric: &str) -> String {
    format!("breakwater.breakwater_cluster=.={cluster};.;{metric}")
}

/// The stat name of the skipped-retries counter for `reason`.
pub fn skipped_stat(cluster: &str, reason: &str) -> String {
    stat(
        cluster,
        &format!("reason=.={reason};.;retries_skipped_total"),
    )
}

/// Lets the workers' flush run: `requests_total` is counted in each worker and reaches Envoy's
/// stats at the worker's next tick, at most a second after the request.
pub fn flush(w: &mut World) {
    w.advance(ms(1_000));
}

/// A counter of [`CLUSTER`]; 0 when never incremented (the filter defines stats lazily).
pub fn count(w: &World, metric: &str) -> u64 {
    w.counter(&stat(CLUSTER, metric)).unwrap_or(0)
}

/// The skipped-retries counter of [`CLUSTER`] for `reason`; 0 when never incremented.
pub fn skipped(w: &World, reason: &str) -> u64 {
    w.counter(&skipped_stat(CLUSTER, reason)).unwrap_or(0)
}

/// The breaker-state gauge of `cluster`: 0 closed, 1 open, 2 half-open.
pub fn state_gauge(w: &World, cluster: &str) -> Option<u64> {
    w.gauge(&stat(cluster, "breaker_state"))
}

/// The gauge of the phase a `shadow` breaker would be in: 0 closed, 1 open, 2 half-open.
pub fn shadow_state_gauge(w: &World, cluster: &str) -> Option<u64> {
    w.gauge(&stat(cluster, "breaker_shadow_state"))
}

/// The shared-data key of a cluster's breaker.
pub fn breaker_key(cluster: &str) -> String {
    format!("breakwater/v3/{PLUGIN}/breaker/{cluster}")
}

/// The shared-data key of a cluster's retry budget.
pub fn budget_key(cluster: &str) -> String {
    format!("breakwater/v3/{PLUGIN}/budget/{cluster}")
}

/// Sends `GET /` to [`CLUSTER`] on `worker` and runs what is due now.
pub fn get(w: &mut World, worker: usize) -> StreamId {
    w.request(worker).path("/").cluster(CLUSTER).send()
}

/// Sends `GET /` to [`CLUSTER`] on `worker` and returns the response it got at once (a
/// fallback, say).
#[track_caller]
pub fn answer_now(w: &mut World, worker: usize) -> Response {
    let s = get(w, worker);
    response(w, s)
}

/// The response of `s`, which must have one by now.
#[track_caller]
pub fn response(w: &World, s: StreamId) -> Response {
    w.response(s).unwrap_or_else(|| {
        panic!(
            "{s} should have a response by {:?}, but it is {:?}; log:\n{}",
            w.now(),
            w.stream_state(s),
            log_text(w)
        )
    })
}

/// Whether `s` got the breaker's fallback (a filter reply carrying `x-breakwater-breaker`).
pub fn is_fallback(r: &Response) -> bool {
    r.header("x-breakwater-breaker").is_some()
}

/// Every log line, one per line, for assertion messages.
pub fn log_text(w: &World) -> String {
    w.logs()
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// How long each opening of the breaker lasts, from the filter's warning
/// (`circuit breaker '<c>' OPEN after <reason>; open for <n> ms`), oldest first.
pub fn open_times(w: &World, cluster: &str) -> Vec<Duration> {
    let needle = format!("circuit breaker '{cluster}' OPEN after ");
    w.logs_containing(&needle)
        .iter()
        .filter_map(|l| {
            let tail = l.message.rsplit_once("; open for ")?.1;
            tail.strip_suffix(" ms")?.parse().ok().map(ms)
        })
        .collect()
}

/// The virtual times at which the breaker of `cluster` opened, oldest first.
pub fn open_instants(w: &World, cluster: &str) -> Vec<Duration> {
    let needle = format!("circuit breaker '{cluster}' OPEN after ");
    w.logs_containing(&needle).iter().map(|l| l.at).collect()
}

/// The requests that reached `cluster` as dispatched retries (not the client's own stream).
pub fn retries_sent(w: &World, cluster: &str) -> Vec<Attempt> {
    w.upstream_attempts(cluster)
        .into_iter()
        .filter(|a| matches!(a.request.kind, AttemptKind::Call { .. }))
        .collect()
}

/// Fails `n` requests in a row on [`CLUSTER`] (which must answer 503), one per worker in
/// turn, each waiting for its answer; returns their streams.
pub fn fail_in_turn(w: &mut World, n: usize) -> Vec<StreamId> {
    let workers = w.workers();
    (0..n)
        .map(|i| {
            let s = get(w, i % workers);
            w.advance(ms(10));
            s
        })
        .collect()
}

/// Asserts that the filter logged no error and never found its state re-entered.
#[track_caller]
pub fn assert_no_errors(w: &World) {
    let errors: Vec<String> = w
        .logs()
        .iter()
        .filter(|l| l.level >= LogLevel::Error)
        .map(ToString::to_string)
        .collect();
    assert!(
        errors.is_empty(),
        "the filter logged errors:\n{}",
        errors.join("\n")
    );
}

/// The filter's clock now (the monotonic one), in the milliseconds it measures open times, due
/// times and deadlines in.
pub fn module_now(w: &World) -> breakwater::core::Millis {
    w.monotonic_nanos() / 1_000_000
}
