//! Where a policy applies: `clusters.<name>` over `default` for the route's cluster, then
//! `routes.<name>` for the route's retries (a route may only turn its cluster's breaker off);
//! and the plugin's name keeps its state apart from another plugin's.

use breakwater_host_tests::{Reply, World};
use serde_json::json;

use crate::common::{
    answer_now, builder, count, fail_in_turn, flush, is_fallback, response, retries_sent, stat,
    CLUSTER, OTHER,
};

fn scoped() -> World {
    let p = json!({
        "default": {
            "circuit_breaker": { "failure_threshold": 5 },
            "retry": { "base_delay": "10ms", "max_attempts": 3 }
        },
        "clusters": { CLUSTER: { "circuit_breaker": { "failure_threshold": 3 } } },
        "routes": {
            "checkout": { "retry": { "max_attempts": 1 } },
            "health": { "circuit_breaker": null }
        }
    });
    let mut w = builder(2, &p).build().expect("starts");
    w.upstream(CLUSTER, Reply::status(503));
    w.upstream(OTHER, Reply::status(503));
    w
}

#[test]
fn a_cluster_override_applies_to_that_cluster_only() {
    let mut w = scoped();
    for (cluster, threshold) in [(CLUSTER, 3), (OTHER, 5)] {
        for i in 0..threshold {
            let opened = w.counter(&stat(cluster, "breaker_opened_total"));
            assert_eq!(opened, None, "{cluster}: still closed after {i} failures");
            w.request(i % 2).method("POST").cluster(cluster).send();
            w.run_until_idle();
        }
        assert_eq!(
            w.counter(&stat(cluster, "breaker_opened_total")),
            Some(1),
            "{cluster} opens at its own threshold, {threshold}"
        );
    }
}

#[test]
fn a_route_override_changes_the_retries_of_that_route_only() {
    let mut w = scoped();
    let checkout = w.request(0).route("checkout").cluster(CLUSTER).send();
    w.run_until_idle();
    assert_eq!(response(&w, checkout).header("x-breakwater-attempts"), None);
    assert!(
        retries_sent(&w, CLUSTER).is_empty(),
        "the checkout route does not retry"
    );

    let other = w.request(0).route("browse").cluster(CLUSTER).send();
    w.run_until_idle();
    assert_eq!(
        response(&w, other).header("x-breakwater-attempts"),
        Some("3"),
        "another route of the same cluster keeps the cluster's retries"
    );
}

#[test]
fn a_route_without_a_breaker_is_neither_gated_nor_counted() {
    let mut w = scoped();
    for i in 0..6 {
        w.request(i % 2)
            .route("health")
            .method("POST")
            .cluster(CLUSTER)
            .send();
        w.run_until_idle();
    }
    assert_eq!(
        count(&w, "breaker_opened_total"),
        0,
        "its failures are not counted"
    );
    assert_eq!(count(&w, "failures_total"), 0);

    fail_in_turn(&mut w, 3);
    w.run_until_idle();
    assert!(
        is_fallback(&answer_now(&mut w, 0)),
        "the cluster's breaker is open"
    );
    let s = w.request(1).route("health").cluster(CLUSTER).send();
    w.run_until_idle();
    let r = response(&w, s);
    assert!(!is_fallback(&r), "the route bypasses the open breaker");
    assert_eq!(
        r.header("x-breakwater-attempts"),
        Some("3"),
        "and still retries: no breaker stops it"
    );
}

#[test]
fn two_plugins_keep_their_state_under_their_own_names() {
    let p = json!({ "default": { "circuit_breaker": { "failure_threshold": 3 }, "retry": null } });
    let mut w = builder(1, &p).plugin_name("edge").build().expect("starts");
    w.upstream(CLUSTER, Reply::status(503));
    fail_in_turn(&mut w, 3);
    let keys: Vec<String> = w
        .shared_data_keys()
        .iter()
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .collect();
    assert_eq!(
        keys,
        vec![format!("breakwater/edge/v2/breaker/{CLUSTER}")],
        "keys carry the plugin's name and the format version (Istio shares one namespace)"
    );
}

#[test]
fn istio_cluster_names_name_the_stats_and_a_semicolon_cannot_break_the_tag_encoding() {
    let p = json!({ "default": { "circuit_breaker": { "failure_threshold": 3 }, "retry": null } });
    let mut w = builder(1, &p).build().expect("starts");
    let istio = "outbound|8080||payments.shop.svc.cluster.local";
    for cluster in [istio, "evil;.;cluster"] {
        w.upstream(cluster, Reply::ok());
        w.request(0).cluster(cluster).send();
    }
    w.run_until_idle();
    flush(&mut w);
    assert_eq!(w.counter(&stat(istio, "requests_total")), Some(1));
    assert_eq!(
        w.counter(&stat("evil_._cluster", "requests_total")),
        Some(1),
        "';' would end the tag early, so it becomes '_'"
    );
}
