//! Shared fixtures: the Breakwater module, Envoy in front of an upstream with a policy, reading
//! Breakwater's metrics, and the per-worker proof.

use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use breakwater_envoy::client::Session;
use breakwater_envoy::{worker_stat, Envoy, EnvoyConfig, Request, Response, Upstream, WasmFilter};
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

pub use breakwater_envoy::metrics::{stat, Metrics};

/// Connections each worker has accepted so far.
pub fn connections_per_worker(envoy: &Envoy) -> Vec<u64> {
    let stats = envoy.stats().expect("stats");
    (0..WORKERS)
        .map(|w| stats.number_or_zero(&worker_stat(w, "downstream_cx_total")))
        .collect()
}

/// Keep-alive connections to Envoy whose worker is known.
///
/// # Why connections are placed one at a time
/// Envoy's exact balance hands each new connection to the worker with the fewest, but it counts a
/// closed connection until that worker gets round to the close, so a batch opened right after
/// other connections closed can land on one worker. Opening connections one at a time and
/// watching which worker's `downstream_cx_total` grows tells for sure where each one is.
pub struct Placed {
    /// Open connections, per worker.
    pub by_worker: Vec<Vec<Session>>,
}

impl Placed {
    /// Opens connections until there are at least `at_least` and every worker has one (the
    /// extra ones stay open too).
    pub fn open(envoy: &Envoy, at_least: usize) -> Placed {
        let mut by_worker: Vec<Vec<Session>> = (0..WORKERS).map(|_| Vec::new()).collect();
        for _ in 0..at_least + 8 * WORKERS {
            let placed: usize = by_worker.iter().map(Vec::len).sum();
            if placed >= at_least && by_worker.iter().all(|s| !s.is_empty()) {
                return Placed { by_worker };
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
            by_worker[worker].push(session);
        }
        panic!(
            "could not get a connection on every worker: {:?}",
            by_worker.iter().map(Vec::len).collect::<Vec<_>>()
        );
    }

    /// `n` of the connections, taken from the workers in turn (so every worker has some when
    /// `n` is at least the number of workers).
    pub fn take(&mut self, n: usize) -> Vec<Session> {
        let mut taken = Vec::with_capacity(n);
        while taken.len() < n {
            let before = taken.len();
            for sessions in &mut self.by_worker {
                if taken.len() < n {
                    taken.extend(sessions.pop());
                }
            }
            assert!(
                taken.len() > before,
                "only {before} connections were placed"
            );
        }
        taken
    }
}

/// Sends `connections × per_connection` requests over connections held open together and
/// spread over both workers (each connection's requests one after another, the connections in
/// parallel), and returns the responses in order (a failed request fails the test).
pub fn send_on_both_workers(
    envoy: &Envoy,
    connections: usize,
    per_connection: usize,
    make: impl Fn(usize, usize) -> Request + Sync,
) -> Vec<Response> {
    assert!(connections >= WORKERS, "at least one connection per worker");
    let mut placed = Placed::open(envoy, connections);
    let sessions = placed.take(connections);
    let before = connections_per_worker(envoy);
    let make = &make;
    let responses: Vec<Vec<Response>> = thread::scope(|s| {
        let senders: Vec<_> = sessions
            .into_iter()
            .enumerate()
            .map(|(c, mut session)| {
                s.spawn(move || {
                    (0..per_connection)
                        .map(|i| {
                            session
                                .send(&make(c, i))
                                .unwrap_or_else(|e| panic!("connection {c}: no response: {e}"))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        senders
            .into_iter()
            .map(|t| t.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    assert_eq!(
        connections_per_worker(envoy),
        before,
        "every request went over the placed connections"
    );
    responses.into_iter().flatten().collect()
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
