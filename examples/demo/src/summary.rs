//! The end of the demo: a table of the phases, Breakwater's own counters, and how to try it by
//! hand.

use std::io::{self, Write};

use crate::drive::Report;
use crate::load::CLUSTERS;
use crate::stage::Stage;

/// Writes the summary of `report`.
pub fn write(out: &mut dyn Write, report: &Report) -> io::Result<()> {
    writeln!(out)?;
    writeln!(out, "== summary: the catalog's requests, phase by phase")?;
    writeln!(
        out,
        "{:<11} {:>6} {:>8} {:>6} {:>8} {:>9} {:>6} {:>9}  catalog breaker",
        "phase", "time", "requests", "2xx", "retried", "fallback", "other", "upstream"
    )?;
    for phase in &report.phases {
        let c = phase.counts[0];
        let opened = phase.delta("catalog", |b| b.opened);
        let closed = phase.delta("catalog", |b| b.closed);
        let mut breaker = Vec::new();
        if opened > 0 {
            breaker.push(format!("opened {opened}x"));
        }
        if closed > 0 {
            breaker.push(format!("closed {closed}x"));
        }
        breaker.push(format!("ends {}", phase.end_state("catalog").label()));
        writeln!(
            out,
            "{:<11} {:>5.1}s {:>8} {:>6} {:>8} {:>9} {:>6} {:>9}  {}",
            phase.name,
            phase.elapsed.as_secs_f64(),
            c.requests,
            c.ok,
            c.retried,
            c.fallback,
            c.failed + c.errors,
            phase.upstream_hits[0],
            breaker.join(", ")
        )?;
    }
    writeln!(
        out,
        "(retried: responses with x-breakwater-attempts; fallback: replies with \
         x-breakwater-breaker, which never reached the upstream; upstream: requests the catalog \
         received, retries and probes included)"
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "== Breakwater's own counters (breakwater_*_total in /stats/prometheus)"
    )?;
    for cluster in CLUSTERS {
        let Some(b) = report.breakers.get(cluster) else {
            continue;
        };
        writeln!(
            out,
            "{cluster:<8} requests {}, failures {}, retries {} (successes {}, exhausted {}), \
             fallbacks {}, breaker opened {} / half-opened {} / closed {}, now {}",
            b.requests,
            b.failures,
            b.retries,
            b.retry_successes,
            b.retries_exhausted,
            b.rejected,
            b.opened,
            b.half_opened,
            b.closed,
            b.state.label(),
        )?;
    }
    writeln!(
        out,
        "connections per Envoy worker: {:?} (the breaker and the budget are shared by all workers)",
        report.connections_per_worker
    )?;
    if report.interrupted {
        writeln!(out, "(interrupted: the run ended early)")?;
    }
    Ok(())
}

/// Writes how to try the running demo by hand.
pub fn write_try_it(out: &mut dyn Write, stage: &Stage, keep: bool) -> io::Result<()> {
    let listener = stage.envoy.listener();
    let admin = stage.envoy.admin().addr;
    writeln!(out)?;
    writeln!(out, "== try it by hand")?;
    writeln!(out, "  curl -si http://{listener}/catalog/item/1")?;
    writeln!(out, "  curl -si http://{listener}/reviews/item/1")?;
    writeln!(
        out,
        "  curl -s http://{admin}/stats/prometheus | grep '^breakwater_'"
    )?;
    writeln!(
        out,
        "  Envoy's log and access log: {}",
        stage.envoy.dir().display()
    )?;
    if keep {
        writeln!(
            out,
            "Envoy and both upstreams (healthy) keep running; Ctrl-C stops them."
        )?;
    } else {
        writeln!(
            out,
            "Run with --keep to leave Envoy running for these (Ctrl-C stops it); policy: {}",
            stage.policy_path.display()
        )?;
    }
    out.flush()
}
