//! Outcome classification on arbitrary statuses, response flags, code details, call headers and
//! bodies: never a panic, and the rules of `breakwater::core::outcome` hold: `via_upstream` is
//! the upstream's reply, Envoy's own replies are never successes, a call reply with
//! `x-envoy-upstream-service-time` is the upstream's, a call with no headers was reset, a parsed
//! `:status` is three digits, `failure_on` / `retry_on` matching follows POLICY.md "Outcomes",
//! and a stream Envoy ended past the filter is an outcome exactly when its details name an upstream failure
//! and its client did not leave. A gRPC request's response (`core::outcome::grpc`) waits for its
//! trailers only as a 200 without a status that goes on, is otherwise classified as the same
//! HTTP response would be with its gRPC status read into `0..=16`, and never panics.

#![no_main]

use arbitrary::{Arbitrary, Result, Unstructured};
use breakwater::core::outcome::envoy::flags::DOWNSTREAM_CONNECTION_TERMINATION;
use breakwater::core::outcome::envoy::{
    EARLY_UPSTREAM_RESET, LATE_UPSTREAM_RESET, RESET_BODY_PREFIX, TIMEOUT_BODIES, TIMEOUT_DETAILS,
    UPSTREAM_SERVICE_TIME, VIA_UPSTREAM,
};
use breakwater::core::outcome::{grpc, parse_status, Cause, Outcome};
use breakwater::policy::{OutcomeClass, OutcomeMatcher};
use libfuzzer_sys::fuzz_target;

/// Text that is often one of Envoy's own words, or built from them.
struct EnvoyText(String);

const REASONS: [&str; 8] = [
    "connection_failure",
    "remote_connection_failure|delayed_connect_error:_111",
    "local connection failure",
    "connection timeout",
    "overflow",
    "overload_manager_reset",
    "remote_reset",
    "",
];

impl<'a> Arbitrary<'a> for EnvoyText {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let text = match u.int_in_range(0..=7u8)? {
            0 => VIA_UPSTREAM.to_string(),
            1 => u.choose(&TIMEOUT_DETAILS)?.to_string(),
            2 => format!(
                "{}{{{}}}",
                u.choose(&[EARLY_UPSTREAM_RESET, LATE_UPSTREAM_RESET])?,
                u.choose(&REASONS)?
            ),
            3 => format!("{}{}", EARLY_UPSTREAM_RESET, u.arbitrary::<String>()?),
            4 => format!(
                "{} reset reason: {}{}",
                RESET_BODY_PREFIX,
                u.choose(&REASONS)?.replace('_', " "),
                u.choose(&["", ", transport failure reason: x", " "])?
            ),
            5 => u.choose(&TIMEOUT_BODIES)?.to_string(),
            _ => u.arbitrary()?,
        };
        Ok(EnvoyText(text))
    }
}

impl std::fmt::Debug for EnvoyText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

#[derive(Arbitrary, Debug)]
enum Class {
    Status5xx,
    GatewayError,
    Reset,
    ConnectFailure,
    Timeout,
    NoHealthyUpstream,
    Overflow,
    Grpc(u8),
}

#[derive(Arbitrary, Debug)]
struct Input {
    status: Option<u16>,
    flags: u64,
    details: EnvoyText,
    headers: Vec<(String, String)>,
    status_header: Option<String>,
    service_time: Option<bool>,
    body: EnvoyText,
    raw_body: Option<Vec<u8>>,
    classes: Vec<Class>,
    codes: Vec<u16>,
    /// A gRPC request's `grpc-status` (headers or trailers), and whether its headers end it.
    grpc_status: Option<Vec<u8>>,
    grpc_end_of_stream: bool,
}

