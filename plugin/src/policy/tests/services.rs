//! `services`: Istio's cluster names matched by host, port and subset; the precedence of
//! `services`, `clusters` and `routes`; Istio's special clusters; and `state_scope`.

use super::*;
use proptest::prelude::*;
use std::time::Duration;

const REVIEWS: &str = "reviews.default.svc.cluster.local";

/// Istio's name for the cluster of `REVIEWS` on `port`, subset `subset` ("" for none).
fn reviews(port: u16, subset: &str) -> String {
    format!("outbound|{port}|{subset}|{REVIEWS}")
}

/// The failure threshold a cluster's breaker ends up with.
fn threshold(policy: &Policy, cluster: &str) -> Option<u32> {
    policy.breaker_for(cluster).map(|b| b.failure_threshold)
}

/// Each key sets a different failure threshold, so the value shows which key won.
const LAYERED: &str = r#"{
    "default": {"circuit_breaker": {"failure_threshold": 5}},
    "services": {
        "reviews.default.svc.cluster.local:9080#v2": {"circuit_breaker": {"failure_threshold": 14}},
        "reviews.default.svc.cluster.local#v2": {"circuit_breaker": {"failure_threshold": 13}},
        "reviews.default.svc.cluster.local:9080": {"circuit_breaker": {"failure_threshold": 12}},
        "reviews.default.svc.cluster.local": {
            "circuit_breaker": {"failure_threshold": 11, "timeout": "45s"}
        }
    }
}"#;

#[test]
fn a_service_key_matches_its_host_across_ports_and_subsets() {
    let policy =
        parse(r#"{"services": {"reviews.default.svc.cluster.local": {"retry": null}}}"#).policy;
    for cluster in [reviews(9080, ""), reviews(9080, "v1"), reviews(8443, "v3")] {
        assert_eq!(
            policy.lookup(&cluster, "any").retry,
            None,
            "{cluster} is a cluster of the service"
        );
        assert!(
            policy.lookup(&cluster, "any").breaker.is_some(),
            "{cluster}"
        );
    }
    let other = "outbound|9080||ratings.default.svc.cluster.local";
    assert!(
        policy.lookup(other, "any").retry.is_some(),
        "another host gets default"
    );
}

#[test]
fn the_most_specific_key_wins_and_the_others_still_fill_in() {
    let policy = parse(LAYERED).policy;
    let cases = [
        (reviews(8080, ""), 11, "HOST alone"),
        (reviews(9080, ""), 12, "HOST:PORT over HOST"),
        (reviews(8080, "v2"), 13, "HOST#SUBSET over HOST"),
        (reviews(9080, "v2"), 14, "HOST:PORT#SUBSET over everything"),
        (reviews(9080, "v1"), 12, "another subset: HOST:PORT"),
    ];
    for (cluster, expected, why) in cases {
        assert_eq!(
            threshold(&policy, &cluster),
            Some(expected),
            "{why}: {cluster}"
        );
        let timeout = policy.breaker_for(&cluster).map(|b| b.timeout);
        assert_eq!(
            timeout,
            Some(Duration::from_secs(45)),
            "{why}: HOST's timeout fills in under every more specific key"
        );
    }
    assert_eq!(
        threshold(&policy, "reviews"),
        Some(5),
        "a name that is not Istio's gets default"
    );
}

#[test]
fn a_subset_outranks_a_port() {
    let policy = parse(
        r#"{"services": {
            "reviews.default.svc.cluster.local:9080": {"retry": {"max_attempts": 2}},
            "reviews.default.svc.cluster.local#v2": {"retry": {"max_attempts": 4}}
        }}"#,
    )
    .policy;
    let attempts = |cluster: &str| {
        let retry = policy.lookup(cluster, "any").retry.as_ref();
        retry.map(|r| r.max_attempts)
    };
    assert_eq!(
        attempts(&reviews(9080, "v2")),
        Some(4),
        "#v2 merges after :9080"
    );
    assert_eq!(attempts(&reviews(9080, "v1")), Some(2));
    assert_eq!(attempts(&reviews(80, "v2")), Some(4));
    assert_eq!(attempts(&reviews(80, "")), Some(3), "neither: default");
}

