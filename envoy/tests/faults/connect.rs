//! `CONNECT` tunnels through the real Envoy 1.40 with Breakwater loaded and a policy that would
//! retry a `CONNECT` if it could: the connection manager accepts `CONNECT` (`upgrade_configs`),
//! a route matches it (`connect_matcher`) and terminates it (`connect_config`: Envoy answers 200
//! once it holds a TCP connection to the cluster, then relays raw bytes), and the cluster's
//! endpoint is a plain TCP server, not HTTP.
//!
//! # What happens (measured on Envoy 1.40)
//! - The filter sees the `CONNECT` head and the 200 Envoy answers for it, and nothing else: it
//!   neither copies nor retries a tunnel (its bytes are a stream, not a request to replay). The
//!   TCP servers see exactly one connection per tunnel and only the client's bytes: a retry,
//!   being an HTTP request dispatched to the cluster, would arrive as a second connection
//!   carrying an HTTP head with `x-breakwater-attempt`.
//! - An endpoint that accepts and closes at once: Envoy has already answered 200 (the tunnel was
//!   up), then ends the client's connection. Nothing to retry; one connection.
//! - An endpoint that refuses: Envoy's router answers 503 (`UF`, connect failure), a failure
//!   Breakwater's policy would retry for any other method; the `CONNECT` is not retried (Envoy
//!   counts one connect failure, and `retries_total` stays 0).

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;

use breakwater_envoy::{Envoy, EnvoyConfig, Route};
use serde_json::json;

use crate::common::{
    assert_no_wasm_errors, assert_nothing_in_flight, breakwater, start, stat, wait_until,
    wasm_health, Metrics, DEADLINE,
};

/// A policy that retries everything it may, `CONNECT` among the methods.
fn retry_everything() -> serde_json::Value {
    json!({
        "default": {
            "circuit_breaker": { "failure_threshold": 1000 },
            "retry": {
                "max_attempts": 3,
                "base_delay": "10ms",
                "jitter": false,
                "per_try_timeout": "2s",
                "methods": ["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE", "POST", "PATCH",
                            "CONNECT"],
                "retry_on": ["5xx", "reset", "connect-failure", "timeout"],
                "budget": null
            }
        }
    })
}

/// What a TCP endpoint does with a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    /// Sends back every byte it reads until the client closes.
    Echo,
    /// Closes the connection as soon as it is accepted.
    Close,
}

/// A TCP endpoint that records every connection it accepted and the bytes each carried.
struct TcpEndpoint {
    addr: SocketAddr,
    connections: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl TcpEndpoint {
    fn start(behaviour: Behaviour) -> TcpEndpoint {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a TCP endpoint binds");
        let addr = listener.local_addr().expect("its address");
        let connections: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
        let record = Arc::clone(&connections);
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let index = {
                    let mut all = record.lock().expect("the record");
                    all.push(Vec::new());
                    all.len() - 1
                };
                let record = Arc::clone(&record);
                thread::spawn(move || serve(stream, behaviour, index, &record));
            }
        });
        TcpEndpoint { addr, connections }
    }

    /// The bytes each accepted connection carried, in order of acceptance.
    fn connections(&self) -> Vec<Vec<u8>> {
        self.connections.lock().expect("the record").clone()
    }
}

fn serve(mut stream: TcpStream, behaviour: Behaviour, index: usize, record: &Mutex<Vec<Vec<u8>>>) {
    if behaviour == Behaviour::Close {
        let _ = stream.shutdown(Shutdown::Both);
        return;
    }
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                record.lock().expect("the record")[index].extend_from_slice(&chunk[..n]);
                if stream.write_all(&chunk[..n]).is_err() {
                    return;
                }
            }
        }
    }
}

/// A port nothing listens on (bound, then released).
fn refusing_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binds");
    listener.local_addr().expect("its address")
}

