//! The tables of `BENCHMARKS.md`, rewritten in place by every full run.
//!
//! # Markers
//! Each generated part sits between `<!-- bench:NAME:begin -->` and `<!-- bench:NAME:end -->`.
//! Only those parts are replaced; the prose around them (the method, the interpretation) is
//! written by people and left alone. A missing or doubled marker is an error naming it, never a
//! silent append.

use crate::results::Report;
use crate::setups::{Overhead, Resilience, FAILURE_POLICY, FAILURE_POLICY_TIMEOUT};

/// The generated parts, in document order.
pub const SECTIONS: [&str; 6] = ["run", "overhead", "failure", "grpc", "harness", "targets"];

/// Why a section could not be replaced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MarkerError {
    #[error("BENCHMARKS.md has no `{0}` marker")]
    Missing(String),
    #[error("BENCHMARKS.md has the `{0}` marker more than once")]
    Doubled(String),
    #[error("BENCHMARKS.md has `{end}` before `{begin}`")]
    Misordered { begin: String, end: String },
}

fn markers(name: &str) -> (String, String) {
    (
        format!("<!-- bench:{name}:begin -->"),
        format!("<!-- bench:{name}:end -->"),
    )
}

/// `doc` with the text between section `name`'s markers replaced by `body`.
pub fn replace_section(doc: &str, name: &str, body: &str) -> Result<String, MarkerError> {
    let (begin, end) = markers(name);
    let find_once = |marker: &str| -> Result<usize, MarkerError> {
        let at = doc
            .find(marker)
            .ok_or_else(|| MarkerError::Missing(marker.to_string()))?;
        if doc[at + marker.len()..].contains(marker) {
            return Err(MarkerError::Doubled(marker.to_string()));
        }
        Ok(at)
    };
    let start = find_once(&begin)? + begin.len();
    let stop = find_once(&end)?;
    if stop < start {
        return Err(MarkerError::Misordered { begin, end });
    }
    Ok(format!(
        "{}\n{}\n{}",
        &doc[..start],
        body.trim_end(),
        &doc[stop..]
    ))
}

/// `doc` with every generated section rewritten from `report`.
pub fn rewrite(doc: &str, report: &Report) -> Result<String, MarkerError> {
    let mut out = doc.to_string();
    for name in SECTIONS {
        out = replace_section(&out, name, &render(name, report))?;
    }
    Ok(out)
}

fn number(value: Option<f64>, digits: usize) -> String {
    value.map_or("–".to_string(), |v| format!("{v:.digits$}"))
}

fn pass(ok: bool) -> &'static str {
    if ok {
        "PASS"
    } else {
        "FAIL"
    }
}

/// The markdown of section `name`.
pub fn render(name: &str, r: &Report) -> String {
    match name {
        "run" => run(r),
        "overhead" => overhead(r),
        "failure" => failure(r),
        "grpc" => grpc(r),
        "harness" => harness(r),
        _ => targets(r),
    }
}

fn run(r: &Report) -> String {
    let load = |v: Option<f64>| number(v, 2);
    format!(
        "| | |\n| --- | --- |\n\
         | command | `{}` |\n\
         | date | {} |\n\
         | machine | {} |\n\
         | Envoy | {} |\n\
         | load average (1 min) before / after | {} / {} |\n\
         | duration | {:.0} s |",
        r.command,
        r.date,
        r.machine.description,
        r.machine.envoy_version,
        load(r.load_before),
        load(r.load_after),
        r.elapsed.as_secs_f64(),
    )
}

fn overhead(r: &Report) -> String {
    let plan = r.overhead_plan;
    let mut out = format!(
        "wrk, 1 thread, {} connections, {} rounds × {} s per configuration, interleaved; \
         Envoy with 2 workers; medians over rounds.\n\n\
         | configuration | req/s | spread | p50 ms | p99 ms | Envoy CPU µs/request | failed responses |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n",
        plan.connections,
        plan.rounds,
        plan.run.as_secs(),
    );
    for config in Overhead::ALL {
        let row = r.row(config);
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            config.label(),
            number(row.rps, 0),
            row.rps_spread
                .map_or("–".to_string(), |s| format!("±{:.0}%", s * 50.0)),
            number(row.p50_ms, 2),
            number(row.p99_ms, 2),
            number(row.envoy_cpu_us, 1),
            row.errors,
        ));
    }
    out.push_str(
        "\n| ratio (median of per-round ratios) | from Envoy CPU per request (the targets) | from req/s |\n\
         | --- | ---: | ---: |\n",
    );
    for ratio in r.ratios() {
        out.push_str(&format!(
            "| {} | {} | {} |\n",
            ratio.label,
            number(ratio.cpu_value, 3),
            number(ratio.value, 3)
        ));
    }
    out
}

