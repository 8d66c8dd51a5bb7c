use super::*;
use crate::core::outcome::envoy::flags;
use crate::core::retry::fixtures::matcher;
use crate::policy::defaults;
use crate::policy::OutcomeClass::{self, Grpc};
use crate::policy::OutcomeMatcher;
use proptest::prelude::*;

const UNAVAILABLE: GrpcCode = 14;
const CONNECT_FAILURE_DETAILS: &str =
    "upstream_reset_before_response_started{remote_connection_failure|delayed_connect_error:_111}";

fn known(a: AtHeaders) -> Outcome {
    match a {
        AtHeaders::Known(o) => o,
        AtHeaders::Pending => panic!("expected the outcome at the headers, got Pending"),
    }
}

fn default_failure_on() -> OutcomeMatcher {
    matcher(&defaults::FAILURE_ON, &[])
}

// --- content-type ---

#[test]
fn grpc_requests_are_told_by_content_type_as_envoy_tells_them() {
    for grpc in [
        &b"application/grpc"[..],
        b"application/grpc+proto",
        b"application/grpc+json",
    ] {
        assert!(
            is_grpc_content_type(grpc),
            "{:?}",
            String::from_utf8_lossy(grpc)
        );
    }
    for other in [
        &b"application/grpc-web"[..],
        b"application/grpc-web+proto",
        b"application/grpc-web-text",
        b"application/grpcx",
        b"application/json",
        b"application/grp",
        b"application/grpc;charset=utf-8",
        b"Application/GRPC",
        b"",
    ] {
        assert!(
            !is_grpc_content_type(other),
            "{:?} is not gRPC to Envoy (gRPC-Web carries its status in the body)",
            String::from_utf8_lossy(other)
        );
    }
}

// --- names ---

#[test]
fn every_code_has_one_name_and_one_number_and_both_read_back() {
    for code in 1..=MAX_CODE {
        let name = name(code).expect("codes 1..=16 are named");
        assert_eq!(from_name(name), Some(code), "{name}");
        assert_eq!(from_name(&format!("grpc-{code}")), Some(code));
    }
    assert_eq!(from_name("unavailable"), Some(14));
    assert_eq!(from_name("deadline-exceeded"), Some(4));
    assert_eq!(from_name("resource-exhausted"), Some(8));
    assert_eq!(from_name("cancelled"), Some(1));
    assert_eq!(from_name("internal"), Some(13));
}

#[test]
fn ok_and_anything_but_a_canonical_code_are_not_names() {
    for text in [
        "ok",
        "grpc-0",
        "grpc-17",
        "grpc-014",
        "grpc-+4",
        "grpc-",
        "grpc-1.0",
        "grpc-99",
        "GRPC-14",
        "Unavailable",
        "UNAVAILABLE",
        "canceled",
        "14",
        "unavailable ",
    ] {
        assert_eq!(from_name(text), None, "{text:?}");
    }
    assert_eq!(name(OK), None, "OK is never an outcome to list");
    assert_eq!(name(17), None);
}

#[test]
fn grpc_names_never_collide_with_the_http_names() {
    let http = [
        "5xx",
        "gateway-error",
        "reset",
        "connect-failure",
        "timeout",
        "no-healthy-upstream",
        "overflow",
    ];
    for name in NAMES {
        assert!(!http.contains(&name), "{name}");
        assert!(
            !name.bytes().all(|b| b.is_ascii_digit()),
            "{name} reads as a status"
        );
    }
}

// --- grpc-status values ---

#[test]
fn grpc_status_values_read_as_a_client_library_reads_them() {
    assert_eq!(parse_status(b"0"), OK);
    assert_eq!(parse_status(b"14"), 14);
    assert_eq!(parse_status(b" 4 "), 4);
    assert_eq!(parse_status(b"16"), 16);
    for garbage in [
        &b""[..],
        b"17",
        b"99",
        b"-1",
        b"abc",
        b"1 4",
        b"014",
        b"\xff",
        b"+3",
    ] {
        assert_eq!(
            parse_status(garbage),
            UNKNOWN,
            "{:?}: unreadable is UNKNOWN, as tonic reports it",
            String::from_utf8_lossy(garbage)
        );
    }
}

