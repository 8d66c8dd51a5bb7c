//! Shared fixtures: the Breakwater module, Envoy in front of an upstream with a policy, reading
//! Breakwater's metrics, and the per-worker proof.

use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use breakwater_envoy::{worker_stat, Envoy, EnvoyConfig, Response, Upstream, WasmFilter};
use serde_json::Value;

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
