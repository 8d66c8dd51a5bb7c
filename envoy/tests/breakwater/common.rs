//! Shared fixtures: the Breakwater module, Envoy in front of an upstream with a policy, reading
//! Breakwater's metrics, and the per-worker proof.

use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use breakwater_envoy::client::Session;
use breakwater_envoy::{worker_stat, Envoy, EnvoyConfig, Response, Upstream, WasmFilter};
use serde_json::{json, Value};

/// How long a poll for something that must happen (a breaker timeout passing, a request reaching
/// the upstream) may take before the test fails. Generous: only a hung test ever waits this long.
pub const DEADLINE: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(20);

/// The workers of every Envoy here (the launcher's default).
pub const WORKERS: usize = 2;

/// The current `breakwater.wasm`, built once per test process.
pub fn breakwater_wasm() -> PathBuf {
    breakwater_wasm::breakwater().unwrap_or_else(|e| panic!("breakwater.wasm must build: {e}"))
}

/// The Breakwater filter with `policy`.
pub fn breakwater(policy: &Value) -> WasmFilter {
    WasmFilter::new(breakwater_wasm()).configuration(&policy.to_string())
}

pub fn upstream(name: &str) -> Upstream {
    Upstream::start(name).unwrap_or_else(|e| panic!("upstream {name} must start: {e}"))
}

pub fn start(config: &EnvoyConfig) -> Envoy {
    Envoy::start(config).unwrap_or_else(|e| panic!("Envoy must start: {e}"))
}

/// Envoy with Breakwater and `policy` in front of `upstream` as cluster `cluster`.
pub fn envoy_with(upstream: &Upstream, cluster: &str, policy: &Value) -> Envoy {
    start(
        &EnvoyConfig::new()
            .cluster(cluster, upstream.addr())
            .filter(breakwater(policy)),
    )
}

/// The `/stats` name of Breakwater's `metric` for `cluster`.
pub fn stat(cluster: &str, metric: &str) -> String {
    format!("wasmcustom.breakwater.breakwater_cluster=.={cluster};.;{metric}")
}

/// The `/stats` name of the skipped-retries counter for `cluster` and `reason`.
pub fn skipped_stat(cluster: &str, reason: &str) -> String {
    stat(
        cluster,
        &format!("reason=.={reason};.;retries_skipped_total"),
    )
}

/// Breakwater's counters and gauge of one cluster, read from `/stats`.
pub struct Metrics {
    stats: breakwater_envoy::Stats,
    cluster: String,
}

impl Metrics {
    pub fn read(envoy: &Envoy, cluster: &str) -> Metrics {
        Metrics {
            stats: envoy.stats().expect("stats"),
            cluster: cluster.to_string(),
        }
    }

    /// A counter (`requests_total`, ...); 0 while the filter has not defined it (it defines
    /// each metric on first use).
    pub fn get(&self, metric: &str) -> u64 {
        self.stats.number_or_zero(&stat(&self.cluster, metric))
    }

    pub fn skipped(&self, reason: &str) -> u64 {
        self.stats
            .number_or_zero(&skipped_stat(&self.cluster, reason))
    }

    /// The breaker-state gauge: 0 closed, 1 open, 2 half-open; `None` before any transition.
    pub fn state(&self) -> Option<u64> {
        self.stats.number(&stat(&self.cluster, "breaker_state"))
    }
}

/// Connections each worker has accepted so far.
pub fn connections_per_worker(envoy: &Envoy) -> Vec<u64> {
    let stats = envoy.stats().expect("stats");
    (0..WORKERS)
        .map(|w| stats.number_or_zero(&worker_stat(w, "downstream_cx_total")))
        .collect()
}

/// Asserts that every worker accepted connections between the two readings.
pub fn assert_both_workers_served(before: &[u64], after: &[u64], what: &str) {
    let served: Vec<u64> = after.iter().zip(before).map(|(a, b)| a - b).collect();
    assert!(
        served.iter().all(|&n| n > 0),
        "{what}: every worker must have served connections, per worker: {served:?}"
    );
}

/// One keep-alive connection on each worker (index = worker), found by opening connections one
/// at a time and watching which worker's connection count grows. Connections that land on a
/// worker that has one already are kept open too (they steer Envoy's exact balance to the other
/// worker) and held with the rest.
pub struct SessionPerWorker {
    pub on: Vec<Session>,
    /// Held open, never used.
    _spare: Vec<Session>,
}

