//! What the soak prints: a row per interval while it runs, and a summary with the verdict.

use std::time::Duration;

use crate::admin::{StatValue, Stats, WASM_CUSTOM_PREFIX};

use super::health::WasmHealth;
use super::load::Tally;
use super::verdict::{memory_figures, vm_figures, Record};

const MIB: f64 = 1024.0 * 1024.0;

/// Breakwater's own counters, summed over the clusters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Breakwater {
    pub retries: u64,
    pub fallbacks: u64,
    pub opened: u64,
}

impl Breakwater {
    pub fn read(stats: &Stats) -> Breakwater {
        let sum = |metric: &str| -> u64 {
            let suffix = format!(".;{metric}");
            stats
                .with_prefix(WASM_CUSTOM_PREFIX)
                .filter(|(name, _)| name.ends_with(&suffix))
                .map(|(_, value)| match value {
                    StatValue::Number(n) => *n,
                    StatValue::Text(_) => 0,
                })
                .sum()
        };
        Breakwater {
            retries: sum("retries_total"),
            fallbacks: sum("rejected_total"),
            opened: sum("breaker_opened_total"),
        }
    }
}

/// One row of the table.
#[derive(Debug, Clone)]
pub struct Row {
    /// Time since the load started.
    pub at: Duration,
    pub tally: Tally,
    /// Requests per second since the previous row.
    pub rate: f64,
    pub rss: u64,
    pub health: WasmHealth,
    /// Wasm errors since the load started (see [`WasmHealth::errors_since`]).
    pub wasm_errors: usize,
    pub breakwater: Breakwater,
    /// Whether `catalog` was in an outage.
    pub outage: bool,
}

pub const HEADER: &str = "  time     sent  req/s    2xx  retried  fallback  upstream-5xx  \
                          envoy-5xx  unanswered  RSS-MiB  VMs  wasm-errors  retries  opened";

/// A row of the table, aligned with [`HEADER`].
pub fn row(r: &Row) -> String {
    let t = &r.tally;
    format!(
        "{:>5}s {:>8} {:>6.1} {:>6} {:>8} {:>9} {:>13} {:>10} {:>11} {:>8.1} {:>4} {:>12} {:>8} {:>7}{}",
        r.at.as_secs(),
        t.sent,
        r.rate,
        t.ok,
        t.retried,
        t.fallback,
        t.upstream_failed,
        t.envoy_failed,
        t.unanswered,
        r.rss as f64 / MIB,
        r.health.vms_active,
        r.wasm_errors,
        r.breakwater.retries,
        r.breakwater.opened,
        if r.outage { "  (catalog down)" } else { "" },
    )
}

