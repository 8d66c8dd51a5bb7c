//! Whether a soak run passed: pure judgement over what the run recorded, tested without Envoy.
//!
//! # The promises
//! 1. Every request is answered: no client request ends without a response, whatever the
//!    upstream did (a 503, a reset, an outage: the answer may be a failure, never silence).
//! 2. Envoy's resident memory stays within [`Bounds::max_rss`], and after the warm-up it does not
//!    trend upwards: the least-squares line through the samples taken after the warm-up may rise
//!    by at most [`Bounds::growth_allowance`] plus [`Bounds::growth_per_minute`] per minute over
//!    that stretch. The fitted line, not the last sample, so one allocator step near the end
//!    does not decide the run; the allowance covers the caches and arenas that fill once.
//! 3. Wasm errors do not rise: no trap, no error line, no VM reload, no Breakwater state error,
//!    and no VM replaced (see [`super::health`]).
//! 4. Nothing is left in flight once the load stops: Envoy's active downstream and upstream
//!    requests return to zero (a pending retry that leaked would hold its stream open).
//! 5. The VMs' wasm memory is bounded and flat, as the filter's stats show it with every row: the
//!    largest VM's linear memory (`wasm_memory_bytes`) never exceeds [`Bounds::max_vm_memory`],
//!    and the sum of every VM's (`wasm_memory_total_bytes`) grows by at most
//!    [`Bounds::vm_growth`] after the warm-up. A VM's linear memory never shrinks, so a leak in
//!    the filter shows there, in whichever VM, long before it shows in Envoy's resident memory.

use std::time::Duration;

use super::health::WasmHealth;
use super::load::Tally;

const MIB: f64 = 1024.0 * 1024.0;

/// The memory bounds a run is held to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// Envoy's resident memory may never exceed this many bytes.
    pub max_rss: u64,
    /// Samples before this time are not held to the growth bound (VMs warm up, pools fill).
    pub warm_up: Duration,
    /// Growth of the fitted trend allowed after the warm-up, whatever the length, in bytes.
    pub growth_allowance: u64,
    /// Further growth allowed per minute after the warm-up, in bytes.
    pub growth_per_minute: u64,
    /// The largest worker VM's wasm linear memory may never exceed this many bytes.
    pub max_vm_memory: u64,
    /// Growth of all VMs' memory together allowed after the warm-up, in bytes.
    pub vm_growth: u64,
}

/// The VMs' wasm linear memory at one moment of the run, as the filter's stats showed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VmSample {
    /// Time since the load started.
    pub at: Duration,
    /// The largest VM's linear memory, in bytes.
    pub largest: u64,
    /// Every VM's together, in bytes.
    pub total: u64,
}

/// What the VMs' memory did over a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VmFigures {
    /// The largest VM's memory, the most it showed.
    pub largest: u64,
    /// All VMs' memory at the first sample after the warm-up, and at the end.
    pub total_after_warm_up: u64,
    pub total_last: u64,
}

/// The VMs' memory figures of a run; `None` without samples.
pub fn vm_figures(samples: &[VmSample], bounds: &Bounds) -> Option<VmFigures> {
    let last = samples.last()?;
    let settled = samples
        .iter()
        .find(|s| s.at >= bounds.warm_up)
        .unwrap_or(last);
    Some(VmFigures {
        largest: samples.iter().map(|s| s.largest).max().unwrap_or(0),
        total_after_warm_up: settled.total,
        total_last: last.total,
    })
}

/// Envoy's resident memory at one moment of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemorySample {
    /// Time since the load started.
    pub at: Duration,
    /// Resident bytes.
    pub rss: u64,
}

/// The least-squares line through the samples: (bytes at the first sample's time, bytes per
/// second). `None` with fewer than two distinct times.
pub fn trend(samples: &[MemorySample]) -> Option<(f64, f64)> {
    let first = samples.first()?.at.as_secs_f64();
    let n = samples.len() as f64;
    let xs = samples.iter().map(|s| s.at.as_secs_f64() - first);
    let mean_x = xs.clone().sum::<f64>() / n;
    let mean_y = samples.iter().map(|s| s.rss as f64).sum::<f64>() / n;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (x, s) in xs.zip(samples) {
        sxy += (x - mean_x) * (s.rss as f64 - mean_y);
        sxx += (x - mean_x) * (x - mean_x);
    }
    if sxx <= 0.0 {
        return None;
    }
    let slope = sxy / sxx;
    Some((mean_y - slope * mean_x, slope))
}

