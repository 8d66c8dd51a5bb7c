//! The clients: a few threads, each on its own keep-alive connection to Envoy (so both workers
//! serve), sending paced requests to both clusters and sorting the responses.
//!
//! # What a response says
//! - `x-breakwater-breaker` present: the breaker's fallback (the upstream never saw it);
//! - `x-breakwater-attempts` present: the request needed retries;
//! - otherwise it is the upstream's (or Envoy's) own answer.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
    /// What happened between `earlier` and `self`.
    pub fn since(self, earlier: Counts) -> Counts {
        Counts {
            requests: self.requests - earlier.requests,
            ok: self.ok - earlier.ok,
            retried: self.retried - earlier.retried,
            rescued: self.rescued - earlier.rescued,
            fallback: self.fallback - earlier.fallback,
            failed: self.failed - earlier.failed,
            errors: self.errors - earlier.errors,
        }
    }

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

/// The running clients.
pub struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    tallies: Arc<[Tally; 2]>,
}

impl Load {
    /// Starts `shape.connections` client threads against `listener`.
    pub fn start(listener: SocketAddr, shape: LoadShape) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let tallies: Arc<[Tally; 2]> = Arc::new(Default::default());
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
            threads,
            tallies,
        }
    }

    /// The counts of each cluster so far, in the order of [`CLUSTERS`].
    pub fn counts(&self) -> [Counts; 2] {
        [self.tallies[0].counts(), self.tallies[1].counts()]
    }

    /// Stops the clients and waits for their last requests.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

/// One client thread.
struct Client {
    id: usize,
    listener: SocketAddr,
    interval: Duration,
    reviews_every: u64,
    stop: Arc<AtomicBool>,
    tallies: Arc<[Tally; 2]>,
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
            let cluster = if n % self.reviews_every == 0 { 1 } else { 0 };
            let tally = &self.tallies[cluster];
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
