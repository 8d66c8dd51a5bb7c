//! Everything one bench run measured, the figures derived from it, and `results.json` (the
//! targets are checked in [`crate::targets`]).

use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::failure::{self, Flaky};
use crate::fuel::Fuel;
use crate::grpc::GrpcResilience;
use crate::machine::Machine;
use crate::overhead::{self, Runs};
use crate::setups::{Overhead, Resilience};
use crate::stats::{median, median_ratio, round, spread};

/// One bench run.
#[derive(Debug, Clone)]
pub struct Report {
    pub command: String,
    pub date: String,
    pub quick: bool,
    pub machine: Machine,
    /// One-minute load average before and after the run.
    pub load_before: Option<f64>,
    pub load_after: Option<f64>,
    pub elapsed: Duration,
    pub overhead_plan: overhead::Plan,
    pub overhead: Runs,
    pub failure_plan: failure::Plan,
    pub failure: Vec<(Resilience, failure::Results)>,
    /// The same scenarios for gRPC (same plan).
    pub grpc_failure: Vec<(GrpcResilience, failure::Results)>,
    pub fuel: Fuel,
    pub wasm_bytes: u64,
    pub noop_wasm_bytes: u64,
}

/// The medians of one overhead configuration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Row {
    pub rps: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// (max − min) / median of the rounds' req/s.
    pub rps_spread: Option<f64>,
    /// Envoy's CPU time per request (all its threads), in microseconds.
    pub envoy_cpu_us: Option<f64>,
    pub errors: u64,
}

/// A ratio of part 1 (one configuration's req/s over another's, round by round).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ratio {
    pub key: &'static str,
    pub label: &'static str,
    pub value: Option<f64>,
    /// The same comparison from Envoy's CPU time per request (the baseline's over the
    /// configuration's, round by round): what the throughput ratio would be if Envoy alone were
    /// the bottleneck. Less sensitive to other load on the machine than req/s.
    pub cpu_value: Option<f64>,
}

impl Report {
    pub fn row(&self, config: Overhead) -> Row {
        let rps = self.overhead.rps(config);
        Row {
            rps: median(&rps),
            p50_ms: median(&self.overhead.p50(config)),
            p99_ms: median(&self.overhead.p99(config)),
            rps_spread: spread(&rps),
            envoy_cpu_us: median(&self.overhead.envoy_cpu_us(config)),
            errors: self.overhead.errors(config),
        }
    }

    fn ratio(&self, key: &'static str, label: &'static str, a: Overhead, b: Overhead) -> Ratio {
        let cpu = |c| self.overhead.envoy_cpu_us(c);
        Ratio {
            key,
            label,
            value: median_ratio(&self.overhead.rps(a), &self.overhead.rps(b)),
            cpu_value: median_ratio(&cpu(b), &cpu(a)),
        }
    }

    /// c/b, d/b, c/a, e/a.
    pub fn ratios(&self) -> [Ratio; 4] {
        use Overhead::*;
        [
            self.ratio(
                "ratio_breakwater_vs_noop",
                "c/b Breakwater ÷ no-op filter",
                Breakwater,
                NoopWasm,
            ),
            self.ratio(
                "ratio_breakwater_rate_vs_noop",
                "d/b Breakwater with `failure_rate` ÷ no-op filter",
                BreakwaterRate,
                NoopWasm,
            ),
            self.ratio(
                "ratio_breakwater_vs_no_wasm",
                "c/a Breakwater ÷ no wasm",
                Breakwater,
                NoWasm,
            ),
            self.ratio(
                "ratio_envoy_native_vs_no_wasm",
                "e/a Envoy native ÷ no wasm",
                EnvoyNative,
                NoWasm,
            ),
        ]
    }

    pub fn results_of(&self, who: Resilience) -> Option<&failure::Results> {
        self.failure.iter().find(|(r, _)| *r == who).map(|(_, x)| x)
    }