#[test]
fn an_exact_cluster_merges_over_the_service_keys_its_name_matches() {
    let policy = parse(&format!(
        r#"{{"services": {{"{REVIEWS}": {{"circuit_breaker": {{"timeout": "45s"}}}}}},
            "clusters": {{"{}": {{"circuit_breaker": {{"failure_threshold": 20}}}}}}}}"#,
        reviews(9080, "v2")
    ))
    .policy;
    let exact = policy.breaker_for(&reviews(9080, "v2")).expect("on");
    assert_eq!(exact.failure_threshold, 20, "clusters wins");
    assert_eq!(exact.timeout, Duration::from_secs(45), "services fills in");
    assert_eq!(threshold(&policy, &reviews(9080, "v1")), Some(5));
}

#[test]
fn a_route_merges_over_services_and_clusters() {
    let policy = parse(&format!(
        r#"{{"services": {{"{REVIEWS}": {{"retry": {{"max_attempts": 2, "base_delay": "2s"}}}}}},
            "routes": {{"reviews-get": {{"retry": {{"max_attempts": 5}}}}}}}}"#
    ))
    .policy;
    let retry = policy
        .lookup(&reviews(9080, ""), "reviews-get")
        .retry
        .clone();
    let retry = retry.expect("on");
    assert_eq!(retry.max_attempts, 5, "the route is merged last");
    assert_eq!(
        retry.backoff.base_delay,
        Duration::from_secs(2),
        "the service's"
    );
    let other = policy.lookup(&reviews(9080, ""), "other").retry.clone();
    assert_eq!(other.map(|r| r.max_attempts), Some(2));
}

#[test]
fn istios_special_clusters_get_no_breaker_and_no_retries_by_default() {
    let policy = Policy::default();
    for cluster in [
        "PassthroughCluster",
        "BlackHoleCluster",
        "InboundPassthroughCluster",
        "InboundPassthroughClusterIpv4",
        "AllowAnyDynamicDNSCluster",
    ] {
        let effective = policy.lookup(cluster, "any");
        assert_eq!(
            (&effective.breaker, &effective.retry),
            (&None, &None),
            "{cluster}"
        );
        assert_eq!(policy.breaker_for(cluster), None, "{cluster}");
    }
    let inbound = policy.lookup("inbound|9080||", "any");
    assert!(inbound.breaker.is_some(), "an inbound cluster is a service");
}