/// The summary after the run: figures, then the verdict.
pub fn summary(
    record: &Record,
    duration: Duration,
    breakwater: Breakwater,
    upstream_requests: usize,
    problems: &[String],
) -> String {
    let t = &record.tally;
    let mut lines = vec![format!(
        "requests: {} sent in {:.0} s, {} answered ({} 2xx, {} needed retries, {} fallbacks, \
         {} upstream failures, {} Envoy failures), {} unanswered",
        t.sent,
        duration.as_secs_f64(),
        t.answered(),
        t.ok,
        t.retried,
        t.fallback,
        t.upstream_failed,
        t.envoy_failed,
        t.unanswered
    )];
    lines.push(format!(
        "Breakwater: {} retries dispatched, {} fallbacks served, breaker opened {} times; \
         the upstreams received {} requests",
        breakwater.retries, breakwater.fallbacks, breakwater.opened, upstream_requests
    ));
    if let Some(m) = memory_figures(&record.memory, &record.bounds) {
        let b = &record.bounds;
        lines.push(format!(
            "Envoy RSS: {:.1} MiB at the start, {:.1} MiB after the {} s warm-up, max {:.1} MiB, \
             {:.1} MiB at the end (bound {:.0} MiB)",
            m.first as f64 / MIB,
            m.after_warm_up as f64 / MIB,
            b.warm_up.as_secs(),
            m.max as f64 / MIB,
            m.last as f64 / MIB,
            b.max_rss as f64 / MIB,
        ));
        if let Some(vm) = vm_figures(&record.vm_memory, b) {
            lines.push(format!(
                "wasm VMs' memory: largest VM {:.2} MiB at most (bound {:.0} MiB); all VMs \
                 {:.2} MiB after the warm-up, {:.2} MiB at the end (growth allowed {:.1} MiB)",
                vm.largest as f64 / MIB,
                b.max_vm_memory as f64 / MIB,
                vm.total_after_warm_up as f64 / MIB,
                vm.total_last as f64 / MIB,
                b.vm_growth as f64 / MIB,
            ));
        }
        lines.push(format!(
            "memory trend after the warm-up: {} MiB/min, {} MiB over the stretch \
             (allowed {:.1} MiB: {:.0} MiB + {:.1} MiB/min)",
            m.slope_per_minute
                .map_or("n/a".to_string(), |s| format!("{:+.2}", s / MIB)),
            m.fitted_growth
                .map_or("n/a".to_string(), |g| format!("{:+.1}", g / MIB)),
            m.allowed_growth / MIB,
            b.growth_allowance as f64 / MIB,
            b.growth_per_minute as f64 / MIB,
        ));
    }
    let (before, after) = (&record.health_before, &record.health_after);
    lines.push(format!(
        "wasm: {} traps, {} error lines, {} VM reloads, {} state errors since the start; \
         V8 VMs alive {} -> {}, created {} -> {}; {} shared-data contention give-ups",
        after.traps.saturating_sub(before.traps),
        after.error_lines.saturating_sub(before.error_lines),
        after.vm_reloads.saturating_sub(before.vm_reloads),
        after.state_errors.saturating_sub(before.state_errors),
        before.vms_active,
        after.vms_active,
        before.vms_created,
        after.vms_created,
        after.state_contention,
    ));
    lines.push(format!(
        "left in flight after the load stopped: {}",
        record.left_in_flight
    ));
    if problems.is_empty() {
        lines.push("soak PASSED".to_string());
    } else {
        lines.push("soak FAILED:".to_string());
        lines.extend(problems.iter().map(|p| format!("  - {p}")));
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn breakwater_counters_are_summed_over_clusters() {
        let values: BTreeMap<String, StatValue> = [
            ("wasmcustom.breakwater.breakwater_cluster=.=a;.;retries_total", 3),
            ("wasmcustom.breakwater.breakwater_cluster=.=b;.;retries_total", 4),
            (
                "wasmcustom.breakwater.breakwater_cluster=.=a;.;reason=.=budget;.;retries_skipped_total",
                100,
            ),
            ("wasmcustom.breakwater.breakwater_cluster=.=a;.;rejected_total", 5),
            ("wasmcustom.breakwater.breakwater_cluster=.=a;.;breaker_opened_total", 2),
        ]
        .into_iter()
        .map(|(n, v)| (n.to_string(), StatValue::Number(v)))
        .collect();
        let b = Breakwater::read(&Stats { values });
        assert_eq!(
            b,
            Breakwater {
                retries: 7,
                fallbacks: 5,
                opened: 2
            },
            "skipped retries are not retries"
        );
    }

    #[test]
    fn rows_line_up_with_the_header() {
        let r = Row {
            at: Duration::from_secs(30),
            tally: Tally {
                sent: 6000,
                ok: 5900,
                ..Tally::default()
            },
            rate: 200.0,
            rss: 80 * 1024 * 1024,
            health: WasmHealth::default(),
            wasm_errors: 0,
            breakwater: Breakwater::default(),
            outage: false,
        };
        assert_eq!(row(&r).len(), HEADER.len(), "{}\n{HEADER}", row(&r));
    }
}
