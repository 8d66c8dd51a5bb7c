//! What is measured: the Envoy configurations and the Breakwater policies, in one place so the
//! report can print exactly what ran.
//!
//! # The failure policy, and why
//! - `retry.max_attempts: 4`: at 30% independent failures, four attempts fail together with
//!   probability 0.3⁴ ≈ 0.8%, so the client sees about 99.2% successes.
//! - `retry.budget.ratio: 0.5`: those four attempts cost 0.3 + 0.09 + 0.027 ≈ 0.42 retries per
//!   request. The default ratio 0.2 would allow about 0.2 retries per request, each succeeding
//!   70% of the time: roughly 0.7 + 0.2 · 0.7 ≈ 0.84 success. 0.5 leaves room for bursts and
//!   still bounds upstream load near 1.5× the client's in any brownout, which is the
//!   amplification target itself.
//! - `retry.base_delay: 10ms`, `max_delay: 200ms`, jitter on: a retry goes out fast but never in
//!   lockstep with the others.
//! - `circuit_breaker.failure_threshold: 5` with `count_retries: false` (the default): the breaker
//!   sees one outcome per client request *after* its retries, so at 30% failures only ~0.8% of
//!   outcomes are failures and five in a row practically never happen (0.008⁵), while an outage
//!   fails every outcome and trips it within five requests. `failure_rate` (50% over 20 requests
//!   in 10 s) is a second trigger for failures that interleave with successes.
//! - `circuit_breaker.timeout: 3s` (`max_timeout` the same, so no back-off): the upstream gets one
//!   probe every ~3 s while down, and the first request after its recovery that finds the breaker
//!   half-open closes it, so recovery takes at most one `timeout` (+10% jitter).
//! - `per_try_timeout: 2s` (shorter than the breaker `timeout`, so no attempt outlasts it),
//!   `deadline: 5s`.
//!
//! Envoy native gets the same shape: 3 retries (4 attempts) on `5xx,reset,connect-failure` with a
//! 10–200 ms back-off, and outlier detection ejecting after 5 consecutive 5xx for 3 s, checked
//! every second. It runs twice:
//! - `envoy_native`: configured to do both jobs, with the retry limit lifted
//!   (`circuit_breakers.max_retries` 1000: Envoy's default of 3 retries in flight per cluster
//!   drops most retries under load) and panic routing off (`healthy_panic_threshold` 0: with one
//!   host, Envoy's default of 50% makes an ejection route to the ejected host anyway);
//! - `envoy_native_defaults`: the same with Envoy's defaults for those two settings, as most
//!   configurations run.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use breakwater_envoy::{EnvoyConfig, NativeResilience, WasmFilter};

/// The upstream cluster of every configuration.
pub const CLUSTER: &str = "backend";

/// Breakwater with every default.
pub const DEFAULT_POLICY: &str = "{}";

/// The defaults plus the failure-rate trigger (a window updated on every request).
pub const RATE_POLICY: &str = r#"{"default": {"circuit_breaker": {"failure_rate": {"threshold": 0.5, "minimum_requests": 20, "window": "10s"}}}}"#;

/// The policy of the failure scenarios (see the module docs).
pub const FAILURE_POLICY: &str = r#"{"default": {
  "circuit_breaker": {"failure_threshold": 5, "failure_rate": {"threshold": 0.5, "minimum_requests": 20, "window": "10s"}, "timeout": "3s"},
  "retry": {"max_attempts": 4, "base_delay": "10ms", "max_delay": "200ms", "jitter": true,
            "per_try_timeout": "2s", "deadline": "5s",
            "budget": {"ratio": 0.5, "min_per_second": 10, "window": "10s"}}
}}"#;

/// The breaker `timeout` of [`FAILURE_POLICY`]: recovery must come within it plus one second.
pub const FAILURE_POLICY_TIMEOUT: Duration = Duration::from_secs(3);

/// Envoy's own retries and outlier detection for the failure scenarios, with Envoy's defaults for
/// the retry limit and the panic threshold (see the module docs).
pub fn native_for_failures() -> NativeResilience {
    NativeResilience {
        retry_on: "5xx,reset,connect-failure".to_string(),
        num_retries: 3,
        per_try_timeout: Duration::from_secs(2),
        backoff_base: Duration::from_millis(10),
        backoff_max: Duration::from_millis(200),
        consecutive_5xx: 5,
        ejection_interval: Duration::from_secs(1),
        base_ejection_time: FAILURE_POLICY_TIMEOUT,
        max_ejection_percent: 100,
        max_retries: None,
        healthy_panic_threshold: None,
    }
}

