//! The merge order `default` → `clusters.<name>` → `routes.<name>`, `null` in each scope, the
//! per-cluster breaker, and what `lookup` falls back to.

use super::*;
use std::time::Duration;

const LAYERED: &str = r#"{
    "default": {
        "circuit_breaker": {"failure_threshold": 7, "timeout": "30s"},
        "retry": {"max_attempts": 4, "base_delay": "2s", "per_try_timeout": "5s"}
    },
    "clusters": {
        "payments": {
            "circuit_breaker": {"timeout": "90s"},
            "retry": {"max_attempts": 2, "deadline": "20s"}
        }
    },
    "routes": {
        "checkout": {"retry": {"max_attempts": 1, "per_try_timeout": "3s"}}
    }
}"#;

#[test]
fn a_cluster_overrides_only_the_fields_it_sets() {
    let policy = parse(LAYERED).policy;
    let payments = policy.lookup("payments", "other");
    let b = payments.breaker.as_ref().expect("on");
    assert_eq!(b.timeout, Duration::from_secs(90), "the cluster's timeout");
    assert_eq!(b.failure_threshold, 7, "default's threshold is kept");
    assert_eq!(
        b.half_open_attempts, 1,
        "untouched fields keep their default"
    );
    let r = payments.retry.as_ref().expect("on");
    assert_eq!(r.max_attempts, 2, "the cluster's max_attempts");
    assert_eq!(
        r.deadline,
        Duration::from_secs(20),
        "the cluster's deadline"
    );
    assert_eq!(
        r.backoff.base_delay,
        Duration::from_secs(2),
        "default's base_delay is kept"
    );
}

#[test]
fn a_route_merges_last_over_the_cluster_it_meets() {
    let policy = parse(LAYERED).policy;
    let r = policy
        .lookup("payments", "checkout")
        .retry
        .as_ref()
        .expect("on");
    assert_eq!(
        r.max_attempts, 1,
        "the route's value wins over cluster and default"
    );
    assert_eq!(r.per_try_timeout, Duration::from_secs(3), "the route's");
    assert_eq!(
        r.deadline,
        Duration::from_secs(20),
        "the cluster's, under the route"
    );
    assert_eq!(
        r.backoff.base_delay,
        Duration::from_secs(2),
        "default's, under both"
    );
}

#[test]
fn a_route_on_an_unnamed_cluster_merges_over_default() {
    let policy = parse(LAYERED).policy;
    let r = policy
        .lookup("unknown", "checkout")
        .retry
        .as_ref()
        .expect("on");
    assert_eq!(r.max_attempts, 1, "the route's");
    assert_eq!(
        r.deadline,
        Duration::from_secs(15),
        "the default, as default does not set it"
    );
}

#[test]
fn unknown_names_fall_back_to_default_and_to_no_route_layer() {
    let policy = parse(LAYERED).policy;
    assert_eq!(
        policy.lookup("unknown", "unknown"),
        policy.lookup("unknown", ""),
        "an unknown route adds nothing"
    );
    let fallback = policy.lookup("unknown", "unknown");
    assert_eq!(
        fallback.retry.as_ref().map(|r| r.max_attempts),
        Some(4),
        "default's"
    );
    assert_eq!(
        policy.lookup("payments", "unknown"),
        policy.lookup("payments", "other")
    );
}

#[test]
fn the_breaker_is_per_cluster_and_routes_never_change_it() {
    let policy = parse(LAYERED).policy;
    let cluster_breaker = policy.breaker_for("payments").cloned();
    assert_eq!(
        policy.lookup("payments", "checkout").breaker,
        cluster_breaker
    );
    assert_eq!(
        policy.breaker_for("unknown").map(|b| b.timeout),
        Some(Duration::from_secs(30)),
        "an unknown cluster has default's breaker"
    );
}

