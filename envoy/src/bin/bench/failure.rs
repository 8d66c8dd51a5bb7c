//! Part 2: behaviour under failure, Breakwater against Envoy's own retries and outlier detection,
//! under the same closed-loop load as part 1 (same number of connections).
//!
//! # Scenarios
//! - **Flaky**: the upstream answers 503 to 30% of requests at random (seeded). Measured: the
//!   client's success rate, and upstream requests per client request (amplification).
//! - **Outage**: healthy for a moment, then the upstream answers 503 to everything (it is up but
//!   failing every request, the outage a breaker exists for; the upstream counts every request
//!   that reaches it), then healthy again. Measured: upstream requests per second from the trip
//!   (Breakwater's breaker leaves closed; Envoy ejects the host) to the recovery, against the
//!   offered load, and the time from the recovery to the first successful response.
//!
//! Each scenario gets a fresh Envoy and upstream, so no state (a breaker, an ejection count)
//! carries over from one to the next.

use std::thread;
use std::time::{Duration, Instant};

use breakwater_envoy::{Envoy, Reply, Upstream};

use crate::analysis::{self, Outage, OutageSummary, Poll, Slice};
use crate::load::{Load, Sample};
use crate::setups::{Modules, Resilience, CLUSTER};
use crate::BenchResult;

/// The share of requests the flaky upstream fails.
pub const FLAKY_RATIO: f64 = 0.3;
/// The flaky upstream's RNG seed.
const SEED: u64 = 0x5eed;
/// How often the outage checks whether the breaker tripped.
const POLL_EVERY: Duration = Duration::from_millis(50);
/// The width of the outage timeline's slices.
pub const SLICE: Duration = Duration::from_millis(500);

/// How long each phase lasts.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub connections: usize,
    /// Healthy load before measuring (pools, V8 tier-up).
    pub warm_up: Duration,
    pub flaky: Duration,
    /// Healthy load before the outage (the offered load is measured here).
    pub healthy: Duration,
    pub outage: Duration,
    /// Load after the recovery, long enough for a breaker to half-open and close.
    pub after: Duration,
}

/// The flaky upstream's result.
#[derive(Debug, Clone, PartialEq)]
pub struct Flaky {
    pub success_rate: f64,
    pub amplification: f64,
    pub client_requests: usize,
    pub upstream_requests: usize,
    pub client_rps: f64,
    /// The client's latency (milliseconds): retries add their delays to it.
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// Envoy's retry and outlier stats, or Breakwater's metrics, after the run.
    pub stats: Vec<(String, u64)>,
}

impl Flaky {
    /// The figures of a flaky run of `duration`: the client's `samples`, the requests that
    /// reached the upstream, Envoy's explaining stats; `what` names the run in the error when
    /// no client request completed.
    pub fn of(
        what: &str,
        samples: &[Sample],
        upstream_requests: usize,
        duration: Duration,
        envoy: &Envoy,
    ) -> BenchResult<Flaky> {
        let client_requests = samples.len();
        if client_requests == 0 {
            return Err(format!("{what}: no client request completed").into());
        }
        Ok(Flaky {
            success_rate: analysis::success_rate(samples).unwrap_or(0.0),
            amplification: upstream_requests as f64 / client_requests as f64,
            client_requests,
            upstream_requests,
            client_rps: client_requests as f64 / duration.as_secs_f64(),
            p50_ms: analysis::latency_ms(samples, 0.5),
            p99_ms: analysis::latency_ms(samples, 0.99),
            stats: explaining_stats(envoy)?,
        })
    }
}

/// Both scenarios for one contender.
#[derive(Debug, Clone)]
pub struct Results {
    pub flaky: Flaky,
    pub outage: OutageSummary,
    pub outage_stats: Vec<(String, u64)>,
    /// The outage in [`SLICE`] slices.
    pub outage_timeline: Vec<Slice>,
}

fn start(resilience: Resilience, modules: &Modules) -> BenchResult<(Upstream, Envoy)> {
    let upstream = Upstream::start("bench")?;
    upstream.keep_requests(false);
    let envoy = Envoy::start(&resilience.config(upstream.addr(), modules))
        .map_err(|e| format!("starting Envoy for {}: {e}", resilience.label()))?;
    Ok((upstream, envoy))
}

/// Healthy load for `duration`, to warm Envoy up.
fn warm_up(envoy: &Envoy, plan: &Plan) -> BenchResult<()> {
    let load = Load::start(envoy.listener(), plan.connections, Instant::now());
    thread::sleep(plan.warm_up);
    load.stop()?;
    Ok(())
}

/// The stats that explain a contender's behaviour, with the common prefixes cut.
pub fn explaining_stats(envoy: &Envoy) -> BenchResult<Vec<(String, u64)>> {
    let stats = envoy.stats()?;
    let mut picked = Vec::new();
    let cluster = format!("cluster.{CLUSTER}.");
    for (prefix, cut) in [
        ("wasmcustom.breakwater.", "wasmcustom.breakwater."),
        (&*format!("{cluster}upstream_rq_retry"), &*cluster),
        (&*format!("{cluster}outlier_detection."), &*cluster),
        (&*format!("{cluster}lb_healthy_panic"), &*cluster),
    ] {
        for (name, _) in stats.with_prefix(prefix) {
            if let Some(value) = stats.number(name) {
                let short = name.strip_prefix(cut).unwrap_or(name);
                picked.push((
                    short.replace(&format!("breakwater_cluster=.={CLUSTER};.;"), ""),
                    value,
                ));
            }
        }
    }
    Ok(picked)
}

