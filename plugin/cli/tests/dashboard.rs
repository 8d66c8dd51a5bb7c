//! The Grafana dashboard queries only what the filter really exports: every metric, label and
//! label value of its queries is checked against `/stats/prometheus` of a real Envoy 1.40
//! running the current filter, after traffic that makes the filter define every one of them
//! (it defines a metric on first use).

use breakwater_cli::dashboard::{self, Query};
use breakwater_cli::paths;
use breakwater_envoy::{Envoy, EnvoyConfig, Prometheus, Reply, Route, Upstream, WasmFilter};
use std::collections::BTreeSet;

/// Four clusters: `a` for the breaker's whole cycle and retries, `thrifty` with a retry budget
/// of zero, `shadowed` in shadow mode, `probed` for a probe whose slot is reclaimed.
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
    "shadowed": { "circuit_breaker": { "mode": "shadow" }, "retry": null },
    "probed": {
      "circuit_breaker": {
        "failure_threshold": 3, "timeout": "100ms", "max_timeout": "100ms", "probe_timeout": "200ms"
      },
      "retry": null
    }
  }
}"#;

/// Metrics that only rare trouble defines, which no request through a healthy Envoy provokes:
/// bytes in shared data that do not decode (another writer's), and updates given up under a
/// storm of conflicting writes. The wasmtime harness provokes both (`host-tests/tests/faults`:
/// `garbage.rs`, `cas_storm.rs`); here the dashboard's name for each must be one the filter's
/// module carries, so a misspelt panel is still caught.
const RARE: [&str; 2] = [
    "breakwater_state_errors_total",
    "breakwater_state_contention_total",
];

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
    let probed = upstream("probed");
    let wasm = breakwater_wasm::breakwater().expect("the filter builds");
    let envoy = Envoy::start(
        &EnvoyConfig::new()
            .cluster("a", a.addr())
            .cluster("thrifty", thrifty.addr())
            .cluster("shadowed", shadowed.addr())
            .cluster("probed", probed.addr())
            .route(Route::prefix("probed", "/probed", "probed"))
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
    // A probe that outlives probe_timeout: the next request reclaims its slot.
    probed.set_default(Reply::Status(503));
    for _ in 0..3 {
        assert_eq!(status(&envoy, "/probed/x").0, 503);
    }
    assert_eq!(status(&envoy, "/probed/x").1.as_deref(), Some("open"));
    std::thread::sleep(std::time::Duration::from_millis(150));
    probed.set_default(Reply::Status(200));
    probed.set_delay(std::time::Duration::from_millis(800));
    std::thread::scope(|s| {
        let slow_probe = s.spawn(|| status(&envoy, "/probed/slow-probe"));
        std::thread::sleep(std::time::Duration::from_millis(400));
        assert_eq!(
            status(&envoy, "/probed/after").0,
            200,
            "the reclaimed slot's new probe"
        );
        assert_eq!(slow_probe.join().expect("the probe's client").0, 200);
    });
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
    let wasm = breakwater_wasm::breakwater().expect("the filter builds");
    let module = std::fs::read(wasm).expect("the module");
    let queries = dashboard_queries();
    assert!(queries.len() >= 10, "the dashboard's queries were found");
    for query in &queries {
        let uses = dashboard::uses(&query.expr);
        let at = format!("panel {:?}: {}", query.place, query.expr);
        assert!(!uses.metrics.is_empty(), "{at}: queries no metric");
        if uses.metrics.iter().all(|m| RARE.contains(&m.as_str())) {
            // Named like every per-cluster counter (`breakwater_cluster` comes from the same stat
            // name), which the other panels check against real samples.
            for metric in &uses.metrics {
                let name = metric.trim_start_matches("breakwater_");
                assert!(
                    module.windows(name.len()).any(|w| w == name.as_bytes()),
                    "{at}: the filter's module defines no {name}"
                );
            }
            assert_eq!(
                uses.labels,
                BTreeSet::from(["breakwater_cluster".to_string()]),
                "{at}"
            );
            continue;
        }
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

#[test]
fn the_dashboard_shows_shadow_breakers_state_trouble_and_reclaimed_probes() {
    let queried: BTreeSet<String> = dashboard_queries()
        .iter()
        .flat_map(|q| dashboard::uses(&q.expr).metrics)
        .collect();
    for wanted in [
        "breakwater_breaker_shadow_state",
        "breakwater_state_errors_total",
        "breakwater_state_contention_total",
        "breakwater_probes_reclaimed_total",
    ] {
        assert!(queried.contains(wanted), "no panel queries {wanted}");
    }
}

/// The skipped-retries panel explains every reason: the reasons of POLICY.md's table.
#[test]
fn the_skipped_retries_panel_names_every_reason_policy_md_lists() {
    let md = std::fs::read_to_string(paths::root().join("POLICY.md")).expect("POLICY.md");
    let table = md
        .split("| reason | field | why |")
        .nth(1)
        .expect("POLICY.md has the table of skip reasons");
    let reasons: Vec<&str> = table
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .filter_map(|l| l.split('`').nth(1))
        .collect();
    assert!(reasons.len() >= 9, "the reasons were read: {reasons:?}");
    let text = std::fs::read_to_string(paths::dashboard()).expect("the dashboard");
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let panels = dashboard["panels"].as_array().expect("panels");
    let panel = panels
        .iter()
        .find(|p| p["title"] == "Retries skipped, by reason")
        .expect("the panel");
    let description = panel["description"].as_str().unwrap_or_default();
    for reason in reasons {
        assert!(
            description.contains(&format!("{reason} (")),
            "the panel's description does not explain {reason}: {description}"
        );
    }
}
