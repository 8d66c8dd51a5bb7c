//! What Envoy to run: upstream clusters, named routes, the wasm filter and how its config is
//! delivered, and the test knobs (workers, connection balance, log level).
//!
//! # One source of truth
//! The bootstrap is never written here from scratch: [`render`] loads the operator configs in
//! `envoy/configs/` (`static.yaml`, or `dynamic-ecds.yaml` with `breakwater-ecds.yaml`) and
//! changes only what a test must: addresses and ports (port 0, picked free by Envoy), the
//! clusters and routes, the `.wasm` path, the plugin's name, root id and configuration, and the
//! options below. Stats tags, the access log format, the filter chain and every other setting
//! come from the very files operators use, so the tests check those files.

mod json;
mod render;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use render::{
    ecds_resource, render, validation_copy, write_atomically, Rendered, DYNAMIC_ECDS_YAML,
    ECDS_FILE, ECDS_RESOURCE_YAML, LISTENER_NAME, STATIC_YAML,
};

/// Why a config could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: {reason}")]
    Template { file: &'static str, reason: String },
    #[error("invalid Envoy config request: {0}")]
    Invalid(String),
    #[error("writing {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// An upstream cluster: a name and its endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    /// Any Envoy cluster name, Istio's `outbound|8080||reviews.default.svc.cluster.local` too.
    pub name: String,
    /// The first endpoint.
    pub addr: SocketAddr,
    /// Endpoints after the first, in order (the load balancer picks among them all).
    pub more_endpoints: Vec<SocketAddr>,
    /// Active health checking of the endpoint; `None`: the endpoint is always healthy.
    pub health_check: Option<HealthCheck>,
    /// Envoy speaks HTTP/2 to the endpoint without TLS (h2c, prior knowledge: the cluster's
    /// `http2_protocol_options`), as gRPC needs; `false`: HTTP/1.1.
    pub http2: bool,
    /// More fields of the cluster (`lb_policy`, `outlier_detection`, …): name and JSON text, set
    /// last, over anything above.
    pub fields: Vec<(String, String)>,
}

impl Cluster {
    /// Cluster `name` with the one endpoint `addr`, always healthy, spoken to in HTTP/1.1.
    pub fn new(name: &str, addr: SocketAddr) -> Cluster {
        Cluster {
            name: name.to_string(),
            addr,
            more_endpoints: Vec::new(),
            health_check: None,
            http2: false,
            fields: Vec::new(),
        }
    }

    /// Adds the endpoint `addr` after the others.
    pub fn endpoint(mut self, addr: SocketAddr) -> Cluster {
        self.more_endpoints.push(addr);
        self
    }

    /// Sets a field of the cluster to `json` (for example `lb_policy` to `"RING_HASH"`).
    pub fn field(mut self, field: &str, json: &str) -> Cluster {
        self.fields.push((field.to_string(), json.to_string()));
        self
    }
}

/// Envoy's active HTTP health checking of a cluster's endpoint (`health_checks`), strict enough
/// for tests to make a cluster have no healthy host: one failed check marks the endpoint
/// unhealthy, one passed check healthy again, checks run every `interval` (with or without
/// traffic), and panic routing is off (`healthy_panic_threshold` 0), so a cluster whose only
/// endpoint is unhealthy gets Envoy's own 503 `no healthy upstream` (flag `UH`) instead of being
/// used anyway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    /// The path Envoy's checks `GET` (see `Upstream::serve_health`).
    pub path: String,
    pub interval: Duration,
}

/// How a route picks requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match {
    /// Paths starting with this prefix.
    Prefix(String),
    /// Requests carrying header `name` with exactly `value` (any path).
    Header { name: String, value: String },
    /// `CONNECT` requests (Envoy's `connect_matcher`) for exactly `authority` (a `host:port`).
    Connect { authority: String },
}

