//! What the soak runs: two flaky upstreams behind Breakwater, the policy, the request mix and the
//! outage schedule.
//!
//! # The upstreams
//! - `catalog` answers 503 to a seeded 12% of requests, and every [`Outages::period`] it fails
//!   every request for a tenth of the period: the breaker opens, serves fallbacks, sends probes
//!   that fail and re-opens, then closes once the outage is over.
//! - `reviews` resets the connection (TCP RST) on a seeded 5% of requests: Envoy answers those
//!   attempts with its own 503, which Breakwater retries.
//!
//! # The requests
//! Three in four go to `catalog`, one in four to `reviews`; one in ten is a `POST` with a 512-byte
//! body and an `idempotency-key` (so its body is copied for the retries), the rest are `GET`s.
//! Every path is new (`/catalog/<n>`), as in real traffic.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::client::Request;
use crate::config::{EnvoyConfig, Route, WasmFilter};
use crate::upstream::{Reply, Upstream};

use super::load::{LoadSpec, MakeRequest};

/// The clusters, in the order of [`Upstreams`].
pub const CLUSTERS: [&str; 2] = ["catalog", "reviews"];
/// Share of `catalog` requests answered 503 outside outages.
pub const CATALOG_503: f64 = 0.12;
/// Share of `reviews` requests reset.
pub const REVIEWS_RESETS: f64 = 0.05;
/// The seed of the upstreams' failure draws.
const SEED: u64 = 20_261_127;

/// The policy the soak runs with.
pub fn policy() -> Value {
    json!({
        "default": {
            "circuit_breaker": {
                "failure_threshold": 5,
                "timeout": "2s",
                "max_timeout": "8s",
                "half_open_attempts": 2
            },
            "retry": {
                "max_attempts": 3,
                "base_delay": "20ms",
                "max_delay": "200ms",
                "per_try_timeout": "2s",
                "deadline": "5s",
                "budget": { "ratio": 0.2, "min_per_second": 10, "window": "10s" }
            }
        },
        "clusters": {
            "reviews": { "retry": { "jitter": "decorrelated" } }
        }
    })
}

/// The two upstreams, in the order of [`CLUSTERS`].
pub struct Upstreams {
    pub catalog: Upstream,
    pub reviews: Upstream,
}

impl Upstreams {
    /// Starts both upstreams with their everyday failures.
    pub fn start() -> io::Result<Upstreams> {
        let upstreams = Upstreams {
            catalog: Upstream::start(CLUSTERS[0])?,
            reviews: Upstream::start(CLUSTERS[1])?,
        };
        upstreams.catalog_outage(false);
        upstreams
            .reviews
            .fail_ratio(REVIEWS_RESETS, Reply::Reset, SEED + 1);
        Ok(upstreams)
    }

    /// Starts or ends an outage of `catalog`.
    pub fn catalog_outage(&self, down: bool) {
        let ratio = if down { 1.0 } else { CATALOG_503 };
        self.catalog.fail_ratio(ratio, Reply::Status(503), SEED);
    }

    /// Forgets the recorded requests of both (a long run would otherwise keep them all) and
    /// returns how many there were.
    pub fn drain(&self) -> usize {
        self.catalog.take_requests().len() + self.reviews.take_requests().len()
    }

    /// Envoy with Breakwater (the module at `wasm`, the soak's [`policy`]) in front of both, one
    /// named route per cluster, two workers, no access log.
    pub fn envoy_config(&self, wasm: &std::path::Path) -> EnvoyConfig {
        let mut config = EnvoyConfig::new().without_access_log();
        for (name, upstream) in CLUSTERS.iter().zip([&self.catalog, &self.reviews]) {
            config = config.cluster(name, upstream.addr()).route(Route::prefix(
                name,
                &format!("/{name}/"),
                name,
            ));
        }
        config.filter(WasmFilter::new(wasm).configuration(&policy().to_string()))
    }
}

/// Request `n`: see the module docs for the mix.
pub fn request(n: u64) -> Request {
    let cluster = if n % 4 == 3 { CLUSTERS[1] } else { CLUSTERS[0] };
    let path = format!("/{cluster}/{n}");
    if n % 10 == 9 {
        Request::post(&path, vec![b'p'; 512]).header("idempotency-key", &format!("soak-{n}"))
    } else {
        Request::get(&path)
    }
}

/// The load: [`request`] at `rate` requests per second over `connections` connections.
pub fn load(rate: f64, connections: usize) -> LoadSpec {
    let make: Arc<MakeRequest> = Arc::new(|_connection, n| request(n));
    LoadSpec {
        connections,
        rate,
        make,
    }
}

/// When `catalog` is down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outages {
    /// One outage per period, starting half a period in.
    pub period: Duration,
    /// How long each lasts.
    pub length: Duration,
}

impl Outages {
    /// Every 30 s for 3 s; in a run shorter than a minute, two per run, each a tenth of a period.
    pub fn for_run(duration: Duration) -> Outages {
        let period = Duration::from_secs(30).min(duration / 2);
        Outages {
            period,
            length: period / 10,
        }
    }

    /// Whether `catalog` is down at `at` (time since the load started).
    pub fn down_at(&self, at: Duration) -> bool {
        if self.period.is_zero() {
            return false;
        }
        let phase = (at + self.period / 2).as_nanos() % self.period.as_nanos();
        phase < self.length.as_nanos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_is_three_catalog_to_one_reviews_and_one_post_in_ten() {
        let requests: Vec<Request> = (0..40).map(request).collect();
        let reviews = requests
            .iter()
            .filter(|r| r.path.starts_with("/reviews/"))
            .count();
        assert_eq!(reviews, 10);
        let posts: Vec<&Request> = requests.iter().filter(|r| r.method == "POST").collect();
        assert_eq!(posts.len(), 4);
        assert!(posts
            .iter()
            .all(|r| r.body.len() == 512 && r.headers.iter().any(|(n, _)| n == "idempotency-key")));
        assert_eq!(requests[7].path, "/reviews/7", "every path is new");
    }

    #[test]
    fn outages_come_every_period_starting_half_a_period_in() {
        let outages = Outages::for_run(Duration::from_secs(600));
        assert_eq!(outages.period, Duration::from_secs(30));
        assert_eq!(outages.length, Duration::from_secs(3));
        let down = |s: f64| outages.down_at(Duration::from_secs_f64(s));
        assert!(!down(0.0) && !down(14.9));
        assert!(down(15.0) && down(17.9));
        assert!(!down(18.1) && !down(44.9));
        assert!(down(45.5));
    }

    #[test]
    fn a_short_run_still_has_two_outages() {
        let outages = Outages::for_run(Duration::from_secs(10));
        assert_eq!(outages.period, Duration::from_secs(5));
        let down: Vec<u64> = (0..100)
            .filter(|tenth| outages.down_at(Duration::from_millis(tenth * 100)))
            .collect();
        assert_eq!(down, vec![25, 26, 27, 28, 29, 75, 76, 77, 78, 79]);
    }
}
