//! The raw policy: the plugin JSON exactly as written, before any rule is checked.
//!
//! These types mirror `POLICY.md` field for field so that a JSON Schema can be generated from
//! them and so that tools can read and write policies. The objects inside a scope
//! (`circuit_breaker`, `retry` and their parts) are declared in the policy's field table
//! (`fields`), with the filter's own form of each field, and re-exported here. Every field is optional (absent means
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

use std::ops::RangeInclusive;
use std::time::Duration;

pub use super::fields::{
    RawBreaker, RawBudget, RawFailureRate, RawFallback, RawRetry, RawSlowCall,
};
pub use wrappers::{present, Entries, Null, Toggle, Written};

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

/// What a field of the objects in the field table must be beyond its JSON type, with its bounds
/// (`breakwater::policy::bounds`): the reader checks it, and `breakwater-cli` writes it into the
/// schema. Each object lists its fields' checks in `CHECKS`.
#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    /// Nothing beyond the JSON type (a flag, a name from a list, an object).
    Shape,
    Integer(RangeInclusive<i64>),
    Number(RangeInclusive<f64>),
    /// A fraction above 0, at most 1.
    Rate,
    Duration(RangeInclusive<Duration>),
    /// `failure_on`: outcome names, gRPC statuses and failure status codes.
    FailureOutcomes,
    /// `retry_on`: outcome names and the status codes that may be retried.
    RetryOutcomes,
    /// HTTP method tokens.
    Methods,
    /// A header name that only a client sets on purpose.
    IdempotencyHeader,
    /// Header names and values that the fallback may set.
    FallbackHeaders,
    /// A body within the fallback's size limit.
    FallbackBody,
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
