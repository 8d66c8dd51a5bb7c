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
    /// Per cluster (Envoy's `xds.cluster_name`), merged over `default`.
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
}

/// `default` or `clusters.<name>`.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawScope {
    #[serde(default, skip_serializing_if = "Toggle::is_unset")]
    pub circuit_breaker: Toggle<RawBreaker>,
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
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub failure_threshold: Option<i64>,
    #[serde(default, skip_serializing_if = "Toggle::is_unset")]
    pub failure_rate: Toggle<RawFailureRate>,
    #[serde(default, skip_serializing_if = "Toggle::is_unset")]
    pub slow_call: Toggle<RawSlowCall>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub timeout: Option<RawDuration>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub max_timeout: Option<RawDuration>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub half_open_attempts: Option<i64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub probe_timeout: Option<RawDuration>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub failure_on: Option<Vec<RawOutcome>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub count_retries: Option<bool>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub fallback: Option<RawFallback>,
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
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub threshold: Option<f64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub minimum_requests: Option<i64>,
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
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub duration: Option<RawDuration>,
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
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub status: Option<i64>,
    /// Header name to value, in the order written.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub headers: Option<Entries<String>>,
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
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub max_attempts: Option<i64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub base_delay: Option<RawDuration>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub max_delay: Option<RawDuration>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub exponential_base: Option<f64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub jitter: Option<RawJitter>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub retry_on: Option<Vec<RawOutcome>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub methods: Option<Vec<String>>,
    /// A header only clients send that marks a request safe to repeat (`null`: none). Not a
    /// pseudo-header, `x-breakwater-*`, `x-envoy-*`, `x-request-id`, `x-forwarded-*`, tracing
    /// headers, hop-by-hop headers, `host` or `content-length`.
    #[serde(default, skip_serializing_if = "Toggle::is_unset")]
    pub idempotency_header: Toggle<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub per_try_timeout: Option<RawDuration>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub deadline: Option<RawDuration>,
    /// Wait as long as a failed reply's `Retry-After` asks (a little longer, spread); one longer
    /// than `max_delay` means no retry.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub respect_retry_after: Option<bool>,
    /// Per cluster: refused under `routes.<name>`, where every route uses its cluster's budget.
    #[serde(default, skip_serializing_if = "Toggle::is_unset")]
    pub budget: Toggle<RawBudget>,
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
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub ratio: Option<f64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub min_per_second: Option<i64>,
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
/// causes: list a name to count or retry it.
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
