//! A real HTTP/1.1 upstream for the Envoy tests and the demo, controlled at run time.
//!
//! # What it can do
//! Answer with a fixed status, fail a seeded random share of requests or the first attempts of
//! every path, wait before answering, hold every reply until the test releases it, send
//! `Retry-After`, close the connection instead of answering (with a TCP reset or a graceful
//! close), send the head and part of the body and then reset, read a request and never answer,
//! and stop listening altogether (connections refused) and start again on the same port.
//! It can also answer before reading the request body ([`Reply::Early`]), echo what body it
//! received ([`Reply::Echo`]), send a large body without holding it ([`Reply::Large`]), draw each delay from a range, fail at random at the moment a reply
//! is due with a cap on failures in a row, and serve a health-check path whose answer the test
//! flips. Every request that reaches it is recorded with its headers and body (see [`record`]),
//! so tests count upstream attempts exactly, and every reply is logged in the order it went out
//! (see [`completion`]).
//!
//! # Refusing connections without losing the port
//! The upstream holds a "reservation" socket: bound to its port with `SO_REUSEPORT`, never
//! listening. The serving socket binds the same port beside it. To stop, the serving socket and
//! every open connection are closed; Linux then answers a SYN to the port with a reset
//! (connection refused) because no socket listens, while the reservation keeps other programs from
//! taking the port, so Envoy's cluster address stays valid for [`Upstream::start_listening`].

pub mod completion;
mod generated;
pub mod plan;
pub mod record;
mod serve;
mod truncated;

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use hyper::header::HeaderValue;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

pub use completion::{longest_run, Completion, Completions};
pub use plan::{
    body_hash, Decision, Plan, Reply, BODY_BYTES_HEADER, BODY_HASH_HEADER, MID_BODY_DECLARED,
    MID_BODY_SENT,
};
pub use record::{Record, RecordedRequest, ATTEMPT_HEADER};

use crate::runtime::{block_on, runtime};
use serve::serve;

/// The response header naming the upstream that answered.
pub const UPSTREAM_HEADER: &str = "x-upstream";

/// A test upstream on `127.0.0.1`, serving until dropped.
pub struct Upstream {
    name: String,
    addr: SocketAddr,
    shared: Arc<Shared>,
    /// Keeps the port ours while not listening; never read.
    _reservation: Socket,
    listening: Mutex<Option<Listening>>,
}

/// State the connection tasks share with the test.
struct Shared {
    name: String,
    plan: Mutex<Plan>,
    record: Mutex<Record>,
    /// `true` while replies are held ([`Upstream::hold`]).
    gate: watch::Sender<bool>,
    /// Whether each request is copied into the record (else only counted).
    keep: AtomicBool,
    completions: Mutex<Completions>,
    health: Mutex<Option<Health>>,
}

/// A health-check path, answered apart from the plan and never recorded.
#[derive(Debug)]
struct Health {
    path: String,
    healthy: bool,
    /// Health checks answered so far.
    checks: u64,
}

/// The serving side while listening.
struct Listening {
    accept: JoinHandle<()>,
    close: watch::Sender<bool>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A TCP socket bound to `addr` that shares the port with the upstream's other sockets.
fn shared_port_socket(addr: SocketAddr) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    Ok(socket)
}

