//! The soak: Breakwater in the real Envoy under steady load against flaky upstreams, for minutes,
//! checking that every request is answered, that Envoy's memory stays bounded and flat, and that
//! no wasm error appears. `cargo run --release -p breakwater-envoy --bin soak` runs it; see
//! `SOAK.md` for the command, the bounds and measured runs.
//!
//! - [`scenario`]: the upstreams, the policy, the request mix and the outages;
//! - [`load`]: paced client threads that sort every answer and count the unanswered;
//! - [`health`]: Envoy's wasm health signals and resident memory;
//! - [`verdict`]: the pass/fail rules, pure;
//! - [`report`]: the table and the summary.

pub mod health;
pub mod load;
pub mod report;
pub mod scenario;
pub mod verdict;

use std::io::{self, Write};
use std::thread;
use std::time::{Duration, Instant};

use crate::error::EnvoyError;
use crate::launcher::Envoy;

pub use health::{rss_bytes, WasmHealth};
pub use load::{Finished, Load, LoadSpec, Tally};
pub use verdict::{Bounds, MemorySample, Record, VmSample};

const MIB: u64 = 1024 * 1024;

/// Envoy's resident memory may never exceed this. Envoy 1.40 with two workers and Breakwater
/// holds about 94 MiB under the default load (see `SOAK.md`); the bound leaves room for other
/// rates and connection counts, far below what a leak reaches in ten minutes.
pub const MAX_RSS: u64 = 160 * MIB;
/// Growth of the memory trend allowed after the warm-up, whatever the run's length: pools and
/// the VMs' linear memories may still take a step or two.
pub const GROWTH_ALLOWANCE: u64 = 4 * MIB;
/// Further growth allowed per minute after the warm-up. Over the nine minutes after the warm-up
/// of the ten-minute run the trend may rise 8.5 MiB in all: a leak of 100 bytes per request at
/// 200 requests per second (10.3 MiB) fails the run.
pub const GROWTH_PER_MINUTE: u64 = MIB / 2;
/// The largest VM's wasm linear memory may never exceed this. A VM holds about 1 MiB at rest
/// (`BENCHMARKS.md`, "Memory per worker VM"); the soak's copies (512-byte bodies) and retried
/// responses add little. A filter that kept something per request would pass it within minutes
/// at 200 requests per second.
pub const MAX_VM_MEMORY: u64 = 8 * MIB;
/// Growth of all VMs' memory together allowed after the warm-up: a linear memory grows in 64 KiB
/// pages and never shrinks, so once warm it should not move at all; the allowance is the
/// allocator's slack for a burst of retries.
pub const VM_GROWTH: u64 = MIB;
/// The filter's stats of the VMs' linear memory, as Envoy shows them: the largest VM's, and all
/// VMs' together.
const VM_MEMORY_STAT: &str = "wasmcustom.breakwater.wasm_memory_bytes";
const VM_MEMORY_TOTAL_STAT: &str = "wasmcustom.breakwater.wasm_memory_total_bytes";
/// How often memory is sampled.
const SAMPLE_EVERY: Duration = Duration::from_secs(1);
/// How often the run looks at the clock (outages start and end on time to this).
const TICK: Duration = Duration::from_millis(50);
/// How long the last answers may take to arrive once the load stopped.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(20);

/// How long and how hard.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub duration: Duration,
    /// Requests per second over all connections.
    pub rate: f64,
    pub connections: usize,
    /// Time between table rows.
    pub every: Duration,
    pub bounds: Bounds,
}

impl Options {
    /// A run of `duration` at 200 requests per second over 8 connections: a row every twentieth
    /// of the run (between 2 s and 30 s apart), a warm-up of a quarter of the run, at most 60 s.
    pub fn for_duration(duration: Duration) -> Options {
        Options {
            duration,
            rate: 200.0,
            connections: 8,
            every: (duration / 20).clamp(Duration::from_secs(2), Duration::from_secs(30)),
            bounds: Bounds {
                max_rss: MAX_RSS,
                warm_up: (duration / 4).min(Duration::from_secs(60)),
                growth_allowance: GROWTH_ALLOWANCE,
                growth_per_minute: GROWTH_PER_MINUTE,
                max_vm_memory: MAX_VM_MEMORY,
                vm_growth: VM_GROWTH,
            },
        }
    }
}