proptest! {
    #[test]
    fn any_grpc_status_bytes_read_as_a_code_without_panicking(value in proptest::collection::vec(any::<u8>(), 0..8)) {
        let code = parse_status(&value);
        prop_assert!(code <= MAX_CODE);
        let text = String::from_utf8_lossy(&value);
        // ASCII whitespace only, as the reader trims (a vertical tab is not, for `trim_ascii`).
        let text = text.trim_matches(|c: char| c.is_ascii_whitespace());
        if let Ok(n) = text.parse::<u8>() {
            if n <= MAX_CODE && text.len() <= 2 && !text.starts_with('+') {
                prop_assert_eq!(code, n);
            }
        }
    }

    #[test]
    fn any_text_is_a_name_only_for_codes_1_to_16(text in "\\PC{0,24}") {
        if let Some(code) = from_name(&text) {
            prop_assert!((1..=MAX_CODE).contains(&code));
            let spelled = format!("grpc-{code}");
            prop_assert!(text == spelled || name(code) == Some(text.as_str()));
        }
    }

    /// Whatever the headers say, the outcome at the headers is known unless the reply is a 200
    /// without a status that goes on; and a gRPC status on it only ever comes with a 200.
    #[test]
    fn the_headers_decide_unless_a_200_streams_on(
        status in proptest::option::of(100u16..=999),
        grpc_status in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..4)),
        end in any::<bool>(),
        flags in any::<u64>(),
    ) {
        let at = at_headers(status, grpc_status.as_deref(), end, flags, "via_upstream");
        match at {
            AtHeaders::Pending => {
                prop_assert_eq!(status, Some(200));
                prop_assert!(grpc_status.is_none() && !end);
            }
            AtHeaders::Known(o) => {
                prop_assert_eq!(o.grpc.is_some(), status == Some(200));
            }
        }
    }

    /// gRPC names match gRPC replies only, and an HTTP outcome (no gRPC status) never matches a
    /// gRPC name.
    #[test]
    fn grpc_names_match_only_grpc_replies_with_that_status(
        code in 1u8..=16,
        listed in 1u8..=16,
        status in proptest::option::of(100u16..=599),
        cause in prop_oneof![
            Just(Cause::Upstream), Just(Cause::Local), Just(Cause::Reset),
            Just(Cause::ConnectFailure), Just(Cause::Timeout), Just(Cause::Overflow),
            Just(Cause::NoHealthyUpstream),
        ],
    ) {
        let m = matcher(&[Grpc(listed)], &[]);
        let http = Outcome::http(status, cause);
        prop_assert!(!m.matches(&http), "an HTTP outcome never matches a gRPC name");
        let reply = http.with_grpc(code);
        // Only the upstream's own reply: Envoy's or another filter's matches nothing.
        let expected = code == listed && cause == Cause::Upstream;
        prop_assert_eq!(m.matches(&reply), expected);
    }
}

// --- the outcome at the headers ---

#[test]
fn a_trailers_only_reply_is_known_at_the_headers() {
    let o = known(at_headers(Some(200), Some(b"14"), true, 0, "via_upstream"));
    assert_eq!(o, Outcome::http(Some(200), Cause::Upstream).with_grpc(14));
    assert!(!o.is_success(), "UNAVAILABLE is no success");
    assert!(
        default_failure_on().matches(&o),
        "unavailable counts by default"
    );
}

#[test]
fn a_200_without_a_status_waits_for_the_trailers() {
    assert_eq!(
        at_headers(Some(200), None, false, 0, "via_upstream"),
        AtHeaders::Pending
    );
}

#[test]
fn headers_that_end_the_stream_without_a_status_are_unknown() {
    let o = known(at_headers(Some(200), None, true, 0, "via_upstream"));
    assert_eq!(o.grpc, Some(UNKNOWN));
    assert!(default_failure_on().matches(&o));
}

#[test]
fn a_reply_that_is_not_a_200_is_judged_as_http() {
    let o = known(at_headers(Some(503), Some(b"14"), false, 0, "via_upstream"));
    assert_eq!(o, Outcome::http(Some(503), Cause::Upstream));
    assert!(default_failure_on().matches(&o), "by 5xx");
    let o = known(at_headers(Some(404), None, true, 0, "via_upstream"));
    assert_eq!(o.grpc, None);
    assert!(!default_failure_on().matches(&o));
}

