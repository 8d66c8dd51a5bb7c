//! The bounds of every number in the policy, each with the reason for it.
//!
//! A bound refuses values that cannot be meant (0 probes, a negative ratio) and values so large
//! that they stop doing what the field is for (an open time of a week is a kill switch, and
//! `mode: forced_open` says that better). Bounds are inclusive.

use std::ops::RangeInclusive;
use std::time::Duration;

const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}
const SECOND: u64 = 1_000;
const MINUTE: u64 = 60 * SECOND;
const HOUR: u64 = 60 * MINUTE;

// --- circuit_breaker ---

/// 0 turns the trigger off. Above 10,000 consecutive failures the trigger never fires on any
/// real outage; use `failure_rate` for busy clusters.
pub const FAILURE_THRESHOLD: RangeInclusive<i64> = 0..=10_000;
/// Below this (but above 0) the breaker trips on ordinary transient errors: a
/// warning, not an error.
pub const FAILURE_THRESHOLD_WARN_BELOW: u32 = 3;

/// A rate over fewer than one request means nothing; above a million requests per window the
/// rate trigger would only fire long after clients noticed.
pub const MINIMUM_REQUESTS: RangeInclusive<i64> = 1..=1_000_000;

/// `failure_rate.threshold` and `slow_call.rate_threshold` are fractions, so at most 1, and
/// must be above 0 (exclusive): the breaker opens at a fraction ≥ the threshold, so 0 would open
/// it on a window without a single failure.
pub const RATE_THRESHOLD_MAX: f64 = 1.0;

/// A window shorter than a second holds too few requests to judge a rate; one longer than an
/// hour reacts too slowly to protect anything. Also bounds `retry.budget.window`, so that
/// `min_per_second × window` fits the budget's 32-bit counters.
pub const WINDOW: RangeInclusive<Duration> = ms(SECOND)..=ms(HOUR);

/// The breaker's open time (`timeout`, `max_timeout`): at least a millisecond (the clock's
/// resolution; 0 would never stop traffic). A breaker open for over a day is a kill switch:
/// `mode: forced_open` says that explicitly.
pub const OPEN_TIME: RangeInclusive<Duration> = ms(1)..=ms(24 * HOUR);

/// A probe slot held longer than an hour by a probe that never reported keeps the breaker from
/// ever recovering; 0 would free the slot before the probe could answer.
pub const PROBE_TIMEOUT: RangeInclusive<Duration> = ms(1)..=ms(HOUR);

/// 0 probes could never close the breaker. The probes share one shared-data record across
/// workers, and each is a real request to a struggling upstream: 1,000 is far past useful.
pub const HALF_OPEN_ATTEMPTS: RangeInclusive<i64> = 1..=1_000;

/// A call slower than 0 would make every call slow; one slower than an hour is a hung call,
/// which `per_try_timeout` and `timeout` outcomes already count.
pub const SLOW_CALL_DURATION: RangeInclusive<Duration> = ms(1)..=ms(HOUR);

/// Codes `failure_on` may list: 1xx-3xx are not failures of the upstream.
pub const FAILURE_CODES: RangeInclusive<u16> = 400..=599;

/// The only 4xx codes `retry_on` may list: 408 (request timeout), 409 (conflict) and 429 (too
/// many requests) are worth another try; any other 4xx fails again the same way, so it is never
/// retried.
pub const RETRYABLE_4XX: [u16; 3] = [408, 409, 429];
/// The 5xx codes `retry_on` may list.
pub const RETRYABLE_5XX: RangeInclusive<u16> = 500..=599;

/// The fallback must be a final response: 1xx is not one, and Envoy does not send > 599.
pub const FALLBACK_STATUS: RangeInclusive<i64> = 200..=599;

/// The fallback's `grpc-status`: a gRPC error code (0 is OK, which would tell a gRPC client its
/// call succeeded with no reply message; gRPC defines nothing above 16).
pub const FALLBACK_GRPC_STATUS: RangeInclusive<i64> = 1..=16;

/// A fallback is a short message. Its body is copied into every resolved (cluster, route)
/// entry of every worker VM, so a large body multiplies memory.
pub const MAX_FALLBACK_BODY_BYTES: usize = 16 * 1024;

// --- retry ---

/// Attempts in all, the first included: 1 turns retries off, and past 10 every failure turns
/// into a retry storm against an upstream that is already failing.
pub const MAX_ATTEMPTS: RangeInclusive<i64> = 1..=10;
/// Above this, a warning: each failure multiplies the load on a struggling upstream.
pub const MAX_ATTEMPTS_WARN_ABOVE: u32 = 5;

/// `base_delay` and `max_delay`: 0 retries at once, the thundering herd that backoff exists to
/// prevent; no client waits more than an hour for a retry.
pub const DELAY: RangeInclusive<Duration> = ms(1)..=ms(HOUR);

/// 1.0 keeps the delay constant; past 10 the delay reaches `max_delay` by the second retry
/// anyway, so a larger base only hides a typo.
pub const EXPONENTIAL_BASE: RangeInclusive<f64> = 1.0..=10.0;

/// `per_try_timeout` and `deadline`: 0 would fail every attempt at once; an hour is beyond any
/// request a proxy should hold open while it retries.
pub const REQUEST_TIME: RangeInclusive<Duration> = ms(1)..=ms(HOUR);

/// Retries per request allowed by the budget: 0 leaves only the `min_per_second` floor. With at
/// most 10 attempts a request makes at most 9 retries, so a ratio above 10 could never bind.
pub const BUDGET_RATIO: RangeInclusive<f64> = 0.0..=10.0;

/// The floor of retries per second. A million per second over the longest window (an hour)
/// still fits the budget's 32-bit counters (3.6 × 10^9 < 2^32).
pub const MIN_PER_SECOND: RangeInclusive<i64> = 0..=1_000_000;

/// A retryable request's body is held in the worker VM's memory until the request ends. 0 means
/// "never retry a request with a body". 16 MiB is well past Envoy's default 1 MiB buffer limit,
/// so the cap only catches typos that would let a VM hold gigabytes.
pub const MAX_REQUEST_BODY: RangeInclusive<i64> = 0..=16 * 1024 * 1024;

/// What a worker may hold for retries at once. At least 1 MiB (one request at Envoy's default
/// buffer limit); at most 256 MiB: proxy-wasm-cpp-host caps a VM's memory at 1 GiB, a growing
/// copy may briefly hold up to twice its bytes while its buffer doubles, and a VM that cannot
/// grow its memory traps and fails every request on its worker. So no value allowed here can make
/// the filter run its worker out of memory.
pub const MAX_WORKER_BUFFER: RangeInclusive<i64> = 1024 * 1024..=256 * 1024 * 1024;

// --- state ---

/// `state_scope` is part of every shared-data key, which Envoy copies on every read and write:
/// a name, not a sentence.
pub const STATE_SCOPE_BYTES: usize = 128;

// --- the whole table ---

/// The resolved table holds (clusters + 1) × (routes + 1) effective policies in every worker VM,
/// so that a request only looks one up. 10,000 entries of well under a kilobyte each (with a
/// short fallback body) keep that to a few megabytes per worker.
pub const MAX_RESOLVED: usize = 10_000;
