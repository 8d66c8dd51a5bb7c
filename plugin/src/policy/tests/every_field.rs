//! One policy that sets every field of `POLICY.md` to a value other than its default, read
//! whole: a field the reader skipped would keep its default and fail the comparison.

use super::*;
use std::time::Duration;
use OutcomeClass::*;

const EVERY_FIELD: &str = r#"{
    "default": {
        "circuit_breaker": {
            "failure_threshold": 9,
            "failure_rate": {"threshold": 0.3, "minimum_requests": 40, "window": "20s"},
            "slow_call": {"duration": "3s", "rate_threshold": 0.7},
            "timeout": "45s",
            "max_timeout": "5m",
            "half_open_attempts": 3,
            "probe_timeout": "15s",
            "failure_on": ["gateway-error", 429],
            "count_retries": true,
            "fallback": {"status": 502, "grpc_status": 8, "headers": {"X-Why": "open"}, "body": "later"},
            "mode": "shadow"
        },
        "retry": {
            "max_attempts": 4,
            "base_delay": "200ms",
            "max_delay": "20s",
            "exponential_base": 3,
            "jitter": "full",
            "retry_on": ["reset", 503],
            "methods": ["get"],
            "idempotency_header": "X-Key",
            "per_try_timeout": "4s",
            "deadline": "25s",
            "respect_retry_after": false,
            "budget": {"ratio": 0.5, "min_per_second": 2, "window": "30s"},
            "max_request_body": 1024
        }
    }
}"#;

#[test]
fn every_field_set_in_one_policy_is_read() {
    let parsed = parse(EVERY_FIELD);
    assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
    let expected = Effective {
        breaker: Some(BreakerPolicy {
            failure_threshold: 9,
            failure_rate: Some(FailureRate { threshold: 0.3 }),
            slow_call: Some(SlowCall {
                duration: Duration::from_secs(3),
                rate_threshold: 0.7,
            }),
            window: RateWindow {
                window: Duration::from_secs(20),
                minimum_requests: 40,
            },
            timeout: Duration::from_secs(45),
            max_timeout: Duration::from_secs(300),
            half_open_attempts: 3,
            probe_timeout: Duration::from_secs(15),
            failure_on: matcher(&[GatewayError], &[429]),
            count_retries: true,
            fallback: Fallback {
                status: 502,
                grpc_status: 8,
                headers: vec![("x-why".into(), "open".into())],
                body: "later".into(),
            },
            mode: BreakerMode::Shadow,
        }),
        retry: Some(RetryPolicy {
            max_attempts: 4,
            backoff: BackoffPolicy {
                base_delay: Duration::from_millis(200),
                max_delay: Duration::from_secs(20),
                exponential_base: 3.0,
                jitter: Jitter::Full,
            },
            retry_on: matcher(&[Reset], &[503]),
            methods: vec!["GET".into()],
            idempotency_header: Some("x-key".into()),
            per_try_timeout: Duration::from_secs(4),
            deadline: Duration::from_secs(25),
            respect_retry_after: false,
            budget: Some(BudgetPolicy {
                ratio: 0.5,
                min_per_second: 2,
                window: Duration::from_secs(30),
            }),
            max_request_body: 1024,
        }),
    };
    assert_eq!(parsed.policy.lookup("any", "any"), &expected);
}

#[test]
fn every_field_differs_from_its_default_in_that_policy() {
    let default = Policy::default();
    let parsed = parse(EVERY_FIELD).policy;
    let (b, d) = (
        parsed.breaker_for("x").expect("on"),
        default.breaker_for("x").expect("on"),
    );
    let (r, e) = (
        parsed.lookup("x", "y").retry.clone().expect("on"),
        default.lookup("x", "y").retry.clone().expect("on"),
    );
    // So that the comparison above would notice a field left at its default.
    assert_ne!(b.failure_threshold, d.failure_threshold);
    assert_ne!(b.window, d.window);
    assert_ne!(b.timeout, d.timeout);
    assert_ne!(b.max_timeout, d.max_timeout);
    assert_ne!(b.half_open_attempts, d.half_open_attempts);
    assert_ne!(b.probe_timeout, d.probe_timeout);
    assert_ne!(b.failure_on, d.failure_on);
    assert_ne!(b.count_retries, d.count_retries);
    assert_ne!(b.fallback.status, d.fallback.status);
    assert_ne!(b.fallback.headers, d.fallback.headers);
    assert_ne!(b.fallback.body, d.fallback.body);
    assert_ne!(b.mode, d.mode);
    assert_ne!(r.max_attempts, e.max_attempts);
    assert_ne!(r.backoff.base_delay, e.backoff.base_delay);
    assert_ne!(r.backoff.max_delay, e.backoff.max_delay);
    assert_ne!(r.backoff.exponential_base, e.backoff.exponential_base);
    assert_ne!(r.backoff.jitter, e.backoff.jitter);
    assert_ne!(r.retry_on, e.retry_on);
    assert_ne!(r.methods, e.methods);
    assert_ne!(r.idempotency_header, e.idempotency_header);
    assert_ne!(r.per_try_timeout, e.per_try_timeout);
    assert_ne!(r.deadline, e.deadline);
    assert_ne!(r.respect_retry_after, e.respect_retry_after);
    assert_ne!(r.budget, e.budget);
    assert_ne!(r.max_request_body, e.max_request_body);
}
