//! `cargo run --release -p breakwater-demo [-- --quick] [-- --keep] [-- --policy FILE]`

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use breakwater_demo::{run, summary, Options};

const USAGE: &str = "usage: breakwater-demo [--quick] [--keep] [--grpc] [--policy FILE]

  --quick        a shorter run of the same story (about 15 s instead of 45 s)
  --grpc         the gRPC story instead: a tonic client and server through Envoy (HTTP/2)
  --keep         leave Envoy and the upstreams running afterwards, until Ctrl-C
  --policy FILE  run with this policy instead of examples/policies/demo.json";

struct Args {
    options: Options,
    keep: bool,
    grpc: bool,
}

fn parse(args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut options = Options::standard();
    let mut keep = false;
    let mut grpc = false;
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => options.phases = breakwater_demo::phases::quick(),
            "--keep" => keep = true,
            "--grpc" => grpc = true,
            "--policy" => {
                let path = args.next().ok_or("--policy needs a file")?;
                options.policy = Some(PathBuf::from(path));
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Args {
        options,
        keep,
        grpc,
    })
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(problem) => {
            if !problem.is_empty() {
                eprintln!("breakwater-demo: {problem}");
            }
            eprintln!("{USAGE}");
            return if problem.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            };
        }
    };
    if args.grpc {
        return match breakwater_demo::grpc::run_grpc(
            args.options.policy.as_deref(),
            &mut std::io::stdout(),
        ) {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("breakwater-demo: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        if let Err(e) = ctrlc::set_handler(move || stop.store(true, Ordering::Relaxed)) {
            eprintln!("breakwater-demo: cannot handle Ctrl-C ({e}); it will end the demo abruptly");
        }
    }
    let mut stdout = std::io::stdout();
    let tty = stdout.is_terminal();
    let (stage, report) = match run(&args.options, &mut stdout, tty, &stop) {
        Ok(done) => done,
        Err(e) => {
            eprintln!("breakwater-demo: {e}");
            return ExitCode::FAILURE;
        }
    };
    let keep = args.keep && !report.interrupted;
    if !report.interrupted {
        if let Err(e) = summary::write_try_it(&mut stdout, &stage, keep) {
            eprintln!("breakwater-demo: {e}");
        }
    }
    if keep {
        while !stop.load(Ordering::Relaxed) {
            thread::sleep(Duration::from_millis(100));
        }
        let _ = writeln!(stdout, "\nstopping Envoy and the upstreams");
    }
    drop(stage);
    ExitCode::SUCCESS
}