#[test]
fn nested_objects_merge_field_by_field() {
    let policy = parse(
        r#"{
        "default": {
            "circuit_breaker": {
                "failure_rate": {"threshold": 0.3, "window": "20s"},
                "fallback": {"status": 502, "body": "down"}
            },
            "retry": {"budget": {"ratio": 0.5, "window": "5s"}}
        },
        "clusters": {"a": {
            "circuit_breaker": {
                "failure_rate": {"minimum_requests": 50},
                "fallback": {"body": "a is down"}
            },
            "retry": {"budget": {"min_per_second": 3}}
        }}
    }"#,
    )
    .policy;
    let b = policy.breaker_for("a").expect("on");
    assert_eq!(
        b.failure_rate,
        Some(FailureRate { threshold: 0.3 }),
        "default's threshold"
    );
    assert_eq!(
        b.window,
        RateWindow {
            window: Duration::from_secs(20),
            minimum_requests: 50
        },
        "default's window with the cluster's minimum"
    );
    assert_eq!(
        (b.fallback.status, b.fallback.body.as_str()),
        (502, "a is down")
    );
    let budget = policy
        .lookup("a", "")
        .retry
        .as_ref()
        .and_then(|r| r.budget)
        .expect("on");
    assert_eq!(
        budget,
        BudgetPolicy {
            ratio: 0.5,
            min_per_second: 3,
            window: Duration::from_secs(5)
        }
    );
}

#[test]
fn lists_and_headers_are_replaced_whole() {
    let policy = parse(
        r#"{
        "default": {
            "circuit_breaker": {"failure_on": ["5xx", 429], "fallback": {"headers": {"x-a": "1", "x-b": "2"}}},
            "retry": {"methods": ["GET", "PUT"]}
        },
        "clusters": {"a": {
            "circuit_breaker": {"failure_on": ["reset"], "fallback": {"headers": {"x-c": "3"}}},
            "retry": {"methods": ["GET"]}
        }}
    }"#,
    )
    .policy;
    let b = policy.breaker_for("a").expect("on");
    assert_eq!(
        b.failure_on,
        matcher(&[OutcomeClass::Reset], &[]),
        "not a union"
    );
    assert_eq!(
        b.fallback.headers,
        [("x-c".to_owned(), "3".to_owned())],
        "so a header can go"
    );
    let methods = &policy.lookup("a", "").retry.as_ref().expect("on").methods;
    assert_eq!(methods, &["GET"], "so a method can be taken away");
}

#[test]
fn null_turns_the_breaker_off_in_default() {
    let policy = parse(r#"{"default": {"circuit_breaker": null}}"#).policy;
    assert_eq!(policy.breaker_for("any"), None);
    assert!(
        policy.lookup("any", "any").retry.is_some(),
        "retries stay on"
    );
}

#[test]
fn null_turns_retries_off_in_default() {
    let policy = parse(r#"{"default": {"retry": null}}"#).policy;
    assert_eq!(policy.lookup("any", "any").retry, None);
    assert!(policy.breaker_for("any").is_some(), "the breaker stays on");
}

#[test]
fn null_turns_a_half_off_for_one_cluster() {
    let policy =
        parse(r#"{"clusters": {"a": {"circuit_breaker": null}, "b": {"retry": null}}}"#).policy;
    assert_eq!(policy.breaker_for("a"), None, "a's breaker is off");
    assert!(policy.breaker_for("b").is_some(), "b's is not");
    assert_eq!(policy.lookup("b", "any").retry, None, "b's retries are off");
    assert!(policy.lookup("a", "any").retry.is_some(), "a's are not");
    assert!(
        policy.breaker_for("c").is_some(),
        "other clusters keep both"
    );
}

#[test]
fn null_turns_retries_off_for_one_route() {
    let policy = parse(r#"{"routes": {"upload": {"retry": null}}}"#).policy;
    assert_eq!(policy.lookup("any", "upload").retry, None);
    assert!(policy.lookup("any", "download").retry.is_some());
}

#[test]
fn a_route_with_a_null_breaker_bypasses_its_clusters_breaker() {
    let policy = parse(
        r#"{"clusters": {"payments": {"circuit_breaker": {"timeout": "5s"}}},
            "routes": {"health": {"circuit_breaker": null}}}"#,
    )
    .policy;
    assert_eq!(
        policy.lookup("payments", "health").breaker,
        None,
        "neither gated nor counted"
    );
    assert_eq!(
        policy.breaker_for("payments").map(|b| b.timeout),
        Some(Duration::from_secs(5)),
        "the cluster's breaker is still there for its other routes"
    );
    assert!(
        policy.lookup("payments", "health").retry.is_some(),
        "retries are untouched"
    );
}

#[test]
fn a_cluster_turns_on_what_default_turned_off_starting_from_the_defaults() {
    let policy = parse(
        r#"{"default": {"retry": null, "circuit_breaker": null},
            "clusters": {"a": {"retry": {"max_attempts": 2}, "circuit_breaker": {}}}}"#,
    )
    .policy;
    let a = policy.lookup("a", "");
    assert_eq!(a.retry.as_ref().map(|r| r.max_attempts), Some(2));
    assert_eq!(
        a.retry.as_ref().map(|r| r.deadline),
        Some(Duration::from_secs(15))
    );
    assert_eq!(
        a.breaker,
        Policy::default().breaker_for("x").cloned(),
        "{{}} is the defaults"
    );
}

#[test]
fn null_replaces_what_earlier_scopes_set() {
    let policy = parse(
        r#"{"default": {"retry": {"base_delay": "5s"}},
            "clusters": {"a": {"retry": null}},
            "routes": {"r": {"retry": {"max_attempts": 2}}}}"#,
    )
    .policy;
    let r = policy
        .lookup("a", "r")
        .retry
        .clone()
        .expect("the route turns retries on again");
    assert_eq!(
        r.backoff.base_delay,
        Duration::from_secs(1),
        "the cluster's null dropped default's 5s, so the route starts from the default 1s"
    );
    let on_default = policy.lookup("b", "r").retry.clone().expect("on");
    assert_eq!(
        on_default.backoff.base_delay,
        Duration::from_secs(5),
        "elsewhere default's"
    );
}

#[test]
fn null_turns_off_an_optional_trigger_set_in_an_earlier_scope() {
    let policy = parse(
        r#"{"default": {"circuit_breaker": {"failure_rate": {"window": "30s"}, "slow_call": {}}},
            "clusters": {"a": {"circuit_breaker": {"failure_rate": null, "slow_call": null}}}}"#,
    )
    .policy;
    let a = policy.breaker_for("a").expect("on");
    assert_eq!((a.failure_rate, a.slow_call), (None, None));
    assert_eq!(
        a.window.window,
        Duration::from_secs(10),
        "back to the default window"
    );
    let b = policy.breaker_for("b").expect("on");
    assert!(
        b.failure_rate.is_some() && b.slow_call.is_some(),
        "default's stay elsewhere"
    );
}

