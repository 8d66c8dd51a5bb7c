//! The metrics contract (README "Metrics"): every counter and the state gauge in
//! `/stats/prometheus` under its documented name, with the cluster (and reason) as labels, and
//! exact values for a known sequence of requests.

use std::collections::BTreeMap;

use breakwater_envoy::{EnvoyConfig, Reply, Request, Route};
use serde_json::json;

use crate::common::{breakwater, is_fallback, start, stat, upstream};

#[test]
fn every_metric_appears_in_prometheus_with_its_cluster_label_and_exact_value() {
    let upstream = upstream("shared");
    let policy = json!({
        "default": {
            "circuit_breaker": { "failure_threshold": 3, "timeout": "30s" },
            "retry": { "max_attempts": 2, "base_delay": "10ms", "jitter": false, "budget": null }
        },
        "clusters": {
            "shadowed": { "circuit_breaker": { "mode": "shadow" }, "retry": null },
            "frugal": {
                "retry": { "budget": { "ratio": 0.0, "min_per_second": 0, "window": "1s" } }
            }
        },
        "routes": {
            "hurry": { "retry": { "deadline": "1s", "per_try_timeout": "1s" } }
        }
    });
    let envoy = start(
        &EnvoyConfig::new()
            .cluster("main", upstream.addr())
            .cluster("shadowed", upstream.addr())
            .cluster("frugal", upstream.addr())
            .cluster("hurried", upstream.addr())
            .route(Route::prefix("shadow", "/shadowed/", "shadowed"))
            .route(Route::prefix("frugal", "/frugal/", "frugal"))
            .route(Route::prefix("hurry", "/hurry/", "hurried"))
            .route(Route::prefix("main", "/", "main"))
            .filter(breakwater(&policy)),
    );
    let get = |path: &str| envoy.get(path).expect("a response");

    // main: a success, a retried success, a POST that may not be retried, two exhausted
    // retries (the third failure opens the breaker), then a fallback.
    assert_eq!(get("/main/ok").status, 200);
    upstream.fail_first_per_path(1, Reply::Status(503));
    assert_eq!(
        get("/main/flaky").header("x-breakwater-attempts"),
        Some("2")
    );
    upstream.no_path_failures();
    upstream.respond_with(503);
    let post = envoy
        .send(&Request::post("/main/post", "x"))
        .expect("a response");
    assert_eq!(
        (post.status, post.header("x-breakwater-attempts")),
        (503, None)
    );
    for path in ["/main/down-1", "/main/down-2"] {
        let down = get(path);
        assert_eq!(
            (down.status, down.header("x-breakwater-attempts")),
            (503, Some("2"))
        );
    }
    assert!(
        is_fallback(&get("/main/rejected")),
        "the third failure opened the breaker"
    );

    // shadowed: three failures would open it; the fourth request would be rejected but passes.
    for i in 1..=4 {
        let response = get(&format!("/shadowed/{i}"));
        assert!(
            !is_fallback(&response),
            "shadow mode never rejects: {response:?}"
        );
    }
    assert_eq!(
        upstream.count("GET", "/shadowed/4"),
        1,
        "the shadow-rejected request passed"
    );

    // frugal: an empty retry budget skips the retry.
    assert_eq!(get("/frugal/1").header("x-breakwater-attempts"), None);
    // hurried: the route's deadline leaves no room for a retry (delay + per_try_timeout > 1s).
    assert_eq!(get("/hurry/1").header("x-breakwater-attempts"), None);

    breakwater_envoy::metrics::wait_for_flush();
    let prometheus = envoy.prometheus().expect("prometheus");
    // Not per cluster: the VMs' wasm memory, the largest and all together (two workers, each
    // with at least a MiB; the main thread's VM serves no request and never flushes).
    let memory = |name: &str| {
        let samples: Vec<_> = prometheus
            .samples
            .iter()
            .filter(|s| s.name == name)
            .collect();
        assert_eq!(samples.len(), 1, "one unlabelled {name}: {samples:?}");
        assert!(samples[0].labels.is_empty(), "{name} has no cluster");
        samples[0].value
    };
    let largest = memory("breakwater_wasm_memory_bytes");
    let total = memory("breakwater_wasm_memory_total_bytes");
    assert!(
        largest >= 1_048_576.0,
        "a worker VM holds at least a MiB: {largest}"
    );
    assert!(
        total >= largest && total <= 3.0 * largest,
        "all VMs that flushed together, one or two workers: {total} against {largest}"
    );
    assert_eq!(
        prometheus.type_of("breakwater_wasm_memory_bytes"),
        Some("gauge")
    );
    assert_eq!(
        prometheus.type_of("breakwater_wasm_memory_total_bytes"),
        Some("counter")
    );
    let seen: BTreeMap<(String, String), f64> = prometheus
        .samples
        .iter()
        .filter(|s| {
            s.name.starts_with("breakwater_") && !s.name.starts_with("breakwater_wasm_memory")
        })
        .map(|s| {
            let labels: Vec<String> = s.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            ((s.name.clone(), labels.join(",")), s.value)
        })
        .collect();
    let expected: BTreeMap<(String, String), f64> = [
        ("requests_total", "main", 6.0),
        ("failures_total", "main", 3.0),
        ("retries_total", "main", 3.0),
        ("retry_successes_total", "main", 1.0),
        ("retries_exhausted_total", "main", 2.0),
        ("retries_skipped_total", "main,reason=not_eligible", 1.0),
        ("breaker_opened_total", "main", 1.0),
        ("rejected_total", "main", 1.0),
        ("breaker_state", "main", 1.0),
        ("requests_total", "shadowed", 4.0),
        ("failures_total", "shadowed", 4.0),
        ("breaker_would_open_total", "shadowed", 1.0),
        // Shadow mode rejects nothing: the breaker's state is closed, and the state it would be
        // in, open, has a gauge of its own.
        ("breaker_state", "shadowed", 0.0),
        ("breaker_shadow_state", "shadowed", 1.0),
        ("shadow_rejected_total", "shadowed", 1.0),
        ("requests_total", "frugal", 1.0),
        ("failures_total", "frugal", 1.0),
        ("retries_skipped_total", "frugal,reason=budget", 1.0),
        // Every cluster's gauge exists from its first request: closed.
        ("breaker_state", "frugal", 0.0),
        ("requests_total", "hurried", 1.0),
        ("failures_total", "hurried", 1.0),
        ("retries_skipped_total", "hurried,reason=deadline", 1.0),
        ("breaker_state", "hurried", 0.0),
    ]
    .into_iter()
    .map(|(name, labels, value)| {
        (
            (
                format!("breakwater_{name}"),
                format!("breakwater_cluster={labels}"),
            ),
            value,
        )
    })
    .collect();
    assert_eq!(
        seen, expected,
        "exactly these series: one per cluster and metric that happened, none for what did not"
    );
    for (name, _) in expected.keys() {
        let gauges = [
            "breakwater_breaker_state",
            "breakwater_breaker_shadow_state",
        ];
        let kind = if gauges.contains(&name.as_str()) {
            "gauge"
        } else {
            "counter"
        };
        assert_eq!(prometheus.type_of(name), Some(kind), "{name} is a {kind}");
    }

    let stats = envoy.stats().expect("stats");
    assert_eq!(
        stats.number(&stat("main", "requests_total")),
        Some(6),
        "in /stats the name keeps the tag: {}",
        stat("main", "requests_total")
    );
    assert_eq!(
        stats.number(
            "wasmcustom.breakwater.breakwater_cluster=.=frugal;.;reason=.=budget;.;retries_skipped_total"
        ),
        Some(1)
    );
}