/// A named route (Envoy sets the `xds.route_name` property to its name) to a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub name: String,
    pub matcher: Match,
    pub cluster: String,
    /// The route's timeout (`route.timeout`; zero turns it off); `None`: Envoy's 15 s.
    pub timeout: Option<Duration>,
    /// The route's stream idle timeout (`route.idle_timeout`, overriding the connection
    /// manager's `stream_idle_timeout`); `None`: the connection manager's.
    pub idle_timeout: Option<Duration>,
    /// More fields of the route entry (`request_headers_to_add`, …): name and JSON text.
    pub entry: Vec<(String, String)>,
    /// More fields of the route's action (`prefix_rewrite`, `host_rewrite_literal`, …).
    pub action: Vec<(String, String)>,
}

impl Route {
    /// Route `name` sends paths starting with `prefix` to `cluster`.
    pub fn prefix(name: &str, prefix: &str, cluster: &str) -> Route {
        Route {
            name: name.to_string(),
            matcher: Match::Prefix(prefix.to_string()),
            cluster: cluster.to_string(),
            timeout: None,
            idle_timeout: None,
            entry: Vec::new(),
            action: Vec::new(),
        }
    }

    /// Route `name` sends requests with `header: value` to `cluster`.
    pub fn header(name: &str, header: &str, value: &str, cluster: &str) -> Route {
        Route {
            name: name.to_string(),
            matcher: Match::Header {
                name: header.to_string(),
                value: value.to_string(),
            },
            cluster: cluster.to_string(),
            timeout: None,
            idle_timeout: None,
            entry: Vec::new(),
            action: Vec::new(),
        }
    }

    /// Route `name` sends `CONNECT` requests for `authority` to `cluster`. Envoy forwards the
    /// `CONNECT` itself unless the route's action terminates it (`upgrade_configs` with a
    /// `connect_config`: Envoy answers 200 once it has a TCP connection to the cluster, then
    /// relays the tunnel's bytes).
    pub fn connect(name: &str, authority: &str, cluster: &str) -> Route {
        Route {
            matcher: Match::Connect {
                authority: authority.to_string(),
            },
            ..Route::prefix(name, "/", cluster)
        }
    }

    /// How long Envoy waits for the upstream's response once the request is sent; zero waits
    /// forever.
    pub fn timeout(mut self, timeout: Duration) -> Route {
        self.timeout = Some(timeout);
        self
    }

    /// Sets a field of the route entry to `json` (for example `request_headers_to_remove`).
    pub fn with(mut self, field: &str, json: &str) -> Route {
        self.entry.push((field.to_string(), json.to_string()));
        self
    }

    /// Sets a field of the route's action to `json` (for example `prefix_rewrite`).
    pub fn action(mut self, field: &str, json: &str) -> Route {
        self.action.push((field.to_string(), json.to_string()));
        self
    }

    /// How long a stream on this route may see no activity (no bytes either way) before Envoy
    /// ends it; zero turns it off.
    pub fn idle_timeout(mut self, timeout: Duration) -> Route {
        self.idle_timeout = Some(timeout);
        self
    }
}

/// What Envoy does with requests once the plugin's VM has failed
/// (`envoy.extensions.wasm.v3.PluginConfig.failure_policy`; see `examples/failure-policy.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailurePolicy {
    /// Every request on a worker whose VM failed gets a 503 (Envoy's default).
    FailClosed,
    /// Requests on a worker whose VM failed skip the filter.
    FailOpen,
    /// A VM that failed at run time is replaced by a new one, at most once per backoff
    /// interval; until then requests get a 503.
    FailReload,
}

impl FailurePolicy {
    /// The enum value's name in Envoy's config.
    pub fn as_str(self) -> &'static str {
        match self {
            FailurePolicy::FailClosed => "FAIL_CLOSED",
            FailurePolicy::FailOpen => "FAIL_OPEN",
            FailurePolicy::FailReload => "FAIL_RELOAD",
        }
    }
}

