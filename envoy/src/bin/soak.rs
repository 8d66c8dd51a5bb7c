//! `cargo run --release -p breakwater-envoy --bin soak [-- --quick | --minutes N]`
//!
//! Runs Breakwater in the real Envoy under steady load against flaky upstreams and exits non-zero
//! if a request went unanswered, Envoy's memory left its bounds, or a wasm error appeared. See
//! `SOAK.md`.

use std::process::ExitCode;
use std::time::Duration;

use breakwater_envoy::soak::{self, Options};
use clap::Parser;

/// Soak Breakwater in the real Envoy: steady load against flaky upstreams, checking that every
/// request is answered, that Envoy's memory stays bounded and flat, and that no wasm error
/// appears.
#[derive(Debug, Parser)]
#[command(name = "soak")]
struct Args {
    /// A 60-second run instead of 10 minutes.
    #[arg(long, conflicts_with_all = ["minutes", "seconds"])]
    quick: bool,
    /// Run for this many minutes (default 10).
    #[arg(long, conflicts_with = "seconds", value_parser = clap::value_parser!(u64).range(1..))]
    minutes: Option<u64>,
    /// Run for this many seconds (for the smoke test).
    #[arg(long, value_parser = clap::value_parser!(u64).range(2..))]
    seconds: Option<u64>,
    /// Requests per second over all connections.
    #[arg(long, default_value_t = 200.0)]
    rate: f64,
    /// Client connections (one thread each).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..))]
    connections: u16,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let duration = match (args.quick, args.minutes, args.seconds) {
        (true, _, _) => Duration::from_secs(60),
        (_, Some(minutes), _) => Duration::from_secs(minutes * 60),
        (_, _, Some(seconds)) => Duration::from_secs(seconds),
        _ => Duration::from_secs(600),
    };
    if !(args.rate.is_finite() && args.rate > 0.0) {
        eprintln!("soak: --rate must be a positive number of requests per second");
        return ExitCode::from(2);
    }
    let options = Options {
        rate: args.rate,
        connections: usize::from(args.connections),
        ..Options::for_duration(duration)
    };
    match soak::run(&options, &mut std::io::stdout()) {
        Ok(outcome) if outcome.passed() => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("soak: could not run: {e}");
            ExitCode::from(2)
        }
    }
}
