//! The defaults of every field, as `POLICY.md`'s tables give them (a test holds the two
//! together). They are the numbers of the classic circuit-breaker and retry recipes that many
//! teams run in their application code, so `{}` behaves as those teams expect (`POLICY.md`
//! "Where the defaults come from").
//!
//! `failure_rate` and `slow_call` are off by default; when a scope turns one on without setting
//! every field, the missing ones take the defaults in `POLICY.md`'s table.

use super::types::{BreakerMode, Jitter, OutcomeClass};
use std::time::Duration;

// --- circuit_breaker ---

pub const FAILURE_THRESHOLD: u32 = 5;
pub const TIMEOUT: Duration = Duration::from_secs(60);
pub const HALF_OPEN_ATTEMPTS: u32 = 1;
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(30);
/// What counts against the breaker. Envoy's own refusals, each decided on its own (a status
/// class never matches them, see `core::outcome`):
///
/// - `connect-failure` (`UF`) and `timeout` (`UT`): the upstream could not be reached or did not
///   answer; that is what a breaker is for.
/// - `no-healthy-upstream` (`UH`): counted. Health checks and outlier detection found every host
///   bad; that is the upstream's state, not a client's doing, and counting it lets the breaker
///   answer with the policy's fallback while the cluster is down.
/// - `overflow` (`UO`, `OM`, `DO`, `UDO`, maintenance mode): not counted. Envoy refused the
///   request by its own limits; at a gateway a flood from one client trips them, and if that
///   counted, one client could open the breaker for every client. Operators who want it list
///   `"overflow"`.
///
/// gRPC replies (HTTP 200 with a `grpc-status`) match only gRPC names, so these count for gRPC
/// requests only: the codes that Envoy's own outlier detection reads as a 5xx (its
/// `grpcToHttpStatus`: UNKNOWN and INTERNAL and DATA_LOSS → 500, UNAVAILABLE → 503,
/// DEADLINE_EXCEEDED → 504), which are the server failing or too slow, the gRPC twins of `5xx`
/// and `timeout`. Not counted: UNIMPLEMENTED (Envoy's 501), which one client calling a method the
/// server lacks gets on every call, so it would let one client open the breaker for all;
/// RESOURCE_EXHAUSTED (Envoy's 429), a server shedding load or one client's quota running out,
/// like `overflow` and `429`; CANCELLED, usually the client's own doing; and the codes that
/// answer the request itself (INVALID_ARGUMENT, NOT_FOUND, PERMISSION_DENIED, …), like a 4xx.
pub const FAILURE_ON: [OutcomeClass; 10] = [
    OutcomeClass::Status5xx,
    OutcomeClass::Reset,
    OutcomeClass::ConnectFailure,
    OutcomeClass::Timeout,
    OutcomeClass::NoHealthyUpstream,
    OutcomeClass::Grpc(2),  // unknown
    OutcomeClass::Grpc(4),  // deadline-exceeded
    OutcomeClass::Grpc(13), // internal
    OutcomeClass::Grpc(14), // unavailable
    OutcomeClass::Grpc(15), // data-loss
];
/// The breaker sits outside the retries: one outcome per client request.
pub const COUNT_RETRIES: bool = false;
pub const MODE: BreakerMode = BreakerMode::Enforce;

/// A 503 with a JSON body that says where it came from.
pub const FALLBACK_STATUS: u16 = 503;
pub const FALLBACK_HEADERS: [(&str, &str); 1] = [("content-type", "application/json")];
pub const FALLBACK_BODY: &str = r#"{"source":"fallback"}"#;
/// A gRPC request gets a gRPC reply instead: UNAVAILABLE, the status gRPC clients and their
/// retry policies read as "try again later" (gRFC A6 retries it; Envoy's `retry_on:
/// unavailable` too).
pub const FALLBACK_GRPC_STATUS: u8 = 14;

pub const FAILURE_RATE_THRESHOLD: f64 = 0.5;
/// The rate window when `failure_rate` does not set one (also the window of `slow_call`).
pub const WINDOW: Duration = Duration::from_secs(10);
pub const MINIMUM_REQUESTS: u32 = 20;

pub const SLOW_CALL_DURATION: Duration = Duration::from_secs(2);
pub const SLOW_CALL_RATE_THRESHOLD: f64 = 0.8;

// --- retry ---

pub const MAX_ATTEMPTS: u32 = 3;
pub const BASE_DELAY: Duration = Duration::from_secs(1);
pub const MAX_DELAY: Duration = Duration::from_secs(60);
pub const EXPONENTIAL_BASE: f64 = 2.0;
/// `jitter: true`: × U[0.5, 1.5], cut at `max_delay` (see `core::backoff`).
pub const JITTER: Jitter = Jitter::Proportional;
/// What is retried. Of the outcomes Envoy names itself only `connect-failure` (`UF`): nothing reached the
/// upstream, so a retry is safe and a new connection may well succeed.
///
/// - `timeout` (`UT`): not retried; the upstream may have done the work, and retrying a slow
///   upstream multiplies its load.
/// - `no-healthy-upstream` (`UH`): not retried; Envoy has no host to send it to, and a retry a
///   moment later through the same cluster meets the same empty set, spending the budget that
///   real failures need. Envoy's router does not retry it either (no attempt was made).
/// - `overflow`: not retried; retrying a request Envoy shed for overload adds to the overload
///   (Envoy's router never retries an overflow: `RetryStateImpl::wouldRetryFromReset` in
///   `source/common/router/retry_state_impl.cc` answers no before anything else).
pub const RETRY_ON: [OutcomeClass; 3] = [
    OutcomeClass::Status5xx,
    OutcomeClass::Reset,
    OutcomeClass::ConnectFailure,
];
/// RFC 9110's idempotent methods (section 9.2.2).
pub const METHODS: [&str; 6] = ["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"];
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";
/// The usual client-side request timeout, well below the breaker's `TIMEOUT`.
pub const PER_TRY_TIMEOUT: Duration = Duration::from_secs(10);
/// Envoy's default route timeout. Envoy stops a route's timer once the first attempt's response
/// has wholly arrived, so while Breakwater retries, `deadline` is what bounds the client's wait.
pub const DEADLINE: Duration = Duration::from_secs(15);
pub const RESPECT_RETRY_AFTER: bool = true;
pub const MAX_REQUEST_BODY: u64 = 64 * 1024;
/// What one worker may hold for retries at once: about 500 request bodies at the default
/// `max_request_body` (with their headers), or one at its largest. Well under what a worker's VM can grow to, so
/// concurrent uploads and large retried responses cannot make a worker's VM run out of memory.
pub const MAX_WORKER_BUFFER: u64 = 32 * 1024 * 1024;

pub const BUDGET_RATIO: f64 = 0.2;
pub const BUDGET_MIN_PER_SECOND: u32 = 10;
pub const BUDGET_WINDOW: Duration = Duration::from_secs(10);