pub fn session_per_worker(envoy: &Envoy) -> SessionPerWorker {
    let mut on: Vec<Option<Session>> = (0..WORKERS).map(|_| None).collect();
    let mut spare = Vec::new();
    for _ in 0..4 * WORKERS {
        if on.iter().all(Option::is_some) {
            break;
        }
        let before = connections_per_worker(envoy);
        let session = envoy.session().expect("a connection");
        let mut after = before.clone();
        wait_until("Envoy to accept the connection", || {
            after = connections_per_worker(envoy);
            after.iter().sum::<u64>() > before.iter().sum::<u64>()
        });
        let worker = (0..WORKERS)
            .find(|&w| after[w] > before[w])
            .expect("one worker's count grew");
        match &mut on[worker] {
            slot @ None => *slot = Some(session),
            Some(_) => spare.push(session),
        }
    }
    let on: Vec<Session> = on.into_iter().flatten().collect();
    assert_eq!(on.len(), WORKERS, "a connection on every worker");
    SessionPerWorker { on, _spare: spare }
}

/// Sends `connections × per_connection` requests over connections held open together, so both
/// workers serve them, and returns the responses in order (a failed request fails the test).
pub fn send_on_both_workers(
    envoy: &Envoy,
    connections: usize,
    per_connection: usize,
    make: impl Fn(usize, usize) -> breakwater_envoy::Request,
) -> Vec<Response> {
    let before = connections_per_worker(envoy);
    let outcomes = envoy
        .send_concurrently(connections, per_connection, make)
        .expect("the connections open");
    let after = connections_per_worker(envoy);
    assert_both_workers_served(&before, &after, "concurrent requests");
    outcomes
        .into_iter()
        .enumerate()
        .flat_map(|(c, connection)| {
            assert_eq!(
                connection.len(),
                per_connection,
                "connection {c} carried all its requests: {connection:?}"
            );
            connection
                .into_iter()
                .map(move |r| r.unwrap_or_else(|e| panic!("connection {c}: no response: {e}")))
        })
        .collect()
}

/// Whether `response` is Breakwater's fallback (it carries `x-breakwater-breaker`).
pub fn is_fallback(response: &Response) -> bool {
    response.header("x-breakwater-breaker").is_some()
}

/// Whether the upstream answered `response` (the test upstream names itself in `x-upstream`).
pub fn from_upstream(response: &Response) -> bool {
    response.header("x-upstream").is_some()
}

/// Polls `condition` every few milliseconds until it holds; fails the test with `what` after
/// [`DEADLINE`].
pub fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "gave up after {DEADLINE:?} waiting for {what}"
        );
        thread::sleep(POLL);
    }
}

/// Sends `GET path` until a response is not a fallback (the breaker admitted it) and returns that
/// response; fails the test after [`DEADLINE`]. Fallbacks on the way must say `expected_state`.
pub fn get_until_admitted(envoy: &Envoy, path: &str, expected_state: &str) -> Response {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let response = envoy.get(path).expect("a response");
        if !is_fallback(&response) {
            return response;
        }
        assert_eq!(
            response.header("x-breakwater-breaker"),
            Some(expected_state),
            "while waiting for admission the fallbacks say why"
        );
        assert!(
            Instant::now() < deadline,
            "the breaker admitted nothing within {DEADLINE:?}"
        );
        thread::sleep(POLL);
    }
}

/// Quick retries, no budget and a breaker that does not trip on the failures of these tests.
pub fn quick_retries(max_attempts: u32) -> Value {
    json!({
        "default": {
            "circuit_breaker": { "failure_threshold": 50 },
            "retry": {
                "max_attempts": max_attempts,
                "base_delay": "10ms",
                "max_delay": "50ms",
                "budget": null
            }
        }
    })
}

/// A breaker that opens after 4 failed client requests and stays open 2 s; no retries, so every
/// client request is one upstream request and one outcome.
pub fn breaker_policy() -> Value {
    json!({
        "default": {
            "circuit_breaker": {
                "failure_threshold": 4,
                "timeout": "2s",
                "max_timeout": "2s",
                "half_open_attempts": 1,
                "fallback": {
                    "status": 503,
                    "headers": { "content-type": "application/json" },
                    "body": "{\"source\":\"fallback\"}"
                }
            },
            "retry": null
        }
    })
}

/// Asserts that `response` is the fallback of [`breaker_policy`], saying `state`.
pub fn assert_fallback(response: &Response, state: &str) {
    assert_eq!(response.status, 503, "{response:?}");
    assert_eq!(
        response.header("x-breakwater-breaker"),
        Some(state),
        "{response:?}"
    );
    assert_eq!(
        response.text(),
        "{\"source\":\"fallback\"}",
        "the policy's fallback body"
    );
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert!(
        response.header("retry-after").is_some(),
        "the fallback says when to come back: {response:?}"
    );
    assert!(!from_upstream(response), "the upstream never saw it");
}