/// Why the soak could not run at all (as opposed to running and failing).
#[derive(Debug, thiserror::Error)]
pub enum SoakError {
    #[error("building breakwater.wasm: {0}")]
    Build(String),
    #[error("starting the upstreams: {0}")]
    Upstream(io::Error),
    #[error(transparent)]
    Envoy(#[from] EnvoyError),
    #[error("reading Envoy's memory: {0}")]
    Memory(io::Error),
    #[error("writing the report: {0}")]
    Output(io::Error),
}

/// A finished run.
#[derive(Debug)]
pub struct Outcome {
    pub record: Record,
    /// Broken promises; empty when the run passed.
    pub problems: Vec<String>,
    /// The summary that was printed last.
    pub summary: String,
}

impl Outcome {
    pub fn passed(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Runs the soak as `options` say, printing the table to `out` as it goes and the summary at the
/// end.
pub fn run(options: &Options, out: &mut dyn Write) -> Result<Outcome, SoakError> {
    let print =
        |out: &mut dyn Write, line: &str| writeln!(out, "{line}").map_err(SoakError::Output);
    let wasm = breakwater_wasm::breakwater().map_err(|e| SoakError::Build(e.to_string()))?;
    let upstreams = scenario::Upstreams::start().map_err(SoakError::Upstream)?;
    let envoy = Envoy::start(&upstreams.envoy_config(&wasm))?;
    let pid = envoy.pid().ok_or(EnvoyError::NotRunning)?;
    let outages = scenario::Outages::for_run(options.duration);
    print(
        out,
        &format!(
            "soak: {} s at {} req/s over {} connections to Envoy {} (pid {pid}, 2 workers) with \
             Breakwater; catalog answers 503 to {:.0}% and is down {} s every {} s, reviews \
             resets {:.0}%",
            options.duration.as_secs(),
            options.rate,
            options.connections,
            crate::ENVOY_VERSION,
            scenario::CATALOG_503 * 100.0,
            outages.length.as_secs_f64(),
            outages.period.as_secs_f64(),
            scenario::REVIEWS_RESETS * 100.0,
        ),
    )?;
    print(out, &format!("policy: {}", scenario::policy()))?;
    print(out, report::HEADER)?;

    let health_before = WasmHealth::read(&envoy.stats()?, &envoy.log());
    let mut memory = Vec::new();
    let mut vm_memory = Vec::new();
    let load = Load::start(
        envoy.listener(),
        &scenario::load(options.rate, options.connections),
    );
    let start = Instant::now();
    let mut next_row = options.every;
    let mut previous = (Duration::ZERO, 0);
    let mut down = false;
    let mut upstream_requests = 0;
    let mut next_sample = Duration::ZERO;
    loop {
        let at = start.elapsed();
        if outages.down_at(at) != down {
            down = !down;
            upstreams.catalog_outage(down);
        }
        if at >= next_sample {
            memory.push(MemorySample {
                at,
                rss: rss_bytes(pid).map_err(SoakError::Memory)?,
            });
            next_sample += SAMPLE_EVERY;
        }
        if at >= next_row || at >= options.duration {
            upstream_requests += upstreams.drain();
            let stats = envoy.stats()?;
            if let (Some(largest), Some(total)) = (
                stats.number(VM_MEMORY_STAT),
                stats.number(VM_MEMORY_TOTAL_STAT),
            ) {
                vm_memory.push(VmSample { at, largest, total });
            }
            let health = WasmHealth::read(&stats, &envoy.log());
            let tally = load.tally();
            let seconds = (at - previous.0).as_secs_f64().max(1e-3);
            print(
                out,
                &report::row(&report::Row {
                    at,
                    tally,
                    rate: (tally.sent - previous.1) as f64 / seconds,
                    rss: memory.last().map_or(0, |m| m.rss),
                    wasm_errors: health.errors_since(&health_before).len(),
                    health,
                    breakwater: report::Breakwater::read(&stats),
                    outage: down,
                }),
            )?;
            previous = (at, tally.sent);
            next_row += options.every;
        }
        if at >= options.duration {
            break;
        }
        thread::sleep(TICK.min(options.duration.saturating_sub(at)));
    }
    if down {
        upstreams.catalog_outage(false);
    }
    let finished = load.stop();
    let left_in_flight = drain(&envoy)?;
    upstream_requests += upstreams.drain();
    let stats = envoy.stats()?;
    let record = Record {
        tally: finished.tally,
        errors: finished.errors,
        memory,
        vm_memory,
        bounds: options.bounds,
        health_before,
        health_after: WasmHealth::read(&stats, &envoy.log()),
        left_in_flight,
    };
    let problems = verdict::judge(&record);
    let summary = report::summary(
        &record,
        start.elapsed(),
        report::Breakwater::read(&stats),
        upstream_requests,
        &problems,
    );
    print(out, &summary)?;
    Ok(Outcome {
        record,
        problems,
        summary,
    })
}

/// Waits (up to [`DRAIN_TIMEOUT`]) until Envoy has no active request left, downstream or
/// upstream; returns how many were still active at the end.
fn drain(envoy: &Envoy) -> Result<u64, SoakError> {
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    loop {
        let active = in_flight(&envoy.stats()?);
        if active == 0 || Instant::now() > deadline {
            return Ok(active);
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// Requests Envoy has active: downstream on the listener's HTTP connection manager, and
/// upstream in every cluster (Breakwater's dispatched retries included).
pub fn in_flight(stats: &crate::admin::Stats) -> u64 {
    let downstream = stats.number_or_zero("http.ingress_http.downstream_rq_active");
    let upstream: u64 = stats
        .with_prefix("cluster.")
        .filter(|(name, _)| name.ends_with(".upstream_rq_active"))
        .map(|(_, value)| match value {
            crate::admin::StatValue::Number(n) => *n,
            crate::admin::StatValue::Text(_) => 0,
        })
        .sum();
    downstream + upstream
}
