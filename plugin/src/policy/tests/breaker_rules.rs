//! Every rule on `circuit_breaker` values, with the exact message a user reads.

use super::*;

#[test]
fn failure_threshold_must_be_0_to_10000() {
    assert_eq!(
        breaker_problems(r#"{"failure_threshold": -1}"#),
        ["circuit_breaker.failure_threshold: -1 is out of range, must be 0..=10000 (at default)"]
    );
    assert_eq!(
        breaker_problems(r#"{"failure_threshold": 10001}"#),
        ["circuit_breaker.failure_threshold: 10001 is out of range, must be 0..=10000 (at default)"]
    );
}

#[test]
fn failure_rate_threshold_must_be_above_0_and_at_most_1() {
    for bad in ["0", "1.5", "-0.5"] {
        let fragment = format!(r#"{{"failure_rate": {{"threshold": {bad}}}}}"#);
        assert_eq!(
            breaker_problems(&fragment),
            [format!(
                "circuit_breaker.failure_rate.threshold: {bad} is out of range, must be greater \
                 than 0 and at most 1 (at default)"
            )],
            "{bad}"
        );
    }
    assert_eq!(
        breaker(r#"{"failure_rate": {"threshold": 1}}"#)
            .failure_rate
            .map(|r| r.threshold),
        Some(1.0),
        "1 is allowed"
    );
}

#[test]
fn failure_rate_minimum_requests_must_be_at_least_1() {
    assert_eq!(
        breaker_problems(r#"{"failure_rate": {"minimum_requests": 0}}"#),
        ["circuit_breaker.failure_rate.minimum_requests: 0 is out of range, must be 1..=1000000 (at default)"]
    );
}

#[test]
fn failure_rate_window_must_be_1s_to_1h() {
    assert_eq!(
        breaker_problems(r#"{"failure_rate": {"window": "500ms"}}"#),
        [
            r#"circuit_breaker.failure_rate.window: "500ms" is out of range, must be 1s..=1h (at default)"#
        ]
    );
    assert_eq!(
        breaker_problems(r#"{"failure_rate": {"window": "61m"}}"#),
        [
            r#"circuit_breaker.failure_rate.window: "61m" is out of range, must be 1s..=1h (at default)"#
        ]
    );
}

#[test]
fn slow_call_duration_must_be_1ms_to_1h() {
    assert_eq!(
        breaker_problems(r#"{"slow_call": {"duration": 0}}"#),
        ["circuit_breaker.slow_call.duration: 0 is out of range, must be 1ms..=1h (at default)"]
    );
}

#[test]
fn slow_call_rate_threshold_must_be_above_0_and_at_most_1() {
    assert_eq!(
        breaker_problems(r#"{"slow_call": {"rate_threshold": 0}}"#),
        [
            "circuit_breaker.slow_call.rate_threshold: 0 is out of range, must be greater than 0 \
          and at most 1 (at default)"
        ]
    );
}

#[test]
fn timeout_must_be_1ms_to_a_day() {
    assert_eq!(
        breaker_problems(r#"{"timeout": "0s"}"#),
        [r#"circuit_breaker.timeout: "0s" is out of range, must be 1ms..=24h (at default)"#]
    );
    assert_eq!(
        breaker_problems(r#"{"timeout": "25h", "max_timeout": "25h"}"#),
        [
            r#"circuit_breaker.timeout: "25h" is out of range, must be 1ms..=24h (at default)"#,
            r#"circuit_breaker.max_timeout: "25h" is out of range, must be 1ms..=24h (at default)"#,
        ]
    );
}

#[test]
fn max_timeout_written_with_timeout_must_be_at_least_the_timeout() {
    assert_eq!(
        breaker_problems(r#"{"timeout": "60s", "max_timeout": "30s"}"#),
        [
            r#"circuit_breaker.max_timeout: "30s" is shorter than circuit_breaker.timeout "1m", must be at least that (at default)"#
        ]
    );
    let problems = problems(
        r#"{"clusters": {"payments": {"circuit_breaker": {"timeout": "2m", "max_timeout": 90}}}}"#,
    );
    assert_eq!(
        problems,
        [
            r#"circuit_breaker.max_timeout: 90 is shorter than circuit_breaker.timeout "2m", must be at least that (at clusters.payments)"#
        ],
        "reported in the scope that wrote both"
    );
}

#[test]
fn half_open_attempts_must_be_1_to_1000() {
    assert_eq!(
        problems(r#"{"clusters": {"payments": {"circuit_breaker": {"half_open_attempts": 0}}}}"#),
        ["circuit_breaker.half_open_attempts: 0 is out of range, must be 1..=1000 (at clusters.payments)"],
        "the example of POLICY.md, word for word"
    );
    assert_eq!(
        breaker_problems(r#"{"half_open_attempts": 1001}"#),
        ["circuit_breaker.half_open_attempts: 1001 is out of range, must be 1..=1000 (at default)"]
    );
}

#[test]
fn probe_timeout_must_be_1ms_to_1h() {
    assert_eq!(
        breaker_problems(r#"{"probe_timeout": "2h"}"#),
        [r#"circuit_breaker.probe_timeout: "2h" is out of range, must be 1ms..=1h (at default)"#]
    );
}

#[test]
fn failure_on_codes_must_be_400_to_599() {
    assert_eq!(
        breaker_problems(r#"{"failure_on": ["5xx", 302, "600"]}"#),
        [
            "circuit_breaker.failure_on[1]: 302 is not a failure status, a failure_on code must be \
             400..=599 (at default)",
            "circuit_breaker.failure_on[2]: \"600\" is not a failure status, a failure_on code must \
             be 400..=599 (at default)",
        ]
    );
}

#[test]
fn failure_on_names_must_be_known_classes() {
    assert_eq!(
        breaker_problems(r#"{"failure_on": ["teapot", "4xx", ""]}"#),
        [0, 1, 2].map(|i| {
            let value = ["\"teapot\"", "\"4xx\"", "\"\""][i];
            format!(
                "circuit_breaker.failure_on[{i}]: {value} is not an outcome, must be \"5xx\", \
                 \"gateway-error\", \"reset\", \"connect-failure\", \"timeout\", \
                 \"no-healthy-upstream\", \"overflow\", a status code or a gRPC status (\"unavailable\", \"grpc-14\", ...) (at default)"
            )
        })
    );
}

#[test]
fn fallback_status_must_be_200_to_599() {
    for bad in [199, 600] {
        assert_eq!(
            breaker_problems(&format!(r#"{{"fallback": {{"status": {bad}}}}}"#)),
            [format!("circuit_breaker.fallback.status: {bad} is out of range, must be 200..=599 (at default)")]
        );
    }
}

#[test]
fn a_fallback_status_without_a_body_cannot_have_one() {
    for status in [204, 304] {
        let problems = breaker_problems(&format!(
            r#"{{"fallback": {{"status": {status}, "body": "closed"}}}}"#
        ));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with(&format!(
                "circuit_breaker.fallback.status: {status} is a status that has no body"
            )),
            "{problems:?}"
        );
        let empty = format!(
            r#"{{"default": {{"circuit_breaker": {{"fallback": {{"status": {status}, "body": ""}}}}}}}}"#
        );
        assert!(crate::policy::Policy::parse(empty.as_bytes()).is_ok());
    }
}

#[test]
fn fallback_cannot_be_null() {
    assert_eq!(
        breaker_problems(r#"{"fallback": null}"#),
        ["circuit_breaker.fallback: null is not an object (at default)"],
        "an open breaker must answer something"
    );
}

#[test]
fn fallback_header_names_must_be_tokens() {
    assert_eq!(
        breaker_problems(r#"{"fallback": {"headers": {"bad name": "x"}}}"#),
        ["circuit_breaker.fallback.headers.bad name: \"bad name\" is not a header name, must be \
          letters, digits and !#$%&'*+-.^_`|~ (at default)"]
    );
}

#[test]
fn fallback_header_names_are_case_insensitive_so_one_name_twice_is_refused() {
    assert_eq!(
        breaker_problems(r#"{"fallback": {"headers": {"X-A": "1", "x-a": "2"}}}"#),
        [
            "circuit_breaker.fallback.headers.x-a: \"2\" is a second value for this header (names \
          are case-insensitive) (at default)"
        ]
    );
}

#[test]
fn fallback_headers_the_filter_or_envoy_set_are_refused() {
    let fragment = r#"{"fallback": {"headers": {"Retry-After": "1", "x-breakwater-breaker": "x", "content-length": "3", "transfer-encoding": "chunked"}}}"#;
    assert_eq!(
        breaker_problems(fragment),
        [
            "circuit_breaker.fallback.headers.Retry-After: \"1\" is under a header that the filter \
             sets on every fallback reply (at default)",
            "circuit_breaker.fallback.headers.x-breakwater-breaker: \"x\" is under a header that \
             the filter sets on every fallback reply (at default)",
            "circuit_breaker.fallback.headers.content-length: \"3\" is under a header that Envoy \
             sets from the body (at default)",
            "circuit_breaker.fallback.headers.transfer-encoding: \"chunked\" is under a header \
             that Envoy sets from the body (at default)",
        ]
    );
}

#[test]
fn fallback_header_values_cannot_hold_line_breaks_or_padding() {
    for bad in [r#""a\r\nx-injected: 1""#, r#"" padded""#, r#""nul\u0000""#] {
        let fragment = format!(r#"{{"fallback": {{"headers": {{"x-a": {bad}}}}}}}"#);
        assert_eq!(
            breaker_problems(&fragment),
            [format!(
                "circuit_breaker.fallback.headers.x-a: {bad} is not a header value, must have no \
                 control characters and no spaces at either end (at default)"
            )],
            "{bad}"
        );
    }
    let tab_and_utf8 = breaker(r#"{"fallback": {"headers": {"x-a": "a\tb é"}}}"#);
    assert_eq!(
        tab_and_utf8.fallback.headers,
        [("x-a".to_owned(), "a\tb é".to_owned())]
    );
}

#[test]
fn fallback_body_must_be_at_most_16_kib() {
    let body = "x".repeat(16 * 1024 + 1);
    let problems = breaker_problems(&format!(r#"{{"fallback": {{"body": "{body}"}}}}"#));
    let shown = format!("\"{}…", "x".repeat(58));
    assert_eq!(
        problems,
        [format!("circuit_breaker.fallback.body: {shown} is 16385 bytes long, must be at most 16384 (at default)")],
        "the value is cut in the message"
    );
    let at_limit = "x".repeat(16 * 1024);
    let b = breaker(&format!(r#"{{"fallback": {{"body": "{at_limit}"}}}}"#));
    assert_eq!(
        b.fallback.body.len(),
        16 * 1024,
        "exactly 16 KiB is allowed"
    );
}

#[test]
fn mode_must_be_a_known_mode() {
    assert_eq!(
        breaker_problems(r#"{"mode": "forced-open"}"#),
        ["circuit_breaker.mode: \"forced-open\" is not a mode, must be \"enforce\", \"shadow\", \
          \"forced_open\" or \"disabled\" (at default)"]
    );
}

#[test]
fn count_retries_must_be_a_boolean() {
    assert_eq!(
        breaker_problems(r#"{"count_retries": "yes"}"#),
        ["circuit_breaker.count_retries: \"yes\" is not true or false (at default)"]
    );
}
