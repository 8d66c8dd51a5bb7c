//! The committed JSON Schema refuses what the filter refuses, field by field: bad values derived
//! from the filter's own bounds (`breakwater::policy::bounds`) just past each end of each range,
//! the wrong policies an operator wrote while checking the manifests (issue 14: 27 of them, of
//! which the old schema accepted 18), and typos, whose message names the field. The values at
//! each bound are accepted by both, so the schema is not stricter than the filter either.

use breakwater::policy::bounds::*;
use breakwater::policy::{Policy, Rule, OUTCOME_NAMES};
use breakwater_cli::paths;
use serde_json::{json, Value};
use std::ops::RangeInclusive;
use std::time::Duration;

fn schema() -> jsonschema::Validator {
    let text = std::fs::read_to_string(paths::schema()).expect("the schema is committed");
    let schema: Value = serde_json::from_str(&text).expect("JSON");
    jsonschema::validator_for(&schema).expect("a valid JSON Schema")
}

/// `value` at the dotted `path` of an otherwise empty policy.
fn at(path: &str, value: Value) -> Value {
    path.rsplit('.')
        .fold(value, |inner, key| json!({ key: inner }))
}

/// Where each kind of field lives: a `retry` field is checked in `default` and on a route.
fn places(field: &str) -> Vec<String> {
    if let Some(retry) = field.strip_prefix("retry.") {
        let on_route = !retry.starts_with("budget");
        let mut places = vec![format!("default.{field}")];
        if on_route {
            places.push(format!("routes.r.{field}"));
        }
        places
    } else if field.starts_with("circuit_breaker.") {
        vec![format!("default.{field}"), format!("clusters.c.{field}")]
    } else {
        vec![field.to_owned()]
    }
}

/// Asserts that both the schema and the filter refuse `policy`.
fn both_refuse(schema: &jsonschema::Validator, policy: &Value, why: &str) {
    assert!(
        !schema.is_valid(policy),
        "the schema accepts {policy} ({why}), which the filter refuses"
    );
    assert!(
        Policy::parse(policy.to_string().as_bytes()).is_err(),
        "the filter accepts {policy} ({why}): the test's value is not a bad one"
    );
}

/// Asserts that the schema accepts `policy` and that the filter finds nothing wrong with
/// `field` (a path inside its scope, `retry.base_delay`) in it: a value at its bound may still
/// break a rule between fields (a `base_delay` of an hour over the default `max_delay`), which
/// no schema checks. An empty `field`: the filter accepts the whole policy.
fn both_accept(schema: &jsonschema::Validator, policy: &Value, field: &str) {
    let errors: Vec<String> = schema.iter_errors(policy).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "the schema refuses {policy}: {errors:?}");
    if let Err(e) = Policy::parse(policy.to_string().as_bytes()) {
        // A rule between fields: `max_timeout` below `timeout` in one scope, or one checked on
        // the merged scopes.
        let between =
            |rule: &Rule| matches!(rule, Rule::Across(_) | Rule::MaxTimeoutBelowTimeout(_));
        let own =
            e.0.iter()
                .any(|p| field.is_empty() || (p.path == field && !between(&p.rule)));
        assert!(!own, "the filter refuses {policy}: {e}");
    }
}

/// `place` without its scope: `default.retry.base_delay` → `retry.base_delay`.
fn in_scope(place: &str) -> &str {
    for scope in ["default.", "clusters.c.", "routes.r."] {
        if let Some(field) = place.strip_prefix(scope) {
            return field;
        }
    }
    place
}

fn integers() -> Vec<(&'static str, RangeInclusive<i64>)> {
    vec![
        ("circuit_breaker.failure_threshold", FAILURE_THRESHOLD),
        ("circuit_breaker.half_open_attempts", HALF_OPEN_ATTEMPTS),
        (
            "circuit_breaker.failure_rate.minimum_requests",
            MINIMUM_REQUESTS,
        ),
        ("circuit_breaker.fallback.status", FALLBACK_STATUS),
        ("circuit_breaker.fallback.grpc_status", FALLBACK_GRPC_STATUS),
        ("retry.max_attempts", MAX_ATTEMPTS),
        ("retry.max_request_body", MAX_REQUEST_BODY),
        ("retry.budget.min_per_second", MIN_PER_SECOND),
        ("max_worker_buffer", MAX_WORKER_BUFFER),
    ]
}

fn durations() -> Vec<(&'static str, RangeInclusive<Duration>)> {
    vec![
        ("circuit_breaker.timeout", OPEN_TIME),
        ("circuit_breaker.max_timeout", OPEN_TIME),
        ("circuit_breaker.probe_timeout", PROBE_TIMEOUT),
        ("circuit_breaker.slow_call.duration", SLOW_CALL_DURATION),
        ("circuit_breaker.failure_rate.window", WINDOW),
        ("retry.base_delay", DELAY),
        ("retry.max_delay", DELAY),
        ("retry.per_try_timeout", REQUEST_TIME),
        ("retry.deadline", REQUEST_TIME),
        ("retry.budget.window", WINDOW),
    ]
}

