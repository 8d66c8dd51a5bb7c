//! The metric naming contract: Istio-style tags in the name, extracted into Prometheus labels by
//! the configs' `stats_tags`.

use breakwater_envoy::EnvoyConfig;

use crate::common::{counting, start, upstream};

/// Envoy with the no-op filter counting `stat`, after `n` requests.
fn counted(stat: &str, n: usize) -> breakwater_envoy::Envoy {
    let upstream = upstream("a");
    let envoy = start(
        &EnvoyConfig::new()
            .cluster("a", upstream.addr())
            .filter(counting(stat)),
    );
    for _ in 0..n {
        assert_eq!(envoy.get("/").expect("a response").status, 200);
    }
    envoy
}

#[test]
fn the_cluster_tag_becomes_a_prometheus_label() {
    let stat = "breakwater.breakwater_cluster=.=payments;.;requests_total";
    let envoy = counted(stat, 3);
    let stats = envoy.stats().expect("stats");
    assert_eq!(
        stats.number(&format!("wasmcustom.{stat}")),
        Some(3),
        "/stats shows the full name under wasmcustom."
    );
    let prometheus = envoy.prometheus().expect("prometheus");
    assert_eq!(
        prometheus.value(
            "breakwater_requests_total",
            &[("breakwater_cluster", "payments")]
        ),
        Some(3.0),
        "/stats/prometheus: the tag is cut out of the name, no envoy_ or wasmcustom prefix"
    );
    assert_eq!(
        prometheus.type_of("breakwater_requests_total"),
        Some("counter")
    );
}

#[test]
fn istio_cluster_names_and_a_reason_survive_as_label_values() {
    let cluster = "outbound|8080||reviews.default.svc.cluster.local";
    let stat = format!(
        "breakwater.breakwater_cluster=.={cluster};.;reason=.=budget;.;retries_skipped_total"
    );
    let envoy = counted(&stat, 2);
    let prometheus = envoy.prometheus().expect("prometheus");
    assert_eq!(
        prometheus.value(
            "breakwater_retries_skipped_total",
            &[("breakwater_cluster", cluster), ("reason", "budget")]
        ),
        Some(2.0),
        "dots and bars stay inside the label value: {:?}",
        prometheus
            .samples("breakwater_retries_skipped_total")
            .collect::<Vec<_>>()
    );
}