/// A client's `CONNECT` on a fresh connection: the connection and the response head's status
/// (`None` if the connection ended before a whole head), with the bytes read past the head.
fn connect(envoy: &Envoy, authority: &str) -> (TcpStream, Option<(u16, String)>) {
    let mut stream = TcpStream::connect(envoy.listener()).expect("connects to Envoy");
    stream.set_read_timeout(Some(DEADLINE)).expect("a timeout");
    stream
        .write_all(format!("CONNECT {authority} HTTP/1.1\r\nhost: {authority}\r\n\r\n").as_bytes())
        .expect("sends the CONNECT");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return (stream, None),
        }
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("a status line: {text:?}"));
    (stream, Some((status, text)))
}

/// Reads until the peer closes (or resets); the bytes read.
fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => return bytes,
            Ok(n) => bytes.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return bytes,
            Err(e) => panic!("reading the tunnel: {e}"),
        }
    }
}

/// Envoy with Breakwater retrying everything, accepting `CONNECT`, and terminating it for
/// `echo:1`, `closing:1` and `refused:1`, each to its own cluster.
fn envoy_for_tunnels(echo: &TcpEndpoint, closing: &TcpEndpoint, refused: SocketAddr) -> Envoy {
    const TERMINATE: &str = r#"[{ "upgrade_type": "CONNECT", "connect_config": {} }]"#;
    start(
        &EnvoyConfig::new()
            .cluster("echo", echo.addr)
            .cluster("closing", closing.addr)
            .cluster("refused", refused)
            .route(Route::connect("echo", "echo:1", "echo").action("upgrade_configs", TERMINATE))
            .route(
                Route::connect("closing", "closing:1", "closing")
                    .action("upgrade_configs", TERMINATE),
            )
            .route(
                Route::connect("refused", "refused:1", "refused")
                    .action("upgrade_configs", TERMINATE),
            )
            .connection_manager("upgrade_configs", r#"[{ "upgrade_type": "CONNECT" }]"#)
            .filter(breakwater(&retry_everything())),
    )
}

/// Whether any recorded connection carried a retry's mark.
fn carries_a_retry(connections: &[Vec<u8>]) -> bool {
    connections.iter().any(|bytes| {
        String::from_utf8_lossy(bytes)
            .to_ascii_lowercase()
            .contains("x-breakwater-attempt")
    })
}

#[test]
fn a_connect_tunnel_works_end_to_end_and_is_never_copied_or_retried() {
    let echo = TcpEndpoint::start(Behaviour::Echo);
    let closing = TcpEndpoint::start(Behaviour::Close);
    let envoy = envoy_for_tunnels(&echo, &closing, refusing_addr());
    let health = wasm_health(&envoy);

    // Two tunnels, one after the other, each carrying two exchanges.
    for tunnel in 0..2 {
        let (mut stream, head) = connect(&envoy, "echo:1");
        let (status, head) = head.expect("Envoy answered the CONNECT");
        assert_eq!(status, 200, "the tunnel is up: {head:?}");
        assert!(
            !head.to_ascii_lowercase().contains("x-breakwater"),
            "Breakwater marks nothing on a tunnel: {head:?}"
        );
        for exchange in 0..2 {
            let message = format!("tunnel {tunnel} exchange {exchange}\n");
            stream.write_all(message.as_bytes()).expect("writes");
            let mut back = vec![0u8; message.len()];
            stream.read_exact(&mut back).expect("the echo comes back");
            assert_eq!(String::from_utf8_lossy(&back), message);
        }
        stream.shutdown(Shutdown::Write).expect("half-closes");
        assert!(
            read_to_close(&mut stream).is_empty(),
            "nothing more came back"
        );
    }
    wait_until("both tunnels to be closed at the endpoint", || {
        stat(&envoy, "cluster.echo.upstream_cx_active") == 0
    });
    let connections = echo.connections();
    let expected: Vec<Vec<u8>> = (0..2)
        .map(|t| format!("tunnel {t} exchange 0\ntunnel {t} exchange 1\n").into_bytes())
        .collect();
    assert_eq!(
        connections, expected,
        "one connection per tunnel, carrying exactly the client's bytes (a retry would be \
         another connection with an HTTP head)"
    );
    assert!(!carries_a_retry(&connections));
    let metrics = Metrics::read(&envoy, "echo");
    eprintln!(
        "CONNECT tunnels: requests_total {}, failures_total {}, retries_total {}, \
         endpoint connections {}",
        metrics.get("requests_total"),
        metrics.get("failures_total"),
        metrics.get("retries_total"),
        connections.len()
    );
    assert_eq!(metrics.get("retries_total"), 0);
    assert_eq!(metrics.get("failures_total"), 0);
    assert_nothing_in_flight(&envoy);
    assert_no_wasm_errors(&envoy, &health);
}

#[test]
fn a_connect_whose_upstream_closes_or_refuses_is_not_retried() {
    let echo = TcpEndpoint::start(Behaviour::Echo);
    let closing = TcpEndpoint::start(Behaviour::Close);
    let envoy = envoy_for_tunnels(&echo, &closing, refusing_addr());
    let health = wasm_health(&envoy);

    // The endpoint accepts, then closes: the tunnel was up, then Envoy ends it.
    let (mut stream, head) = connect(&envoy, "closing:1");
    let after_head = read_to_close(&mut stream);
    eprintln!("CONNECT to an endpoint that closes: head {head:?}, then {after_head:?}");
    let (status, head) = head.expect("Envoy answered the CONNECT");
    assert_eq!(
        (status, after_head.len()),
        (200, 0),
        "Envoy answers 200 once connected, then ends the tunnel the endpoint closed: {head:?}"
    );
    assert!(
        !head.to_ascii_lowercase().contains("x-breakwater"),
        "not retried: {head:?}"
    );

    // The endpoint refuses: Envoy's 503 (connect failure), which is not retried either.
    let (mut stream, head) = connect(&envoy, "refused:1");
    let (status, head) = head.expect("Envoy answers a CONNECT it cannot connect");
    let _ = read_to_close(&mut stream);
    eprintln!("CONNECT to an endpoint that refuses: {head:?}");
    assert_eq!(status, 503, "Envoy's connect failure: {head:?}");
    assert!(
        !head.to_ascii_lowercase().contains("x-breakwater"),
        "not retried: {head:?}"
    );

    wait_until("Envoy to count the refused connection", || {
        stat(&envoy, "cluster.refused.upstream_cx_connect_fail") >= 1
    });
    assert_nothing_in_flight(&envoy);
    let connections = closing.connections();
    assert_eq!(
        connections.len(),
        1,
        "one connection reached the closing endpoint: {connections:?}"
    );
    assert!(!carries_a_retry(&connections));
    let closing_metrics = Metrics::read(&envoy, "closing");
    let refused_metrics = Metrics::now(&envoy, "refused");
    eprintln!(
        "closing: requests_total {}, failures_total {}, retries_total {}; refused: \
         requests_total {}, failures_total {}, retries_total {}, Envoy's connect failures {}",
        closing_metrics.get("requests_total"),
        closing_metrics.get("failures_total"),
        closing_metrics.get("retries_total"),
        refused_metrics.get("requests_total"),
        refused_metrics.get("failures_total"),
        refused_metrics.get("retries_total"),
        stat(&envoy, "cluster.refused.upstream_cx_connect_fail"),
    );
    assert_eq!(closing_metrics.get("retries_total"), 0);
    assert_eq!(refused_metrics.get("retries_total"), 0);
    assert_eq!(
        stat(&envoy, "cluster.refused.upstream_cx_connect_fail"),
        1,
        "one connection attempt: a retry would have made a second"
    );
    assert!(echo.connections().is_empty(), "no tunnel went elsewhere");
    assert_no_wasm_errors(&envoy, &health);
}
