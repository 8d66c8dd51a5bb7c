//! The validated policy: what the filter and the core read. Built only by the parser in this
//! module's siblings, after every rule of `POLICY.md` has been checked, so every value here is in
//! range and every field is filled (defaults applied).
//!
//! Durations are [`std::time::Duration`]; the core converts them to [`crate::core::Millis`].

use std::time::Duration;

/// The effective policy for one request: the breaker (per cluster) and the retry settings (per
/// cluster and route). `None` means that half is turned off (`null` in the JSON); `breaker` is
/// also `None` for a route that bypasses its cluster's breaker (`routes.<name>.circuit_breaker:
/// null`): its requests are neither gated nor counted.
#[derive(Debug, Clone, PartialEq)]
pub struct Effective {
    pub breaker: Option<BreakerPolicy>,
    pub retry: Option<RetryPolicy>,
}

/// `circuit_breaker` in the JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerPolicy {
    /// Consecutive failures that open the breaker; 0 turns this trigger off.
    pub failure_threshold: u32,
    /// Open on the failed fraction over a window; `None` when not configured.
    pub failure_rate: Option<FailureRate>,
    /// Open on the slow fraction over the window; `None` when not configured.
    pub slow_call: Option<SlowCall>,
    /// The window that `failure_rate` and `slow_call` are measured over. It is `failure_rate`'s
    /// `window` and `minimum_requests` when that is configured, else their defaults, so that
    /// `slow_call` alone still has a window.
    pub window: RateWindow,
    /// How long the breaker stays open before it admits probes.
    pub timeout: Duration,
    /// The cap on the open time as it doubles on each re-open from half-open; never below
    /// `timeout`.
    pub max_timeout: Duration,
    /// Probes admitted at once in half-open, across all workers; that many successes close.
    pub half_open_attempts: u32,
    /// A probe that never reports gives its slot back after this.
    pub probe_timeout: Duration,
    /// Which outcomes count as failures.
    pub failure_on: OutcomeMatcher,
    /// `false`: one outcome per client request, after its retries; `true`: every attempt counts.
    pub count_retries: bool,
    /// The reply while open.
    pub fallback: Fallback,
    pub mode: BreakerMode,
}

/// `circuit_breaker.failure_rate`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FailureRate {
    /// Failed fraction in `[0, 1]` at or above which the breaker opens.
    pub threshold: f64,
}

/// `circuit_breaker.slow_call`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SlowCall {
    /// A response slower than this counts as slow.
    pub duration: Duration,
    /// Slow fraction in `[0, 1]` at or above which the breaker opens.
    pub rate_threshold: f64,
}

/// The sliding window of the rate triggers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateWindow {
    /// Length of the window.
    pub window: Duration,
    /// Finished requests in the window before any rate trigger may fire.
    pub minimum_requests: u32,
}

/// `circuit_breaker.fallback`.
#[derive(Debug, Clone, PartialEq)]
pub struct Fallback {
    pub status: u16,
    /// The `grpc-status` of the reply to a gRPC request (`1..=16`).
    pub grpc_status: u8,
    /// Lower-cased names, in the order given.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// `circuit_breaker.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerMode {
    /// Reject while open (the default).
    Enforce,
    /// Count, report and log would-open, never reject.
    Shadow,
    /// Every request gets the fallback.
    ForcedOpen,
    /// The breaker neither counts nor rejects.
    Disabled,
}

/// `retry` in the JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included; 1 turns retries off.
    pub max_attempts: u32,
    pub backoff: BackoffPolicy,
    /// What is retried. Never matches a 4xx other than 408, 409 and 429 (validation refuses it).
    pub retry_on: OutcomeMatcher,
    /// Upper-cased method names that may be retried.
    pub methods: Vec<String>,
    /// Lower-cased header name; a request carrying it may be retried whatever its method.
    /// `None` when set to `null`.
    pub idempotency_header: Option<String>,
    /// Timeout of each retried attempt.
    pub per_try_timeout: Duration,
    /// No retry starts that could not finish (delay + `per_try_timeout`) within this time from
    /// the request's start.
    pub deadline: Duration,
    /// A `Retry-After` on the failed response sets the next delay (spread up to a tenth above
    /// it); one longer than `max_delay` means no retry.
    pub respect_retry_after: bool,
    /// `None` when set to `null`: retries are not budgeted.
    pub budget: Option<BudgetPolicy>,
    /// Requests with larger bodies are forwarded but not retried.
    pub max_request_body: u64,
}

/// The delay schedule of `retry`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BackoffPolicy {
    pub base_delay: Duration,
    pub max_delay: Duration,
    pub exponential_base: f64,
    pub jitter: Jitter,
}

/// `retry.jitter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jitter {
    /// `false` or `"none"`: the exponential delay as it is.
    None,
    /// `true` or `"proportional"` (the default): U[d/2, min(3d/2, max_delay)] (× U[0.5, 1.5], with
    /// the interval cut at the cap rather than the draw).
    Proportional,
    /// `"full"`: U[0, d].
    Full,
    /// `"equal"`: d/2 + U[0, d/2].
    Equal,
    /// `"decorrelated"`: U[base_delay, min(3 · previous, max_delay)], starting from `base_delay`.
    Decorrelated,
}

/// `retry.budget`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BudgetPolicy {
    /// Retries per request allowed over the window, on top of the floor.
    pub ratio: f64,
    /// Retries per second always allowed.
    pub min_per_second: u32,
    pub window: Duration,
}

/// The names of the outcome classes, as `failure_on` and `retry_on` accept them (the order of
/// [`OutcomeClass`]).
pub const OUTCOME_NAMES: [&str; 7] = [
    "5xx",
    "gateway-error",
    "reset",
    "connect-failure",
    "timeout",
    "no-healthy-upstream",
    "overflow",
];

/// A class of outcomes, as named in `failure_on` and `retry_on`. The status classes and gRPC
/// statuses match replies whose status speaks for itself, the others their cause only
/// (`core::outcome` has the rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutcomeClass {
    /// `5xx`: any 500..=599 reply (not Envoy's named refusals).
    Status5xx,
    /// `gateway-error`: a 502, 503 or 504 reply (not Envoy's named refusals).
    GatewayError,
    /// `reset`: the upstream reset the stream or closed the connection before replying.
    Reset,
    /// `connect-failure`: no connection could be made.
    ConnectFailure,
    /// `timeout`: the upstream did not answer in time.
    Timeout,
    /// `no-healthy-upstream`: Envoy found no healthy host in the cluster (`UH`).
    NoHealthyUpstream,
    /// `overflow`: Envoy shed the request by its own limits or orders (`UO`, `OM`, `DO`, `UDO`,
    /// maintenance mode).
    Overflow,
    /// A gRPC status (`1..=16`), by its name (`unavailable`) or number (`grpc-14`): a gRPC reply
    /// with that `grpc-status`, the upstream's or Envoy's for a reason without a name.
    Grpc(u8),
}

/// A set of outcome classes and status codes: `failure_on` or `retry_on`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OutcomeMatcher {
    pub classes: Vec<OutcomeClass>,
    /// Status codes listed by number, sorted, without duplicates.
    pub codes: Vec<u16>,
}

/// `special_clusters`: what Istio's clusters that are not services get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SpecialClusters {
    /// No breaker and no retries (the default), unless `clusters` names the cluster exactly.
    #[default]
    Bypass,
    /// The policy like any other cluster: `default`, then `clusters.<name>`.
    Guard,
}
