//! Every `retry` field of `POLICY.md`: what it parses to and what it defaults to.

use super::*;
use std::time::Duration;
use OutcomeClass::*;

#[test]
fn retries_are_on_by_default_for_every_request() {
    assert!(Policy::default()
        .lookup("payments", "checkout")
        .retry
        .is_some());
}

#[test]
fn max_attempts_defaults_to_three() {
    assert_eq!(default_retry().max_attempts, 3);
}

#[test]
fn max_attempts_is_read_and_one_turns_retries_off() {
    assert_eq!(retry(r#"{"max_attempts": 5}"#).max_attempts, 5);
    assert_eq!(
        retry(r#"{"max_attempts": 1}"#).max_attempts,
        1,
        "the first attempt only"
    );
}

#[test]
fn the_backoff_defaults_to_1s_60s_and_base_2() {
    let b = default_retry().backoff;
    assert_eq!(b.base_delay, Duration::from_secs(1), "base_delay");
    assert_eq!(b.max_delay, Duration::from_secs(60), "max_delay");
    assert_eq!(b.exponential_base, 2.0, "exponential_base");
}

#[test]
fn base_delay_max_delay_and_exponential_base_are_read() {
    let b = retry(r#"{"base_delay": "250ms", "max_delay": "2m", "exponential_base": 1.5}"#).backoff;
    assert_eq!(b.base_delay, Duration::from_millis(250));
    assert_eq!(b.max_delay, Duration::from_secs(120));
    assert_eq!(b.exponential_base, 1.5);
}

#[test]
fn exponential_base_may_be_written_as_an_integer() {
    assert_eq!(
        retry(r#"{"exponential_base": 3}"#).backoff.exponential_base,
        3.0
    );
}

#[test]
fn jitter_defaults_to_proportional_jitter() {
    assert_eq!(default_retry().backoff.jitter, Jitter::Proportional);
}

#[test]
fn jitter_reads_booleans_and_every_strategy_name() {
    for (text, jitter) in [
        ("true", Jitter::Proportional),
        ("\"proportional\"", Jitter::Proportional),
        ("false", Jitter::None),
        ("\"none\"", Jitter::None),
        ("\"full\"", Jitter::Full),
        ("\"equal\"", Jitter::Equal),
        ("\"decorrelated\"", Jitter::Decorrelated),
    ] {
        let read = retry(&format!(r#"{{"jitter": {text}}}"#)).backoff.jitter;
        assert_eq!(read, jitter, "jitter {text}");
    }
}

#[test]
fn retry_on_defaults_to_5xx_reset_and_connect_failure() {
    assert_eq!(
        default_retry().retry_on,
        matcher(&[Status5xx, Reset, ConnectFailure], &[])
    );
}

#[test]
fn retry_on_reads_classes_and_the_retryable_codes() {
    let r = retry(r#"{"retry_on": ["gateway-error", "timeout", 429, "408", 409, 503, 503]}"#);
    assert_eq!(
        r.retry_on,
        matcher(&[GatewayError, Timeout], &[408, 409, 429, 503]),
        "408, 409 and 429 only when listed; codes sorted and deduplicated"
    );
}

#[test]
fn methods_default_to_the_idempotent_methods_of_rfc_9110() {
    assert_eq!(
        default_retry().methods,
        ["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"]
    );
}

#[test]
fn methods_are_upper_cased_and_deduplicated_in_the_order_written() {
    let r = retry(r#"{"methods": ["get", "POST", "Get", "PATCH"]}"#);
    assert_eq!(r.methods, ["GET", "POST", "PATCH"]);
}

#[test]
fn methods_may_be_empty_leaving_only_requests_with_an_idempotency_key() {
    assert!(retry(r#"{"methods": []}"#).methods.is_empty());
}

#[test]
fn idempotency_header_defaults_to_idempotency_key() {
    assert_eq!(
        default_retry().idempotency_header.as_deref(),
        Some("idempotency-key")
    );
}

#[test]
fn idempotency_header_is_lower_cased_and_null_turns_the_rule_off() {
    let r = retry(r#"{"idempotency_header": "X-Request-Key"}"#);
    assert_eq!(r.idempotency_header.as_deref(), Some("x-request-key"));
    assert_eq!(
        retry(r#"{"idempotency_header": null}"#).idempotency_header,
        None
    );
}

#[test]
fn per_try_timeout_defaults_to_ten_seconds() {
    assert_eq!(default_retry().per_try_timeout, Duration::from_secs(10));
}

#[test]
fn per_try_timeout_is_read() {
    assert_eq!(
        retry(r#"{"per_try_timeout": 2.5}"#).per_try_timeout,
        Duration::from_millis(2500)
    );
}

#[test]
fn deadline_defaults_to_envoys_default_route_timeout() {
    assert_eq!(default_retry().deadline, Duration::from_secs(15));
}

#[test]
fn deadline_is_read() {
    assert_eq!(
        retry(r#"{"deadline": "1m"}"#).deadline,
        Duration::from_secs(60)
    );
}

#[test]
fn respect_retry_after_defaults_to_true() {
    assert!(default_retry().respect_retry_after);
}

#[test]
fn respect_retry_after_is_read() {
    assert!(!retry(r#"{"respect_retry_after": false}"#).respect_retry_after);
}

#[test]
fn budget_defaults_to_a_fifth_of_requests_plus_ten_per_second_over_ten_seconds() {
    assert_eq!(
        default_retry().budget,
        Some(BudgetPolicy {
            ratio: 0.2,
            min_per_second: 10,
            window: Duration::from_secs(10)
        })
    );
}

#[test]
fn budget_is_read_and_fields_left_out_keep_their_defaults() {
    assert_eq!(
        retry(r#"{"budget": {"ratio": 0.5, "min_per_second": 0, "window": "30s"}}"#).budget,
        Some(BudgetPolicy {
            ratio: 0.5,
            min_per_second: 0,
            window: Duration::from_secs(30)
        })
    );
    assert_eq!(
        retry(r#"{"budget": {"ratio": 0.1}}"#).budget,
        Some(BudgetPolicy {
            ratio: 0.1,
            min_per_second: 10,
            window: Duration::from_secs(10)
        })
    );
}

#[test]
fn budget_null_leaves_retries_unbudgeted() {
    assert_eq!(retry(r#"{"budget": null}"#).budget, None);
}

#[test]
fn max_request_body_defaults_to_64_kib() {
    assert_eq!(default_retry().max_request_body, 65536);
}

#[test]
fn max_request_body_is_read_and_zero_means_no_request_with_a_body_is_retried() {
    assert_eq!(
        retry(r#"{"max_request_body": 1048576}"#).max_request_body,
        1 << 20
    );
    assert_eq!(retry(r#"{"max_request_body": 0}"#).max_request_body, 0);
}
