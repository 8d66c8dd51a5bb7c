//! Every rule on `retry` values, with the exact message a user reads.

use super::*;

#[test]
fn max_attempts_must_be_1_to_10() {
    for bad in [0, 11] {
        assert_eq!(
            retry_problems(&format!(r#"{{"max_attempts": {bad}}}"#)),
            [format!(
                "retry.max_attempts: {bad} is out of range, must be 1..=10 (at default)"
            )]
        );
    }
}

#[test]
fn delays_must_be_1ms_to_1h() {
    assert_eq!(
        retry_problems(r#"{"base_delay": "0ms", "max_delay": "2h"}"#),
        [
            r#"retry.base_delay: "0ms" is out of range, must be 1ms..=1h (at default)"#,
            r#"retry.max_delay: "2h" is out of range, must be 1ms..=1h (at default)"#,
        ]
    );
}

#[test]
fn max_delay_must_be_at_least_base_delay() {
    assert_eq!(
        retry_problems(r#"{"base_delay": "2s", "max_delay": "1500ms"}"#),
        [
            r#"retry.max_delay: "1500ms" is shorter than retry.base_delay "2s", must be at least that (at default)"#
        ]
    );
    assert_eq!(
        retry(r#"{"base_delay": "2s", "max_delay": "2s"}"#)
            .backoff
            .max_delay
            .as_secs(),
        2,
        "equal is fine"
    );
}

#[test]
fn exponential_base_must_be_1_to_10() {
    for bad in ["0.5", "11"] {
        assert_eq!(
            retry_problems(&format!(r#"{{"exponential_base": {bad}}}"#)),
            [format!(
                "retry.exponential_base: {bad} is out of range, must be 1..=10 (at default)"
            )]
        );
    }
    assert_eq!(
        retry(r#"{"exponential_base": 1}"#).backoff.exponential_base,
        1.0,
        "constant delay"
    );
}

#[test]
fn jitter_must_be_a_boolean_or_a_strategy_name() {
    assert_eq!(
        retry_problems(r#"{"jitter": "random"}"#),
        [
            "retry.jitter: \"random\" is not a jitter, must be true, false, \"none\", \
          \"proportional\", \"full\", \"equal\" or \"decorrelated\" (at default)"
        ]
    );
}

#[test]
fn retry_on_refuses_every_4xx_but_408_409_and_429() {
    assert_eq!(
        retry_problems(r#"{"retry_on": [404, "400", 429, 200, 600]}"#),
        ["[0]: 404", "[1]: \"400\"", "[3]: 200", "[4]: 600"].map(|item| format!(
            "retry.retry_on{item} is never retried, a retry_on code must be 408, 409, 429 or \
             500..=599 (at default)"
        ))
    );
}

#[test]
fn retry_on_names_must_be_known_classes() {
    assert_eq!(
        retry_problems(r#"{"retry_on": ["connect_failure"]}"#),
        [
            "retry.retry_on[0]: \"connect_failure\" is not an outcome, must be \"5xx\", \
             \"gateway-error\", \"reset\", \"connect-failure\", \"timeout\", \
             \"no-healthy-upstream\", \"overflow\", a status code or a gRPC status \
             (\"unavailable\", \"grpc-14\", ...) (at default)"
        ]
    );
}

#[test]
fn retry_on_lists_no_grpc_status_because_grpc_is_never_retried() {
    let problems = retry_problems(r#"{"retry_on": ["unavailable", "grpc-8", "5xx"]}"#);
    let rule = "is a gRPC status, which retry_on may not list: the filter never retries a gRPC \
                request (its relayed reply would lose its trailers), so it would never apply \
                (at default)";
    assert_eq!(
        problems,
        [
            format!("retry.retry_on[0]: \"unavailable\" {rule}"),
            format!("retry.retry_on[1]: \"grpc-8\" {rule}"),
        ]
    );
}

#[test]
fn methods_must_be_http_tokens() {
    assert_eq!(
        retry_problems(r#"{"methods": ["GET", "", "PO ST"]}"#),
        [
            "retry.methods[1]: \"\" is not an HTTP method, must be a token such as \"GET\" (at default)",
            "retry.methods[2]: \"PO ST\" is not an HTTP method, must be a token such as \"GET\" (at default)",
        ]
    );
}

#[test]
fn idempotency_header_must_be_a_header_name() {
    assert_eq!(
        retry_problems(r#"{"idempotency_header": "idempotency key"}"#),
        [
            "retry.idempotency_header: \"idempotency key\" is not a header name, must be letters, \
          digits and !#$%&'*+-.^_`|~ (at default)"
        ]
    );
}

/// The rule `retry.idempotency_header: <value>` breaks, as rendered.
fn header_problem(value: &str, why: &str) -> String {
    format!("retry.idempotency_header: \"{value}\" {why} (at default)")
}

/// The problems of `idempotency_header: name`.
fn header_problems(name: &str) -> Vec<String> {
    retry_problems(&format!(r#"{{"idempotency_header": "{name}"}}"#))
}

#[test]
fn idempotency_header_may_not_be_a_header_envoy_adds_to_every_request() {
    let every = "is added by Envoy to every request, so every request would be retried";
    for name in [
        "x-request-id",
        "X-Request-ID",
        "x-forwarded-for",
        "X-Forwarded-Proto",
        "x-forwarded-client-cert",
    ] {
        assert_eq!(
            header_problems(name),
            [header_problem(name, every)],
            "checked on the lower-cased name, as it is looked up"
        );
    }
    for name in [
        "x-envoy-expected-rq-timeout-ms",
        "X-Envoy-Attempt-Count",
        "x-envoy-internal",
    ] {
        assert_eq!(
            header_problems(name),
            [header_problem(
                name,
                "is an x-envoy- header, set or removed by Envoy"
            )]
        );
    }
    for name in [
        "traceparent",
        "tracestate",
        "b3",
        "x-b3-traceid",
        "X-B3-Sampled",
    ] {
        assert_eq!(
            header_problems(name),
            [header_problem(
                name,
                "is a tracing header, on every traced request"
            )]
        );
    }
}

#[test]
fn idempotency_header_may_not_be_the_filters_own_nor_a_hop_by_hop_header() {
    assert_eq!(
        header_problems("x-breakwater-attempts"),
        [header_problem(
            "x-breakwater-attempts",
            "is Breakwater's own, left out of retries"
        )]
    );
    for name in [
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "te",
        "trailer",
        "Upgrade",
    ] {
        assert_eq!(
            header_problems(name),
            [header_problem(
                name,
                "is a hop-by-hop header, removed by Envoy"
            )]
        );
    }
    assert_eq!(
        header_problems("Host"),
        [header_problem("Host", "is on every request")]
    );
    assert_eq!(
        header_problems("content-length"),
        [header_problem(
            "content-length",
            "is on every request with a body"
        )]
    );
}

#[test]
fn idempotency_header_may_not_be_a_pseudo_header() {
    for name in [":authority", ":path", ":method"] {
        assert_eq!(
            header_problems(name),
            [header_problem(name, "is a pseudo-header, on every request")]
        );
    }
}

#[test]
fn idempotency_header_accepts_what_only_clients_send() {
    for (written, kept) in [
        ("Idempotency-Key", "idempotency-key"),
        ("x-request-key", "x-request-key"),
        ("x-idempotency-token", "x-idempotency-token"),
        ("x-envoyish", "x-envoyish"),
        ("tea", "tea"),
    ] {
        let r = retry(&format!(r#"{{"idempotency_header": "{written}"}}"#));
        assert_eq!(r.idempotency_header.as_deref(), Some(kept), "{written}");
    }
}

#[test]
fn per_try_timeout_and_deadline_must_be_1ms_to_1h() {
    assert_eq!(
        retry_problems(r#"{"per_try_timeout": 0, "deadline": 3601}"#),
        [
            "retry.per_try_timeout: 0 is out of range, must be 1ms..=1h (at default)",
            "retry.deadline: 3601 is out of range, must be 1ms..=1h (at default)",
        ]
    );
}

#[test]
fn deadline_must_leave_room_for_one_attempt_when_retries_are_on() {
    assert_eq!(
        retry_problems(r#"{"per_try_timeout": "10s", "deadline": "5s"}"#),
        [
            r#"retry.deadline: "5s" is shorter than retry.per_try_timeout "10s", so no retry could finish in time; must be at least that (at default)"#
        ]
    );
    let off = retry(r#"{"max_attempts": 1, "per_try_timeout": "10s", "deadline": "5s"}"#);
    assert_eq!(
        off.deadline.as_secs(),
        5,
        "with retries off the deadline never matters"
    );
}

#[test]
fn respect_retry_after_must_be_a_boolean() {
    assert_eq!(
        retry_problems(r#"{"respect_retry_after": 1}"#),
        ["retry.respect_retry_after: 1 is not true or false (at default)"]
    );
}

#[test]
fn budget_ratio_must_be_0_to_10() {
    assert_eq!(
        retry_problems(r#"{"budget": {"ratio": -0.1}}"#),
        ["retry.budget.ratio: -0.1 is out of range, must be 0..=10 (at default)"]
    );
    assert_eq!(
        retry_problems(r#"{"budget": {"ratio": 10.5}}"#),
        ["retry.budget.ratio: 10.5 is out of range, must be 0..=10 (at default)"]
    );
}

#[test]
fn budget_min_per_second_must_be_0_to_a_million() {
    assert_eq!(
        retry_problems(r#"{"budget": {"min_per_second": -1}}"#),
        ["retry.budget.min_per_second: -1 is out of range, must be 0..=1000000 (at default)"]
    );
}

#[test]
fn budget_window_must_be_1s_to_1h() {
    assert_eq!(
        retry_problems(r#"{"budget": {"window": "100ms"}}"#),
        [r#"retry.budget.window: "100ms" is out of range, must be 1s..=1h (at default)"#]
    );
}

#[test]
fn max_request_body_must_be_0_to_16_mib() {
    assert_eq!(
        retry_problems(r#"{"max_request_body": -1}"#),
        ["retry.max_request_body: -1 is out of range, must be 0..=16777216 (at default)"]
    );
    assert_eq!(
        retry_problems(r#"{"max_request_body": 16777217}"#),
        ["retry.max_request_body: 16777217 is out of range, must be 0..=16777216 (at default)"]
    );
}