/// The JSON number of seconds of `d`.
fn seconds(d: Duration) -> Value {
    json!(d.as_secs_f64())
}

#[test]
fn integers_just_outside_their_bounds_are_refused_by_both_and_the_bounds_accepted() {
    let schema = schema();
    for (field, range) in integers() {
        for place in places(field) {
            for bad in [range.start() - 1, range.end() + 1] {
                both_refuse(&schema, &at(&place, json!(bad)), "out of range");
            }
            both_refuse(
                &schema,
                &at(&place, json!(range.start().to_string())),
                "a string",
            );
            for good in [*range.start(), *range.end()] {
                both_accept(&schema, &at(&place, json!(good)), in_scope(&place));
            }
        }
    }
}

#[test]
fn numbers_just_outside_their_bounds_are_refused_by_both_and_the_bounds_accepted() {
    let schema = schema();
    let numbers = [
        ("retry.exponential_base", EXPONENTIAL_BASE),
        ("retry.budget.ratio", BUDGET_RATIO),
    ];
    for (field, range) in numbers {
        for place in places(field) {
            for bad in [range.start() - 0.01, range.end() + 0.01] {
                both_refuse(&schema, &at(&place, json!(bad)), "out of range");
            }
            for good in [*range.start(), *range.end()] {
                both_accept(&schema, &at(&place, json!(good)), in_scope(&place));
            }
        }
    }
    let rates = [
        "circuit_breaker.failure_rate.threshold",
        "circuit_breaker.slow_call.rate_threshold",
    ];
    for place in rates.iter().flat_map(|f| places(f)) {
        for bad in [0.0, -0.1, RATE_THRESHOLD_MAX + 0.01] {
            both_refuse(&schema, &at(&place, json!(bad)), "not in (0, 1]");
        }
        for good in [0.001, RATE_THRESHOLD_MAX] {
            both_accept(&schema, &at(&place, json!(good)), in_scope(&place));
        }
    }
}

#[test]
fn durations_outside_their_bounds_or_grammar_are_refused_by_both() {
    let schema = schema();
    let malformed = [
        "5 s", "-1s", "1h30", "PT5S", "2d", ".5s", "5.s", "1e3s", "5", "s", "1.5.5s", "",
    ];
    for (field, range) in durations() {
        for place in places(field) {
            let below = range.start().checked_sub(Duration::from_millis(1));
            let above = *range.end() + Duration::from_millis(1);
            for bad in below.into_iter().chain([above]) {
                both_refuse(&schema, &at(&place, seconds(bad)), "seconds out of range");
            }
            both_refuse(&schema, &at(&place, json!(-5)), "negative seconds");
            for text in malformed {
                both_refuse(&schema, &at(&place, json!(text)), "not a duration");
            }
            for good in [*range.start(), *range.end()] {
                both_accept(&schema, &at(&place, seconds(good)), in_scope(&place));
            }
            both_accept(&schema, &at(&place, json!("1.5s")), in_scope(&place));
        }
    }
}

#[test]
fn outcome_lists_refuse_unknown_names_and_codes_outside_their_ranges() {
    let schema = schema();
    let failure_bad = [
        json!("teapot"),
        json!(*FAILURE_CODES.start() - 1),
        json!(*FAILURE_CODES.end() + 1),
        json!(200),
        json!((FAILURE_CODES.start() - 1).to_string()),
        json!("4xx"),
    ];
    for place in places("circuit_breaker.failure_on") {
        for bad in &failure_bad {
            both_refuse(&schema, &at(&place, json!([bad])), "not a failure outcome");
        }
        let good: Vec<Value> = OUTCOME_NAMES.iter().map(|n| json!(n)).collect();
        both_accept(&schema, &at(&place, Value::from(good)), in_scope(&place));
        both_accept(
            &schema,
            &at(&place, json!([400, 599, "0429"])),
            in_scope(&place),
        );
    }
    let retry_bad = [
        json!("teapot"),
        json!(404),
        json!("404"),
        json!(RETRYABLE_4XX[0] - 1),
        json!(*RETRYABLE_5XX.start() - 1),
        json!(*RETRYABLE_5XX.end() + 1),
    ];
    for place in places("retry.retry_on") {
        for bad in &retry_bad {
            both_refuse(
                &schema,
                &at(&place, json!([bad])),
                "not a retryable outcome",
            );
        }
        let mut good: Vec<Value> = RETRYABLE_4XX.iter().map(|c| json!(c)).collect();
        good.extend([json!(500), json!(599), json!("503"), json!("overflow")]);
        both_accept(&schema, &at(&place, Value::from(good)), in_scope(&place));
    }
}

