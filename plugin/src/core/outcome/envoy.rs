//! Envoy 1.40's own words for what happened to a stream, and how they map to a [`Cause`].
//!
//! # `response.flags`
//!
//! The property is `StreamInfo::legacyResponseFlags()` (`filters/common/expr/context.cc`, `Flags`),
//! a CEL int64 that the wasm host serializes as its 8 raw bytes (`common/wasm/context.cc`,
//! `serializeValue`), so little-endian on every platform Envoy ships for. Bit `n` is set when the
//! stream carries core response flag `n`: `1 << value` for each flag up to
//! `CoreResponseFlag::LastFlag` (`stream_info_impl.h`). The positions are the order of
//! `enum CoreResponseFlag` in `envoy/stream_info/stream_info.h`, which Envoy only ever appends
//! to; the constants below follow it, with each with its access-log short name.
//!
//! # `response.code_details`
//!
//! `ResponseCodeDetailValues` in `envoy/stream_info/stream_info.h`: `via_upstream` for a reply
//! that came from the upstream; for an upstream reset, `upstream_reset_before_response_started`
//! (or `…_after_…`) followed by `{reason}` or `{reason|transport failure reason}`, where the router
//! (`source/common/router/router.cc`, `onUpstreamReset`) writes `Http::Utility::resetReasonToString`
//! with spaces turned into `_`, for example
//! `upstream_reset_before_response_started{remote_connection_failure|delayed_connect_error:_111}`.
//! Envoy 1.40's reset reasons (its binary holds these strings) are `local connection failure`,
//! `remote connection failure`, `connection timeout`, `connection termination`, `local reset`,
//! `local refused stream reset`, `overflow`, `remote reset`, `remote refused stream reset`,
//! `remote error with CONNECT request`, `protocol error` and `overload manager reset`; releases
//! before the local/remote split said `connection failure`, which is accepted too. Timeouts are
//! `response_timeout` (route timeout), `upstream_per_try_timeout`, `upstream_per_try_idle_timeout`
//! and `upstream_max_stream_duration_reached`.
//!
//! Envoy's refusals have details of their own: `no_healthy_upstream` (the router found no host,
//! `Filter::sendNoHealthyUpstreamResponse` in `source/common/router/router.cc`, with flag `UH`),
//! and, for Envoy protecting itself or the upstream, `maintenance_mode` (flag `UO`),
//! `drop_overload` / `unconditional_drop_overload` (flags `DO` / `UDO`), `overload` (the overload
//! manager's load shedding), and the reset reasons `overflow` (the cluster's circuit breaker
//! thresholds, flag `UO`) and `overload manager reset` (flag `OM`). Note that `UO` also marks a
//! real upstream reply whose route retry Envoy could not start because its retry circuit
//! breaker was full: the details (`via_upstream`) decide before the flags, so such a reply stays
//! the upstream's.
//!
//! # Synthesized replies to a dispatched call
//!
//! `dispatch_http_call` runs on Envoy's AsyncClient, which routes through the same router filter.
//! When the router gives up it calls `sendLocalReply`, which the AsyncClient turns into an ordinary
//! `onSuccess` response (`source/common/http/async_client_impl.h`): `:status` 503 (502 for a
//! protocol error) with the `text/plain` body `upstream connect error or disconnect/reset before
//! headers. [retried and the latest ]reset reason: <reason>[, transport failure reason: <text>]`
//! (plus `x-envoy-overloaded: true` on overflow), 503 with `no healthy upstream`, `maintenance
//! mode`, `drop overload`, `unconditional drop overload` or `envoy overloaded` for the refusals
//! above, or 504 with `upstream request timeout` when the call's timeout fires. The AsyncClient's router config sets `suppress_envoy_headers = false`
//! (`AsyncClientImpl` constructor), so every reply that really came from the upstream carries
//! [`UPSTREAM_SERVICE_TIME`] (`Filter::onUpstreamHeaders` adds it once the request is complete,
//! and a dispatched request is complete before any reply can arrive), and no synthesized reply
//! does. When the stream is reset instead (`onFailure`: `Reset` or `ExceedResponseBufferLimit`),
//! the wasm host calls the filter with zero headers and sets the call status to
//! `BrokenConnection` / `reset` (`common/wasm/context.cc`, `onHttpCallFailure`).
//!
//! # Measured
//!
//! With the Envoy 1.40.0 binary, the access log showed exactly these details and flag values for
//! an upstream 503, a route timeout, an upstream RST, a closed port and a closed port under a route
//! retry policy (pinned in this module's tests), and the same reply bodies; real replies carried
//! `x-envoy-upstream-service-time`, Envoy's own did not.