#[test]
fn null_turns_off_the_idempotency_key_and_the_budget_in_a_later_scope_only() {
    let policy = parse(
        r#"{"clusters": {"c": {"retry": {"budget": null}}},
            "routes": {"r": {"retry": {"idempotency_header": null}}}}"#,
    )
    .policy;
    let route = policy.lookup("x", "r").retry.clone().expect("on");
    assert_eq!(route.idempotency_header, None);
    assert!(route.budget.is_some(), "x's budget stays");
    let cluster = policy.lookup("c", "other").retry.clone().expect("on");
    assert_eq!(cluster.budget, None);
    assert!(cluster.idempotency_header.is_some());
    let both = policy.lookup("c", "r").retry.clone().expect("on");
    assert_eq!((both.idempotency_header, both.budget), (None, None));
    let other = policy.lookup("x", "other").retry.clone().expect("on");
    assert!(other.idempotency_header.is_some() && other.budget.is_some());
}

#[test]
fn every_route_to_a_cluster_uses_the_clusters_budget() {
    let policy = parse(
        r#"{"default": {"retry": {"budget": {"ratio": 0.3}}},
            "clusters": {"c": {"retry": {"budget": {"window": "20s"}}}},
            "routes": {"r": {"retry": {"max_attempts": 2}}}}"#,
    )
    .policy;
    let budget = |cluster: &str, route: &str| {
        let retry = policy.lookup(cluster, route).retry.clone().expect("on");
        retry.budget.expect("budgeted")
    };
    assert_eq!(budget("c", "r"), budget("c", "other"));
    assert_eq!(budget("c", "r").window, Duration::from_secs(20));
    assert_eq!(budget("c", "r").ratio, 0.3, "merged from default");
    assert_eq!(budget("x", "r"), budget("x", "other"));
}

#[test]
fn the_empty_policy_is_the_default_policy() {
    assert_eq!(parse("{}").policy, Policy::default());
    assert_eq!(
        parse(r#"{"default": {}, "clusters": {}, "routes": {}}"#).policy,
        Policy::default()
    );
}

#[test]
fn every_named_cluster_is_listed() {
    let policy = parse(LAYERED).policy;
    assert_eq!(policy.clusters().collect::<Vec<_>>(), ["payments"]);
}
