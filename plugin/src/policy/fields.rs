//! The fields of the policy's objects, each declared once: its JSON form and description (the
//! raw serde type, and so the schema), its checked form, its default and how it is read, with
//! its bounds (see [`objects!`] for what is made from this table).
//!
//! The defaults are `POLICY.md`'s (a test holds the two together): the numbers of the classic
//! circuit-breaker and retry recipes that many teams run in their application code, so `{}`
//! behaves as those teams expect (`POLICY.md` "Where the defaults come from"). The longer ones
//! are in [`super::defaults`], with why.
//!
//! The `///` lines are the schema's descriptions, line breaks included (so rustfmt, which leaves
//! a macro's input alone, is not asked to wrap them): rewording one changes
//! `examples/policy.schema.json`, which `breakwater-cli schema --check` compares.

use super::bounds::*;
use super::defaults as d;
use super::json::Node;
#[cfg(test)]
use super::layer::FieldTypes;
use super::layer::{merge_fields, objects, read_object, Fields, Merge, Slot};
use super::problem::At;
use super::raw::{Check, Entries, RawDuration, RawJitter, RawMode, RawOutcome, Toggle, Written};
use super::read::{self, count, integer, number, rate, text, time, toggle};
use super::read_breaker::{body, failure_threshold, headers, mode};
use super::read_retry::{idempotency_header, jitter, max_attempts};
use super::rule::Rule;
use super::types::{BreakerMode, Jitter, OutcomeClass, OutcomeMatcher};
use std::time::Duration;

const fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// A default list of outcome classes.
fn classes(list: &[OutcomeClass]) -> OutcomeMatcher {
    OutcomeMatcher {
        classes: list.to_vec(),
        codes: Vec::new(),
    }
}