use super::Cause;

/// Bit positions of `response.flags` (`CoreResponseFlag` order).
pub mod flags {
    /// `LH`: Local server health check failed.
    pub const FAILED_LOCAL_HEALTH_CHECK: u64 = 1 << 0;
    /// `UH`: No healthy upstream.
    pub const NO_HEALTHY_UPSTREAM: u64 = 1 << 1;
    /// `UT`: Upstream request timeout.
    pub const UPSTREAM_REQUEST_TIMEOUT: u64 = 1 << 2;
    /// `LR`: Local codec-level reset was sent on the stream.
    pub const LOCAL_RESET: u64 = 1 << 3;
    /// `UR`: Remote codec-level reset was received on the stream.
    pub const UPSTREAM_REMOTE_RESET: u64 = 1 << 4;
    /// `UF`: Upstream connection failure.
    pub const UPSTREAM_CONNECTION_FAILURE: u64 = 1 << 5;
    /// `UC`: Upstream connection termination.
    pub const UPSTREAM_CONNECTION_TERMINATION: u64 = 1 << 6;
    /// `UO`: Upstream overflow (Envoy's own circuit breaking).
    pub const UPSTREAM_OVERFLOW: u64 = 1 << 7;
    /// `NR`: No route found.
    pub const NO_ROUTE_FOUND: u64 = 1 << 8;
    /// `DI`: Delay injected.
    pub const DELAY_INJECTED: u64 = 1 << 9;
    /// `FI`: Fault injected.
    pub const FAULT_INJECTED: u64 = 1 << 10;
    /// `RL`: Rate limited locally.
    pub const RATE_LIMITED: u64 = 1 << 11;
    /// `UAEX`: Unauthorized by an external authorization service.
    pub const UNAUTHORIZED_EXTERNAL_SERVICE: u64 = 1 << 12;
    /// `RLSE`: Rate limit service error.
    pub const RATE_LIMIT_SERVICE_ERROR: u64 = 1 << 13;
    /// `DC`: Downstream connection termination.
    pub const DOWNSTREAM_CONNECTION_TERMINATION: u64 = 1 << 14;
    /// `URX`: Envoy's own upstream retry limit exceeded.
    pub const UPSTREAM_RETRY_LIMIT_EXCEEDED: u64 = 1 << 15;
    /// `SI`: Stream idle timeout.
    pub const STREAM_IDLE_TIMEOUT: u64 = 1 << 16;
    /// `IH`: Invalid `x-envoy-*` request headers.
    pub const INVALID_ENVOY_REQUEST_HEADERS: u64 = 1 << 17;
    /// `DPE`: Downstream protocol error.
    pub const DOWNSTREAM_PROTOCOL_ERROR: u64 = 1 << 18;
    /// `UMSDR`: Upstream max stream duration reached.
    pub const UPSTREAM_MAX_STREAM_DURATION_REACHED: u64 = 1 << 19;
    /// `RFCF`: Response from the cache filter.
    pub const RESPONSE_FROM_CACHE_FILTER: u64 = 1 << 20;
    /// `NFCF`: No filter config found.
    pub const NO_FILTER_CONFIG_FOUND: u64 = 1 << 21;
    /// `DT`: Downstream duration timeout.
    pub const DURATION_TIMEOUT: u64 = 1 << 22;
    /// `UPE`: Upstream protocol error.
    pub const UPSTREAM_PROTOCOL_ERROR: u64 = 1 << 23;
    /// `NC`: No cluster found.
    pub const NO_CLUSTER_FOUND: u64 = 1 << 24;
    /// `OM`: Overload manager terminated the stream.
    pub const OVERLOAD_MANAGER: u64 = 1 << 25;
    /// `DF`: DNS resolution failed.
    pub const DNS_RESOLUTION_FAILED: u64 = 1 << 26;
    /// `DO`: Dropped by drop_overload.
    pub const DROP_OVERLOAD: u64 = 1 << 27;
    /// `DR`: Downstream remote reset.
    pub const DOWNSTREAM_REMOTE_RESET: u64 = 1 << 28;
    /// `UDO`: Unconditional drop overload.
    pub const UNCONDITIONAL_DROP_OVERLOAD: u64 = 1 << 29;
}

