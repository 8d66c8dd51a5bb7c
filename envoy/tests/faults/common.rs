//! Shared fixtures: Breakwater in Envoy, its metrics, Envoy's wasm health, raw client
//! connections whose worker is known, and an exchange read byte by byte.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use breakwater_envoy::client::Session;
use breakwater_envoy::soak::{in_flight, WasmHealth};
use breakwater_envoy::{worker_stat, Envoy, EnvoyConfig, Upstream, WasmFilter};
use serde_json::{json, Value};

/// How long a poll for something that must happen may take before the test fails. Generous:
/// only a hung test ever waits this long.
pub const DEADLINE: Duration = Duration::from_secs(40);
const POLL: Duration = Duration::from_millis(20);
/// The workers of every Envoy here (the launcher's default).
pub const WORKERS: usize = 2;

/// The Breakwater filter (built from the sources once per test process) with `policy`.
pub fn breakwater(policy: &Value) -> WasmFilter {
    let wasm: PathBuf =
        breakwater_wasm::breakwater().unwrap_or_else(|e| panic!("breakwater.wasm must build: {e}"));
    WasmFilter::new(wasm).configuration(&policy.to_string())
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

/// Retries after `base_delay` (no jitter, no budget) of 5xx, resets, refused connections and
/// timeouts, each cut off after `per_try_timeout`, and a breaker that does not trip on the
/// failures of these tests.
pub fn retries(max_attempts: u32, base_delay: &str, per_try_timeout: &str) -> Value {
    json!({
        "default": {
            "circuit_breaker": { "failure_threshold": 1000 },
            "retry": {
                "max_attempts": max_attempts,
                "base_delay": base_delay,
                "jitter": false,
                "per_try_timeout": per_try_timeout,
                "retry_on": ["5xx", "reset", "connect-failure", "timeout"],
                "budget": null
            }
        }
    })
}

pub use breakwater_envoy::metrics::Metrics;

/// A counter or gauge of Envoy's `/stats` (0 while Envoy has not created it).
pub fn stat(envoy: &Envoy, name: &str) -> u64 {
    envoy.stats().expect("stats").number_or_zero(name)
}

/// Envoy's wasm health now (see `breakwater_envoy::soak::health`).
pub fn wasm_health(envoy: &Envoy) -> WasmHealth {
    WasmHealth::read(&envoy.stats().expect("stats"), &envoy.log())
}

/// Asserts that no wasm error appeared since `before`: no trap, no error line in Envoy's log, no
/// VM reload, no Breakwater state error.
#[track_caller]
pub fn assert_no_wasm_errors(envoy: &Envoy, before: &WasmHealth) {
    let errors = wasm_health(envoy).errors_since(before);
    assert!(errors.is_empty(), "wasm errors appeared: {errors:?}");
}

/// Waits until Envoy has no request active, downstream or upstream (Breakwater's dispatched
/// retries count upstream): nothing was left behind.
#[track_caller]
pub fn assert_nothing_in_flight(envoy: &Envoy) {
    wait_until("Envoy to have no request active", || {
        in_flight(&envoy.stats().expect("stats")) == 0
    });
}

/// Polls `condition` until it holds; fails the test with `what` after [`DEADLINE`].
#[track_caller]
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

/// Connections each worker has accepted so far.
pub fn connections_per_worker(envoy: &Envoy) -> Vec<u64> {
    let stats = envoy.stats().expect("stats");
    (0..WORKERS)
        .map(|w| stats.number_or_zero(&worker_stat(w, "downstream_cx_total")))
        .collect()
}

/// Opens a connection with `open` and waits until a worker took it; returns the connection and
/// that worker. One at a time, so the worker is known for sure (Envoy's exact balance counts a
/// closed connection until its worker gets round to the close, so a batch may all land on one).
pub fn place<C>(envoy: &Envoy, open: impl FnOnce() -> C) -> (C, usize) {
    let before = connections_per_worker(envoy);
    let connection = open();
    let mut after = before.clone();
    wait_until("Envoy to accept the connection", || {
        after = connections_per_worker(envoy);
        after.iter().sum::<u64>() > before.iter().sum::<u64>()
    });
    let worker = (0..WORKERS)
        .find(|&w| after[w] > before[w])
        .expect("one worker's count grew");
    (connection, worker)
}

/// One keep-alive session on each worker, for requests that must be served by every worker.
pub fn session_per_worker(envoy: &Envoy) -> Vec<Session> {
    let mut sessions: Vec<Option<Session>> = (0..WORKERS).map(|_| None).collect();
    for _ in 0..8 * WORKERS {
        let (session, worker) = place(envoy, || envoy.session().expect("a connection"));
        sessions[worker].get_or_insert(session);
        if sessions.iter().all(Option::is_some) {
            return sessions.into_iter().flatten().collect();
        }
    }
    panic!("could not get a connection on every worker");
}

/// How a raw exchange ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The whole body its `content-length` announced arrived.
    Complete,
    /// The connection closed (FIN) before that.
    Closed,
    /// The connection was reset before that.
    Reset,
}

/// A response read byte by byte off the socket, however it ended.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    /// Header lines, lower-cased names.
    pub headers: Vec<(String, String)>,
    pub content_length: Option<usize>,
    pub body: Vec<u8>,
    pub ended: Ended,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `GET path` to `addr` on a fresh connection and reads the response off the socket until
/// its body is complete or the connection ends; `None` if the connection ended before a whole
/// head.
pub fn raw_get(addr: SocketAddr, path: &str) -> Option<RawResponse> {
    let mut stream = TcpStream::connect(addr).expect("connects");
    stream
        .set_read_timeout(Some(DEADLINE))
        .expect("read timeout");
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nhost: breakwater\r\n\r\n").as_bytes())
        .expect("sends");
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    let (mut head, mut ended) = (None, None);
    while ended.is_none() {
        match stream.read(&mut chunk) {
            Ok(0) => ended = Some(Ended::Closed),
            Ok(n) => bytes.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => ended = Some(Ended::Reset),
            Err(e) => panic!("reading the response of {path}: {e}"),
        }
        if head.is_none() {
            head = parse_head(&bytes);
        }
        if let Some((end, _, _, Some(length))) = &head {
            if bytes.len() >= end + length {
                ended = Some(Ended::Complete);
            }
        }
    }
    let (end, status, headers, content_length) = head?;
    Some(RawResponse {
        status,
        headers,
        content_length,
        body: bytes[end..].to_vec(),
        ended: ended.unwrap_or(Ended::Closed),
    })
}

type Head = (usize, u16, Vec<(String, String)>, Option<usize>);

/// The head of an HTTP/1.1 response once it is complete: where the body starts, the status, the
/// headers and the content length.
fn parse_head(bytes: &[u8]) -> Option<Head> {
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let text = String::from_utf8_lossy(&bytes[..end]);
    let mut lines = text.split("\r\n");
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok());
    Some((end, status, headers, length))
}