/// What the memory did, as the report shows it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MemoryFigures {
    pub first: u64,
    /// The first sample at or after the warm-up.
    pub after_warm_up: u64,
    pub max: u64,
    pub last: u64,
    /// The fitted trend after the warm-up, in bytes per minute (`None`: too few samples).
    pub slope_per_minute: Option<f64>,
    /// How much the fitted trend rose over the stretch after the warm-up, in bytes.
    pub fitted_growth: Option<f64>,
    /// How much it was allowed to rise, in bytes.
    pub allowed_growth: f64,
}

/// The memory figures of a run; `None` without samples.
pub fn memory_figures(samples: &[MemorySample], bounds: &Bounds) -> Option<MemoryFigures> {
    let first = samples.first()?;
    let last = samples.last()?;
    let settled: Vec<MemorySample> = samples
        .iter()
        .copied()
        .filter(|s| s.at >= bounds.warm_up)
        .collect();
    let span = match (settled.first(), settled.last()) {
        (Some(a), Some(b)) => b.at.saturating_sub(a.at),
        _ => Duration::ZERO,
    };
    let slope = trend(&settled).map(|(_, per_second)| per_second);
    Some(MemoryFigures {
        first: first.rss,
        after_warm_up: settled.first().map_or(last.rss, |s| s.rss),
        max: samples.iter().map(|s| s.rss).max().unwrap_or(0),
        last: last.rss,
        slope_per_minute: slope.map(|s| s * 60.0),
        fitted_growth: slope.map(|s| s * span.as_secs_f64()),
        allowed_growth: bounds.growth_allowance as f64
            + bounds.growth_per_minute as f64 * span.as_secs_f64() / 60.0,
    })
}

/// Everything a run recorded that the verdict looks at.
#[derive(Debug, Clone)]
pub struct Record {
    pub tally: Tally,
    /// Why the first unanswered requests failed.
    pub errors: Vec<String>,
    pub memory: Vec<MemorySample>,
    /// The largest worker VM's memory, at each row.
    pub vm_memory: Vec<VmSample>,
    pub bounds: Bounds,
    /// Wasm health once Envoy was ready, before the load.
    pub health_before: WasmHealth,
    pub health_after: WasmHealth,
    /// Requests Envoy still had active (downstream and upstream) after the load stopped and a
    /// grace period for the last answers passed.
    pub left_in_flight: u64,
}

