//! Part 1: what each configuration costs on a healthy upstream, measured with wrk.
//!
//! # Interleaving
//! All five Envoys start first and stay up (idle ones cost nothing: no filter ticks while no
//! retry waits). Then each round runs every configuration once, in the same order, for the same
//! time, with the same number of connections: A B C D E, A B C D E, … so that drift of the
//! shared machine during the run hits every configuration alike. Each Envoy gets a warm-up first
//! (V8 compiles the module lazily and tiers hot functions up; connection pools fill).

use std::time::Duration;

use breakwater_envoy::{Envoy, Upstream};

use crate::machine;
use crate::setups::{Modules, Overhead};
use crate::wrk::{self, WrkReport};
use crate::BenchResult;

/// How long and how often.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub rounds: usize,
    pub run: Duration,
    pub warm_up: Duration,
    pub connections: usize,
}

/// One wrk run (runs are kept in the order they ran, round after round).
#[derive(Debug, Clone)]
pub struct Run {
    pub config: Overhead,
    pub report: WrkReport,
    /// Envoy's CPU time (all threads) per request during the run, in microseconds.
    pub envoy_cpu_us: Option<f64>,
}

/// Every run of part 1.
#[derive(Debug, Clone, Default)]
pub struct Runs {
    pub runs: Vec<Run>,
}

impl Runs {
    fn of(&self, config: Overhead) -> impl Iterator<Item = &WrkReport> {
        self.runs
            .iter()
            .filter(move |r| r.config == config)
            .map(|r| &r.report)
    }

    /// Requests per second of `config`, one value per round.
    pub fn rps(&self, config: Overhead) -> Vec<f64> {
        self.of(config).map(|r| r.requests_per_second).collect()
    }

    pub fn p50(&self, config: Overhead) -> Vec<f64> {
        self.of(config).map(|r| r.p50_ms).collect()
    }

    pub fn p99(&self, config: Overhead) -> Vec<f64> {
        self.of(config).map(|r| r.p99_ms).collect()
    }

    /// Envoy CPU microseconds per request of `config`, one value per round where measured.
    pub fn envoy_cpu_us(&self, config: Overhead) -> Vec<f64> {
        self.runs
            .iter()
            .filter(|r| r.config == config)
            .filter_map(|r| r.envoy_cpu_us)
            .collect()
    }

    /// Responses that were not 2xx/3xx plus socket errors, over all rounds of `config`. A
    /// healthy upstream gives none; any means the run measured something else.
    pub fn errors(&self, config: Overhead) -> u64 {
        self.of(config).map(|r| r.non_2xx + r.socket_errors).sum()
    }
}

/// Runs part 1.
pub fn run(modules: &Modules, plan: Plan) -> BenchResult<Runs> {
    let upstream = Upstream::start("bench")?;
    upstream.keep_requests(false);
    let mut envoys = Vec::new();
    for config in Overhead::ALL {
        eprintln!("bench: starting Envoy {}", config.label());
        let envoy = Envoy::start(&config.config(upstream.addr(), modules))
            .map_err(|e| format!("starting Envoy for {}: {e}", config.label()))?;
        envoys.push((config, envoy));
    }
    for (config, envoy) in &envoys {
        let warm = wrk::run(envoy.listener(), plan.connections, plan.warm_up)?;
        eprintln!(
            "bench: warm-up {:<48} {:>8.0} req/s",
            config.label(),
            warm.requests_per_second
        );
    }
    let mut runs = Runs::default();
    for round in 0..plan.rounds {
        for (config, envoy) in &envoys {
            let cpu = || envoy.pid().and_then(machine::process_cpu_seconds);
            let before = cpu();
            let report = wrk::run(envoy.listener(), plan.connections, plan.run)?;
            let envoy_cpu_us = match (before, cpu()) {
                (Some(b), Some(a)) if report.requests > 0 => {
                    Some((a - b) * 1e6 / report.requests as f64)
                }
                _ => None,
            };
            eprintln!(
                "bench: round {}/{} {:<48} {:>8.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms  \
                 Envoy {:>5.1} µs CPU/req{}",
                round + 1,
                plan.rounds,
                config.label(),
                report.requests_per_second,
                report.p50_ms,
                report.p99_ms,
                envoy_cpu_us.unwrap_or(f64::NAN),
                if report.non_2xx + report.socket_errors > 0 {
                    format!(
                        "  ({} non-2xx, {} socket errors)",
                        report.non_2xx, report.socket_errors
                    )
                } else {
                    String::new()
                }
            );
            runs.runs.push(Run {
                config: *config,
                report,
                envoy_cpu_us,
            });
        }
    }
    Ok(runs)
}
