//! The raw policy: the plugin JSON exactly as written, before any rule is checked.
//!
//! These types mirror `POLICY.md` field for field so that a JSON Schema can be generated from
//! them and so that tools can read and write policies. Every field is optional (absent means
//! "inherit"), unknown fields are refused (`deny_unknown_fields`) and so is an object that sets
//! one field twice.
//!
//! # Absent, `null` and a value
//!
//! Fields that `null` turns off (`circuit_breaker`, `retry`, `failure_rate`, `slow_call`,
//! `budget`, `idempotency_header`) are a [`Toggle`]: absent, `null` or a value. Every other
//! field is an `Option` that refuses `null` ([`present`]): `"timeout": null` would otherwise
//! read as "inherit", which is not what a reader of the JSON expects.
//!
//! # Leaves stay as written
//!
//! Durations, outcomes, methods and header names are kept as the JSON wrote them (a number or a
//! string), so serde here checks only the shape (which fields, which JSON types). The filter
//! does not deserialize these types: its own reader (`read.rs`) walks the JSON once, checks
//! shapes and rules together and reports every problem instead of stopping at the first. A
//! property test holds the two to the same shapes, and another that a policy written back from
//! these types parses to the same table.

mod wrappers;

pub use wrappers::{present, Entries, Null, Toggle};

#[cfg(feature = "schema")]
mod schema;

/// The whole plugin configuration.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    /// Applies to every upstream cluster.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub default: Option<RawScope>,
    /// Per Istio service, by the host of Istio's cluster names (`outbound|PORT|SUBSET|HOST`):
    /// `HOST`, `HOST:PORT`, `HOST#SUBSET` or `HOST:PORT#SUBSET`; every key a cluster matches
    /// merges over `default`, least specific first.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub services: Option<Entries<RawScope>>,
    /// Per cluster, by Envoy's exact cluster name (`xds.cluster_name`), merged over `default` and
    /// the `services` keys it matches.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub clusters: Option<Entries<RawScope>>,
    /// Per route (Envoy's `xds.route_name`), merged last; retry settings only.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub routes: Option<Entries<RawRoute>>,
    /// What Istio's clusters that are not services get (`PassthroughCluster`,
    /// `BlackHoleCluster`, `AllowAnyDynamicDNSCluster`, `InboundPassthroughCluster*`): "bypass"
    /// (default: no breaker, no retries, unless `clusters` names one exactly) or "guard" (the
    /// policy, like any other cluster).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub special_clusters: Option<RawSpecialClusters>,
    /// The name that the breakers' and budgets' shared-data keys are made under: 1 to 128
    /// letters, digits, `-`, `.` and `_`. Default: Envoy's root id (Istio's `pluginName`), which
    /// an istiod upgrade does not change, else the plugin name.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub state_scope: Option<String>,
    /// Bytes each worker may hold for retries at once: the copies of requests kept for a retry
    /// and the retried responses waiting to be relayed. Past it, a request is not kept for a
    /// retry (skip reason `memory`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub max_worker_buffer: Option<i64>,
}

/// `default` or `clusters.<name>`.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawScope {
    /// The cluster's circuit breaker; `null` turns it off in this scope. On by default.
    #[serde(default, skip_serializing_if = "Toggle::is_unset")]
    pub circuit_breaker: Toggle<RawBreaker>,
    /// Retries of failed attempts; `null` turns them off in this scope. On by default.
    #[serde(default, skip_serializing_if = "Toggle::is_unset")]
    pub retry: Toggle<RawRetry>,
}

/// `routes.<name>`: breaker settings are per cluster, so a route may only bypass the breaker.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    /// Only `null`: the route bypasses its cluster's breaker (neither gated nor counted).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub circuit_breaker: Option<Null>,
    /// Retries for this route, merged over its cluster's; `null` turns them off.
    #[serde(default, skip_serializing_if = "Toggle::is_unset")]
    pub retry: Toggle<RawRouteRetry>,
}

/// `routes.<name>.retry`: a `retry` without `budget`, which is per cluster (the filter's reader
/// explains why). Reads like [`RawRetry`] and refuses a `budget` field, `null` included.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawRouteRetry(pub RawRetry);

/// Why [`RawRouteRetry`] refuses `budget`.
pub const BUDGET_ON_ROUTE: &str = "the retry budget is per cluster, shared by every route to it; \
     set it under default or clusters.<name>";