/// The proxy-wasm filter to load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WasmFilter {
    /// The `.wasm` file (see `breakwater_wasm::build`).
    pub wasm: PathBuf,
    /// The plugin configuration (the policy JSON); `None` keeps the policy of the config file.
    pub configuration: Option<String>,
    /// The plugin's name (`config.name`).
    pub plugin_name: String,
    /// The plugin's root id (`config.root_id`).
    pub root_id: String,
    /// `config.failure_policy`; `None` keeps the config file's.
    pub failure_policy: Option<FailurePolicy>,
    /// `config.reload_config.backoff.base_interval` (FAIL_RELOAD); `None`: Envoy's 1 s.
    pub reload_backoff: Option<Duration>,
}

impl WasmFilter {
    /// The module at `wasm`, named `breakwater` with root id `breakwater` as in the configs.
    pub fn new(wasm: impl Into<PathBuf>) -> WasmFilter {
        WasmFilter {
            wasm: wasm.into(),
            configuration: None,
            plugin_name: "breakwater".to_string(),
            root_id: "breakwater".to_string(),
            failure_policy: None,
            reload_backoff: None,
        }
    }

    /// The plugin configuration (policy JSON) to hand the filter.
    pub fn configuration(mut self, json: &str) -> WasmFilter {
        self.configuration = Some(json.to_string());
        self
    }

    pub fn plugin_name(mut self, name: &str) -> WasmFilter {
        self.plugin_name = name.to_string();
        self
    }

    pub fn root_id(mut self, root_id: &str) -> WasmFilter {
        self.root_id = root_id.to_string();
        self
    }

    /// What Envoy does once the plugin's VM has failed.
    pub fn failure_policy(mut self, policy: FailurePolicy) -> WasmFilter {
        self.failure_policy = Some(policy);
        self
    }

    /// The least time between two reloads of a failed VM under [`FailurePolicy::FailReload`].
    pub fn reload_backoff(mut self, base_interval: Duration) -> WasmFilter {
        self.reload_backoff = Some(base_interval);
        self
    }
}

/// How the filter's config reaches Envoy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Inline in the bootstrap (`configs/static.yaml`).
    Static,
    /// From an ECDS resource file Envoy watches (`configs/dynamic-ecds.yaml`).
    Ecds,
}

/// How the listener spreads connections over the worker threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Balance {
    /// Envoy's exact balance: each new connection goes to the worker with the fewest. With
    /// connections held open together, every worker serves (what the tests want).
    Exact,
    /// The config file's own behaviour (the kernel's `SO_REUSEPORT` hash): uneven for few
    /// connections.
    Kernel,
}

/// Envoy's own retries and outlier detection instead of (or beside) a filter, for comparisons.
#[derive(Debug, Clone, PartialEq)]
pub struct NativeResilience {
    /// Envoy's `retry_on` list, for example `5xx,reset,connect-failure`.
    pub retry_on: String,
    /// Retries after the first attempt.
    pub num_retries: u32,
    pub per_try_timeout: Duration,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Outlier detection: consecutive 5xx before a host is ejected.
    pub consecutive_5xx: u32,
    pub ejection_interval: Duration,
    pub base_ejection_time: Duration,
    pub max_ejection_percent: u32,
    /// The cluster's limit on retries in flight (`circuit_breakers.thresholds[].max_retries`);
    /// `None` keeps Envoy's default of 3, which caps retries under load (the overflow shows as
    /// `upstream_rq_retry_overflow`).
    pub max_retries: Option<u32>,
    /// The cluster's `common_lb_config.healthy_panic_threshold`, in percent; `None` keeps Envoy's
    /// default of 50. With a single host, an ejection leaves 0% healthy, under the threshold, and
    /// Envoy then routes to every host anyway ("panic", `lb_healthy_panic`): the ejection stops no
    /// traffic. 0 turns panic routing off.
    pub healthy_panic_threshold: Option<f64>,
}

