//! The Grafana dashboard queries only what the filter really exports: every metric, label and
//! label value of its queries is checked against `/stats/prometheus` of a real Envoy 1.40
//! running the current filter, after traffic that makes the filter define every one of them
//! (it defines a metric on first use).

use breakwater_cli::dashboard::{self, Query};
use breakwater_cli::paths;
use breakwater_envoy::{Envoy, EnvoyConfig, Prometheus, Reply, Route, Upstream, WasmFilter};
use std::collections::BTreeSet;

/// Three clusters: `a` for the breaker's whole cycle and retries, `thrifty` with a retry budget
/// of zero, `shadowed` in shadow mode.
const POLICY: &str = r#"{
  "default": {
    "circuit_breaker": { "failure_threshold": 3, "timeout": "300ms", "max_timeout": "300ms" },
    "retry": {
      "max_attempts": 2, "base_delay": "1ms", "max_delay": "10ms", "jitter": false,
      "per_try_timeout": "5s", "deadline": "10s",
      "budget": { "ratio": 1.0, "min_per_second": 100, "window": "10s" }
    }
  },
  "clusters": {
    "thrifty": { "retry": { "budget": { "ratio": 0.0, "min_per_second": 0, "window": "10s" } } },
    "shadowed": { "circuit_breaker": { "mode": "shadow" }, "retry": null }
  }
}"#;

fn upstream(name: &str) -> Upstream {
    Upstream::start(name).unwrap_or_else(|e| panic!("upstream {name}: {e}"))
}

fn status(envoy: &Envoy, path: &str) -> (u16, Option<String>) {
    let response = envoy.get(path).expect("a response");
    let breaker = response.header("x-breakwater-breaker").map(str::to_string);
    (response.status, breaker)
}

/// Drives the filter through every event the dashboard shows, then reads `/stats/prometheus`.
fn exported_after_every_event() -> Prometheus {
    let (a, thrifty, shadowed) = (upstream("a"), upstream("thrifty"), upstream("shadowed"));
    let wasm = breakwater_wasm::breakwater().expect("the filter builds");
    let envoy = Envoy::start(
        &EnvoyConfig::new()
            .cluster("a", a.addr())
            .cluster("thrifty", thrifty.addr())
            .cluster("shadowed", shadowed.addr())
            .route(Route::prefix("thrifty", "/thrifty", "thrifty"))
            .route(Route::prefix("shadowed", "/shadowed", "shadowed"))
            .route(Route::prefix("main", "/", "a"))
            .filter(WasmFilter::new(wasm).configuration(POLICY)),
    )
    .expect("Envoy starts with the filter");

    // A retry that succeeds.
    a.script([Reply::Status(503), Reply::Status(200)]);
    assert_eq!(
        status(&envoy, "/a").0,
        200,
        "the retry's 200 reaches the client"
    );
    // Three requests whose retries are exhausted: three failures open the breaker.
    a.set_default(Reply::Status(503));
    for _ in 0..3 {
        assert_eq!(status(&envoy, "/a").0, 503);
    }
    // The fallback while open.
    assert_eq!(
        status(&envoy, "/a"),
        (503, Some("open".to_string())),
        "the breaker is open"
    );
    // After the open time, a probe succeeds: half-open, then closed.
    a.set_default(Reply::Status(200));
    envoy
        .wait_for("a probe to close the breaker", || {
            Ok(status(&envoy, "/a") == (200, None))
        })
        .expect("the breaker closes");
    // A retry refused by the budget.
    thrifty.set_default(Reply::Status(503));
    assert_eq!(status(&envoy, "/thrifty/x").0, 503);
    // Shadow mode: would open, then would reject, and never rejects.
    shadowed.set_default(Reply::Status(503));
    for _ in 0..4 {
        assert_eq!(
            status(&envoy, "/shadowed/x"),
            (503, None),
            "shadow never rejects"
        );
    }
    envoy.prometheus().expect("/stats/prometheus")
}

fn dashboard_queries() -> Vec<Query> {
    let text = std::fs::read_to_string(paths::dashboard()).expect("the dashboard");
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    dashboard::queries(&dashboard)
}

#[test]
fn the_dashboard_covers_breakers_fallbacks_retries_and_the_budget() {
    let queried: BTreeSet<String> = dashboard_queries()
        .iter()
        .flat_map(|q| dashboard::uses(&q.expr).metrics)
        .collect();
    for wanted in [
        "breakwater_breaker_state",
        "breakwater_breaker_opened_total",
        "breakwater_rejected_total",
        "breakwater_requests_total",
        "breakwater_retries_total",
        "breakwater_retry_successes_total",
        "breakwater_retries_exhausted_total",
        "breakwater_retries_skipped_total",
    ] {
        assert!(
            queried.contains(wanted),
            "no panel queries {wanted}: {queried:?}"
        );
    }
}

#[test]
fn every_metric_label_and_value_the_dashboard_queries_is_exported_by_the_filter() {
    let exported = exported_after_every_event();
    let queries = dashboard_queries();
    assert!(queries.len() >= 10, "the dashboard's queries were found");
    for query in &queries {
        let uses = dashboard::uses(&query.expr);
        let at = format!("panel {:?}: {}", query.place, query.expr);
        assert!(!uses.metrics.is_empty(), "{at}: queries no metric");
        for metric in &uses.metrics {
            assert!(
                metric.starts_with("breakwater_"),
                "{at}: {metric} is not one of Breakwater's metrics"
            );
            assert!(
                exported.samples(metric).next().is_some(),
                "{at}: {metric} is not in /stats/prometheus; Breakwater exports {:?}",
                exported
                    .types
                    .keys()
                    .filter(|k| k.starts_with("breakwater_"))
                    .collect::<Vec<_>>()
            );
            let kind = exported.type_of(metric);
            if uses.rated.contains(metric) {
                assert_eq!(kind, Some("counter"), "{at}: rate() of {metric}");
            }
        }
        let samples = || uses.metrics.iter().flat_map(|m| exported.samples(m));
        for label in &uses.labels {
            assert!(
                samples().any(|s| s.labels.contains_key(label)),
                "{at}: no sample of its metrics has the label {label}"
            );
        }
        for (label, value) in &uses.matchers {
            assert!(
                samples().any(|s| s.labels.get(label) == Some(value)),
                "{at}: no sample has {label}={value:?}"
            );
        }
    }
    assert_eq!(
        exported.type_of("breakwater_breaker_state"),
        Some("gauge"),
        "the state panel reads a gauge"
    );
    assert_eq!(
        exported.value(
            "breakwater_retries_skipped_total",
            &[("breakwater_cluster", "thrifty"), ("reason", "budget")]
        ),
        Some(1.0),
        "the budget panel's series is the thrifty cluster's refused retry"
    );
}