fn class(c: &Class) -> OutcomeClass {
    match c {
        Class::Status5xx => OutcomeClass::Status5xx,
        Class::GatewayError => OutcomeClass::GatewayError,
        Class::Reset => OutcomeClass::Reset,
        Class::ConnectFailure => OutcomeClass::ConnectFailure,
        Class::Timeout => OutcomeClass::Timeout,
        Class::NoHealthyUpstream => OutcomeClass::NoHealthyUpstream,
        Class::Overflow => OutcomeClass::Overflow,
        Class::Grpc(code) => OutcomeClass::Grpc(code % 17),
    }
}

/// POLICY.md's matching rule ("Outcomes"), written out: classes `5xx` and `gateway-error`, listed
/// codes and gRPC names match the upstream's own replies by status; `reset`, `connect-failure`,
/// `timeout`, `no-healthy-upstream` and `overflow` match their cause only; Envoy's or another
/// filter's reply with no name of its own matches nothing.
fn expected_match(m: &OutcomeMatcher, o: &Outcome) -> bool {
    let reply = o.cause == Cause::Upstream;
    let status = o.status.filter(|_| reply);
    m.classes.iter().any(|c| match c {
        OutcomeClass::Status5xx => status.is_some_and(|s| (500..=599).contains(&s)),
        OutcomeClass::GatewayError => status.is_some_and(|s| (502..=504).contains(&s)),
        OutcomeClass::Reset => o.cause == Cause::Reset,
        OutcomeClass::ConnectFailure => o.cause == Cause::ConnectFailure,
        OutcomeClass::Timeout => o.cause == Cause::Timeout,
        OutcomeClass::NoHealthyUpstream => o.cause == Cause::NoHealthyUpstream,
        OutcomeClass::Overflow => o.cause == Cause::Overflow,
        OutcomeClass::Grpc(code) => reply && o.grpc == Some(*code),
    }) || status.is_some_and(|s| m.codes.contains(&s))
}

fn check_outcome(o: &Outcome, m: &OutcomeMatcher) {
    if o.is_success() {
        assert_eq!(
            o.cause,
            Cause::Upstream,
            "only the upstream's replies succeed: {o:?}"
        );
        assert!(
            o.status.is_some_and(|s| s < 400),
            "a success is below 400: {o:?}"
        );
        assert!(
            o.grpc.is_none_or(|c| c == grpc::OK),
            "a gRPC reply succeeds only with OK: {o:?}"
        );
    }
    assert_eq!(
        o.is_reply(),
        matches!(o.cause, Cause::Upstream | Cause::Local),
        "{o:?}"
    );
    assert_eq!(
        m.matches(o),
        expected_match(m, o),
        "matching {o:?} against {m:?}"
    );
}

