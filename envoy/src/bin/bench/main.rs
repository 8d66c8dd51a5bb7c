//! The Breakwater benchmark: real Envoy 1.40, side by side, one run.
//!
//! ```sh
//! cargo run --release -p breakwater-envoy --bin bench            # full: about 7 minutes
//! cargo run --release -p breakwater-envoy --bin bench -- --quick # every scenario briefly, < 90 s
//! ```
//!
//! 1. Overhead on a healthy upstream ([`overhead`]): wrk against five Envoys (no wasm, the no-op
//!    filter, Breakwater default, Breakwater with `failure_rate`, Envoy's native retries and
//!    outlier detection), interleaved round by round.
//! 2. Behaviour under failure ([`failure`]): a 30% flaky upstream and an outage, Breakwater
//!    against Envoy native; then the same for gRPC over HTTP/2 ([`grpc`]).
//! 3. Harness figures ([`fuel`]): wasm fuel per request on the closed path, a failure and a
//!    retry, and the module's size.
//!
//! Writes `target/bench/results.json`, prints PASS/FAIL per target, and (full runs) rewrites the
//! generated tables of `BENCHMARKS.md`. The exit code is 0 even when a target fails: a failed
//! target is a result, reported as such; only a bench that could not measure exits non-zero.

mod analysis;
mod failure;
mod fuel;
mod grpc;
mod load;
mod machine;
mod markdown;
mod overhead;
mod results;
mod setups;
mod stats;
mod targets;
#[cfg(test)]
mod tests;
mod wrk;

use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use results::Report;
use setups::{Modules, Resilience};

pub type BenchResult<T> = Result<T, Box<dyn std::error::Error>>;

const USAGE: &str = "\
usage: cargo run --release -p breakwater-envoy --bin bench [-- OPTIONS]

  --quick          every scenario briefly (under 90 s), for smoke checks; BENCHMARKS.md is
                   left alone unless --markdown is given
  --rounds N       overhead rounds (default 8; quick 1)
  --seconds S      seconds per overhead run (default 6; quick 2)
  --connections C  connections of every load (default 16)
  --markdown       rewrite BENCHMARKS.md even with --quick
  --no-markdown    never rewrite BENCHMARKS.md
  --wasm PATH      use this breakwater.wasm instead of building the current one (to compare a
                   variant built elsewhere; the harness figures stay those of the current source)
  --serve CONFIG   measure nothing: start the upstream and the Envoy of one overhead
                   configuration (no_wasm, noop_wasm, breakwater, breakwater_rate, envoy_native),
                   print its listener and Envoy's pid, and serve until stdin closes (Enter or
                   Ctrl-D), for profiling (for example `perf record -p PID` while wrk runs)
";

/// The command line.
#[derive(Debug, Clone, PartialEq)]
struct Options {
    quick: bool,
    rounds: usize,
    seconds: u64,
    connections: usize,
    markdown: bool,
    /// `--serve CONFIG`: serve one overhead configuration instead of measuring.
    serve: Option<String>,
    /// `--wasm PATH`: a breakwater.wasm to use instead of building the current one.
    wasm: Option<PathBuf>,
}

fn parse_options(args: &[String]) -> Result<Options, String> {
    let quick = args.iter().any(|a| a == "--quick");
    let mut options = Options {
        quick,
        rounds: if quick { 1 } else { 8 },
        seconds: if quick { 2 } else { 6 },
        connections: 16,
        markdown: !quick,
        serve: None,
        wasm: None,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| -> Result<u64, String> {
            it.next()
                .and_then(|v| v.parse().ok())
                .filter(|v| *v > 0)
                .ok_or_else(|| format!("{name} needs a positive whole number"))
        };
        match arg.as_str() {
            "--quick" => {}
            "--rounds" => options.rounds = value("--rounds")? as usize,
            "--seconds" => options.seconds = value("--seconds")?,
            "--connections" => options.connections = value("--connections")? as usize,
            "--markdown" => options.markdown = true,
            "--no-markdown" => options.markdown = false,
            "--wasm" => {
                let path = it.next().ok_or("--wasm needs a path")?;
                options.wasm = Some(PathBuf::from(path));
            }
            "--serve" => {
                let name = it.next().ok_or("--serve needs a configuration name")?;
                if !setups::Overhead::ALL.iter().any(|c| c.key() == name) {
                    return Err(format!("--serve: no configuration named {name:?}"));
                }
                options.serve = Some(name.clone());
            }
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    Ok(options)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        print!("{USAGE}");
        return;
    }
    let options = match parse_options(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("bench: {e}\n\n{USAGE}");
            std::process::exit(2);
        }
    };
    let outcome = match &options.serve {
        Some(name) => serve(name, &options),
        None => run(&options, &args),
    };
    if let Err(e) = outcome {
        eprintln!("bench: failed: {e}");
        std::process::exit(1);
    }
}

