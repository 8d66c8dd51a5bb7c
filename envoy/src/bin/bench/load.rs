//! A closed-loop HTTP/1.1 load generator that keeps every response's time and status.
//!
//! # Why not wrk here
//! The failure scenarios ask questions wrk cannot answer: which responses succeeded *when*
//! (the first success after the upstream recovers) and which were Breakwater's fallback. This
//! client keeps `connections` connections busy, one request at a time each (the same closed loop
//! as wrk), on a runtime and thread of its own, and records one [`Sample`] per request.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// The header Breakwater puts on its fallback reply.
pub const BREAKER_HEADER: &str = "x-breakwater-breaker";
/// A request that takes longer than this counts as failed (status 0).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause after a failed connect, so a refused port is not hammered in a tight loop.
const RECONNECT_PAUSE: Duration = Duration::from_millis(5);

/// One client request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// When the response (or the error) arrived, from the start of the scenario.
    pub at: Duration,
    /// The HTTP status; 0 when no response came (connection error or timeout).
    pub status: u16,
    /// Whether the response was Breakwater's fallback (it carries `x-breakwater-breaker`).
    pub fallback: bool,
    /// From sending the request to its whole response (or the error).
    pub latency: Duration,
}

impl Sample {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// A running load.
pub struct Load {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<std::io::Result<Vec<Sample>>>,
}

impl Load {
    /// Starts `connections` connections to `addr`, each sending `GET /` in a loop; sample times
    /// count from `epoch`.
    pub fn start(addr: SocketAddr, connections: usize, epoch: Instant) -> Load {
        Load::start_with("bench-load", addr, connections, epoch, connection_loop)
    }

    /// Starts `connections` clients on a thread (`name`) and runtime of their own, each running
    /// `client(addr, epoch, stop)`: a closed loop that records one [`Sample`] per request until
    /// `stop` is set.
    pub fn start_with<F, Fut>(
        name: &str,
        addr: SocketAddr,
        connections: usize,
        epoch: Instant,
        client: F,
    ) -> Load
    where
        F: Fn(SocketAddr, Instant, Arc<AtomicBool>) -> Fut + Send + 'static,
        Fut: Future<Output = Vec<Sample>> + Send + 'static,
    {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                Ok(runtime.block_on(async move {
                    let mut tasks = tokio::task::JoinSet::new();
                    for _ in 0..connections {
                        tasks.spawn(client(addr, epoch, flag.clone()));
                    }
                    let mut samples = Vec::new();
                    while let Some(done) = tasks.join_next().await {
                        match done {
                            Ok(mut part) => samples.append(&mut part),
                            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                            Err(_) => {}
                        }
                    }
                    samples
                }))
            })
            .unwrap_or_else(|e| panic!("cannot start the {name} thread: {e}"));
        Load { stop, thread }
    }

    /// Stops sending, waits for the requests in flight, and returns every sample in time order.
    pub fn stop(self) -> std::io::Result<Vec<Sample>> {
        self.stop.store(true, Ordering::Relaxed);
        let mut samples = self
            .thread
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
        samples.sort_by_key(|s| s.at);
        Ok(samples)
    }
}

/// One connection's loop: reconnects after errors, records every request.
async fn connection_loop(addr: SocketAddr, epoch: Instant, stop: Arc<AtomicBool>) -> Vec<Sample> {
    let mut samples = Vec::new();
    let mut sender: Option<http1::SendRequest<Empty<Bytes>>> = None;
    while !stop.load(Ordering::Relaxed) {
        let ready = match sender.as_mut() {
            Some(s) => s,
            None => match connect(addr).await {
                Some(s) => sender.insert(s),
                None => {
                    samples.push(Sample {
                        at: epoch.elapsed(),
                        status: 0,
                        fallback: false,
                        latency: Duration::ZERO,
                    });
                    tokio::time::sleep(RECONNECT_PAUSE).await;
                    continue;
                }
            },
        };
        let sent = Instant::now();
        let outcome = tokio::time::timeout(REQUEST_TIMEOUT, exchange(ready, addr)).await;
        let (status, fallback) = match outcome {
            Ok(Some(answer)) => answer,
            _ => {
                sender = None;
                (0, false)
            }
        };
        samples.push(Sample {
            at: epoch.elapsed(),
            status,
            fallback,
            latency: sent.elapsed(),
        });
    }
    samples
}

async fn connect(addr: SocketAddr) -> Option<http1::SendRequest<Empty<Bytes>>> {
    let stream = TcpStream::connect(addr).await.ok()?;
    let _ = stream.set_nodelay(true);
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await.ok()?;
    tokio::spawn(connection);
    Some(sender)
}

/// One request; the status and whether it was the fallback, or `None` on a broken connection.
async fn exchange(
    sender: &mut http1::SendRequest<Empty<Bytes>>,
    addr: SocketAddr,
) -> Option<(u16, bool)> {
    sender.ready().await.ok()?;
    let request = hyper::Request::get("/")
        .header("host", addr.to_string())
        .body(Empty::new())
        .ok()?;
    let response = sender.send_request(request).await.ok()?;
    let status = response.status().as_u16();
    let fallback = response.headers().contains_key(BREAKER_HEADER);
    response.into_body().collect().await.ok()?;
    Some((status, fallback))
}