impl Upstream {
    /// Starts an upstream named `name` (sent back in `x-upstream` and the body) on a free port of
    /// 127.0.0.1. It answers 200 until told otherwise.
    pub fn start(name: &str) -> io::Result<Upstream> {
        let reservation = shared_port_socket(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        let addr = reservation
            .local_addr()?
            .as_socket()
            .ok_or_else(|| io::Error::other("the reserved upstream socket has no IP address"))?;
        let upstream = Upstream {
            name: name.to_string(),
            addr,
            shared: Arc::new(Shared {
                name: name.to_string(),
                plan: Mutex::new(Plan::default()),
                record: Mutex::new(Record::default()),
                gate: watch::Sender::new(false),
                keep: AtomicBool::new(true),
                completions: Mutex::new(Completions::default()),
                health: Mutex::new(None),
            }),
            _reservation: reservation,
            listening: Mutex::new(None),
        };
        upstream.start_listening()?;
        Ok(upstream)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The address Envoy's cluster points at; fixed for the upstream's life.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Answers every request (not otherwise scripted or failed) with `status`.
    pub fn respond_with(&self, status: u16) {
        self.set_default(Reply::Status(status));
    }

    /// The reply to every request not otherwise scripted or failed.
    pub fn set_default(&self, reply: Reply) {
        lock(&self.shared.plan).set_default(reply);
    }

    /// Queues replies for the next requests, in order, ahead of the ratio and the default.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        lock(&self.shared.plan).script(replies);
    }

    /// Fails each request with `reply` with probability `ratio`, drawn from an RNG seeded with
    /// `seed`.
    pub fn fail_ratio(&self, ratio: f64, reply: Reply, seed: u64) {
        lock(&self.shared.plan).set_failures(ratio, reply, seed);
    }

    /// The first `per_path` requests of every distinct path fail with `reply` (after the script,
    /// before the ratio and the default). With a fresh path per client request, each request
    /// fails its first `per_path` attempts, however concurrent requests interleave.
    pub fn fail_first_per_path(&self, per_path: usize, reply: Reply) {
        lock(&self.shared.plan).set_path_failures(per_path, reply);
    }

    /// Stops per-path failures.
    pub fn no_path_failures(&self) {
        lock(&self.shared.plan).clear_path_failures();
    }

    /// Holds every reply from now on: requests are recorded as they arrive, but not answered
    /// until [`Upstream::release`]. A test sees a request in flight without racing a delay.
    pub fn hold(&self) {
        self.shared.gate.send_replace(true);
    }

    /// Answers the held requests and stops holding.
    pub fn release(&self) {
        self.shared.gate.send_replace(false);
    }

    /// Stops random failures.
    pub fn no_failures(&self) {
        lock(&self.shared.plan).clear_failures();
    }

    /// Waits this long before every reply (a reset or close too).
    pub fn set_delay(&self, delay: Duration) {
        lock(&self.shared.plan).set_delay(delay);
    }

    /// Waits before every reply for a time drawn between `min` and `max` from an RNG seeded
    /// with `seed`.
    pub fn set_delay_range(&self, min: Duration, max: Duration, seed: u64) {
        lock(&self.shared.plan).set_delay_range(min, max, seed);
    }

    /// Each reply that would succeed fails with `reply` instead when it is due, with
    /// probability `ratio`, but never more than `max_run` failures in a row in completion order
    /// (see [`completion`]).
    pub fn fail_at_completion(&self, ratio: f64, reply: Reply, max_run: usize, seed: u64) {
        lock(&self.shared.completions).fail_at_completion(ratio, reply, max_run, seed);
    }

    /// Stops the failures of [`Upstream::fail_at_completion`].
    pub fn no_failures_at_completion(&self) {
        lock(&self.shared.completions).no_failures_at_completion();
    }

    /// Every reply so far in the order it went out (health checks left out).
    pub fn completions(&self) -> Vec<Completion> {
        lock(&self.shared.completions).log().to_vec()
    }

    /// Forgets the completions logged so far.
    pub fn clear_completions(&self) {
        lock(&self.shared.completions).clear();
    }

    /// Answers requests for exactly `path` as a health check: 200 while `healthy`, else 503,
    /// whatever the plan says; they are neither recorded nor logged as completions.
    pub fn serve_health(&self, path: &str, healthy: bool) {
        *lock(&self.shared.health) = Some(Health {
            path: path.to_string(),
            healthy,
            checks: 0,
        });
    }

    /// Flips the answer of the health-check path (see [`Upstream::serve_health`]).
    pub fn set_healthy(&self, healthy: bool) {
        if let Some(health) = lock(&self.shared.health).as_mut() {
            health.healthy = healthy;
        }
    }

    /// Health checks answered so far.
    pub fn health_checks(&self) -> u64 {
        lock(&self.shared.health).as_ref().map_or(0, |h| h.checks)
    }

    /// Sends `Retry-After: value` with every non-2xx response (`None`: no header).
    ///
    /// # Panics
    /// If `value` is not a valid header value: a mistake in the test, not in what it tests.
    pub fn set_retry_after(&self, value: Option<&str>) {
        if let Some(v) = value {
            assert!(
                HeaderValue::from_str(v).is_ok(),
                "Retry-After value {v:?} is not a valid header value"
            );
        }
        lock(&self.shared.plan).set_retry_after(value.map(str::to_string));
    }

    /// Whether requests are kept with their headers and body (the default) or only counted
    /// (benchmarks: [`Upstream::total`] still counts every request, [`Upstream::requests`] and
    /// the per-path counts see only those kept).
    pub fn keep_requests(&self, keep: bool) {
        self.shared.keep.store(keep, Ordering::Relaxed);
    }

    /// A copy of every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.record).requests().to_vec()
    }

    /// A copy of the record, for its counting helpers.
    pub fn record(&self) -> Record {
        lock(&self.shared.record).clone()
    }

    /// How many requests reached the upstream.
    pub fn total(&self) -> usize {
        lock(&self.shared.record).total()
    }

    /// How many requests with this method and path reached the upstream.
    pub fn count(&self, method: &str, path: &str) -> usize {
        lock(&self.shared.record).count(method, path)
    }

    /// Forgets the requests received so far.
    pub fn clear_record(&self) {
        lock(&self.shared.record).clear();
    }

    /// Every request received since the last call (or the start) in arrival order, forgotten in
    /// the same step: a long run keeps the record small without losing a request in between.
    pub fn take_requests(&self) -> Vec<RecordedRequest> {
        std::mem::take(&mut *lock(&self.shared.record)).into_requests()
    }

    pub fn is_listening(&self) -> bool {
        lock(&self.listening).is_some()
    }

    /// Listens again on the same port (a no-op while listening).
    pub fn start_listening(&self) -> io::Result<()> {
        let mut listening = lock(&self.listening);
        if listening.is_some() {
            return Ok(());
        }
        let socket = shared_port_socket(self.addr)?;
        socket.listen(1024)?;
        socket.set_nonblocking(true)?;
        let listener = {
            let _inside = runtime().enter();
            TcpListener::from_std(socket.into())?
        };
        let (close, closed) = watch::channel(false);
        let accept = runtime().spawn(accept_loop(listener, self.shared.clone(), closed));
        *listening = Some(Listening { accept, close });
        Ok(())
    }

    /// Closes the listening socket and every open connection: from when this returns until
    /// [`Upstream::start_listening`], connecting to the port is refused.
    pub fn stop_listening(&self) {
        let Some(listening) = lock(&self.listening).take() else {
            return;
        };
        let _ = listening.close.send(true);
        // The accept loop closes its connections before it ends; waiting for it makes the refusal
        // hold as soon as this returns.
        if tokio::runtime::Handle::try_current().is_err() {
            let _ = block_on(listening.accept);
        }
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop_listening();
    }
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("name", &self.name)
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// Accepts connections until told to close, then closes them all.
async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut closed: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = closed.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(serve(stream, shared.clone()));
                }
                // Per-connection errors (for example the peer reset before accept): keep serving.
                Err(_) => continue,
            },
            // Reap finished connections so the set does not grow.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    connections.shutdown().await;
}