/// `response.code_details` of a reply that came from the upstream.
pub const VIA_UPSTREAM: &str = "via_upstream";
/// Details prefix of an upstream reset before the response started.
pub const EARLY_UPSTREAM_RESET: &str = "upstream_reset_before_response_started";
/// Details prefix of an upstream reset after the response started.
pub const LATE_UPSTREAM_RESET: &str = "upstream_reset_after_response_started";
/// Details of the timeouts that mean the upstream did not answer in time.
pub const TIMEOUT_DETAILS: [&str; 4] = [
    "response_timeout",
    "upstream_per_try_timeout",
    "upstream_per_try_idle_timeout",
    "upstream_max_stream_duration_reached",
];
/// The header Envoy's router adds to every reply that came from the upstream.
pub const UPSTREAM_SERVICE_TIME: &str = "x-envoy-upstream-service-time";
/// Body of a synthesized reply after a reset or failed connection.
pub const RESET_BODY_PREFIX: &str = "upstream connect error or disconnect/reset before headers.";
/// What precedes the reset reason in that body (after `retried and the latest ` or not).
const RESET_REASON_MARKER: &str = "reset reason: ";
/// Bodies of synthesized replies after a timeout.
pub const TIMEOUT_BODIES: [&str; 2] = [
    "upstream request timeout",
    "upstream max stream duration reached",
];
/// Details and body of the router's reply when the cluster has no healthy host.
pub const NO_HEALTHY_UPSTREAM_DETAILS: &str = "no_healthy_upstream";
pub const NO_HEALTHY_UPSTREAM_BODY: &str = "no healthy upstream";
/// Details of Envoy's replies when it sheds a request by its own limits or orders.
pub const OVERFLOW_DETAILS: [&str; 4] = [
    "maintenance_mode",
    "drop_overload",
    "unconditional_drop_overload",
    "overload",
];
/// Bodies of the same replies to a dispatched call.
pub const OVERFLOW_BODIES: [&str; 4] = [
    "maintenance mode",
    "drop overload",
    "unconditional drop overload",
    "envoy overloaded",
];

/// Reset reasons (either spelling: spaces or `_`) that mean no connection could be made.
const CONNECT_FAILURE_REASONS: [&str; 4] = [
    "connection failure",
    "local connection failure",
    "remote connection failure",
    "connection timeout",
];
/// Reset reasons that are Envoy protecting itself, not the upstream failing.
const OVERFLOW_REASONS: [&str; 2] = ["overflow", "overload manager reset"];

/// The cause of the client stream's response: the details decide when they name a cause, the
/// flags when the details are empty or name none. Other details are Envoy's own reply; empty
/// details are too when a flag says so (no route, a rate limit, …), and with no evidence at all
/// (or only flags that a real reply can carry, like `URX`) the reply is taken as the upstream's.
pub fn cause_of_response(flags: u64, details: &str) -> Cause {
    if details == VIA_UPSTREAM {
        return Cause::Upstream;
    }
    if let Some(cause) = cause_of_details(details) {
        return cause;
    }
    if let Some(cause) = cause_of_flags(flags) {
        return cause;
    }
    if details.is_empty() && flags & !INFORMATIONAL_FLAGS == 0 {
        Cause::Upstream
    } else {
        Cause::Local
    }
}

/// Flags that can accompany a real upstream reply, so they do not make a reply Envoy's own.
const INFORMATIONAL_FLAGS: u64 = flags::UPSTREAM_RETRY_LIMIT_EXCEEDED
    | flags::DELAY_INJECTED
    | flags::RESPONSE_FROM_CACHE_FILTER;