#[test]
fn special_clusters_guard_gives_them_the_policy_and_an_exact_name_opts_one_in() {
    let guarded = parse(r#"{"special_clusters": "guard"}"#).policy;
    assert!(guarded
        .lookup("PassthroughCluster", "any")
        .breaker
        .is_some());
    assert!(guarded.lookup("BlackHoleCluster", "any").retry.is_some());
    let named = parse(r#"{"clusters": {"PassthroughCluster": {"retry": null}}}"#).policy;
    let passthrough = named.lookup("PassthroughCluster", "any");
    assert!(passthrough.breaker.is_some(), "named exactly: in");
    assert_eq!(passthrough.retry, None, "with its own settings");
    assert_eq!(
        named.lookup("BlackHoleCluster", "any").breaker,
        None,
        "the others stay out"
    );
    let bypass = parse(r#"{"special_clusters": "bypass"}"#).policy;
    assert_eq!(bypass.lookup("PassthroughCluster", "any").breaker, None);
}

#[test]
fn malformed_service_keys_and_special_values_are_refused_with_the_rule() {
    assert_eq!(
        problems(r#"{"services": {"outbound|9080||reviews": {}}}"#),
        [
            "\"outbound|9080||reviews\" is not a service key, which is HOST, HOST:PORT, \
          HOST#SUBSET or HOST:PORT#SUBSET: a host is letters, digits, `-`, `.`, `_` and `*` \
          only (at services.outbound|9080||reviews)"
        ]
    );
    assert_eq!(
        problems(r#"{"services": {"reviews.default.svc.cluster.local:0": {}}}"#),
        [
            "\"reviews.default.svc.cluster.local:0\" is not a service key, which is HOST, \
          HOST:PORT, HOST#SUBSET or HOST:PORT#SUBSET: the port after `:` must be 1..=65535, \
          without leading zeros (at services.reviews.default.svc.cluster.local:0)"
        ]
    );
    assert_eq!(
        problems(r#"{"special_clusters": "skip"}"#),
        ["special_clusters: \"skip\" is not \"bypass\" or \"guard\" (at top level)"]
    );
}

#[test]
fn names_that_can_never_match_an_istio_cluster_are_warned_about() {
    assert_eq!(
        warnings(r#"{"clusters": {"reviews.default.svc.cluster.local": {}}}"#),
        [
            "\"reviews.default.svc.cluster.local\" is a service's host, but Istio names clusters \
          outbound|PORT|SUBSET|HOST, so this entry matches no cluster of Istio's; write it under \
          services (at clusters.reviews.default.svc.cluster.local)"
        ]
    );
    assert_eq!(
        warnings(r#"{"services": {"payments": {}}}"#),
        [
            "\"payments\" has a host without a dot, which matches a cluster of that exact host \
          only; Istio names a Kubernetes service by its full name \
          (<name>.<namespace>.svc.cluster.local) (at services.payments)"
        ]
    );
}

#[test]
fn a_rule_broken_by_a_service_key_is_reported_once_where_it_is_written() {
    let found = problems(&format!(
        r#"{{"services": {{
            "{REVIEWS}": {{"retry": {{"base_delay": "5s"}}}},
            "{REVIEWS}:9080": {{"retry": {{"max_delay": "2s"}}}}
        }}}}"#
    ));
    assert_eq!(
        found,
        [format!(
            "retry.max_delay: \"2s\" is shorter than retry.base_delay \"5s\", must be at least \
             that (at services.{REVIEWS}:9080 with services.{REVIEWS})"
        )]
    );
}

#[test]
fn service_combinations_count_toward_the_table_limit() {
    let keys: Vec<String> = (1..=100)
        .map(|port| format!(r#""{REVIEWS}:{port}": {{}}"#))
        .chain((0..99).map(|i| format!(r#""{REVIEWS}#v{i}": {{}}"#)))
        .collect();
    let found = problems(&format!(r#"{{"services": {{{}}}}}"#, keys.join(",")));
    assert_eq!(
        found,
        [
            "0 clusters, 10100 combinations of services keys and 0 routes resolve to 10101 \
          policies, which every worker keeps; must be at most 10000 (at top level)"
        ]
    );
}

proptest! {
    /// Whatever subset of the four keys a policy writes, a cluster gets the value of the most
    /// specific key that matches it, and `default`'s when none does.
    #[test]
    fn the_most_specific_matching_key_wins(
        written in proptest::collection::vec(any::<bool>(), 4),
        port in prop_oneof![Just(9080u16), Just(8080u16)],
        subset in prop_oneof![Just("v2"), Just("v1"), Just("")],
    ) {
        let keys = [
            REVIEWS.to_owned(),
            format!("{REVIEWS}:9080"),
            format!("{REVIEWS}#v2"),
            format!("{REVIEWS}:9080#v2"),
        ];
        let entries: Vec<String> = keys
            .iter()
            .zip(&written)
            .enumerate()
            .filter(|(_, (_, on))| **on)
            .map(|(i, (key, _))| {
                format!(r#""{key}": {{"circuit_breaker": {{"failure_threshold": {}}}}}"#, 11 + i)
            })
            .collect();
        let policy = parse(&format!(r#"{{"services": {{{}}}}}"#, entries.join(","))).policy;
        let matches = [true, port == 9080, subset == "v2", port == 9080 && subset == "v2"];
        let expected = (0..4)
            .rev()
            .find(|i| written[*i] && matches[*i])
            .map_or(5, |i| 11 + i as u32);
        let cluster = reviews(port, subset);
        prop_assert_eq!(threshold(&policy, &cluster), Some(expected), "{}", cluster);
    }
}

#[test]
fn state_scope_is_a_short_name_and_absent_by_default() {
    assert_eq!(Policy::default().state_scope(), None);
    let scoped = parse(r#"{"state_scope": "shop.edge_1"}"#).policy;
    assert_eq!(scoped.state_scope(), Some("shop.edge_1"));
    for bad in ["", "shop/edge", "shop edge"] {
        let found = problems(&format!(r#"{{"state_scope": "{bad}"}}"#));
        assert_eq!(
            found,
            [format!(
                "state_scope: \"{bad}\" is not a state scope, must be 1 to 128 letters, digits, \
                 `-`, `.` and `_` (at top level)"
            )],
            "{bad:?}"
        );
    }
    let long = problems(&format!(r#"{{"state_scope": "{}"}}"#, "a".repeat(129)));
    assert!(
        long.len() == 1 && long[0].contains("is not a state scope, must be 1 to 128"),
        "{long:?}"
    );
    assert!(
        Policy::parse(format!(r#"{{"state_scope": "{}"}}"#, "a".repeat(128)).as_bytes()).is_ok()
    );
    assert_eq!(
        problems(r#"{"state_scope": 7}"#),
        ["state_scope: 7 is not a string (at top level)"]
    );
}
