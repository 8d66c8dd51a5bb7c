//! Reporting: every problem at once, each in the scope that wrote it, rules across fields on
//! merged results, and the policy refused whole.

use super::*;

#[test]
fn every_problem_is_reported_at_once_in_the_order_written() {
    let policy = r#"{
        "default": {"circuit_breaker": {"half_open_attempts": 0}, "retry": {"jitter": "yes"}},
        "clusters": {
            "payments": {"circuit_breaker": {"timeout": "soon"}},
            "search": {"retry": {"max_attempts": 99, "methods": ["G@T"]}}
        },
        "routes": {"upload": {"retry": {"retry_on": [404]}}},
        "extra": true
    }"#;
    assert_eq!(
        problems(policy),
        [
            "circuit_breaker.half_open_attempts: 0 is out of range, must be 1..=1000 (at default)",
            "retry.jitter: \"yes\" is not a jitter, must be true, false, \"none\", \"proportional\", \
             \"full\", \"equal\" or \"decorrelated\" (at default)",
            "circuit_breaker.timeout: \"soon\" is not a duration, must be a number of seconds or a \
             string such as \"250ms\", \"1.5s\", \"2m\" or \"1h\" (at clusters.payments)",
            "retry.max_attempts: 99 is out of range, must be 1..=10 (at clusters.search)",
            "retry.methods[0]: \"G@T\" is not an HTTP method, must be a token such as \"GET\" (at clusters.search)",
            "retry.retry_on[0]: 404 is never retried, a retry_on code must be 408, 409, 429 or \
             500..=599 (at routes.upload)",
            "extra: true is set on an unknown field, must be one of default, services, clusters, routes, special_clusters, state_scope, max_worker_buffer (at top level)",
        ],
        "in the order written"
    );
}

#[test]
fn policy_errors_render_one_line_per_problem() {
    let errors = Policy::parse(br#"{"default": {"retry": {"max_attempts": 0, "deadline": "x"}}}"#)
        .expect_err("two problems");
    assert_eq!(
        errors.to_string(),
        "retry.max_attempts: 0 is out of range, must be 1..=10 (at default)\n\
         retry.deadline: \"x\" is not a duration, must be a number of seconds or a string such as \
         \"250ms\", \"1.5s\", \"2m\" or \"1h\" (at default)"
    );
    let as_error: &dyn std::error::Error = &errors;
    assert!(
        as_error.source().is_none(),
        "a std error with nothing underneath"
    );
}

#[test]
fn a_problem_is_reported_in_the_scope_that_wrote_the_value_not_where_it_is_inherited() {
    let policy = r#"{"default": {"retry": {"max_attempts": 0}},
                     "clusters": {"a": {}, "b": {}}, "routes": {"r": {}}}"#;
    assert_eq!(
        problems(policy),
        ["retry.max_attempts: 0 is out of range, must be 1..=10 (at default)"],
        "once, not again for every cluster and route that inherits it"
    );
}

#[test]
fn a_rule_across_fields_is_checked_on_the_merged_result_in_the_scope_that_breaks_it() {
    let policy = r#"{"default": {"retry": {"base_delay": "2s"}},
                     "clusters": {"a": {"retry": {"max_delay": "1s"}}, "b": {}}}"#;
    assert_eq!(
        problems(policy),
        [
            r#"retry.max_delay: "1s" is shorter than retry.base_delay "2s", must be at least that (at clusters.a)"#
        ],
        "neither scope breaks the rule alone; their merge for cluster a does"
    );
}

#[test]
fn a_rule_broken_only_where_a_route_meets_a_cluster_names_both() {
    let policy = r#"{"clusters": {"slow": {"retry": {"base_delay": "10s"}}},
                     "routes": {"fast": {"retry": {"max_delay": "5s"}}}}"#;
    assert_eq!(
        problems(policy),
        [
            r#"retry.max_delay: "5s" is shorter than retry.base_delay "10s", must be at least that (at routes.fast with clusters.slow)"#
        ],
        "the route is fine on default (1s base) and the cluster is fine alone"
    );
}

#[test]
fn a_rule_across_fields_broken_in_default_is_reported_once() {
    let policy = r#"{"default": {"retry": {"per_try_timeout": "20s", "deadline": "10s"}},
                     "clusters": {"a": {}}, "routes": {"r": {}}}"#;
    assert_eq!(
        problems(policy),
        [
            r#"retry.deadline: "10s" is shorter than retry.per_try_timeout "20s", so no retry could finish in time; must be at least that (at default)"#
        ],
        "not again for cluster a, route r, or r on a"
    );
}

#[test]
fn a_rule_across_fields_is_not_checked_on_a_field_that_has_its_own_problem() {
    assert_eq!(
        retry_problems(r#"{"base_delay": "2s", "max_delay": "fast"}"#),
        [
            "retry.max_delay: \"fast\" is not a duration, must be a number of seconds or a string \
          such as \"250ms\", \"1.5s\", \"2m\" or \"1h\" (at default)"
        ],
        "max_delay falls back to nothing, so comparing it with base_delay would mislead"
    );
    assert_eq!(
        problems(
            r#"{"default": {"retry": {"base_delay": "2h"}}, "clusters": {"a": {"retry": {"max_delay": "1s"}}}}"#
        ),
        [r#"retry.base_delay: "2h" is out of range, must be 1ms..=1h (at default)"#],
        "also when the broken field is in an enclosing scope"
    );
}

#[test]
fn a_table_too_large_to_keep_is_refused() {
    let names = |prefix: &str, n: usize| {
        (0..n)
            .map(|i| format!(r#""{prefix}{i}": {{}}"#))
            .collect::<Vec<_>>()
            .join(",")
    };
    let policy = format!(
        r#"{{"clusters": {{{}}}, "routes": {{{}}}}}"#,
        names("c", 100),
        names("r", 99)
    );
    assert_eq!(
        problems(&policy),
        [
            "100 clusters and 99 routes resolve to 10100 policies, which every worker keeps; must \
          be at most 10000 (at top level)"
        ]
    );
    let at_limit = format!(
        r#"{{"clusters": {{{}}}, "routes": {{{}}}}}"#,
        names("c", 99),
        names("r", 99)
    );
    assert_eq!(
        parse(&at_limit).policy.clusters().count(),
        99,
        "100 × 100 = 10000 fits"
    );
}

#[test]
fn a_refused_policy_never_yields_a_table() {
    let result = Policy::parse(br#"{"default": {"retry": {"max_attempts": 0}}}"#);
    assert!(result.is_err(), "one problem refuses the whole policy");
}