    /// `results.json`.
    pub fn to_json(&self) -> Value {
        let per_config = |f: &dyn Fn(Row) -> Option<f64>, digits| -> Value {
            Overhead::ALL
                .iter()
                .map(|c| {
                    (
                        c.key().to_string(),
                        json!(f(self.row(*c)).map(|v| round(v, digits))),
                    )
                })
                .collect::<Map<_, _>>()
                .into()
        };
        let mut overhead = Map::new();
        overhead.insert("rps".into(), per_config(&|r| r.rps, 1));
        overhead.insert("p50_ms".into(), per_config(&|r| r.p50_ms, 3));
        overhead.insert("p99_ms".into(), per_config(&|r| r.p99_ms, 3));
        overhead.insert("rps_spread".into(), per_config(&|r| r.rps_spread, 3));
        overhead.insert(
            "envoy_cpu_us_per_request".into(),
            per_config(&|r| r.envoy_cpu_us, 2),
        );
        for ratio in self.ratios() {
            overhead.insert(ratio.key.into(), json!(ratio.value.map(|v| round(v, 4))));
            overhead.insert(
                format!("cpu_{}", ratio.key),
                json!(ratio.cpu_value.map(|v| round(v, 4))),
            );
        }
        overhead.insert(
            "errors".into(),
            Overhead::ALL
                .iter()
                .map(|c| (c.key().to_string(), json!(self.row(*c).errors)))
                .collect::<Map<_, _>>()
                .into(),
        );
        overhead.insert(
            "rounds".into(),
            Overhead::ALL
                .iter()
                .map(|c| (c.key().to_string(), json!(self.overhead.rps(*c))))
                .collect::<Map<_, _>>()
                .into(),
        );
        overhead.insert(
            "plan".into(),
            json!({
                "rounds": self.overhead_plan.rounds,
                "seconds_per_run": self.overhead_plan.run.as_secs_f64(),
                "connections": self.overhead_plan.connections,
                "envoy_workers": 2,
                "load_generator": "wrk --threads 1",
            }),
        );
        let mut flaky = Map::new();
        let mut outage = Map::new();
        for (who, r) in &self.failure {
            flaky.insert(who.key().into(), flaky_json(&r.flaky));
            outage.insert(who.key().into(), outage_json(r));
        }
        flaky.insert("failure_ratio".into(), json!(failure::FLAKY_RATIO));
        flaky.insert(
            "seconds".into(),
            json!(self.failure_plan.flaky.as_secs_f64()),
        );
        outage.insert(
            "timeline_columns".into(),
            json!([
                "slice start (s)",
                "client 2xx",
                "client other",
                "of which Breakwater fallbacks",
                "upstream requests"
            ]),
        );
        outage.insert(
            "seconds".into(),
            json!({
                "healthy": self.failure_plan.healthy.as_secs_f64(),
                "outage": self.failure_plan.outage.as_secs_f64(),
                "after": self.failure_plan.after.as_secs_f64(),
            }),
        );
        let mut grpc_flaky = Map::new();
        let mut grpc_outage = Map::new();
        for (who, r) in &self.grpc_failure {
            grpc_flaky.insert(who.key().into(), flaky_json(&r.flaky));
            grpc_outage.insert(who.key().into(), outage_json(r));
        }
        json!({
            "grpc": { "flaky": grpc_flaky, "outage": grpc_outage },
            "command": self.command,
            "date": self.date,
            "quick": self.quick,
            "machine": self.machine.description,
            "envoy_version": self.machine.envoy_version,
            "load_average": { "before": self.load_before, "after": self.load_after },
            "elapsed_seconds": round(self.elapsed.as_secs_f64(), 1),
            "overhead": overhead,
            "flaky": flaky,
            "outage": outage,
            "harness": {
                "fuel_per_request": {
                    "closed": self.fuel.closed,
                    "failure": self.fuel.failure,
                    "retry": self.fuel.retry,
                },
                "noop_fuel_per_request": self.fuel.noop_closed,
                "closed_by_callback": self.fuel.closed_by_callback,
                "noop_by_callback": self.fuel.noop_by_callback,
            },
            "wasm_bytes": self.wasm_bytes,
            "noop_wasm_bytes": self.noop_wasm_bytes,
            "targets": self.targets().iter().map(|t| json!({
                "name": t.name, "measured": t.measured, "limit": t.limit, "pass": t.pass,
            })).collect::<Vec<_>>(),
        })
    }
}

fn stats_json(stats: &[(String, u64)]) -> Value {
    stats
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect::<Map<_, _>>()
        .into()
}

fn flaky_json(f: &Flaky) -> Value {
    json!({
        "success_rate": round(f.success_rate, 5),
        "amplification": round(f.amplification, 4),
        "client_requests": f.client_requests,
        "upstream_requests": f.upstream_requests,
        "client_rps": round(f.client_rps, 1),
        "p50_ms": f.p50_ms.map(|v| round(v, 3)),
        "p99_ms": f.p99_ms.map(|v| round(v, 3)),
        "envoy_stats": stats_json(&f.stats),
    })
}

fn outage_json(r: &failure::Results) -> Value {
    let o = &r.outage;
    let timeline: Vec<Value> = r
        .outage_timeline
        .iter()
        .map(|s| {
            json!([
                round(s.at.as_secs_f64(), 1),
                s.ok,
                s.failed,
                s.fallback,
                s.upstream
            ])
        })
        .collect();
    json!({
        "upstream_rps_after_trip": round(o.upstream_rps_after_trip, 3),
        "recovery_seconds": o.recovery_seconds.map(|v| round(v, 3)),
        "tripped_after_seconds": o.tripped_after.map(|v| round(v, 3)),
        "offered_rps": round(o.offered_rps, 1),
        "client_rps_after_trip": round(o.client_rps_after_trip, 1),
        "healthy_rps": round(o.healthy_rps, 1),
        "upstream_share_of_offered": o.shed_fraction().map(|v| round(v, 5)),
        "envoy_stats": stats_json(&r.outage_stats),
        "timeline": timeline,
    })
}