fn failure(r: &Report) -> String {
    let p = r.failure_plan;
    let mut out = format!(
        "{} connections, closed loop. Flaky: 30% of requests answered 503 at random, {} s. \
         Outage: {} s healthy, {} s of 503 to every request, then {} s healthy again.\n\n\
         | | flaky: success rate | flaky: amplification | flaky: client req/s, p50 / p99 ms | outage: upstream req/s after the trip | outage: offered req/s | outage: tripped after | outage: recovery |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
        p.connections,
        p.flaky.as_secs(),
        p.healthy.as_secs_f64(),
        p.outage.as_secs(),
        p.after.as_secs_f64(),
    );
    for who in Resilience::ALL {
        let Some(x) = r.results_of(who) else { continue };
        let seconds = |v: Option<f64>| v.map_or("never".to_string(), |v| format!("{v:.2} s"));
        let recovery = x.outage.recovery_seconds.map_or(
            format!("no success in {:.0} s", p.after.as_secs_f64()),
            |v| format!("{v:.2} s"),
        );
        out.push_str(&format!(
            "| {} | {:.4} | {:.3} | {:.0}, {} / {} | {:.2} | {:.0} | {} | {} |\n",
            who.label(),
            x.flaky.success_rate,
            x.flaky.amplification,
            x.flaky.client_rps,
            number(x.flaky.p50_ms, 2),
            number(x.flaky.p99_ms, 1),
            x.outage.upstream_rps_after_trip,
            x.outage.offered_rps,
            seconds(x.outage.tripped_after),
            recovery,
        ));
    }
    out.push_str(&format!(
        "\nBreakwater's policy (breaker `timeout` {} s):\n\n```json\n{}\n```",
        FAILURE_POLICY_TIMEOUT.as_secs(),
        FAILURE_POLICY
    ));
    out
}

fn grpc(r: &Report) -> String {
    let p = r.failure_plan;
    let mut out = format!(
        "{} tonic clients over HTTP/2, closed loop, unary calls; a tonic server behind an h2c \
         cluster. Flaky: 30% of calls fail with UNAVAILABLE at random, {} s. Outage: {} s \
         healthy, {} s of UNAVAILABLE to every call, then {} s healthy again. A call succeeds \
         when tonic reports OK.\n\n\
         | | flaky: success rate | flaky: amplification | flaky: calls/s, p50 / p99 ms | outage: server calls/s after the trip | outage: offered calls/s | outage: tripped after | outage: recovery |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
        p.connections,
        p.flaky.as_secs(),
        p.healthy.as_secs_f64(),
        p.outage.as_secs(),
        p.after.as_secs_f64(),
    );
    for (who, x) in &r.grpc_failure {
        let seconds = |v: Option<f64>| v.map_or("never".to_string(), |v| format!("{v:.2} s"));
        let recovery = x.outage.recovery_seconds.map_or(
            format!("no success in {:.0} s", p.after.as_secs_f64()),
            |v| format!("{v:.2} s"),
        );
        out.push_str(&format!(
            "| {} | {:.4} | {:.3} | {:.0}, {} / {} | {:.2} | {:.0} | {} | {} |\n",
            who.label(),
            x.flaky.success_rate,
            x.flaky.amplification,
            x.flaky.client_rps,
            number(x.flaky.p50_ms, 2),
            number(x.flaky.p99_ms, 1),
            x.outage.upstream_rps_after_trip,
            x.outage.offered_rps,
            seconds(x.outage.tripped_after),
            recovery,
        ));
    }
    out
}

fn harness(r: &Report) -> String {
    let f = &r.fuel;
    format!(
        "| wasm work per request (fuel ≈ wasm instructions) | fuel |\n| --- | ---: |\n\
         | no-op filter, healthy request | {} |\n\
         | Breakwater, closed path (healthy GET) | {} |\n\
         | Breakwater, a failure (503 to a POST, recorded, not retried) | {} |\n\
         | Breakwater, a retry (GET: 503, then 200 on the retry; whole request) | {} |\n\n\
         | module | bytes |\n| --- | ---: |\n\
         | `breakwater.wasm` | {} |\n\
         | `breakwater_noop.wasm` | {} |",
        f.noop_closed, f.closed, f.failure, f.retry, r.wasm_bytes, r.noop_wasm_bytes
    )
}

fn targets(r: &Report) -> String {
    let mut out = "| target | measured | limit | |\n| --- | ---: | ---: | --- |\n".to_string();
    for t in r.targets() {
        out.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            t.name,
            t.measured,
            t.limit,
            pass(t.pass)
        ));
    }
    out
}