impl<'de> serde::Deserialize<'de> for RawRouteRetry {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let retry = RawRetry::deserialize(deserializer)?;
        if retry.budget.is_unset() {
            Ok(RawRouteRetry(retry))
        } else {
            Err(serde::de::Error::custom(format!(
                "budget: {BUDGET_ON_ROUTE}"
            )))
        }
    }
}

impl serde::Serialize for RawRouteRetry {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

/// `circuit_breaker`.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawBreaker {
    /// Consecutive failed requests that open the breaker; 0 turns this trigger off. Default 5,
    /// 0..=10000.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub failure_threshold: Option<i64>,
    /// Also open when the failed fraction over a window reaches `threshold`. Off unless written;
    /// `{}` turns it on with its defaults.
    #[serde(default, skip_serializing_if = "Toggle::is_unset")]
    pub failure_rate: Toggle<RawFailureRate>,
    /// Also open when the fraction of responses slower than `duration` reaches `rate_threshold`
    /// (over `failure_rate`'s window). Off unless written.
    #[serde(default, skip_serializing_if = "Toggle::is_unset")]
    pub slow_call: Toggle<RawSlowCall>,
    /// How long the breaker stays open before it lets probes through (half-open). Default 60s,
    /// 1ms..=24h.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub timeout: Option<RawDuration>,
    /// Cap of the open time, which doubles on each re-open after a failed probe. Default:
    /// `timeout`; 1ms..=24h, at least `timeout`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub max_timeout: Option<RawDuration>,
    /// Probes let through at once in half-open, across all workers; that many successes close the
    /// breaker. Default 1, 1..=1000.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub half_open_attempts: Option<i64>,
    /// A probe that never reports gives its slot back after this. Default 30s, 1ms..=1h.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub probe_timeout: Option<RawDuration>,
    /// Outcomes that count as failures: "5xx", "gateway-error", "reset", "connect-failure",
    /// "timeout", "no-healthy-upstream", "overflow", status codes 400..=599, or gRPC statuses
    /// ("unavailable", "grpc-14", ...; they match gRPC replies only). Default ["5xx", "reset",
    /// "connect-failure", "timeout", "no-healthy-upstream", "unknown", "deadline-exceeded",
    /// "internal", "unavailable", "data-loss"].
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub failure_on: Option<Vec<RawOutcome>>,
    /// false: one outcome per client request, after its retries; true: every attempt counts.
    /// Default false.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub count_retries: Option<bool>,
    /// The reply while the breaker is open. Default: 503, `content-type: application/json`, body
    /// `{"source":"fallback"}`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub fallback: Option<RawFallback>,
    /// "enforce" (default), "shadow" (counts and reports, never rejects), "forced_open" (every
    /// request gets the fallback) or "disabled".
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub mode: Option<RawMode>,
}

/// `circuit_breaker.failure_rate`.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawFailureRate {
    /// Failed fraction at or above which the breaker opens. Default 0.5; above 0, at most 1.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub threshold: Option<f64>,
    /// Requests that must finish in the window before a rate can open the breaker. Default 20,
    /// 1..=1000000.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub minimum_requests: Option<i64>,
    /// The sliding window of both rate triggers. Default 10s, 1s..=1h.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub window: Option<RawDuration>,
}

/// `circuit_breaker.slow_call`.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawSlowCall {
    /// A response slower than this counts as slow. Default 2s, 1ms..=1h.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub duration: Option<RawDuration>,
    /// Slow fraction at or above which the breaker opens. Default 0.8; above 0, at most 1.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub rate_threshold: Option<f64>,
}

/// `circuit_breaker.fallback`.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawFallback {
    /// Status of the fallback reply. Default 503, 200..=599.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub status: Option<i64>,
    /// The `grpc-status` of the fallback to a gRPC request, which gets a gRPC reply (HTTP 200,
    /// trailers-only) instead of `status` and `body`. Default 14 (UNAVAILABLE), 1..=16.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub grpc_status: Option<i64>,
    /// Header name to value, in the order written.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub headers: Option<Entries<String>>,
    /// Body of the fallback reply. Default `{"source":"fallback"}`, at most 16384 bytes.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub body: Option<String>,
}

