//! The defaults that are lists or text, each with why. The field table (`fields`) holds the
//! default of every field of `circuit_breaker` and `retry` and takes these from here; `POLICY.md`'s
//! tables give the same defaults (a test holds the two together).

use super::types::OutcomeClass;

// --- circuit_breaker ---

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

pub const FALLBACK_HEADERS: [(&str, &str); 1] = [("content-type", "application/json")];
pub const FALLBACK_BODY: &str = r#"{"source":"fallback"}"#;

// --- retry ---

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
/// What one worker may hold for retries at once: about 500 request bodies at the default
/// `max_request_body` (with their headers), or one at its largest. Well under what a worker's VM can grow to, so
/// concurrent uploads and large retried responses cannot make a worker's VM run out of memory.
pub const MAX_WORKER_BUFFER: u64 = 32 * 1024 * 1024;