/// Istio's sidecar bootstrap adds stats tags of its own whose regexes are not anchored
/// (`tools/packaging/common/envoy_bootstrap.json`, Istio 1.31 development branch):
/// `(cache\.(.+?)\.)`, `(component\.(.+?)\.)`, `(tag\.(.+?);\.)`, `(wasm_filter\.(.+?)\.)`.
/// Envoy runs every tag extractor over the whole stat name, so a host that contains `cache.`
/// gives Breakwater's metrics of that cluster a stray label. Breakwater's own tags, anchored at
/// the start of the name, still cut the cluster out whole: the name and the cluster label are
/// right, the stray label is the only damage (examples/istio/README.md drops it at scrape time).
#[test]
fn istios_unanchored_tags_add_a_stray_label_but_the_anchored_cluster_tag_keeps_name_and_cluster() {
    let upstream = upstream("redis");
    let cluster = "outbound|6379||redis-cache.db.svc.cluster.local";
    let envoy = start(
        &EnvoyConfig::new()
            .cluster(cluster, upstream.addr())
            .stats_tag("cache", r"(cache\.(.+?)\.)")
            .stats_tag("component", r"(component\.(.+?)\.)")
            .filter(breakwater(&json!({}))),
    );
    assert_eq!(envoy.get("/").expect("a response").status, 200);
    // `requests_total` reaches Envoy's stats at the worker's next flush.
    breakwater_envoy::metrics::wait_for_flush();
    let prometheus = envoy.prometheus().expect("prometheus");
    let samples: Vec<_> = prometheus
        .samples
        .iter()
        .filter(|s| s.name == "breakwater_requests_total")
        .collect();
    assert_eq!(
        samples.len(),
        1,
        "one series, under its own name: {samples:?}"
    );
    let labels = &samples[0].labels;
    assert_eq!(
        labels.get("breakwater_cluster").map(String::as_str),
        Some(cluster),
        "the cluster label is whole"
    );
    assert_eq!(
        labels.get("cache").map(String::as_str),
        Some("db"),
        "Istio's cache tag matched inside the host: the stray label the README drops"
    );
    assert_eq!(samples[0].value, 1.0);
}