/// [`native_for_failures`] with the retry limit lifted and panic routing off.
pub fn native_tuned_for_failures() -> NativeResilience {
    NativeResilience {
        max_retries: Some(1000),
        healthy_panic_threshold: Some(0.0),
        ..native_for_failures()
    }
}

/// The compiled modules.
#[derive(Debug, Clone)]
pub struct Modules {
    pub breakwater: std::path::PathBuf,
    pub noop: std::path::PathBuf,
}

/// A benchmark Envoy: 2 workers, no access log (its per-request write is not what is measured).
pub fn base(upstream: SocketAddr) -> EnvoyConfig {
    EnvoyConfig::new()
        .concurrency(2)
        .without_access_log()
        .cluster(CLUSTER, upstream)
}

pub fn with_filter(upstream: SocketAddr, wasm: &Path, policy: &str) -> EnvoyConfig {
    base(upstream).filter(WasmFilter::new(wasm).configuration(policy))
}

/// One configuration of the overhead comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overhead {
    NoWasm,
    NoopWasm,
    Breakwater,
    BreakwaterRate,
    EnvoyNative,
}

impl Overhead {
    /// In the order every round runs them.
    pub const ALL: [Overhead; 5] = [
        Overhead::NoWasm,
        Overhead::NoopWasm,
        Overhead::Breakwater,
        Overhead::BreakwaterRate,
        Overhead::EnvoyNative,
    ];

    /// The key in `results.json`.
    pub fn key(self) -> &'static str {
        match self {
            Overhead::NoWasm => "no_wasm",
            Overhead::NoopWasm => "noop_wasm",
            Overhead::Breakwater => "breakwater",
            Overhead::BreakwaterRate => "breakwater_rate",
            Overhead::EnvoyNative => "envoy_native",
        }
    }

    /// The row label in BENCHMARKS.md.
    pub fn label(self) -> &'static str {
        match self {
            Overhead::NoWasm => "(a) Envoy, no wasm filter",
            Overhead::NoopWasm => "(b) no-op proxy-wasm filter",
            Overhead::Breakwater => "(c) Breakwater, default policy",
            Overhead::BreakwaterRate => "(d) Breakwater, `failure_rate` on",
            Overhead::EnvoyNative => "(e) Envoy native retries + outlier detection",
        }
    }

    pub fn config(self, upstream: SocketAddr, modules: &Modules) -> EnvoyConfig {
        match self {
            Overhead::NoWasm => base(upstream),
            Overhead::NoopWasm => with_filter(upstream, &modules.noop, ""),
            Overhead::Breakwater => with_filter(upstream, &modules.breakwater, DEFAULT_POLICY),
            Overhead::BreakwaterRate => with_filter(upstream, &modules.breakwater, RATE_POLICY),
            Overhead::EnvoyNative => base(upstream).native_resilience(NativeResilience::default()),
        }
    }
}

/// A contender of the failure scenarios.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resilience {
    Breakwater,
    /// Retry limit lifted, panic routing off.
    EnvoyNative,
    /// Envoy's defaults for the retry limit and the panic threshold.
    EnvoyNativeDefaults,
}

impl Resilience {
    pub const ALL: [Resilience; 3] = [
        Resilience::Breakwater,
        Resilience::EnvoyNative,
        Resilience::EnvoyNativeDefaults,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Resilience::Breakwater => "breakwater",
            Resilience::EnvoyNative => "envoy_native",
            Resilience::EnvoyNativeDefaults => "envoy_native_defaults",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Resilience::Breakwater => "Breakwater (`max_attempts` 4)",
            Resilience::EnvoyNative => "Envoy native (3 retries), limits lifted",
            Resilience::EnvoyNativeDefaults => "Envoy native (3 retries), Envoy defaults",
        }
    }

    pub fn config(self, upstream: SocketAddr, modules: &Modules) -> EnvoyConfig {
        match self {
            Resilience::Breakwater => with_filter(upstream, &modules.breakwater, FAILURE_POLICY),
            Resilience::EnvoyNative => {
                base(upstream).native_resilience(native_tuned_for_failures())
            }
            Resilience::EnvoyNativeDefaults => {
                base(upstream).native_resilience(native_for_failures())
            }
        }
    }

    /// The admin stats filter and check that tell the breaker has tripped: Breakwater's state
    /// gauge leaves closed (0); Envoy ejects the host.
    pub fn trip_stat(self) -> &'static str {
        match self {
            Resilience::Breakwater => "breaker_state",
            Resilience::EnvoyNative | Resilience::EnvoyNativeDefaults => {
                "outlier_detection.ejections_active"
            }
        }
    }
}