fn run(options: &Options, args: &[String]) -> BenchResult<()> {
    let started = Instant::now();
    wrk::check_installed()?;
    let machine = machine::describe()?;
    let load_before = machine::load_average();
    eprintln!(
        "bench: {} on {}, Envoy {}",
        if options.quick {
            "quick run"
        } else {
            "full run"
        },
        machine.description,
        machine.envoy_version
    );

    let modules = modules(options)?;
    let wasm_bytes = fs::metadata(&modules.breakwater)?.len();
    let noop_wasm_bytes = fs::metadata(&modules.noop)?.len();

    eprintln!("bench: harness fuel (cargo run -p breakwater-host-tests --example fuel)");
    let fuel = fuel::measure()?;

    let overhead_plan = overhead::Plan {
        rounds: options.rounds,
        run: Duration::from_secs(options.seconds),
        warm_up: Duration::from_secs(if options.quick { 1 } else { 3 }),
        connections: options.connections,
    };
    let overhead = overhead::run(&modules, overhead_plan)?;

    let failure_plan = if options.quick {
        failure::Plan {
            connections: options.connections,
            warm_up: Duration::from_millis(500),
            flaky: Duration::from_secs(3),
            healthy: Duration::from_secs(1),
            outage: Duration::from_secs(4),
            after: Duration::from_millis(4_500),
        }
    } else {
        failure::Plan {
            connections: options.connections,
            warm_up: Duration::from_secs(2),
            flaky: Duration::from_secs(20),
            healthy: Duration::from_secs(2),
            outage: Duration::from_secs(12),
            after: Duration::from_secs(6),
        }
    };
    let mut failures = Vec::new();
    for who in Resilience::ALL {
        failures.push((who, failure::run(who, &modules, &failure_plan)?));
    }
    let mut grpc_failures = Vec::new();
    for who in grpc::GrpcResilience::ALL {
        grpc_failures.push((who, grpc::run(who, &modules, &failure_plan)?));
    }

    let command = std::iter::once("cargo run --release -p breakwater-envoy --bin bench")
        .chain((!args.is_empty()).then_some("--"))
        .chain(args.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ");
    let report = Report {
        command,
        date: httpdate::fmt_http_date(SystemTime::now()),
        quick: options.quick,
        machine,
        load_before,
        load_after: machine::load_average(),
        elapsed: started.elapsed(),
        overhead_plan,
        overhead,
        failure_plan,
        failure: failures,
        grpc_failure: grpc_failures,
        fuel,
        wasm_bytes,
        noop_wasm_bytes,
    };
    write(&report, options)
}

/// The modules under test: the current ones, built now, or the `--wasm` one.
fn modules(options: &Options) -> BenchResult<Modules> {
    let breakwater = match &options.wasm {
        Some(path) if path.is_file() => path.clone(),
        Some(path) => return Err(format!("--wasm {}: no such file", path.display()).into()),
        None => breakwater_wasm::breakwater()?,
    };
    Ok(Modules {
        breakwater,
        noop: breakwater_wasm::build("breakwater-noop")?,
    })
}

/// Serves one overhead configuration until stdin closes or a line is entered.
fn serve(name: &str, options: &Options) -> BenchResult<()> {
    let config = setups::Overhead::ALL
        .into_iter()
        .find(|c| c.key() == name)
        .ok_or_else(|| format!("no configuration named {name:?}"))?;
    let modules = modules(options)?;
    let upstream = breakwater_envoy::Upstream::start("bench")?;
    upstream.keep_requests(false);
    let envoy = breakwater_envoy::Envoy::start(&config.config(upstream.addr(), &modules))?;
    println!(
        "serving {}: listener http://{}/  admin http://{}/  Envoy pid {} (Enter or Ctrl-D stops)",
        config.label(),
        envoy.listener(),
        envoy.admin().addr,
        envoy.pid().unwrap_or(0)
    );
    let _ = std::io::stdin().read_line(&mut String::new());
    envoy.stop()?;
    Ok(())
}

/// Writes results.json, prints the targets, and rewrites BENCHMARKS.md if asked.
fn write(report: &Report, options: &Options) -> BenchResult<()> {
    let root = breakwater_wasm::workspace_root();
    let dir = root.join("target").join("bench");
    fs::create_dir_all(&dir)?;
    let json_path = dir.join("results.json");
    fs::write(&json_path, serde_json::to_string_pretty(&report.to_json())?)?;
    for section in ["overhead", "failure", "harness", "targets"] {
        println!("{}\n", markdown::render(section, report).trim_end());
    }
    println!("wrote {}", json_path.display());
    let md: PathBuf = root.join("BENCHMARKS.md");
    if options.markdown {
        let doc = fs::read_to_string(&md).map_err(|e| format!("reading {}: {e}", md.display()))?;
        fs::write(&md, markdown::rewrite(&doc, report)?)?;
        println!("updated {}", md.display());
    } else {
        println!(
            "left {} alone (quick run; --markdown to rewrite it)",
            md.display()
        );
    }
    let failed = report.targets().iter().filter(|t| !t.pass).count();
    println!(
        "targets: {} PASS, {} FAIL",
        report.targets().len() - failed,
        failed
    );
    Ok(())
}
