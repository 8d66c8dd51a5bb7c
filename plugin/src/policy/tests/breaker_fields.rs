//! Every `circuit_breaker` field of `POLICY.md`: what it parses to and what it defaults to.

use super::*;
use std::time::Duration;
use OutcomeClass::*;

#[test]
fn the_breaker_is_on_by_default_for_every_cluster() {
    let policy = Policy::default();
    assert!(
        policy.breaker_for("payments").is_some(),
        "on without any config"
    );
    assert!(
        policy.lookup("payments", "checkout").breaker.is_some(),
        "and for requests"
    );
}

#[test]
fn failure_threshold_defaults_to_five() {
    assert_eq!(default_breaker().failure_threshold, 5);
}

#[test]
fn failure_threshold_is_read_and_zero_turns_the_trigger_off() {
    assert_eq!(breaker(r#"{"failure_threshold": 8}"#).failure_threshold, 8);
    let off = breaker(r#"{"failure_threshold": 0, "failure_rate": {}}"#);
    assert_eq!(off.failure_threshold, 0, "0 is legal: the trigger is off");
}

#[test]
fn failure_rate_is_off_by_default() {
    assert_eq!(default_breaker().failure_rate, None);
}

#[test]
fn failure_rate_is_read_with_its_window() {
    let b = breaker(
        r#"{"failure_rate": {"threshold": 0.25, "minimum_requests": 50, "window": "30s"}}"#,
    );
    assert_eq!(b.failure_rate, Some(FailureRate { threshold: 0.25 }));
    assert_eq!(
        b.window,
        RateWindow {
            window: Duration::from_secs(30),
            minimum_requests: 50
        },
        "the rate triggers are measured over failure_rate's window"
    );
}

#[test]
fn failure_rate_fields_left_out_take_the_values_of_the_policy_example() {
    let b = breaker(r#"{"failure_rate": {}}"#);
    assert_eq!(
        b.failure_rate,
        Some(FailureRate { threshold: 0.5 }),
        "threshold 0.5"
    );
    assert_eq!(
        b.window,
        RateWindow {
            window: Duration::from_secs(10),
            minimum_requests: 20
        },
        "10s window, 20 requests"
    );
}

#[test]
fn slow_call_is_off_by_default() {
    assert_eq!(default_breaker().slow_call, None);
}

#[test]
fn slow_call_is_read() {
    let b = breaker(r#"{"slow_call": {"duration": "750ms", "rate_threshold": 0.6}}"#);
    assert_eq!(
        b.slow_call,
        Some(SlowCall {
            duration: Duration::from_millis(750),
            rate_threshold: 0.6
        })
    );
}

#[test]
fn slow_call_fields_left_out_take_the_values_of_the_policy_example() {
    let b = breaker(r#"{"slow_call": {}}"#);
    assert_eq!(
        b.slow_call,
        Some(SlowCall {
            duration: Duration::from_secs(2),
            rate_threshold: 0.8
        })
    );
}

#[test]
fn slow_call_without_failure_rate_is_measured_over_the_default_window() {
    let b = breaker(r#"{"slow_call": {"duration": "1s"}}"#);
    assert_eq!(
        b.window,
        RateWindow {
            window: Duration::from_secs(10),
            minimum_requests: 20
        },
        "slow_call alone still needs a window: the defaults of failure_rate's"
    );
}

#[test]
fn timeout_defaults_to_sixty_seconds() {
    assert_eq!(default_breaker().timeout, Duration::from_secs(60));
}

#[test]
fn timeout_is_read() {
    assert_eq!(
        breaker(r#"{"timeout": "120s"}"#).timeout,
        Duration::from_secs(120)
    );
    assert_eq!(
        breaker(r#"{"timeout": 60.0}"#).timeout,
        Duration::from_secs(60),
        "a float of seconds"
    );
}

#[test]
fn max_timeout_defaults_to_the_timeout() {
    assert_eq!(default_breaker().max_timeout, Duration::from_secs(60));
    let b = breaker(r#"{"timeout": "90s"}"#);
    assert_eq!(
        b.max_timeout,
        Duration::from_secs(90),
        "= timeout, whatever the timeout is"
    );
}

#[test]
fn max_timeout_is_read() {
    let b = breaker(r#"{"timeout": "10s", "max_timeout": "5m"}"#);
    assert_eq!(b.max_timeout, Duration::from_secs(300));
}

#[test]
fn half_open_attempts_defaults_to_one() {
    assert_eq!(default_breaker().half_open_attempts, 1);
}

#[test]
fn half_open_attempts_is_read() {
    assert_eq!(
        breaker(r#"{"half_open_attempts": 4}"#).half_open_attempts,
        4
    );
}

#[test]
fn probe_timeout_defaults_to_thirty_seconds() {
    assert_eq!(default_breaker().probe_timeout, Duration::from_secs(30));
}

#[test]
fn probe_timeout_is_read() {
    assert_eq!(
        breaker(r#"{"probe_timeout": "5s"}"#).probe_timeout,
        Duration::from_secs(5)
    );
}

#[test]
fn failure_on_defaults_to_5xx_reset_connect_failure_timeout_no_healthy_upstream_and_grpc_server_failures(
) {
    assert_eq!(
        default_breaker().failure_on,
        matcher(
            &[
                Status5xx,
                Reset,
                ConnectFailure,
                Timeout,
                NoHealthyUpstream,
                Grpc(2),
                Grpc(4),
                Grpc(13),
                Grpc(14),
                Grpc(15),
            ],
            &[]
        ),
        "overflow is not a failure by default: Envoy protecting itself says nothing of the upstream"
    );
}

#[test]
fn failure_on_reads_grpc_statuses_by_name_and_number() {
    let b = breaker(r#"{"failure_on": ["unavailable", "grpc-8", "resource-exhausted", 503]}"#);
    assert_eq!(
        b.failure_on,
        matcher(&[Grpc(14), Grpc(8)], &[503]),
        "a name and a number for one code count once"
    );
}

#[test]
fn failure_on_refuses_grpc_ok_and_codes_past_16() {
    for bad in ["ok", "grpc-0", "grpc-17", "grpc-014", "Unavailable"] {
        let policy = format!(r#"{{"failure_on": ["{bad}"]}}"#);
        let problems = breaker_problems(&policy);
        assert_eq!(problems.len(), 1, "{bad}: {problems:?}");
        assert!(
            problems[0].contains("is not an outcome"),
            "{bad}: {problems:?}"
        );
    }
}

#[test]
fn fallback_grpc_status_is_1_to_16() {
    assert_eq!(default_breaker().fallback.grpc_status, 14, "UNAVAILABLE");
    assert_eq!(
        breaker(r#"{"fallback": {"grpc_status": 8}}"#)
            .fallback
            .grpc_status,
        8
    );
    for bad in ["0", "17", "-1", "14.0", "\"14\""] {
        let problems = breaker_problems(&format!(r#"{{"fallback": {{"grpc_status": {bad}}}}}"#));
        assert_eq!(problems.len(), 1, "{bad}: {problems:?}");
        assert!(
            problems[0].starts_with("circuit_breaker.fallback.grpc_status: "),
            "{problems:?}"
        );
    }
}

#[test]
fn fallback_headers_may_not_set_grpc_headers() {
    let problems =
        breaker_problems(r#"{"fallback": {"headers": {"grpc-retry-pushback-ms": "5"}}}"#);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains("is under a gRPC header"),
        "{problems:?}"
    );
}

#[test]
fn failure_on_reads_every_class_and_status_codes() {
    let b = breaker(
        r#"{"failure_on": ["5xx", "gateway-error", "reset", "connect-failure", "timeout",
            "no-healthy-upstream", "overflow", 429, "404"]}"#,
    );
    assert_eq!(
        b.failure_on,
        matcher(
            &[
                Status5xx,
                GatewayError,
                Reset,
                ConnectFailure,
                Timeout,
                NoHealthyUpstream,
                Overflow
            ],
            &[404, 429]
        ),
        "codes as numbers or numeric strings, sorted"
    );
}

#[test]
fn failure_on_drops_duplicates() {
    let b = breaker(r#"{"failure_on": ["reset", 503, "reset", "503", 503]}"#);
    assert_eq!(
        b.failure_on,
        matcher(&[Reset], &[503]),
        "duplicates are harmless"
    );
}

#[test]
fn failure_on_may_be_empty() {
    assert_eq!(
        breaker(r#"{"failure_on": []}"#).failure_on,
        matcher(&[], &[])
    );
}

#[test]
fn count_retries_defaults_to_false_the_breaker_outside_retry() {
    assert!(!default_breaker().count_retries);
}

#[test]
fn count_retries_is_read() {
    assert!(breaker(r#"{"count_retries": true}"#).count_retries);
}

#[test]
fn fallback_defaults_to_503_with_a_json_body() {
    assert_eq!(
        default_breaker().fallback,
        Fallback {
            status: 503,
            grpc_status: 14,
            headers: vec![("content-type".into(), "application/json".into())],
            body: r#"{"source":"fallback"}"#.into(),
        }
    );
}

#[test]
fn fallback_is_read_with_lower_cased_header_names_in_the_order_written() {
    let b = breaker(
        r#"{"fallback": {"status": 429, "headers": {"X-Zone": "b", "Content-Type": "text/plain", "a-first": "1"}, "body": "busy"}}"#,
    );
    assert_eq!(
        b.fallback,
        Fallback {
            status: 429,
            grpc_status: 14,
            headers: vec![
                ("x-zone".into(), "b".into()),
                ("content-type".into(), "text/plain".into()),
                ("a-first".into(), "1".into()),
            ],
            body: "busy".into(),
        }
    );
}

#[test]
fn fallback_fields_left_out_keep_their_defaults() {
    let b = breaker(r#"{"fallback": {"status": 500}}"#);
    assert_eq!(b.fallback.status, 500);
    assert_eq!(
        b.fallback.body, r#"{"source":"fallback"}"#,
        "the default body stays"
    );
    assert_eq!(
        b.fallback.headers.len(),
        1,
        "the default content-type stays"
    );
}

#[test]
fn fallback_headers_may_be_emptied() {
    assert_eq!(
        breaker(r#"{"fallback": {"headers": {}}}"#).fallback.headers,
        vec![]
    );
}

#[test]
fn mode_defaults_to_enforce() {
    assert_eq!(default_breaker().mode, BreakerMode::Enforce);
}

#[test]
fn mode_reads_every_mode() {
    for (text, mode) in [
        ("enforce", BreakerMode::Enforce),
        ("shadow", BreakerMode::Shadow),
        ("forced_open", BreakerMode::ForcedOpen),
        ("disabled", BreakerMode::Disabled),
    ] {
        assert_eq!(
            breaker(&format!(r#"{{"mode": "{text}"}}"#)).mode,
            mode,
            "{text}"
        );
    }
}

#[test]
fn the_policy_example_of_policy_md_parses_as_written() {
    let parsed = parse(include_str!("policy_md_example.json"));
    let payments = parsed.policy.breaker_for("payments").expect("on");
    assert_eq!(payments.failure_threshold, 3, "the cluster's own threshold");
    assert_eq!(
        payments.timeout,
        Duration::from_secs(120),
        "the cluster's own timeout"
    );
    assert_eq!(
        payments.max_timeout,
        Duration::from_secs(120),
        "default's max_timeout (60s) cannot cap below the cluster's raised timeout"
    );
    let checkout = parsed.policy.lookup("payments", "checkout-create");
    assert_eq!(
        checkout.retry.as_ref().map(|r| r.max_attempts),
        Some(1),
        "the route's"
    );
    let partner = parsed.policy.lookup("partner-api", "other");
    assert_eq!(
        partner.retry.as_ref().map(|r| r.max_attempts),
        Some(1),
        "the cluster's"
    );
    let warnings: Vec<String> = parsed.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        [
            "circuit_breaker.max_timeout: \"1m\" is shorter than circuit_breaker.timeout \
             \"2m\" set in another scope, so the open time does not grow on a re-open \
             (at clusters.payments)",
        ],
        "the raised timeout outgrows the cap written in default, which is worth a warning"
    );
}