impl Default for NativeResilience {
    /// The same numbers as the policy in `configs/static.yaml`: three attempts, 100 ms base
    /// delay, 2 s cap.
    fn default() -> Self {
        NativeResilience {
            retry_on: "5xx,reset,connect-failure".to_string(),
            num_retries: 2,
            per_try_timeout: Duration::from_secs(10),
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_secs(2),
            consecutive_5xx: 5,
            ejection_interval: Duration::from_secs(10),
            base_ejection_time: Duration::from_secs(30),
            max_ejection_percent: 100,
            max_retries: None,
            healthy_panic_threshold: None,
        }
    }
}

/// Everything that decides how an Envoy is configured and started.
#[derive(Debug, Clone, PartialEq)]
pub struct EnvoyConfig {
    pub clusters: Vec<Cluster>,
    /// Routes in match order. Empty: one route named `default` for `/` to the first cluster.
    pub routes: Vec<Route>,
    /// `None`: no wasm filter at all (the baseline).
    pub filter: Option<WasmFilter>,
    pub delivery: Delivery,
    pub native: Option<NativeResilience>,
    /// Worker threads (`--concurrency`).
    pub concurrency: usize,
    pub balance: Balance,
    /// `--log-level`.
    pub log_level: String,
    /// `--component-log-level`, for example `wasm:debug`.
    pub component_log_level: Option<String>,
    /// Whether the config's access log stays (benchmarks may drop its per-request cost).
    pub access_log: bool,
    /// Every cluster's `connect_timeout`; `None` keeps the config's.
    pub connect_timeout: Option<Duration>,
    /// The connection manager's `stream_idle_timeout`; `None` keeps the config's (Envoy's
    /// 5 minutes when unset).
    pub stream_idle_timeout: Option<Duration>,
    /// More fields of the connection manager (`local_reply_config`, …): name and JSON text.
    pub connection_manager: Vec<(String, String)>,
    /// More fields of the virtual host (`request_headers_to_add`, …).
    pub virtual_host: Vec<(String, String)>,
    /// HTTP filters (JSON text) placed right before Breakwater, and right after it (before the
    /// router): a Lua filter that stamps responses, an authorization stand-in, ….
    pub filters_before: Vec<String>,
    pub filters_after: Vec<String>,
    /// `stats_config.stats_tags` added after the config's own: (tag name, regex).
    pub stats_tags: Vec<(String, String)>,
}

impl EnvoyConfig {
    /// Two workers, exact balance, static delivery, no filter, no clusters yet.
    pub fn new() -> EnvoyConfig {
        EnvoyConfig {
            clusters: Vec::new(),
            routes: Vec::new(),
            filter: None,
            delivery: Delivery::Static,
            native: None,
            concurrency: 2,
            balance: Balance::Exact,
            log_level: "info".to_string(),
            component_log_level: None,
            access_log: true,
            connect_timeout: None,
            stream_idle_timeout: None,
            connection_manager: Vec::new(),
            virtual_host: Vec::new(),
            filters_before: Vec::new(),
            filters_after: Vec::new(),
            stats_tags: Vec::new(),
        }
    }

    /// Sets a field of the HTTP connection manager to `json`.
    pub fn connection_manager(mut self, field: &str, json: &str) -> EnvoyConfig {
        self.connection_manager
            .push((field.to_string(), json.to_string()));
        self
    }

    /// Sets a field of the virtual host to `json`.
    pub fn virtual_host(mut self, field: &str, json: &str) -> EnvoyConfig {
        self.virtual_host
            .push((field.to_string(), json.to_string()));
        self
    }

    /// Places the HTTP filter `json` before Breakwater (after any placed before).
    pub fn filter_before(mut self, json: &str) -> EnvoyConfig {
        self.filters_before.push(json.to_string());
        self
    }

    /// Places the HTTP filter `json` after Breakwater, before the router.
    pub fn filter_after(mut self, json: &str) -> EnvoyConfig {
        self.filters_after.push(json.to_string());
        self
    }

    /// Adds cluster `name` with the one endpoint `addr`. Several clusters may share an endpoint.
    pub fn cluster(mut self, name: &str, addr: SocketAddr) -> EnvoyConfig {
        self.clusters.push(Cluster::new(name, addr));
        self
    }

