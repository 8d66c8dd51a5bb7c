//! Where a policy applies: `services` keys by an Istio cluster name's host, port and subset,
//! `clusters.<name>` over `default` for the route's cluster, then `routes.<name>` for the
//! route's retries (a route may only turn its cluster's breaker off); Istio's special clusters
//! left alone; and the root id keeps a plugin's state apart from another plugin's.

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
fn two_plugins_keep_their_state_under_their_own_root_ids() {
    let p = json!({ "default": { "circuit_breaker": { "failure_threshold": 3 }, "retry": null } });
    let mut w = builder(1, &p)
        .plugin_name("istio-ingress.breakwater-gateway")
        .root_id("edge")
        .build()
        .expect("starts");
    w.upstream(CLUSTER, Reply::status(503));
    fail_in_turn(&mut w, 3);
    let keys: Vec<String> = w
        .shared_data_keys()
        .iter()
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .collect();
    assert_eq!(
        keys,
        vec![format!("breakwater/v3/edge/breaker/{CLUSTER}")],
        "keys carry the format version and the root id, Istio's pluginName (Istio shares one \
         namespace, and renames the plugin itself in 1.30)"
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

/// `services` in the filter: an Istio cluster name gets the keys its host, port and subset
/// match; Istio's PassthroughCluster gets neither breaker nor retries.
#[test]
fn istio_service_keys_apply_by_host_and_the_passthrough_cluster_is_left_alone() {
    let p = json!({
        "default": {
            "circuit_breaker": { "failure_threshold": 5 },
            "retry": { "base_delay": "10ms", "max_attempts": 3 }
        },
        "services": {
            "payments.shop.svc.cluster.local": { "circuit_breaker": { "failure_threshold": 2 } },
            "payments.shop.svc.cluster.local#v2": { "retry": null }
        }
    });
    let mut w = builder(2, &p).build().expect("starts");
    let v1 = "outbound|8080|v1|payments.shop.svc.cluster.local";
    let v2 = "outbound|8080|v2|payments.shop.svc.cluster.local";
    let passthrough = "PassthroughCluster";
    for cluster in [v1, v2, passthrough] {
        w.upstream(cluster, Reply::status(503));
    }

    let s = w.request(0).path("/").cluster(v1).send();
    w.run_until_idle();
    assert_eq!(
        response(&w, s).header("x-breakwater-attempts"),
        Some("3"),
        "v1: default's retries"
    );
    w.request(1).path("/").cluster(v1).send();
    w.run_until_idle();
    assert_eq!(
        w.counter(&stat(v1, "breaker_opened_total")),
        Some(1),
        "v1: the host's key opens the breaker after 2 failures"
    );

    let s = w.request(0).path("/").cluster(v2).send();
    w.run_until_idle();
    assert_eq!(
        response(&w, s).header("x-breakwater-attempts"),
        None,
        "v2: the subset's key turns retries off"
    );

    for i in 0..6 {
        let s = w.request(i % 2).path("/").cluster(passthrough).send();
        w.run_until_idle();
        let r = response(&w, s);
        assert_eq!(r.status, 503, "the upstream's own answer");
        assert_eq!(r.header("x-breakwater-attempts"), None, "never retried");
        assert!(!is_fallback(&r), "never held back by a breaker");
    }
    assert_eq!(
        w.upstream_attempts(passthrough).len(),
        6,
        "one attempt per request"
    );
    assert_eq!(w.counter(&stat(passthrough, "breaker_opened_total")), None);
    assert!(
        w.shared_data_keys()
            .iter()
            .all(|k| !String::from_utf8_lossy(k).contains(passthrough)),
        "no breaker or budget state for it"
    );
}
