//! The bench's pure parts against a fixed run: the keys of results.json, the targets, the tables
//! of BENCHMARKS.md and the command line. No Envoy, no load.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::analysis::OutageSummary;
use crate::failure::{self, Flaky};
use crate::fuel::Fuel;
use crate::machine::Machine;
use crate::markdown::{replace_section, rewrite, MarkerError, SECTIONS};
use crate::overhead::{self, Run, Runs};
use crate::results::Report;
use crate::setups::{Overhead, Resilience};
use crate::wrk::WrkReport;
use crate::{parse_options, Options};

fn wrk(rps: f64) -> WrkReport {
    WrkReport {
        requests: (rps * 10.0) as u64,
        requests_per_second: rps,
        p50_ms: 16_000.0 / rps,
        p99_ms: 40_000.0 / rps,
        non_2xx: 0,
        socket_errors: 0,
    }
}

/// Three rounds; the second ran on a machine twice as busy.
fn runs(per_config: [f64; 5]) -> Runs {
    let mut runs = Runs::default();
    for scale in [1.0, 0.5, 1.0] {
        for (config, rps) in Overhead::ALL.into_iter().zip(per_config) {
            runs.runs.push(Run {
                config,
                report: wrk(rps * scale),
                // The CPU per request does not move with the machine's load.
                envoy_cpu_us: Some(1e6 / rps),
            });
        }
    }
    runs
}

fn outage(upstream_rps: f64, recovery: Option<f64>) -> OutageSummary {
    OutageSummary {
        tripped_after: Some(0.05),
        upstream_rps_after_trip: upstream_rps,
        client_rps_after_trip: 9000.0,
        healthy_rps: 3000.0,
        offered_rps: 3000.0,
        recovery_seconds: recovery,
    }
}

fn flaky(success_rate: f64, amplification: f64) -> Flaky {
    Flaky {
        success_rate,
        amplification,
        client_requests: 60_000,
        upstream_requests: (60_000.0 * amplification) as usize,
        client_rps: 3000.0,
        p50_ms: Some(1.2),
        p99_ms: Some(45.0),
        stats: vec![("retries_total".to_string(), 25_000)],
    }
}

/// A run that meets every target; tests spoil one figure at a time.
fn report() -> Report {
    Report {
        command: "cargo run --release -p breakwater-envoy --bin bench".to_string(),
        date: "Thu, 01 Jan 2026 00:00:00 GMT".to_string(),
        quick: false,
        machine: Machine {
            description: "2 × AMD EPYC, Linux 6.18".to_string(),
            envoy_version: "abc/1.40.0/Clean/RELEASE/BoringSSL".to_string(),
        },
        load_before: Some(1.5),
        load_after: Some(2.5),
        elapsed: Duration::from_secs(480),
        overhead_plan: overhead::Plan {
            rounds: 3,
            run: Duration::from_secs(10),
            warm_up: Duration::from_secs(3),
            connections: 16,
        },
        overhead: runs([5000.0, 4000.0, 3880.0, 3700.0, 4900.0]),
        failure_plan: failure::Plan {
            connections: 16,
            warm_up: Duration::from_secs(2),
            flaky: Duration::from_secs(20),
            healthy: Duration::from_secs(2),
            outage: Duration::from_secs(12),
            after: Duration::from_secs(6),
        },
        failure: vec![
            (
                Resilience::Breakwater,
                failure::Results {
                    flaky: flaky(0.992, 1.42),
                    outage: outage(0.33, Some(2.1)),
                    outage_stats: vec![],
                    outage_timeline: vec![],
                },
            ),
            (
                Resilience::EnvoyNative,
                failure::Results {
                    flaky: flaky(0.97, 1.6),
                    outage: outage(2400.0, Some(0.01)),
                    outage_stats: vec![],
                    outage_timeline: vec![],
                },
            ),
        ],
        grpc_failure: vec![(
            crate::grpc::GrpcResilience::Breakwater,
            failure::Results {
                flaky: flaky(0.7, 1.0),
                outage: outage(0.5, Some(3.1)),
                outage_stats: vec![],
                outage_timeline: vec![],
            },
        )],
        fuel: Fuel {
            closed: 37_000,
            failure: 39_000,
            retry: 78_000,
            noop_closed: 4_500,
            closed_by_callback: BTreeMap::from([("proxy_on_request_headers".into(), 25_000.0)]),
            noop_by_callback: BTreeMap::new(),
        },
        wasm_bytes: 150_000,
        noop_wasm_bytes: 60_000,
    }
}

