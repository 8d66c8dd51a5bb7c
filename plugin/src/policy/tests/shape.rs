//! The shape of the JSON: unknown fields at every level, fields written twice, wrong JSON types,
//! `null` where nothing can be turned off, names, and the route-level breaker rule.

use super::*;

#[test]
fn a_policy_must_be_a_json_object() {
    assert_eq!(
        problems("[1, 2]"),
        ["[1,2] is not a policy, must be a JSON object (at top level)"]
    );
    assert_eq!(
        problems("null"),
        ["null is not a policy, must be a JSON object (at top level)"]
    );
}

#[test]
fn a_policy_must_be_json() {
    assert_eq!(
        problems(r#"{"default": }"#),
        ["the policy is not valid JSON: expected value at line 1 column 13 (at top level)"]
    );
    assert_eq!(
        problems(""),
        ["the policy is not valid JSON: EOF while parsing a value at line 1 column 0 (at top level)"]
    );
    assert_eq!(
        problems(r#"{"default": {"retry": {"exponential_base": 1e400}}}"#),
        ["the policy is not valid JSON: number out of range at line 1 column 48 (at top level)"],
        "a number beyond f64 is refused by the parser, never read as infinity"
    );
    assert_eq!(
        Policy::parse(b"{\"default\": \"\xff\"}")
            .map(|_| ())
            .map_err(|e| e.0.len()),
        Err(1),
        "bytes that are not UTF-8 are one problem, not a panic"
    );
}

#[test]
fn unknown_top_level_fields_are_refused() {
    assert_eq!(
        problems(r#"{"defaults": {}}"#),
        ["defaults: {} is set on an unknown field, did you mean default? (at top level)"]
    );
    assert_eq!(
        problems(r#"{"version": 2}"#),
        ["version: 2 is set on an unknown field, must be one of default, services, clusters, routes, special_clusters, state_scope, max_worker_buffer (at top level)"]
    );
}

#[test]
fn unknown_scope_fields_are_refused_in_default_clusters_and_routes() {
    assert_eq!(
        problems(
            r#"{"default": {"breaker": {}}, "clusters": {"a": {"retries": {}}}, "routes": {"r": {"retyr": null}}}"#
        ),
        [
            "breaker: {} is set on an unknown field, must be one of circuit_breaker, retry (at default)",
            "retries: {} is set on an unknown field, did you mean retry? (at clusters.a)",
            "retyr: null is set on an unknown field, did you mean retry? (at routes.r)",
        ]
    );
}

#[test]
fn unknown_fields_are_refused_inside_every_object() {
    let policy = r#"{"default": {
        "circuit_breaker": {
            "failure_treshold": 3,
            "failure_rate": {"threshold": 0.5, "min_requests": 5},
            "slow_call": {"duration_ms": 100},
            "fallback": {"code": 503}
        },
        "retry": {"max_attempt": 2, "budget": {"ratio": 0.1, "per_second": 1}}
    }}"#;
    assert_eq!(
        problems(policy),
        [
            "circuit_breaker.failure_treshold: 3 is set on an unknown field, did you mean \
             failure_threshold? (at default)",
            "circuit_breaker.failure_rate.min_requests: 5 is set on an unknown field, did you \
             mean minimum_requests? (at default)",
            "circuit_breaker.slow_call.duration_ms: 100 is set on an unknown field, did you mean \
             duration? (at default)",
            "circuit_breaker.fallback.code: 503 is set on an unknown field, must be one of status, \
             grpc_status, headers, body (at default)",
            "retry.max_attempt: 2 is set on an unknown field, did you mean max_attempts? (at default)",
            "retry.budget.per_second: 1 is set on an unknown field, must be one of ratio, \
             min_per_second, window (at default)",
        ],
        "a typo never falls back to a default"
    );
}

#[test]
fn a_field_written_twice_is_refused() {
    assert_eq!(
        problems(r#"{"default": {"retry": {"max_attempts": 2, "max_attempts": 5}}}"#),
        ["retry.max_attempts: 5 is a second value for this field, set it once (at default)"],
        "a JSON map would silently keep the last"
    );
    assert_eq!(
        problems(r#"{"clusters": {"a": {}, "a": {"retry": null}}}"#),
        ["clusters.a: {\"retry\":null} is a second entry for this name, write each once (at top level)"]
    );
    assert_eq!(
        breaker_problems(r#"{"fallback": {"headers": {"x-a": "1", "x-a": "2"}}}"#),
        ["circuit_breaker.fallback.headers.x-a: \"2\" is a second value for this key, set it once (at default)"]
    );
}

#[test]
fn scopes_must_be_objects() {
    assert_eq!(
        problems(r#"{"default": [], "clusters": {"a": 1}, "routes": "r"}"#),
        [
            "[] is not an object (at default)",
            "1 is not an object (at clusters.a)",
            "routes: \"r\" is not an object of names (at top level)",
        ]
    );
}

#[test]
fn parts_must_be_objects_or_null() {
    assert_eq!(
        problems(r#"{"default": {"circuit_breaker": true, "retry": {"budget": 0.2}}}"#),
        [
            "circuit_breaker: true is not an object (at default)",
            "retry.budget: 0.2 is not an object (at default)",
        ]
    );
}

#[test]
fn null_is_refused_where_nothing_can_be_turned_off() {
    assert_eq!(
        problems(
            r#"{"default": {"circuit_breaker": {"timeout": null}, "retry": {"max_attempts": null, "methods": null}}}"#
        ),
        [
            "circuit_breaker.timeout: null is not a duration, must be a number of seconds or a \
             string such as \"250ms\", \"1.5s\", \"2m\" or \"1h\" (at default)",
            "retry.max_attempts: null is not a number, must be an integer (at default)",
            "retry.methods: null is not an array (at default)",
        ],
        "null would otherwise read as 'inherit', not what it says"
    );
    assert_eq!(
        problems(r#"{"default": null}"#),
        ["null is not an object (at default)"]
    );
}

#[test]
fn integers_must_be_written_as_integers() {
    assert_eq!(
        problems(r#"{"default": {"retry": {"max_attempts": 2.0, "max_request_body": "1024"}, "circuit_breaker": {"failure_threshold": 18446744073709551615}}}"#),
        [
            "retry.max_attempts: 2.0 is not an integer, must be written without a decimal point or \
             exponent (at default)",
            "retry.max_request_body: \"1024\" is not a number, must be an integer (at default)",
            "circuit_breaker.failure_threshold: 18446744073709551615 is too large (at default)",
        ]
    );
}

#[test]
fn lists_must_be_arrays_of_the_right_things() {
    assert_eq!(
        problems(r#"{"default": {"retry": {"methods": "GET", "retry_on": [true, 5.5]}}}"#),
        [
            "retry.methods: \"GET\" is not an array (at default)",
            "retry.retry_on[0]: true is not an outcome, must be \"5xx\", \"gateway-error\", \
             \"reset\", \"connect-failure\", \"timeout\", \"no-healthy-upstream\", \"overflow\", \
             a status code or a gRPC status (\"unavailable\", \"grpc-14\", ...) (at default)",
            "retry.retry_on[1]: 5.5 is not an outcome, must be \"5xx\", \"gateway-error\", \
             \"reset\", \"connect-failure\", \"timeout\", \"no-healthy-upstream\", \"overflow\", \
             a status code or a gRPC status (\"unavailable\", \"grpc-14\", ...) (at default)",
        ]
    );
}

#[test]
fn a_route_may_not_configure_the_breaker_because_breakers_are_per_cluster() {
    let expected = |value: &str| {
        format!(
            "circuit_breaker: {value} is not allowed on a route: breaker settings are per cluster \
             (set them under clusters.<name>); a route may only set null to bypass the breaker \
             (at routes.r)"
        )
    };
    assert_eq!(
        problems(r#"{"routes": {"r": {"circuit_breaker": {"timeout": "5s"}}}}"#),
        [expected(r#"{"timeout":"5s"}"#)]
    );
    assert_eq!(
        problems(r#"{"routes": {"r": {"circuit_breaker": {}}}}"#),
        [expected("{}")]
    );
    assert_eq!(
        problems(r#"{"routes": {"r": {"circuit_breaker": false}}}"#),
        [expected("false")]
    );
}

#[test]
fn a_route_may_not_set_the_retry_budget_because_it_is_per_cluster() {
    let expected = |value: &str| {
        format!(
            "retry.budget: {value} is not allowed on a route: the retry budget is per cluster, \
             shared by every route to it; set it under default or clusters.<name> (at routes.checkout)"
        )
    };
    for value in [
        r#"{"window":"1s"}"#,
        r#"{"ratio":0.5}"#,
        r#"{"min_per_second":1}"#,
        "{}",
        "null",
    ] {
        assert_eq!(
            problems(&format!(
                r#"{{"routes": {{"checkout": {{"retry": {{"max_attempts": 2, "budget": {value}}}}}}}}}"#
            )),
            [expected(value)],
            "any budget field, and null too"
        );
    }
    let raw = r#"{"routes": {"checkout": {"retry": {"budget": {"window": "1s"}}}}}"#;
    assert!(
        serde_json::from_str::<super::super::raw::RawPolicy>(raw).is_err(),
        "the raw types (and so the schema) refuse it as well"
    );
    assert_eq!(
        parse(r#"{"clusters": {"c": {"retry": {"budget": {"window": "1s"}}}}}"#)
            .policy
            .lookup("c", "checkout")
            .retry
            .as_ref()
            .and_then(|r| r.budget)
            .map(|b| b.window),
        Some(std::time::Duration::from_secs(1)),
        "under clusters.<name> it is fine"
    );
}

#[test]
fn names_may_not_be_empty() {
    assert_eq!(
        problems(r#"{"clusters": {"": {}}, "routes": {"": {}}}"#),
        [
            "clusters.\"\": is an empty name, which matches whatever Envoy leaves unnamed; give \
             the entry a name (at top level)",
            "routes.\"\": is an empty name, which matches whatever Envoy leaves unnamed; give the \
             entry a name (at top level)",
        ]
    );
}

#[test]
fn names_are_taken_as_written() {
    let policy = parse(
        r#"{"clusters": {"outbound|8080||payments.default.svc.cluster.local": {"retry": null}}}"#,
    )
    .policy;
    assert_eq!(
        policy
            .lookup("outbound|8080||payments.default.svc.cluster.local", "")
            .retry,
        None
    );
    assert!(
        policy.lookup("outbound|8080||payments", "").retry.is_some(),
        "no prefix match"
    );
}

#[test]
fn max_worker_buffer_is_read_at_the_top_level_in_bytes_within_its_bounds() {
    let parsed = Policy::parse(br#"{ "max_worker_buffer": 8388608 }"#).expect("valid");
    assert_eq!(parsed.policy.worker_buffer(), 8 * 1024 * 1024);
    let default = Policy::parse(b"{}").expect("valid");
    assert_eq!(
        default.policy.worker_buffer(),
        32 * 1024 * 1024,
        "32 MiB when not written"
    );
    let errors = Policy::parse(br#"{ "max_worker_buffer": 1000 }"#).expect_err("too small");
    assert_eq!(
        errors.0[0].to_string(),
        "max_worker_buffer: 1000 is out of range, must be 1048576..=268435456 (at top level)"
    );
    let errors = Policy::parse(br#"{ "max_worker_buffer": "8MiB" }"#).expect_err("bytes only");
    assert!(errors.0[0].to_string().contains("max_worker_buffer"));
}

#[test]
fn every_published_outcome_name_is_read_as_its_own_class_in_both_lists() {
    let mut classes = Vec::new();
    for name in OUTCOME_NAMES {
        let json = format!(
            r#"{{"default": {{"circuit_breaker": {{"failure_on": ["{name}"]}},
                            "retry": {{"retry_on": ["{name}"]}}}}}}"#
        );
        let policy = parse(&json).policy;
        let effective = policy.lookup("any", "any");
        let failure_on = &effective.breaker.as_ref().expect("on").failure_on.classes;
        let retry_on = &effective.retry.as_ref().expect("on").retry_on.classes;
        assert_eq!(failure_on, retry_on, "{name} reads the same in both lists");
        assert_eq!(failure_on.len(), 1, "{name} is one class");
        classes.extend(failure_on.iter().copied());
    }
    let distinct: std::collections::HashSet<_> = classes.iter().collect();
    assert_eq!(
        distinct.len(),
        OUTCOME_NAMES.len(),
        "each name its own class"
    );
}