#[test]
fn names_headers_and_keys_the_filter_refuses_are_refused_by_the_schema() {
    let schema = schema();
    let long_scope = "a".repeat(STATE_SCOPE_BYTES + 1);
    let long_body = "x".repeat(MAX_FALLBACK_BODY_BYTES + 1);
    let cases = [
        json!({ "default": { "retry": { "methods": ["G T"] } } }),
        json!({ "default": { "retry": { "methods": [""] } } }),
        json!({ "default": { "retry": { "idempotency_header": ":path" } } }),
        json!({ "default": { "retry": { "idempotency_header": "bad name" } } }),
        json!({ "default": { "retry": { "idempotency_header": "X-Request-Id" } } }),
        json!({ "default": { "retry": { "idempotency_header": "x-envoy-attempt" } } }),
        json!({ "routes": { "r": { "retry": { "idempotency_header": "Traceparent" } } } }),
        json!({ "default": { "circuit_breaker": { "fallback": { "headers": { "Retry-After": "1" } } } } }),
        json!({ "default": { "circuit_breaker": { "fallback": { "headers": { "x-breakwater-a": "1" } } } } }),
        json!({ "default": { "circuit_breaker": { "fallback": { "headers": { "bad name": "1" } } } } }),
        json!({ "default": { "circuit_breaker": { "fallback": { "headers": { "x-a": " padded" } } } } }),
        json!({ "default": { "circuit_breaker": { "fallback": { "headers": { "x-a": "a\nb" } } } } }),
        json!({ "default": { "circuit_breaker": { "fallback": { "body": long_body } } } }),
        json!({ "state_scope": "" }),
        json!({ "state_scope": "a/b" }),
        json!({ "state_scope": long_scope }),
        json!({ "special_clusters": "skip" }),
        json!({ "services": { "outbound|9080||reviews": {} } }),
        json!({ "services": { "reviews.default.svc.cluster.local:0": {} } }),
        json!({ "services": { "reviews.default.svc.cluster.local:08080": {} } }),
        json!({ "services": { "reviews.default.svc.cluster.local:65536": {} } }),
        json!({ "services": { "reviews.default.svc.cluster.local#": {} } }),
        json!({ "services": { ":9080": {} } }),
        json!({ "clusters": { "": {} } }),
        json!({ "routes": { "": {} } }),
    ];
    for policy in cases {
        both_refuse(&schema, &policy, "a refused name or value");
    }
    let good = [
        json!({ "default": { "retry": { "idempotency_header": "X-Idempotency-Key" } } }),
        json!({ "default": { "circuit_breaker": { "fallback": { "headers": { "X-A": "a\tb" } } } } }),
        json!({ "state_scope": "a".repeat(STATE_SCOPE_BYTES) }),
        json!({ "services": { "reviews.default.svc.cluster.local:65535#v2": {} } }),
        json!({ "services": { "*.wikipedia.org": {} } }),
    ];
    for policy in good {
        both_accept(&schema, &policy, "");
    }
}

/// The wrong policies of issue 14 that the old schema accepted, as written there.
#[test]
fn the_wrong_policies_of_issue_14_are_refused_by_both() {
    let schema = schema();
    let breaker = |f: Value| json!({ "default": { "circuit_breaker": f } });
    let retry = |f: Value| json!({ "default": { "retry": f } });
    let cases = [
        breaker(json!({ "timeout": "5 s" })),
        breaker(json!({ "timeout": "-1s" })),
        breaker(json!({ "timeout": "1h30" })),
        breaker(json!({ "timeout": -5 })),
        breaker(json!({ "timeout": "PT5S" })),
        breaker(json!({ "timeout": "2d" })),
        breaker(json!({ "half_open_attempts": 0 })),
        retry(json!({ "max_attempts": 0 })),
        retry(json!({ "max_attempts": 50 })),
        retry(json!({ "budget": { "ratio": -0.1 } })),
        breaker(json!({ "failure_rate": { "threshold": -0.1 } })),
        retry(json!({ "exponential_base": 0.5 })),
        retry(json!({ "max_request_body": 1e20 })),
        breaker(json!({ "fallback": { "status": 99 } })),
        retry(json!({ "retry_on": ["teapot"] })),
        retry(json!({ "retry_on": [404] })),
        breaker(json!({ "failure_on": [200] })),
        breaker(json!({ "slow_call": { "rate_threshold": 1.5 } })),
    ];
    for policy in cases {
        both_refuse(&schema, &policy, "one of the issue's wrong policies");
    }
}

#[test]
fn a_typo_is_reported_by_its_field_name_not_as_no_alternative_matching() {
    let schema = schema();
    let typos = [
        (
            json!({ "default": { "retry": { "jiter": true } } }),
            "jiter",
        ),
        (
            json!({ "default": { "circuit_breaker": { "failure_treshold": 5 } } }),
            "failure_treshold",
        ),
        (
            json!({ "routes": { "r": { "retry": { "max_attempt": 2 } } } }),
            "max_attempt",
        ),
        (
            json!({ "default": { "retry": { "budget": { "ration": 0.2 } } } }),
            "ration",
        ),
        (json!({ "servics": {} }), "servics"),
    ];
    for (policy, typo) in typos {
        let errors: Vec<String> = schema.iter_errors(&policy).map(|e| e.to_string()).collect();
        assert!(
            !errors.is_empty() && errors.iter().all(|e| e.contains(typo)),
            "{policy}: every message names `{typo}`: {errors:#?}"
        );
        both_refuse(&schema, &policy, "a typo");
    }
}