    /// Adds `cluster` as it is built (several endpoints, a load balancing policy, …).
    pub fn add_cluster(mut self, cluster: Cluster) -> EnvoyConfig {
        self.clusters.push(cluster);
        self
    }

    /// Adds cluster `name` with the one endpoint `addr`, which Envoy talks to in HTTP/2 without
    /// TLS (h2c): a gRPC server, or any HTTP/2 upstream.
    pub fn h2c_cluster(mut self, name: &str, addr: SocketAddr) -> EnvoyConfig {
        self.clusters.push(Cluster {
            http2: true,
            ..Cluster::new(name, addr)
        });
        self
    }

    /// Adds cluster `name` with the one endpoint `addr`, health-checked by Envoy (see
    /// [`HealthCheck`]).
    pub fn health_checked_cluster(
        mut self,
        name: &str,
        addr: SocketAddr,
        health_check: HealthCheck,
    ) -> EnvoyConfig {
        self.clusters.push(Cluster {
            health_check: Some(health_check),
            ..Cluster::new(name, addr)
        });
        self
    }

    pub fn route(mut self, route: Route) -> EnvoyConfig {
        self.routes.push(route);
        self
    }

    pub fn filter(mut self, filter: WasmFilter) -> EnvoyConfig {
        self.filter = Some(filter);
        self
    }

    /// Delivers the filter's config by ECDS from a watched file.
    pub fn ecds(mut self) -> EnvoyConfig {
        self.delivery = Delivery::Ecds;
        self
    }

    pub fn native_resilience(mut self, native: NativeResilience) -> EnvoyConfig {
        self.native = Some(native);
        self
    }

    pub fn concurrency(mut self, workers: usize) -> EnvoyConfig {
        self.concurrency = workers;
        self
    }

    pub fn balance(mut self, balance: Balance) -> EnvoyConfig {
        self.balance = balance;
        self
    }

    pub fn log_level(mut self, level: &str) -> EnvoyConfig {
        self.log_level = level.to_string();
        self
    }

    pub fn component_log_level(mut self, levels: &str) -> EnvoyConfig {
        self.component_log_level = Some(levels.to_string());
        self
    }

    /// How long Envoy may take to connect to an upstream (every cluster): for tests that open
    /// many upstream connections at once on a loaded machine.
    pub fn connect_timeout(mut self, timeout: Duration) -> EnvoyConfig {
        self.connect_timeout = Some(timeout);
        self
    }

    /// Adds a stats tag after the config's own (Istio's bootstrap adds several of its own).
    pub fn stats_tag(mut self, name: &str, regex: &str) -> EnvoyConfig {
        self.stats_tags.push((name.to_string(), regex.to_string()));
        self
    }

    /// How long any stream may see no activity before Envoy ends it (a route's `idle_timeout`
    /// overrides it); zero turns it off.
    pub fn stream_idle_timeout(mut self, timeout: Duration) -> EnvoyConfig {
        self.stream_idle_timeout = Some(timeout);
        self
    }

    /// Drops the access log of the config (for benchmarks; tests read it).
    pub fn without_access_log(mut self) -> EnvoyConfig {
        self.access_log = false;
        self
    }

    /// The routes to render: the given ones, or the catch-all `default` to the first cluster.
    fn effective_routes(&self) -> Result<Vec<Route>, ConfigError> {
        let routes = if self.routes.is_empty() {
            let first = self.clusters.first().ok_or_else(|| {
                ConfigError::Invalid("at least one cluster is needed".to_string())
            })?;
            vec![Route::prefix("default", "/", &first.name)]
        } else {
            self.routes.clone()
        };
        for route in &routes {
            if !self.clusters.iter().any(|c| c.name == route.cluster) {
                return Err(ConfigError::Invalid(format!(
                    "route {} goes to cluster {:?}, which is not configured",
                    route.name, route.cluster
                )));
            }
        }
        Ok(routes)
    }
}

impl Default for EnvoyConfig {
    fn default() -> Self {
        EnvoyConfig::new()
    }
}
