//! Steady client load: a few threads, each on its own keep-alive connection to Envoy, sending
//! paced requests and sorting what comes back.
//!
//! # What is counted
//! Every request sent is either answered (a response arrived, whatever its status) or not (the
//! client got no response: the connection broke or nothing came within
//! [`crate::client::REQUEST_TIMEOUT`]). An unanswered request is the one thing a proxy must never
//! do to a client, so its error is kept for the report. Answers are sorted by who gave them:
//! the upstream (its responses carry `x-upstream`), Breakwater's fallback (`x-breakwater-breaker`),
//! or Envoy itself (neither: for example a 503 after an upstream reset).
//!
//! # Pacing
//! Each thread sends its share of the rate on a fixed schedule (request `i` at `start + i ·
//! interval`) and never catches up in a burst: a thread that fell behind sends its next request
//! at once and goes on from there, so the offered load stays what was asked.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::client::{Request, Response, Session};

/// The response header the test upstream names itself in.
const UPSTREAM_HEADER: &str = crate::upstream::UPSTREAM_HEADER;
/// The header on Breakwater's fallback replies.
const FALLBACK_HEADER: &str = "x-breakwater-breaker";

/// Builds request number `n` (counted over all connections) of connection `connection`.
pub type MakeRequest = dyn Fn(usize, u64) -> Request + Send + Sync;

/// How much load.
#[derive(Clone)]
pub struct LoadSpec {
    /// Client threads, one keep-alive connection each.
    pub connections: usize,
    /// Requests per second over all connections.
    pub rate: f64,
    /// The requests to send.
    pub make: Arc<MakeRequest>,
}

impl std::fmt::Debug for LoadSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadSpec")
            .field("connections", &self.connections)
            .field("rate", &self.rate)
            .finish_non_exhaustive()
    }
}

/// What the load got so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Requests sent (answered or not).
    pub sent: u64,
    /// 2xx responses.
    pub ok: u64,
    /// Non-2xx responses from the upstream (it names itself in `x-upstream`).
    pub upstream_failed: u64,
    /// Breakwater's fallback replies.
    pub fallback: u64,
    /// Non-2xx responses that Envoy made itself (neither the upstream's nor a fallback).
    pub envoy_failed: u64,
    /// Responses that needed retries (`x-breakwater-attempts`).
    pub retried: u64,
    /// Requests that got no response at all.
    pub unanswered: u64,
}

impl Tally {
    /// Requests that got a response.
    pub fn answered(&self) -> u64 {
        self.ok + self.upstream_failed + self.fallback + self.envoy_failed
    }

    /// Non-2xx responses of any origin.
    pub fn not_ok(&self) -> u64 {
        self.upstream_failed + self.fallback + self.envoy_failed
    }
}

#[derive(Debug, Default)]
struct Counters {
    sent: AtomicU64,
    ok: AtomicU64,
    upstream_failed: AtomicU64,
    fallback: AtomicU64,
    envoy_failed: AtomicU64,
    retried: AtomicU64,
    unanswered: AtomicU64,
}