pub fn flaky(resilience: Resilience, modules: &Modules, plan: &Plan) -> BenchResult<Flaky> {
    let (upstream, envoy) = start(resilience, modules)?;
    warm_up(&envoy, plan)?;
    upstream.clear_record();
    upstream.fail_ratio(FLAKY_RATIO, Reply::Status(503), SEED);
    let load = Load::start(envoy.listener(), plan.connections, Instant::now());
    thread::sleep(plan.flaky);
    let samples = load.stop()?;
    // Every client request has its final response: all its attempts have reached the upstream.
    Flaky::of(
        resilience.label(),
        &samples,
        upstream.total(),
        plan.flaky,
        &envoy,
    )
}

/// Whether the admin stats say the breaker tripped (any stat matching `trip_stat` above 0).
pub fn tripped(envoy: &Envoy, trip_stat: &str) -> BenchResult<bool> {
    let text = envoy.admin().get(&format!("/stats?filter={trip_stat}"))?;
    Ok(text.lines().any(|line| {
        line.rsplit_once(": ")
            .and_then(|(_, v)| v.trim().parse::<u64>().ok())
            .is_some_and(|v| v > 0)
    }))
}

/// Polls until `until` (from `epoch`).
fn poll_until(
    envoy: &Envoy,
    upstream: &Upstream,
    resilience: Resilience,
    epoch: Instant,
    until: Duration,
    polls: &mut Vec<Poll>,
) -> BenchResult<()> {
    while epoch.elapsed() < until {
        let upstream_count = upstream.total();
        let at = epoch.elapsed();
        polls.push(Poll {
            at,
            upstream: upstream_count,
            tripped: tripped(envoy, resilience.trip_stat())?,
        });
        thread::sleep(POLL_EVERY.min(until.saturating_sub(epoch.elapsed())));
    }
    Ok(())
}

/// What the outage scenario gives.
pub struct OutageRun {
    pub summary: OutageSummary,
    pub timeline: Vec<Slice>,
    pub stats: Vec<(String, u64)>,
}

pub fn outage(resilience: Resilience, modules: &Modules, plan: &Plan) -> BenchResult<OutageRun> {
    let (upstream, envoy) = start(resilience, modules)?;
    warm_up(&envoy, plan)?;
    let epoch = Instant::now();
    let load = Load::start(envoy.listener(), plan.connections, epoch);
    let mut polls = Vec::new();
    // The first 20% of the healthy phase is the load's ramp-up; the rest measures the offer.
    let healthy_from = plan.healthy / 5;
    poll_until(
        &envoy,
        &upstream,
        resilience,
        epoch,
        plan.healthy,
        &mut polls,
    )?;
    let failing_from = epoch.elapsed();
    upstream.respond_with(503);
    poll_until(
        &envoy,
        &upstream,
        resilience,
        epoch,
        failing_from + plan.outage,
        &mut polls,
    )?;
    let upstream_at_recovery = upstream.total();
    let recovered_at = epoch.elapsed();
    upstream.respond_with(200);
    poll_until(
        &envoy,
        &upstream,
        resilience,
        epoch,
        recovered_at + plan.after,
        &mut polls,
    )?;
    let samples = load.stop()?;
    let outage = Outage {
        failing_from,
        recovered_at,
        upstream_at_recovery,
        healthy_from,
        polls,
        samples,
    };
    Ok(OutageRun {
        summary: analysis::summarize(&outage),
        timeline: analysis::timeline(&outage, SLICE),
        stats: explaining_stats(&envoy)?,
    })
}

/// Both scenarios for `resilience`.
pub fn run(resilience: Resilience, modules: &Modules, plan: &Plan) -> BenchResult<Results> {
    let flaky = flaky(resilience, modules, plan)?;
    eprintln!(
        "bench: flaky  {:<32} success {:.4}  amplification {:.3}  ({} client, {} upstream requests)",
        resilience.label(),
        flaky.success_rate,
        flaky.amplification,
        flaky.client_requests,
        flaky.upstream_requests
    );
    let OutageRun {
        summary: outage,
        timeline: outage_timeline,
        stats: outage_stats,
    } = outage(resilience, modules, plan)?;
    eprintln!(
        "bench: outage {:<32} tripped after {}  upstream {:.2} req/s of {:.0} offered  recovery {}",
        resilience.label(),
        outage
            .tripped_after
            .map_or("never".to_string(), |t| format!("{t:.2} s")),
        outage.upstream_rps_after_trip,
        outage.offered_rps,
        outage
            .recovery_seconds
            .map_or("none".to_string(), |t| format!("{t:.2} s")),
    );
    Ok(Results {
        flaky,
        outage,
        outage_stats,
        outage_timeline,
    })
}
