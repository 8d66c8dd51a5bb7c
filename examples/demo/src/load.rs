//! The clients: a few threads, each on its own keep-alive connection to Envoy (so both workers
//! serve), sending paced requests to both clusters and sorting the responses.
//!
//! A request is counted in the phase during which it was sent, with whatever became of it, even
//! if its answer (after retries) arrives in the next phase.
//!
//! # What a response says
//! - `x-breakwater-breaker` present: the breaker's fallback (the upstream never saw it);
//! - `x-breakwater-attempts` present: the request needed retries;
//! - otherwise it is the upstream's (or Envoy's) own answer.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use breakwater_envoy::client::Session;
use breakwater_envoy::{Request, Response};

/// The clusters the clients call, with the path prefix that routes to each.
pub const CLUSTERS: [&str; 2] = ["catalog", "reviews"];

/// How much load, and how it is spread.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoadShape {
    /// Client threads, one connection each.
    pub connections: usize,
    /// Requests per second over all connections.
    pub rate: f64,
    /// One request in this many goes to `reviews`, the rest to `catalog`.
    pub reviews_every: u64,
}

impl Default for LoadShape {
    fn default() -> Self {
        LoadShape {
            connections: 8,
            rate: 100.0,
            reviews_every: 4,
        }
    }
}

/// Responses of one cluster, counted as they arrive.
#[derive(Debug, Default)]
pub struct Tally {
    requests: AtomicU64,
    ok: AtomicU64,
    retried: AtomicU64,
    rescued: AtomicU64,
    fallback: AtomicU64,
    failed: AtomicU64,
    errors: AtomicU64,
}

/// The counts of one cluster at one moment (or between two moments).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Requests sent.
    pub requests: u64,
    /// Responses with a 2xx status.
    pub ok: u64,
    /// Responses that needed retries (they carry `x-breakwater-attempts`).
    pub retried: u64,
    /// Of those, the 2xx ones: failures that retries turned into successes.
    pub rescued: u64,
    /// The breaker's fallback replies.
    pub fallback: u64,
    /// Other non-2xx responses.
    pub failed: u64,
    /// Requests that got no response at all.
    pub errors: u64,
}

impl Counts {
    pub fn plus(self, other: Counts) -> Counts {
        Counts {
            requests: self.requests + other.requests,
            ok: self.ok + other.ok,
            retried: self.retried + other.retried,
            rescued: self.rescued + other.rescued,
            fallback: self.fallback + other.fallback,
            failed: self.failed + other.failed,
            errors: self.errors + other.errors,
        }
    }
}

impl Tally {
    fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn record(&self, response: &Response) {
        let ok = (200..300).contains(&response.status);
        if response.header("x-breakwater-breaker").is_some() {
            Self::add(&self.fallback);
        } else if ok {
            Self::add(&self.ok);
        } else {
            Self::add(&self.failed);
        }
        if response.header("x-breakwater-attempts").is_some() {
            Self::add(&self.retried);
            if ok {
                Self::add(&self.rescued);
            }
        }
    }

    pub fn counts(&self) -> Counts {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Counts {
            requests: get(&self.requests),
            ok: get(&self.ok),
            retried: get(&self.retried),
            rescued: get(&self.rescued),
            fallback: get(&self.fallback),
            failed: get(&self.failed),
            errors: get(&self.errors),
        }
    }
}

/// Per phase, per cluster (in the order of [`CLUSTERS`]).
type Tallies = Vec<[Tally; 2]>;

/// The running clients.
pub struct Load {
    stop: Arc<AtomicBool>,
    phase: Arc<AtomicUsize>,
    threads: Vec<JoinHandle<()>>,
    tallies: Arc<Tallies>,
}

impl Load {
    /// Starts `shape.connections` client threads against `listener`, counting into phase 0 of
    /// `phases`.
    pub fn start(listener: SocketAddr, shape: LoadShape, phases: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let phase = Arc::new(AtomicUsize::new(0));
        let tallies: Arc<Tallies> =
            Arc::new((0..phases.max(1)).map(|_| Default::default()).collect());
        let connections = shape.connections.max(1);
        let interval = Duration::from_secs_f64(connections as f64 / shape.rate.max(0.1));
        let threads = (0..connections)
            .map(|id| {
                let client = Client {
                    id,
                    listener,
                    interval,
                    reviews_every: shape.reviews_every.max(1),
                    stop: stop.clone(),
                    phase: phase.clone(),
                    tallies: tallies.clone(),
                };
                thread::Builder::new()
                    .name(format!("demo-client-{id}"))
                    .spawn(move || client.run())
                    .unwrap_or_else(|e| panic!("cannot start a client thread: {e}"))
            })
            .collect();
        Load {
            stop,
            phase,
            threads,
            tallies,
        }
    }

    /// Requests sent from now on count in phase `index`.
    pub fn set_phase(&self, index: usize) {
        self.phase
            .store(index.min(self.tallies.len() - 1), Ordering::Relaxed);
    }

    /// The counts of each cluster of the requests sent during phase `index`, in the order of
    /// [`CLUSTERS`].
    pub fn counts(&self, index: usize) -> [Counts; 2] {
        self.tallies
            .get(index)
            .map_or_else(Default::default, |t| [t[0].counts(), t[1].counts()])
    }

    /// Stops the clients, waits for their last requests, and returns the final counts of every
    /// phase.
    pub fn stop(self) -> Vec<[Counts; 2]> {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads {
            let _ = thread.join();
        }
        self.tallies
            .iter()
            .map(|t| [t[0].counts(), t[1].counts()])
            .collect()
    }
}

/// One client thread.
struct Client {
    id: usize,
    listener: SocketAddr,
    interval: Duration,
    reviews_every: u64,
    stop: Arc<AtomicBool>,
    phase: Arc<AtomicUsize>,
    tallies: Arc<Tallies>,
}

impl Client {
    fn run(self) {
        let mut session: Option<Session> = None;
        // Spread the threads' first requests over one interval.
        let mut next = Instant::now() + self.interval.mul_f64(self.id as f64 / 8.0);
        let mut n: u64 = self.id as u64;
        while !self.stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            if next > now {
                thread::sleep(next - now);
            } else if now - next > self.interval {
                // Fell behind (slow responses): carry on from now rather than burst.
                next = now;
            }
            next += self.interval;
            n += 1;
            let cluster = usize::from(n.is_multiple_of(self.reviews_every));
            let phase = self.phase.load(Ordering::Relaxed);
            let Some(tallies) = self.tallies.get(phase) else {
                break;
            };
            let tally = &tallies[cluster];
            Tally::add(&tally.requests);
            let request = Request::get(&format!("/{}/item/{n}", CLUSTERS[cluster]));
            let outcome = match session.as_mut() {
                Some(s) => s.send(&request),
                None => Session::open(self.listener).and_then(|s| {
                    let s = session.insert(s);
                    s.send(&request)
                }),
            };
            match outcome {
                Ok(response) => tally.record(&response),
                Err(_) => {
                    Tally::add(&tally.errors);
                    session = None;
                }
            }
        }
    }
}