impl Counters {
    fn record(&self, response: &Response) {
        let counter = if (200..300).contains(&response.status) {
            &self.ok
        } else if response.header(FALLBACK_HEADER).is_some() {
            &self.fallback
        } else if response.header(UPSTREAM_HEADER).is_some() {
            &self.upstream_failed
        } else {
            &self.envoy_failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if response.header("x-breakwater-attempts").is_some() {
            self.retried.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn tally(&self) -> Tally {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Tally {
            sent: get(&self.sent),
            ok: get(&self.ok),
            upstream_failed: get(&self.upstream_failed),
            fallback: get(&self.fallback),
            envoy_failed: get(&self.envoy_failed),
            retried: get(&self.retried),
            unanswered: get(&self.unanswered),
        }
    }
}

/// What the client threads share.
struct Shared {
    stop: AtomicBool,
    next: AtomicU64,
    counters: Counters,
    /// The first few unanswered requests, with why.
    errors: Mutex<Vec<String>>,
}

/// Unanswered requests whose error is kept for the report.
const KEPT_ERRORS: usize = 10;

/// Running client threads.
pub struct Load {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl Load {
    /// Starts `spec.connections` client threads against `target`.
    pub fn start(target: SocketAddr, spec: &LoadSpec) -> Load {
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            next: AtomicU64::new(0),
            counters: Counters::default(),
            errors: Mutex::new(Vec::new()),
        });
        let connections = spec.connections.max(1);
        let interval = Duration::from_secs_f64(connections as f64 / spec.rate.max(0.1));
        let threads = (0..connections)
            .map(|connection| {
                let client = Client {
                    connection,
                    connections,
                    target,
                    interval,
                    make: spec.make.clone(),
                    shared: shared.clone(),
                };
                thread::Builder::new()
                    .name(format!("load-{connection}"))
                    .spawn(move || client.run())
                    .unwrap_or_else(|e| panic!("cannot start a client thread: {e}"))
            })
            .collect();
        Load { shared, threads }
    }

    /// The counts so far (requests still waiting for their answer count as sent only).
    pub fn tally(&self) -> Tally {
        self.shared.counters.tally()
    }

    /// Stops sending, waits for the answers still outstanding, and returns the final counts.
    pub fn stop(self) -> Finished {
        self.shared.stop.store(true, Ordering::Relaxed);
        for thread in self.threads {
            if let Err(panic) = thread.join() {
                std::panic::resume_unwind(panic);
            }
        }
        Finished {
            tally: self.shared.counters.tally(),
            errors: errors(&self.shared),
        }
    }

    /// Why the first unanswered requests so far got no answer (at most a few).
    pub fn errors(&self) -> Vec<String> {
        errors(&self.shared)
    }
}

/// The load's final counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    pub tally: Tally,
    /// Why the first unanswered requests got no answer (at most a few).
    pub errors: Vec<String>,
}

fn errors(shared: &Shared) -> Vec<String> {
    shared
        .errors
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

/// One client thread.
struct Client {
    connection: usize,
    connections: usize,
    target: SocketAddr,
    interval: Duration,
    make: Arc<MakeRequest>,
    shared: Arc<Shared>,
}

impl Client {
    fn run(self) {
        let mut session: Option<Session> = None;
        // Stagger the threads over one interval so they do not send in lockstep.
        let offset = self
            .interval
            .mul_f64(self.connection as f64 / self.connections as f64);
        let mut due = Instant::now() + offset;
        while !self.shared.stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            if due > now {
                thread::sleep(due - now);
            }
            due = due.max(now) + self.interval;
            let n = self.shared.next.fetch_add(1, Ordering::Relaxed);
            let request = (self.make)(self.connection, n);
            self.shared.counters.sent.fetch_add(1, Ordering::Relaxed);
            let outcome = match session.as_mut() {
                Some(s) => s.send(&request).map_err(|e| e.to_string()),
                None => Session::open(self.target)
                    .map_err(|e| e.to_string())
                    .and_then(|s| {
                        let s = session.insert(s);
                        s.send(&request).map_err(|e| e.to_string())
                    }),
            };
            match outcome {
                Ok(response) => {
                    self.shared.counters.record(&response);
                    // Envoy closes the connection after a local reply to a request whose body
                    // it did not read (a fallback to a POST, say) and says so.
                    if response
                        .header("connection")
                        .is_some_and(|v| v.eq_ignore_ascii_case("close"))
                    {
                        session = None;
                    }
                }
                Err(error) => {
                    // HTTP/1.1 cannot go on after a broken exchange: the next request reconnects.
                    session = None;
                    self.unanswered(&request, error);
                }
            }
        }
    }

    fn unanswered(&self, request: &Request, error: String) {
        self.shared
            .counters
            .unanswered
            .fetch_add(1, Ordering::Relaxed);
        let mut errors = self
            .shared
            .errors
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if errors.len() < KEPT_ERRORS {
            errors.push(format!("{} {}: {error}", request.method, request.path));
        }
    }
}