#[test]
fn results_json_has_every_key_the_issue_names() {
    let json = report().to_json();
    let configs = [
        "no_wasm",
        "noop_wasm",
        "breakwater",
        "breakwater_rate",
        "envoy_native",
    ];
    for config in configs {
        for figure in ["rps", "p99_ms", "p50_ms"] {
            assert!(
                json["overhead"][figure][config].is_number(),
                "overhead.{figure}.{config} is a number"
            );
        }
    }
    for ratio in [
        "ratio_breakwater_vs_noop",
        "ratio_breakwater_rate_vs_noop",
        "ratio_breakwater_vs_no_wasm",
        "ratio_envoy_native_vs_no_wasm",
    ] {
        assert!(json["overhead"][ratio].is_number(), "overhead.{ratio}");
    }
    for who in ["breakwater", "envoy_native"] {
        for key in ["success_rate", "amplification"] {
            assert!(json["flaky"][who][key].is_number(), "flaky.{who}.{key}");
        }
        for key in ["upstream_rps_after_trip", "recovery_seconds"] {
            assert!(json["outage"][who][key].is_number(), "outage.{who}.{key}");
        }
    }
    for path in ["closed", "failure", "retry"] {
        assert!(
            json["harness"]["fuel_per_request"][path].is_u64(),
            "harness.fuel_per_request.{path}"
        );
    }
    assert_eq!(json["wasm_bytes"], 150_000);
    assert_eq!(json["envoy_version"], "abc/1.40.0/Clean/RELEASE/BoringSSL");
}

#[test]
fn ratios_are_per_round_medians_so_a_busy_round_does_not_skew_them() {
    let json = report().to_json();
    assert_eq!(
        json["overhead"]["ratio_breakwater_vs_noop"], 0.97,
        "3880 / 4000"
    );
    assert_eq!(
        json["overhead"]["ratio_breakwater_rate_vs_noop"], 0.925,
        "3700 / 4000"
    );
    assert_eq!(
        json["overhead"]["ratio_breakwater_vs_no_wasm"], 0.776,
        "3880 / 5000"
    );
    assert_eq!(
        json["overhead"]["ratio_envoy_native_vs_no_wasm"], 0.98,
        "4900 / 5000"
    );
    assert_eq!(
        json["overhead"]["rps"]["no_wasm"], 5000.0,
        "median of 5000, 2500, 5000"
    );
    assert_eq!(
        json["overhead"]["cpu_ratio_breakwater_vs_noop"], 0.97,
        "250 µs per no-op request over 257.7 µs per Breakwater request"
    );
    assert_eq!(
        json["overhead"]["envoy_cpu_us_per_request"]["no_wasm"],
        200.0
    );
}

#[test]
fn a_run_that_meets_every_target_passes_them_all() {
    let targets = report().targets();
    assert_eq!(targets.len(), 6, "the issue's six targets");
    for t in &targets {
        assert!(t.pass, "{} passes with {}", t.name, t.measured);
    }
}

fn bw(r: &mut Report) -> &mut failure::Results {
    &mut r.failure[0].1
}

#[test]
fn each_target_fails_on_its_own_figure() {
    let failing = |spoil: &dyn Fn(&mut Report), which: &str| {
        let mut r = report();
        spoil(&mut r);
        let failed: Vec<_> = r.targets().into_iter().filter(|t| !t.pass).collect();
        assert_eq!(failed.len(), 1, "only {which} fails: {failed:?}");
        assert!(failed[0].name.contains(which), "{which}: {:?}", failed[0]);
    };
    failing(
        &|r| r.overhead = runs([5000.0, 4000.0, 3700.0, 3700.0, 4900.0]),
        "Breakwater ÷ no-op",
    );
    failing(
        &|r| r.overhead = runs([5000.0, 4000.0, 3880.0, 3500.0, 4900.0]),
        "`failure_rate`",
    );
    failing(&|r| bw(r).flaky.success_rate = 0.985, "success rate");
    failing(&|r| bw(r).flaky.amplification = 1.55, "amplification");
    failing(
        &|r| bw(r).outage.upstream_rps_after_trip = 31.0,
        "upstream req/s",
    );
    failing(&|r| bw(r).outage.recovery_seconds = Some(4.2), "recovery");
    failing(&|r| bw(r).outage.recovery_seconds = None, "recovery");
}

#[test]
fn the_overhead_targets_are_judged_on_envoy_cpu_per_request_not_on_req_per_s() {
    let overhead_targets = |r: &Report| -> Vec<(bool, String)> {
        r.targets()
            .into_iter()
            .filter(|t| t.name.starts_with("overhead"))
            .map(|t| (t.pass, t.measured))
            .collect()
    };
    // A busy machine halves Breakwater's req/s in every round; its Envoy CPU per request stays
    // within the targets.
    let mut r = report();
    for run in &mut r.overhead.runs {
        if matches!(run.config, Overhead::Breakwater | Overhead::BreakwaterRate) {
            run.report.requests_per_second /= 2.0;
        }
    }
    let judged = overhead_targets(&r);
    assert!(
        judged.iter().all(|(pass, _)| *pass),
        "the CPU ratio passes whatever req/s did: {judged:?}"
    );
    assert!(
        judged[0].1.contains("(req/s 0.485)"),
        "the req/s ratio is shown beside it: {judged:?}"
    );
    // Breakwater's CPU per request grows by a fifth: both fail, whatever req/s says.
    let mut r = report();
    for run in &mut r.overhead.runs {
        if matches!(run.config, Overhead::Breakwater | Overhead::BreakwaterRate) {
            run.envoy_cpu_us = run.envoy_cpu_us.map(|us| us * 1.2);
        }
    }
    assert!(
        overhead_targets(&r).iter().all(|(pass, _)| !pass),
        "{:?}",
        overhead_targets(&r)
    );
}