fuzz_target!(|input: Input| {
    let mut codes = input.codes.clone();
    codes.sort_unstable();
    codes.dedup();
    let matcher = OutcomeMatcher {
        classes: input.classes.iter().map(class).collect(),
        codes,
    };

    // The client stream's response.
    let details = input.details.0.as_str();
    let o = Outcome::from_response(input.status, input.flags, details);
    assert_eq!(o.status, input.status, "the status is kept as given");
    if details == VIA_UPSTREAM {
        assert_eq!(
            o.cause,
            Cause::Upstream,
            "via_upstream is the upstream's reply"
        );
    }
    if TIMEOUT_DETAILS.contains(&details) {
        assert_eq!(o.cause, Cause::Timeout, "{details} is a timeout");
    }
    if details.starts_with(EARLY_UPSTREAM_RESET) || details.starts_with(LATE_UPSTREAM_RESET) {
        assert!(
            matches!(o.cause, Cause::Reset | Cause::ConnectFailure | Cause::Overflow),
            "an upstream reset is a reset, a failed connection or Envoy protecting itself: {o:?}"
        );
    }
    if details.is_empty() && input.flags == 0 {
        assert_eq!(
            o.cause,
            Cause::Upstream,
            "no evidence at all is the upstream's reply"
        );
    }
    check_outcome(&o, &matcher);

    // A stream Envoy ended past the filter while its response was held.
    let ended = Outcome::of_ended_stream(input.status, input.flags, details);
    if input.flags & DOWNSTREAM_CONNECTION_TERMINATION != 0 {
        assert_eq!(ended, None, "a client that left is no outcome");
    }
    if let Some(ended) = ended {
        assert_eq!(ended.status, input.status, "the status is kept as given");
        assert!(
            matches!(
                ended.cause,
                Cause::Reset | Cause::ConnectFailure | Cause::Timeout | Cause::Overflow
            ),
            "an ended stream's outcome is an upstream failure named by its details: {ended:?}"
        );
        assert!(!ended.is_success(), "an ended stream never succeeded");
        assert_eq!(
            ended.cause, o.cause,
            "it is classified as the same details on a response would be"
        );
        check_outcome(&ended, &matcher);
    } else if input.flags & DOWNSTREAM_CONNECTION_TERMINATION == 0 {
        assert!(
            !TIMEOUT_DETAILS.contains(&details)
                && !details.starts_with(EARLY_UPSTREAM_RESET)
                && !details.starts_with(LATE_UPSTREAM_RESET),
            "details that name an upstream failure make an outcome: {details:?}"
        );
    }

    // A gRPC request's response: at its headers, at its trailers, or at an end without them.
    let grpc_status = input.grpc_status.as_deref();
    match grpc::at_headers(
        input.status,
        grpc_status,
        input.grpc_end_of_stream,
        input.flags,
        details,
    ) {
        grpc::AtHeaders::Pending => assert!(
            input.status == Some(200) && grpc_status.is_none() && !input.grpc_end_of_stream,
            "only a 200 without a status that goes on waits for its trailers"
        ),
        grpc::AtHeaders::Known(at) => {
            assert_eq!(at.grpc.is_some(), input.status == Some(200), "{at:?}");
            assert!(at.grpc.is_none_or(|c| c <= grpc::MAX_CODE), "{at:?}");
            assert_eq!(
                (at.status, at.cause),
                (o.status, o.cause),
                "classified as the same response would be for HTTP"
            );
            check_outcome(&at, &matcher);
        }
    }
    let trailers = grpc::at_trailers(grpc_status);
    assert!(trailers.grpc.is_some_and(|c| c <= grpc::MAX_CODE));
    check_outcome(&trailers, &matcher);
    if let Some(ended) = grpc::ended(input.flags, details) {
        check_outcome(&ended, &matcher);
    }

    // A dispatched call's response.
    let mut headers = input.headers.clone();
    if let Some(status) = &input.status_header {
        headers.insert(0, (":status".to_string(), status.clone()));
    }
    if let Some(upper) = input.service_time {
        let name = if upper {
            UPSTREAM_SERVICE_TIME.to_ascii_uppercase()
        } else {
            UPSTREAM_SERVICE_TIME.to_string()
        };
        headers.push((name, "3".to_string()));
    }
    let body = input
        .raw_body
        .clone()
        .unwrap_or_else(|| input.body.0.clone().into_bytes());
    let call = Outcome::from_call(&headers, &body);
    if headers.is_empty() {
        assert_eq!(
            call,
            Outcome::http(None, Cause::Reset),
            "no headers: a reset"
        );
    } else {
        let first_status = headers
            .iter()
            .find(|(n, _)| n == ":status")
            .and_then(|(_, v)| parse_status(v));
        assert_eq!(
            call.status, first_status,
            "the status is the first :status header's"
        );
        let upstream = headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(UPSTREAM_SERVICE_TIME));
        assert_eq!(
            call.cause == Cause::Upstream,
            upstream,
            "a call reply is the upstream's exactly when it carries {UPSTREAM_SERVICE_TIME}: {call:?}"
        );
    }
    check_outcome(&call, &matcher);

    // `:status` values.
    for value in headers.iter().map(|(_, v)| v.as_str()).chain([details]) {
        if let Some(s) = parse_status(value) {
            assert!((100..=999).contains(&s), "{s} is not a status");
            assert_eq!(
                value.trim(),
                format!("{s}"),
                "a status is exactly three digits"
            );
        }
    }
});