#[test]
fn envoys_own_trailers_only_replies_are_the_failures_they_are_for_http() {
    // Envoy answers a gRPC request itself with HTTP 200 and a grpc-status mapped from the HTTP
    // status it would have sent; its details and flags are those of the HTTP reply.
    let cases = [
        (
            CONNECT_FAILURE_DETAILS,
            flags::UPSTREAM_CONNECTION_FAILURE,
            Cause::ConnectFailure,
        ),
        (
            "response_timeout",
            flags::UPSTREAM_REQUEST_TIMEOUT,
            Cause::Timeout,
        ),
        (
            "no_healthy_upstream",
            flags::NO_HEALTHY_UPSTREAM,
            Cause::NoHealthyUpstream,
        ),
        (
            "upstream_reset_before_response_started{overflow}",
            flags::UPSTREAM_OVERFLOW,
            Cause::Overflow,
        ),
        (
            "upstream_reset_before_response_started{connection_termination}",
            flags::UPSTREAM_CONNECTION_TERMINATION,
            Cause::Reset,
        ),
    ];
    for (details, flags, cause) in cases {
        let o = known(at_headers(Some(200), Some(b"14"), true, flags, details));
        assert_eq!(o.cause, cause, "{details}");
        let http = Outcome::http(Some(503), cause);
        for class in [
            OutcomeClass::ConnectFailure,
            OutcomeClass::Timeout,
            OutcomeClass::NoHealthyUpstream,
            OutcomeClass::Overflow,
            OutcomeClass::Reset,
        ] {
            let m = matcher(&[class], &[]);
            assert_eq!(m.matches(&o), m.matches(&http), "{details} under {class:?}");
        }
        assert!(
            !matcher(&[Grpc(UNAVAILABLE)], &[]).matches(&o),
            "{details}: a named cause is not `unavailable`, as a 503 of Envoy's is not `5xx`"
        );
        assert_eq!(
            default_failure_on().matches(&o),
            default_failure_on().matches(&http),
            "{details}: counted by default exactly when its HTTP twin is"
        );
    }
}

#[test]
fn envoys_unnamed_local_replies_match_nothing() {
    // A local rate limit or another filter's reply: Envoy's, with no cause of its own. The
    // upstream was never asked: no failure of it.
    let o = known(at_headers(
        Some(200),
        Some(b"14"),
        true,
        flags::RATE_LIMITED,
        "local_rate_limited",
    ));
    assert_eq!(o.cause, Cause::Local);
    assert!(!matcher(&[Grpc(UNAVAILABLE)], &[]).matches(&o));
    assert!(!o.is_success(), "Envoy's own reply is never a success");
}

// --- trailers and the end of the stream ---

#[test]
fn the_trailers_carry_the_status() {
    assert_eq!(at_trailers(Some(b"0")).grpc, Some(OK));
    assert!(at_trailers(Some(b"0")).is_success());
    let failed = at_trailers(Some(b"13"));
    assert_eq!(
        failed,
        Outcome::http(Some(200), Cause::Upstream).with_grpc(13)
    );
    assert!(default_failure_on().matches(&failed));
    assert_eq!(
        at_trailers(None).grpc,
        Some(UNKNOWN),
        "trailers without a status"
    );
    assert_eq!(at_trailers(Some(b"x")).grpc, Some(UNKNOWN));
}

#[test]
fn a_stream_that_ends_without_trailers_is_judged_by_how_it_ended() {
    assert_eq!(
        ended(flags::DOWNSTREAM_REMOTE_RESET, ""),
        None,
        "the client left: no outcome"
    );
    assert_eq!(ended(flags::DOWNSTREAM_CONNECTION_TERMINATION, ""), None);
    let reset = ended(
        flags::UPSTREAM_REMOTE_RESET,
        "upstream_reset_after_response_started{remote_reset}",
    )
    .expect("an upstream reset");
    assert_eq!(reset, Outcome::http(Some(200), Cause::Reset));
    assert!(default_failure_on().matches(&reset));
    assert_eq!(
        ended(flags::UPSTREAM_CONNECTION_TERMINATION, "").map(|o| o.cause),
        Some(Cause::Reset),
        "the flags alone name the reset"
    );
    assert_eq!(
        ended(flags::STREAM_IDLE_TIMEOUT, "stream_idle_timeout").map(|o| o.cause),
        Some(Cause::Timeout)
    );
    let clean = ended(0, "via_upstream").expect("a clean end");
    assert_eq!(clean.grpc, Some(UNKNOWN), "no status at all: UNKNOWN");
    assert_eq!(clean.cause, Cause::Upstream);
}

// --- the defaults ---

#[test]
fn by_default_the_server_failing_counts_and_the_client_or_load_shedding_does_not() {
    let m = default_failure_on();
    let reply = |code| Outcome::http(Some(200), Cause::Upstream).with_grpc(code);
    for counted in [
        "unknown",
        "deadline-exceeded",
        "internal",
        "unavailable",
        "data-loss",
    ] {
        let code = from_name(counted).expect("a name");
        assert!(m.matches(&reply(code)), "{counted} counts by default");
    }
    for not_counted in [
        "cancelled",
        "invalid-argument",
        "not-found",
        "already-exists",
        "permission-denied",
        "resource-exhausted",
        "failed-precondition",
        "aborted",
        "out-of-range",
        "unimplemented",
        "unauthenticated",
    ] {
        let code = from_name(not_counted).expect("a name");
        assert!(
            !m.matches(&reply(code)),
            "{not_counted} is not a failure by default"
        );
    }
    assert!(!m.matches(&reply(OK)), "OK never fails");
}