/// The broken promises, one sentence each; empty when the run passed.
pub fn judge(record: &Record) -> Vec<String> {
    let mut problems = Vec::new();
    let tally = &record.tally;
    if tally.sent == 0 {
        problems.push("no request was sent".to_string());
    }
    if tally.unanswered > 0 {
        problems.push(format!(
            "{} of {} requests got no response; the first: {}",
            tally.unanswered,
            tally.sent,
            record.errors.join("; ")
        ));
    }
    match memory_figures(&record.memory, &record.bounds) {
        None => problems.push("Envoy's memory was never sampled".to_string()),
        Some(m) => {
            if m.max > record.bounds.max_rss {
                problems.push(format!(
                    "Envoy's resident memory reached {:.1} MiB, above the bound of {:.1} MiB",
                    m.max as f64 / MIB,
                    record.bounds.max_rss as f64 / MIB
                ));
            }
            if let Some(growth) = m.fitted_growth.filter(|g| *g > m.allowed_growth) {
                problems.push(format!(
                    "after the warm-up Envoy's memory trended up by {:.1} MiB ({:.2} MiB/min), \
                     more than the {:.1} MiB allowed",
                    growth / MIB,
                    m.slope_per_minute.unwrap_or(0.0) / MIB,
                    m.allowed_growth / MIB
                ));
            }
        }
    }
    match vm_figures(&record.vm_memory, &record.bounds) {
        None => problems
            .push("the VMs' wasm memory was never read (no `wasm_memory_bytes` stats)".to_string()),
        Some(vm) => {
            if vm.largest > record.bounds.max_vm_memory {
                problems.push(format!(
                    "a VM's wasm memory reached {:.1} MiB, above the bound of {:.1} MiB",
                    vm.largest as f64 / MIB,
                    record.bounds.max_vm_memory as f64 / MIB
                ));
            }
            let growth = vm.total_last.saturating_sub(vm.total_after_warm_up);
            if growth > record.bounds.vm_growth {
                problems.push(format!(
                    "after the warm-up the VMs' wasm memory grew by {:.1} MiB, more than the \
                     {:.1} MiB allowed",
                    growth as f64 / MIB,
                    record.bounds.vm_growth as f64 / MIB
                ));
            }
        }
    }
    problems.extend(record.health_after.errors_since(&record.health_before));
    if let Some(change) = record
        .health_after
        .vms_replaced_since(&record.health_before)
    {
        problems.push(format!("wasm VMs changed during the run: {change}"));
    }
    if record.left_in_flight > 0 {
        problems.push(format!(
            "{} request(s) were still active in Envoy after the load stopped",
            record.left_in_flight
        ));
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1024 * 1024;

    fn bounds() -> Bounds {
        Bounds {
            max_rss: 200 * MB,
            warm_up: Duration::from_secs(60),
            growth_allowance: 8 * MB,
            growth_per_minute: MB,
            max_vm_memory: 16 * MB,
            vm_growth: MB,
        }
    }

    /// Readings every 30 s for `seconds` of two VMs: one of `bytes(t)` at second t, the other
    /// of 1 MiB and `leak(t)` more.
    fn vm_samples(
        seconds: u64,
        bytes: impl Fn(u64) -> u64,
        leak: impl Fn(u64) -> u64,
    ) -> Vec<VmSample> {
        (0..=seconds)
            .step_by(30)
            .map(|t| VmSample {
                at: Duration::from_secs(t),
                largest: bytes(t).max(MB + leak(t)),
                total: bytes(t) + MB + leak(t),
            })
            .collect()
    }

    /// One sample a second for `seconds`, `rss(t)` bytes at second t.
    fn samples(seconds: u64, rss: impl Fn(u64) -> u64) -> Vec<MemorySample> {
        (0..=seconds)
            .map(|t| MemorySample {
                at: Duration::from_secs(t),
                rss: rss(t),
            })
            .collect()
    }

    fn record(memory: Vec<MemorySample>) -> Record {
        Record {
            tally: Tally {
                sent: 100,
                ok: 100,
                ..Tally::default()
            },
            errors: Vec::new(),
            memory,
            vm_memory: vm_samples(600, |t| if t < 60 { MB + t * 1024 } else { 2 * MB }, |_| 0),
            bounds: bounds(),
            health_before: WasmHealth::default(),
            health_after: WasmHealth::default(),
            left_in_flight: 0,
        }
    }

    #[test]
    fn the_trend_of_a_straight_line_is_that_line() {
        let line = samples(100, |t| 1000 + 30 * t);
        let (start, per_second) = trend(&line).expect("enough samples");
        assert!((start - 1000.0).abs() < 1e-6, "{start}");
        assert!((per_second - 30.0).abs() < 1e-9, "{per_second}");
        assert_eq!(trend(&line[..1]), None, "one sample has no trend");
    }

    #[test]
    fn a_flat_run_with_a_warm_up_climb_passes() {
        // Climbs 40 MiB in the first minute, then stays flat with noise.
        let memory = samples(600, |t| {
            if t < 60 {
                100 * MB + t * 40 * MB / 60
            } else {
                140 * MB + (t % 7) * MB / 4
            }
        });
        let r = record(memory);
        assert_eq!(judge(&r), Vec::<String>::new());
        let m = memory_figures(&r.memory, &r.bounds).expect("figures");
        assert_eq!(
            m.after_warm_up,
            141 * MB,
            "the sample at 60 s (noise 60 % 7 = 4 quarters)"
        );
        assert!(m
            .slope_per_minute
            .is_some_and(|s| s.abs() < 0.1 * MB as f64));
    }

    #[test]
    fn a_steady_leak_fails_however_small_each_step() {
        // 3 MiB a minute for nine minutes after the warm-up: 27 MiB against 8 + 9 allowed.
        let memory = samples(600, |t| 100 * MB + t * 3 * MB / 60);
        let problems = judge(&record(memory));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("trended up by 27.0 MiB"),
            "{problems:?}"
        );
        assert!(problems[0].contains("3.00 MiB/min"), "{problems:?}");
    }

    #[test]
    fn one_step_near_the_end_is_not_a_trend() {
        // Flat, then one 6 MiB step in the last 10 s: the fitted line rises far less than 6 MiB.
        let memory = samples(600, |t| if t > 590 { 106 * MB } else { 100 * MB });
        assert_eq!(judge(&record(memory)), Vec::<String>::new());
    }

    #[test]
    fn memory_above_the_bound_fails_even_when_flat() {
        let problems = judge(&record(samples(600, |_| 201 * MB)));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("201.0 MiB, above the bound of 200.0 MiB"));
    }

    #[test]
    fn a_short_run_is_held_to_the_allowance() {
        let short = Bounds {
            warm_up: Duration::from_secs(2),
            ..bounds()
        };
        let within = Record {
            bounds: short,
            ..record(samples(10, |t| 100 * MB + t * MB / 2))
        };
        assert_eq!(judge(&within), Vec::<String>::new(), "4 MiB of 8 allowed");
        let beyond = Record {
            bounds: short,
            ..record(samples(10, |t| 100 * MB + t * 2 * MB))
        };
        assert_eq!(judge(&beyond).len(), 1, "16 MiB of 8 allowed");
    }

    #[test]
    fn a_worker_vm_that_grows_after_the_warm_up_or_past_its_bound_fails() {
        let mut r = record(samples(600, |_| 100 * MB));
        assert_eq!(
            judge(&r),
            Vec::<String>::new(),
            "growth during the warm-up is allowed"
        );
        // One VM leaks 4 KiB a second while the other stays larger: the largest does not move,
        // the sum does.
        r.vm_memory = vm_samples(600, |_| 6 * MB, |t| t * 4 * 1024);
        let problems = judge(&r);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("grew by 2.1 MiB, more than the 1.0 MiB allowed"),
            "{problems:?}"
        );
        r.vm_memory = vm_samples(600, |_| 17 * MB, |_| 0);
        let problems = judge(&r);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("reached 17.0 MiB, above the bound of 16.0 MiB"),
            "{problems:?}"
        );
        r.vm_memory = Vec::new();
        assert!(
            judge(&r)[0].contains("never read"),
            "a missing gauge fails the run"
        );
    }

    #[test]
    fn unanswered_requests_fail_the_run_and_say_why() {
        let mut r = record(samples(10, |_| 100 * MB));
        r.tally.unanswered = 2;
        r.errors = vec!["GET /a/1: connection reset".to_string()];
        let problems = judge(&r);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].starts_with("2 of 100 requests got no response"));
        assert!(problems[0].contains("GET /a/1: connection reset"));
    }

    #[test]
    fn wasm_errors_replaced_vms_and_requests_left_in_flight_fail_the_run() {
        let mut r = record(samples(10, |_| 100 * MB));
        r.health_after.traps = 1;
        r.health_after.vms_created = 1;
        r.left_in_flight = 3;
        let problems = judge(&r);
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].contains("wasm trap"));
        assert!(problems[1].contains("VMs changed"));
        assert!(problems[2].contains("3 request(s) were still active"));
    }

    #[test]
    fn a_run_without_requests_or_samples_fails() {
        let mut r = record(Vec::new());
        r.tally = Tally::default();
        r.vm_memory = Vec::new();
        let problems = judge(&r);
        assert_eq!(
            problems,
            vec![
                "no request was sent".to_string(),
                "Envoy's memory was never sampled".to_string(),
                "the VMs' wasm memory was never read (no `wasm_memory_bytes` stats)".to_string()
            ]
        );
    }
}