/// `retry`.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawRetry {
    /// Attempts in all, the first included; 1 turns retries off. Default 3, 1..=10.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub max_attempts: Option<i64>,
    /// Delay before the first retry, before jitter. Default 1s, 1ms..=1h.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub base_delay: Option<RawDuration>,
    /// Cap of every delay, `Retry-After` included. Default 60s, 1ms..=1h, at least `base_delay`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub max_delay: Option<RawDuration>,
    /// Each retry waits this many times longer than the one before. Default 2.0, 1..=10.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub exponential_base: Option<f64>,
    /// true or "proportional" (default: × U[0.5, 1.5]), false or "none", "full", "equal" or
    /// "decorrelated".
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub jitter: Option<RawJitter>,
    /// Outcomes that are retried: "5xx", "gateway-error", "reset", "connect-failure", "timeout" or
    /// status codes 408, 409, 429, 500..=599. Default ["5xx", "reset", "connect-failure"].
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub retry_on: Option<Vec<RawOutcome>>,
    /// Methods that may be retried. Default the idempotent methods GET, HEAD, OPTIONS, TRACE, PUT,
    /// DELETE.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub methods: Option<Vec<String>>,
    /// A request carrying this header may be retried whatever its method; `null`: no such header.
    /// Default "idempotency-key". Not a pseudo-header, `x-breakwater-*`, `x-envoy-*`,
    /// `x-request-id`, `x-forwarded-*`, tracing headers, hop-by-hop headers, `host` or
    /// `content-length`.
    #[serde(default, skip_serializing_if = "Toggle::is_unset")]
    pub idempotency_header: Toggle<String>,
    /// Timeout of each retried attempt. Default 10s, 1ms..=1h.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub per_try_timeout: Option<RawDuration>,
    /// No retry starts that could not finish (delay + `per_try_timeout`) this long after the
    /// request arrived. Default 30s, 1ms..=1h, at least `per_try_timeout`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub deadline: Option<RawDuration>,
    /// A failed reply's `Retry-After` sets the next delay (spread a little longer); one longer than
    /// `max_delay` means no retry. Default true.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub respect_retry_after: Option<bool>,
    /// Retries per cluster, across all workers, as a share of the traffic; `null` turns the budget
    /// off. Default ratio 0.2, 10 per second, over 10s. Refused under `routes.<name>`: every
    /// route uses its cluster's budget.
    #[serde(default, skip_serializing_if = "Toggle::is_unset")]
    pub budget: Toggle<RawBudget>,
    /// Requests with a larger body (bytes) are forwarded but never retried. Default 65536,
    /// 0..=16777216.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub max_request_body: Option<i64>,
}

/// `retry.budget`.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawBudget {
    /// Retries allowed per request in the window, on top of the floor. Default 0.2, 0..=10.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub ratio: Option<f64>,
    /// Retries per second always allowed (the floor). Default 10, 0..=1000000.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub min_per_second: Option<i64>,
    /// The sliding window that requests and retries are counted over. Default 10s, 1s..=1h.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub window: Option<RawDuration>,
}

/// A duration as written: a bare number of seconds (`60`, `1.5`) or a string with a unit
/// (`"250ms"`, `"1.5s"`, `"2m"`, `"1h"`).
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(untagged)]
pub enum RawDuration {
    Seconds(f64),
    Text(String),
}

/// `retry.jitter` as written: `true`/`false` or a strategy name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(untagged)]
pub enum RawJitter {
    Switch(bool),
    Named(JitterName),
}

/// The strategy names `retry.jitter` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum JitterName {
    None,
    Proportional,
    Full,
    Equal,
    Decorrelated,
}

/// One entry of `failure_on` or `retry_on` as written: a status code (`429`) or a string, which
/// is an outcome name or a status code in digits (`"429"`). The names: `"5xx"`, `"gateway-error"`
/// (a reply with that status, the upstream's or Envoy's for an unnamed reason), `"reset"`,
/// `"connect-failure"`, `"timeout"`, `"no-healthy-upstream"` (Envoy found no healthy host) and
/// `"overflow"` (Envoy shed the request by its own limits: circuit breaker thresholds, overload
/// manager, drop_overload, maintenance mode). A status class or code never matches the named
/// causes: list a name to count or retry it. A gRPC status, by its name ("unavailable",
/// "deadline-exceeded", ...) or number ("grpc-14"), matches a gRPC reply with that
/// `grpc-status` (`failure_on` only: gRPC requests are not retried).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(untagged)]
pub enum RawOutcome {
    Code(i64),
    Name(String),
}

/// `circuit_breaker.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum RawMode {
    Enforce,
    Shadow,
    ForcedOpen,
    Disabled,
}

/// `special_clusters`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum RawSpecialClusters {
    Bypass,
    Guard,
}