objects! {
    /// `circuit_breaker`.
    RawBreaker => BreakerLayer, BreakerValues {
        /// Consecutive failed requests that open the breaker; 0 turns this trigger off. Default 5,
        /// 0..=10000.
        failure_threshold: Option<i64> => Option<u32> = 5,
            Integer(FAILURE_THRESHOLD) => |node, at, bounds| failure_threshold(node, at, bounds);
        /// Also open when the failed fraction over a window reaches `threshold`. Off unless written;
        /// `{}` turns it on with its defaults.
        failure_rate: Toggle<RawFailureRate> => Toggle<FailureRateLayer> = Toggle::Off,
            Shape => |node, at| toggle(node, at, read_object::<FailureRateLayer>);
        /// Also open when the fraction of responses slower than `duration` reaches `rate_threshold`
        /// (over `failure_rate`'s window). Off unless written.
        slow_call: Toggle<RawSlowCall> => Toggle<SlowCallLayer> = Toggle::Off,
            Shape => |node, at| toggle(node, at, read_object::<SlowCallLayer>);
        /// How long the breaker stays open before it lets probes through (half-open). Default 60s,
        /// 1ms..=24h.
        timeout: Option<RawDuration> => Option<Duration> = secs(60),
            Duration(OPEN_TIME) => |node, at, bounds| time(node, at, bounds);
        /// Cap of the open time, which doubles on each re-open after a failed probe. Default:
        /// `timeout`; 1ms..=24h, at least `timeout`.
        // "= timeout": `resolve` never lets the cap below the timeout, so 0 stands for it.
        max_timeout: Option<RawDuration> => Option<Duration> = Duration::ZERO,
            Duration(OPEN_TIME) => |node, at, bounds| time(node, at, bounds);
        /// Probes let through at once in half-open, across all workers; that many successes close the
        /// breaker. Default 1, 1..=1000.
        half_open_attempts: Option<i64> => Option<u32> = 1,
            Integer(HALF_OPEN_ATTEMPTS) => |node, at, bounds| count(node, at, bounds);
        /// A probe that never reports gives its slot back after this. Default 30s, 1ms..=1h.
        probe_timeout: Option<RawDuration> => Option<Duration> = secs(30),
            Duration(PROBE_TIMEOUT) => |node, at, bounds| time(node, at, bounds);
        /// Outcomes that count as failures: "5xx", "gateway-error", "reset", "connect-failure",
        /// "timeout", "no-healthy-upstream", "overflow", status codes 400..=599, or gRPC statuses
        /// ("unavailable", "grpc-14", ...; they match gRPC replies only). Default ["5xx", "reset",
        /// "connect-failure", "timeout", "no-healthy-upstream", "unknown", "deadline-exceeded",
        /// "internal", "unavailable", "data-loss"].
        failure_on: Option<Vec<RawOutcome>> => Option<OutcomeMatcher> = classes(&d::FAILURE_ON),
            FailureOutcomes => |node, at| read::outcomes(
                node,
                at,
                |code| FAILURE_CODES.contains(&code),
                || Rule::NotAFailureStatus,
                None,
            );
        /// false: one outcome per client request, after its retries; true: every attempt counts.
        /// Default false.
        // The breaker sits outside the retries: one outcome per client request.
        count_retries: Option<bool> => Option<bool> = false,
            Shape => |node, at| read::flag(node, at);
        /// The reply while the breaker is open. Default: 503, `content-type: application/json`, body
        /// `{"source":"fallback"}`.
        // Merged field by field like the parts that null turns off, but never `Off`: the reader
        // refuses `"fallback": null` (an open breaker must answer something).
        fallback: Option<RawFallback> => Toggle<FallbackLayer> = Toggle::On(FallbackLayer::default()),
            Shape => |node, at| read_object::<FallbackLayer>(node, at).map_or(Toggle::Unset, Toggle::On);
        /// "enforce" (default), "shadow" (counts and reports, never rejects), "forced_open" (every
        /// request gets the fallback) or "disabled".
        mode: Option<RawMode> => Option<BreakerMode> = BreakerMode::Enforce,
            Shape => |node, at| mode(node, at);
    }

    /// `circuit_breaker.failure_rate`.
    RawFailureRate => FailureRateLayer, FailureRateValues {
        /// Failed fraction at or above which the breaker opens. Default 0.5; above 0, at most 1.
        threshold: Option<f64> => Option<f64> = 0.5,
            Rate => |node, at| rate(node, at);
        /// Requests that must finish in the window before a rate can open the breaker. Default 20,
        /// 1..=1000000.
        minimum_requests: Option<i64> => Option<u32> = 20,
            Integer(MINIMUM_REQUESTS) => |node, at, bounds| count(node, at, bounds);
        /// The sliding window of both rate triggers. Default 10s, 1s..=1h.
        // Also the window of `slow_call` when `failure_rate` is off.
        window: Option<RawDuration> => Option<Duration> = secs(10),
            Duration(WINDOW) => |node, at, bounds| time(node, at, bounds);
    }

    /// `circuit_breaker.slow_call`.
    RawSlowCall => SlowCallLayer, SlowCallValues {
        /// A response slower than this counts as slow. Default 2s, 1ms..=1h.
        duration: Option<RawDuration> => Option<Duration> = secs(2),
            Duration(SLOW_CALL_DURATION) => |node, at, bounds| time(node, at, bounds);
        /// Slow fraction at or above which the breaker opens. Default 0.8; above 0, at most 1.
        rate_threshold: Option<f64> => Option<f64> = 0.8,
            Rate => |node, at| rate(node, at);
    }

    /// `circuit_breaker.fallback`.
    RawFallback => FallbackLayer, FallbackValues {
        /// Status of the fallback reply. Default 503, 200..=599.
        // A 503 with a JSON body that says where it came from.
        status: Option<i64> => Option<u16> = 503,
            Integer(FALLBACK_STATUS)
            => |node, at, bounds| integer(node, at, bounds).and_then(|s| u16::try_from(s).ok());
        /// The `grpc-status` of the fallback to a gRPC request, which gets a gRPC reply (HTTP 200,
        /// trailers-only) instead of `status` and `body`. Default 14 (UNAVAILABLE), 1..=16.
        // UNAVAILABLE is the status gRPC clients and their retry policies read as "try again
        // later" (gRFC A6 retries it; Envoy's `retry_on: unavailable` too).
        grpc_status: Option<i64> => Option<u8> = 14,
            Integer(FALLBACK_GRPC_STATUS)
            => |node, at, bounds| integer(node, at, bounds).and_then(|c| u8::try_from(c).ok());
        /// Header name to value, in the order written.
        headers: Option<Entries<String>> => Option<Vec<(String, String)>> =
            d::FALLBACK_HEADERS.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
            FallbackHeaders => |node, at| headers(node, at);
        /// Body of the fallback reply. Default `{"source":"fallback"}`, at most 16384 bytes.
        body: Option<String> => Option<String> = d::FALLBACK_BODY.to_owned(),
            FallbackBody => |node, at| text(node, at).and_then(|written| body(written, at));
    }

    /// `retry`.
    RawRetry => RetryLayer, RetryValues {
        /// Attempts in all, the first included; 1 turns retries off. Default 3, 1..=10.
        max_attempts: Option<i64> => Option<u32> = 3,
            Integer(MAX_ATTEMPTS) => |node, at, bounds| max_attempts(node, at, bounds);
        /// Delay before the first retry, before jitter. Default 1s, 1ms..=1h.
        base_delay: Option<RawDuration> => Option<Duration> = secs(1),
            Duration(DELAY) => |node, at, bounds| time(node, at, bounds);
        /// Cap of every delay, `Retry-After` included. Default 60s, 1ms..=1h, at least `base_delay`.
        max_delay: Option<RawDuration> => Option<Duration> = secs(60),
            Duration(DELAY) => |node, at, bounds| time(node, at, bounds);
        /// Each retry waits this many times longer than the one before. Default 2.0, 1..=10.
        exponential_base: Option<f64> => Option<f64> = 2.0,
            Number(EXPONENTIAL_BASE) => |node, at, bounds| number(node, at, bounds);
        /// true or "proportional" (default: × U[0.5, 1.5]), false or "none", "full", "equal" or
        /// "decorrelated".
        // `true`: × U[0.5, 1.5], cut at `max_delay` (see `core::backoff`).
        jitter: Option<RawJitter> => Option<Jitter> = Jitter::Proportional,
            Shape => |node, at| jitter(node, at);
        /// Outcomes that are retried: "5xx", "gateway-error", "reset", "connect-failure", "timeout" or
        /// status codes 408, 409, 429, 500..=599. Default ["5xx", "reset", "connect-failure"].
        retry_on: Option<Vec<RawOutcome>> => Option<OutcomeMatcher> = classes(&d::RETRY_ON),
            RetryOutcomes => |node, at| read::outcomes(
                node,
                at,
                |code| RETRYABLE_5XX.contains(&code) || RETRYABLE_4XX.contains(&code),
                || Rule::NeverRetried,
                Some(|| Rule::GrpcNotRetried),
            );
        /// Methods that may be retried. Default the idempotent methods GET, HEAD, OPTIONS, TRACE, PUT,
        /// DELETE.
        methods: Option<Vec<String>> => Option<Vec<String>> = d::METHODS.map(String::from).to_vec(),
            Methods => |node, at| read::methods(node, at);
        /// A request carrying this header may be retried whatever its method; `null`: no such header.
        /// Default "idempotency-key". Not a pseudo-header, `x-breakwater-*`, `x-envoy-*`,
        /// `x-request-id`, `x-forwarded-*`, tracing headers, hop-by-hop headers, `host` or
        /// `content-length`.
        idempotency_header: Toggle<String> => Toggle<String> =
            Toggle::On(d::IDEMPOTENCY_HEADER.to_owned()),
            IdempotencyHeader => |node, at| toggle(node, at, idempotency_header);
        /// Timeout of each retried attempt. Default 10s, 1ms..=1h.
        // The usual client-side request timeout, well below the breaker's `timeout`.
        per_try_timeout: Option<RawDuration> => Option<Duration> = secs(10),
            Duration(REQUEST_TIME) => |node, at, bounds| time(node, at, bounds);
        /// No retry starts that could not finish (delay + `per_try_timeout`) this long after the
        /// request arrived. Default 30s, 1ms..=1h, at least `per_try_timeout`.
        // Envoy's default route timeout. Envoy stops a route's timer once the first attempt's
        // response has wholly arrived, so while Breakwater retries, `deadline` is what bounds the
        // client's wait.
        deadline: Option<RawDuration> => Option<Duration> = secs(15),
            Duration(REQUEST_TIME) => |node, at, bounds| time(node, at, bounds);
        /// A failed reply's `Retry-After` sets the next delay (spread a little longer); one longer than
        /// `max_delay` means no retry. Default true.
        respect_retry_after: Option<bool> => Option<bool> = true,
            Shape => |node, at| read::flag(node, at);
        /// Retries per cluster, across all workers, as a share of the traffic; `null` turns the budget
        /// off. Default ratio 0.2, 10 per second, over 10s. Refused under `routes.<name>`: every
        /// route uses its cluster's budget.
        // Unlike the triggers, the budget is on by default. (`read_retry` refuses it on a route
        // before this reader.)
        budget: Toggle<RawBudget> => Toggle<BudgetLayer> = Toggle::On(BudgetLayer::default()),
            Shape => |node, at| toggle(node, at, read_object::<BudgetLayer>);
        /// Requests with a larger body (bytes) are forwarded but never retried. Default 65536,
        /// 0..=16777216.
        max_request_body: Option<i64> => Option<u64> = 64 * 1024,
            Integer(MAX_REQUEST_BODY)
            => |node, at, bounds| integer(node, at, bounds).and_then(|b| u64::try_from(b).ok());
    }

    /// `retry.budget`.
    RawBudget => BudgetLayer, BudgetValues {
        /// Retries allowed per request in the window, on top of the floor. Default 0.2, 0..=10.
        ratio: Option<f64> => Option<f64> = 0.2,
            Number(BUDGET_RATIO) => |node, at, bounds| number(node, at, bounds);
        /// Retries per second always allowed (the floor). Default 10, 0..=1000000.
        min_per_second: Option<i64> => Option<u32> = 10,
            Integer(MIN_PER_SECOND) => |node, at, bounds| count(node, at, bounds);
        /// The sliding window that requests and retries are counted over. Default 10s, 1s..=1h.
        window: Option<RawDuration> => Option<Duration> = secs(10),
            Duration(WINDOW) => |node, at, bounds| time(node, at, bounds);
    }
}
