//! Warnings: risky but legal values, reported beside a policy that is used.

use super::*;

#[test]
fn a_failure_threshold_of_1_or_2_warns_that_the_breaker_trips_on_transient_errors() {
    for n in [1, 2] {
        assert_eq!(
            warnings(&format!(
                r#"{{"default": {{"circuit_breaker": {{"failure_threshold": {n}}}}}}}"#
            )),
            [format!(
                "circuit_breaker.failure_threshold: {n} is below 3, so the breaker trips on \
                 transient errors (at default)"
            )]
        );
    }
    let fine = warnings(r#"{"default": {"circuit_breaker": {"failure_threshold": 3}}}"#);
    assert!(fine.is_empty(), "3 is fine: {fine:?}");
}

#[test]
fn a_failure_threshold_of_0_with_no_other_trigger_warns_that_the_breaker_never_opens() {
    assert_eq!(
        warnings(r#"{"clusters": {"a": {"circuit_breaker": {"failure_threshold": 0}}}}"#),
        ["circuit_breaker.failure_threshold: 0 turns off the only trigger (neither failure_rate \
          nor slow_call is set), so the breaker never opens (at clusters.a)"]
    );
    for other_trigger in [
        r#""failure_rate": {}"#,
        r#""slow_call": {}"#,
        r#""mode": "disabled""#,
    ] {
        let json = format!(
            r#"{{"default": {{"circuit_breaker": {{"failure_threshold": 0, {other_trigger}}}}}}}"#
        );
        assert!(
            warnings(&json).is_empty(),
            "no warning with {other_trigger}"
        );
    }
}

#[test]
fn max_attempts_above_5_warns_about_load_on_a_struggling_upstream() {
    assert_eq!(
        warnings(r#"{"routes": {"r": {"retry": {"max_attempts": 6}}}}"#),
        ["retry.max_attempts: 6 is above 5, so every failure multiplies the load on a struggling \
          upstream (at routes.r)"]
    );
    assert!(
        warnings(r#"{"default": {"retry": {"max_attempts": 5}}}"#).is_empty(),
        "5 is fine"
    );
}

#[test]
fn a_per_try_timeout_longer_than_the_breaker_timeout_warns() {
    assert_eq!(
        warnings(r#"{"default": {"retry": {"per_try_timeout": "90s", "deadline": "2m"}}}"#),
        [
            r#"retry.per_try_timeout: "90s" is longer than circuit_breaker.timeout "1m", so one attempt outlasts the breaker's open time (at default)"#
        ]
    );
}

#[test]
fn the_httpx_warning_needs_a_breaker_and_retries() {
    let equal = r#"{"default": {"retry": {"per_try_timeout": "60s", "deadline": "2m"}}}"#;
    assert!(warnings(equal).is_empty(), "equal is fine");
    let no_breaker = r#"{"default": {"circuit_breaker": null, "retry": {"per_try_timeout": "90s", "deadline": "2m"}}}"#;
    assert!(warnings(no_breaker).is_empty(), "no breaker, no pitfall");
    let no_retries = r#"{"default": {"retry": {"max_attempts": 1, "per_try_timeout": "90s", "deadline": "2m"}}}"#;
    assert!(
        warnings(no_retries).is_empty(),
        "no retried attempt, no pitfall"
    );
}

#[test]
fn the_httpx_warning_is_found_where_a_route_meets_a_clusters_breaker() {
    let policy = r#"{"clusters": {"quick": {"circuit_breaker": {"timeout": "5s"}}},
                     "routes": {"report": {"retry": {"per_try_timeout": "8s"}}}}"#;
    assert_eq!(
        warnings(policy),
        [
            r#"retry.per_try_timeout: "10s" is longer than circuit_breaker.timeout "5s", so one attempt outlasts the breaker's open time (at clusters.quick)"#,
            r#"retry.per_try_timeout: "8s" is longer than circuit_breaker.timeout "5s", so one attempt outlasts the breaker's open time (at routes.report with clusters.quick)"#,
        ],
        "the cluster's own requests meet the default 10s; the route's meet its 8s"
    );
}

#[test]
fn a_raised_timeout_over_an_inherited_max_timeout_warns_that_the_open_time_does_not_grow() {
    let parsed = parse(
        r#"{"default": {"circuit_breaker": {"max_timeout": "2m"}},
            "clusters": {"a": {"circuit_breaker": {"timeout": "5m"}}}}"#,
    );
    let warnings: Vec<String> = parsed.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        [
            r#"circuit_breaker.max_timeout: "2m" is shorter than circuit_breaker.timeout "5m" set in another scope, so the open time does not grow on a re-open (at clusters.a)"#
        ]
    );
    let a = parsed.policy.breaker_for("a").expect("on");
    assert_eq!(a.max_timeout, a.timeout, "the cap is the timeout");
}

#[test]
fn warnings_come_with_a_policy_that_is_used() {
    let parsed = parse(r#"{"default": {"retry": {"max_attempts": 8}}}"#);
    assert_eq!(parsed.warnings.len(), 1);
    let r = parsed
        .policy
        .lookup("a", "b")
        .retry
        .as_ref()
        .map(|r| r.max_attempts);
    assert_eq!(r, Some(8), "a warning does not change the value");
}

#[test]
fn the_default_policy_has_no_warnings() {
    assert!(warnings("{}").is_empty());
}