/// The cause when `details` name an upstream failure (a reset, a failed connection or a
/// timeout), else `None`. Envoy's refusals (no healthy upstream, overflow) are not: nothing was
/// sent upstream.
pub fn cause_of_upstream_failure(details: &str) -> Option<Cause> {
    if TIMEOUT_DETAILS.contains(&details) {
        return Some(Cause::Timeout);
    }
    let rest = details
        .strip_prefix(EARLY_UPSTREAM_RESET)
        .or_else(|| details.strip_prefix(LATE_UPSTREAM_RESET))?;
    // `{reason}` or `{reason|transport failure}` (older releases used `,`); a bare prefix is a
    // reset without a reason (the upstream closed while the request body was still streaming).
    let reason = rest
        .strip_prefix('{')
        .map(|r| r.split(['|', ',', '}']).next().unwrap_or(""))
        .unwrap_or("");
    Some(cause_of_reset_reason(reason))
}

/// [`cause_of_upstream_failure`], or one of Envoy's refusals named by its details.
fn cause_of_details(details: &str) -> Option<Cause> {
    if details == NO_HEALTHY_UPSTREAM_DETAILS {
        return Some(Cause::NoHealthyUpstream);
    }
    if OVERFLOW_DETAILS.contains(&details) {
        return Some(Cause::Overflow);
    }
    cause_of_upstream_failure(details)
}

fn cause_of_flags(flags: u64) -> Option<Cause> {
    use flags::*;
    if flags & (UPSTREAM_CONNECTION_FAILURE | DNS_RESOLUTION_FAILED) != 0 {
        // A name that did not resolve (a dynamic forward proxy's `DF`) is a connection that
        // could not be made.
        Some(Cause::ConnectFailure)
    } else if flags & (UPSTREAM_REQUEST_TIMEOUT | UPSTREAM_MAX_STREAM_DURATION_REACHED) != 0 {
        Some(Cause::Timeout)
    } else if flags
        & (UPSTREAM_REMOTE_RESET
            | UPSTREAM_CONNECTION_TERMINATION
            | LOCAL_RESET
            | UPSTREAM_PROTOCOL_ERROR)
        != 0
    {
        Some(Cause::Reset)
    } else if flags & NO_HEALTHY_UPSTREAM != 0 {
        Some(Cause::NoHealthyUpstream)
    } else if flags
        & (UPSTREAM_OVERFLOW | OVERLOAD_MANAGER | DROP_OVERLOAD | UNCONDITIONAL_DROP_OVERLOAD)
        != 0
    {
        Some(Cause::Overflow)
    } else {
        None
    }
}

/// The cause of a reply that Envoy synthesized for a dispatched call, from its body.
pub fn cause_of_local_reply(body: &[u8]) -> Cause {
    let Ok(body) = std::str::from_utf8(body) else {
        return Cause::Local;
    };
    let body = body.trim();
    if TIMEOUT_BODIES.contains(&body) {
        return Cause::Timeout;
    }
    if body == NO_HEALTHY_UPSTREAM_BODY {
        return Cause::NoHealthyUpstream;
    }
    if OVERFLOW_BODIES.contains(&body) {
        return Cause::Overflow;
    }
    let Some(rest) = body.strip_prefix(RESET_BODY_PREFIX) else {
        return Cause::Local;
    };
    // A byte search, not `split_once(&str)`: core's substring searcher and the slicing it
    // panics through cost about 10 KB of the filter's `.wasm` for this one lookup.
    let marker = RESET_REASON_MARKER.as_bytes();
    let at = rest
        .as_bytes()
        .windows(marker.len())
        .position(|w| w == marker);
    let reason = at
        .and_then(|i| rest.get(i + marker.len()..))
        .map(|r| r.split(',').next().unwrap_or(""))
        .unwrap_or("");
    cause_of_reset_reason(reason.trim())
}

fn cause_of_reset_reason(reason: &str) -> Cause {
    if CONNECT_FAILURE_REASONS
        .iter()
        .any(|r| same_words(r, reason))
    {
        Cause::ConnectFailure
    } else if OVERFLOW_REASONS.iter().any(|r| same_words(r, reason)) {
        Cause::Overflow
    } else {
        Cause::Reset
    }
}

/// Equal, reading `_` and ` ` as the same separator (details replace spaces with `_`).
fn same_words(a: &str, b: &str) -> bool {
    let sep = |c: u8| c == b' ' || c == b'_';
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .all(|(x, y)| x == y || (sep(x) && sep(y)))
}