#[test]
fn an_outage_without_a_trip_fails_the_load_shedding_target_even_if_the_rate_is_low() {
    let mut r = report();
    r.failure[0].1.outage.tripped_after = None;
    let shed = r
        .targets()
        .into_iter()
        .find(|t| t.name.contains("upstream req/s"))
        .expect("the load-shedding target");
    assert!(!shed.pass, "no trip, no shedding: {shed:?}");
    assert!(shed.measured.contains("never tripped"), "{}", shed.measured);
}

fn document() -> String {
    let mut doc = "# Benchmarks\n\nHand-written intro.\n".to_string();
    for name in SECTIONS {
        doc.push_str(&format!(
            "\n## {name}\n<!-- bench:{name}:begin -->\nold {name}\n<!-- bench:{name}:end -->\nprose after {name}\n"
        ));
    }
    doc
}

#[test]
fn rewriting_replaces_only_the_generated_sections() {
    let doc = rewrite(&document(), &report()).expect("every marker is there");
    assert!(doc.starts_with("# Benchmarks\n\nHand-written intro.\n"));
    for name in SECTIONS {
        assert!(!doc.contains(&format!("old {name}")), "{name} replaced");
        assert!(
            doc.contains(&format!("prose after {name}")),
            "prose after {name} kept"
        );
    }
    assert!(
        doc.contains("| (c) Breakwater, default policy | 3880 |"),
        "{doc}"
    );
    assert!(
        doc.contains("| c/b Breakwater ÷ no-op filter | 0.970 | 0.970 |")
            && doc.contains("| from Envoy CPU per request (the targets) | from req/s |"),
        "{doc}"
    );
    assert!(
        doc.contains("abc/1.40.0/Clean/RELEASE/BoringSSL"),
        "Envoy version"
    );
    assert!(doc.contains("`cargo run --release -p breakwater-envoy --bin bench`"));
    assert!(doc.contains("| PASS |"));
    let again = rewrite(&doc, &report()).expect("markers survive a rewrite");
    assert_eq!(again, doc, "rewriting is idempotent");
}

#[test]
fn a_failed_target_is_written_as_fail() {
    let mut r = report();
    r.failure[0].1.flaky.success_rate = 0.9;
    let doc = rewrite(&document(), &r).expect("markers");
    assert!(
        doc.contains("| flaky 30%: Breakwater success rate | 0.900 | ≥ 0.99 | FAIL |"),
        "{doc}"
    );
}

#[test]
fn missing_doubled_or_misordered_markers_are_errors() {
    let doc = "<!-- bench:run:begin -->\n<!-- bench:run:end -->\n";
    assert_eq!(
        replace_section(doc, "overhead", "x"),
        Err(MarkerError::Missing(
            "<!-- bench:overhead:begin -->".to_string()
        ))
    );
    let doubled = format!("{doc}{doc}");
    assert!(matches!(
        replace_section(&doubled, "run", "x"),
        Err(MarkerError::Doubled(_))
    ));
    let backwards = "<!-- bench:run:end -->\n<!-- bench:run:begin -->\n";
    assert!(matches!(
        replace_section(backwards, "run", "x"),
        Err(MarkerError::Misordered { .. })
    ));
}

#[test]
fn the_committed_benchmarks_md_has_every_marker() {
    let path = breakwater_wasm::workspace_root().join("BENCHMARKS.md");
    let doc = std::fs::read_to_string(&path).expect("BENCHMARKS.md exists at the root");
    rewrite(&doc, &report()).expect("the bench can rewrite the committed file");
}

#[test]
fn quick_runs_are_short_and_leave_benchmarks_md_alone() {
    let quick = parse_options(&["--quick".to_string()]).expect("valid");
    assert_eq!(
        quick,
        Options {
            quick: true,
            rounds: 1,
            seconds: 2,
            connections: 16,
            markdown: false,
            serve: None,
            wasm: None,
        }
    );
    let full = parse_options(&[]).expect("valid");
    assert!(full.markdown && full.rounds == 8 && full.seconds == 6);
    let forced = parse_options(&["--quick".into(), "--markdown".into()]).expect("valid");
    assert!(forced.markdown, "--markdown overrides the quick default");
}

#[test]
fn bad_options_are_refused_with_their_name() {
    let error = parse_options(&["--rounds".into(), "zero".into()]).expect_err("not a number");
    assert!(error.contains("--rounds"), "{error}");
    let error = parse_options(&["--fast".into()]).expect_err("unknown");
    assert!(error.contains("--fast"), "{error}");
    let error = parse_options(&["--serve".into(), "nginx".into()]).expect_err("no such config");
    assert!(error.contains("nginx"), "{error}");
    let serve = parse_options(&["--serve".into(), "breakwater".into()]).expect("a config");
    assert_eq!(serve.serve.as_deref(), Some("breakwater"));
}
