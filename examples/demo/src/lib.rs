//! Breakwater's demo: the current `breakwater.wasm` in the real Envoy 1.40 with two workers, in
//! front of two upstreams, driven through a story of phases (healthy, flaky, down, recovering,
//! healthy) with a live view, then a summary.
//!
//! ```text
//! cargo run --release -p breakwater-demo              # about 45 s
//! cargo run --release -p breakwater-demo -- --quick   # about 15 s
//! cargo run --release -p breakwater-demo -- --keep    # then leaves it running until Ctrl-C
//! ```
//!
//! - [`stage`]: builds the module, finds Envoy, starts the upstreams and Envoy with
//!   `examples/policies/demo.json`;
//! - [`phases`]: the story;
//! - [`load`]: the clients;
//! - [`drive`]: runs the phases and reports what each did;
//! - [`view`] and [`summary`]: what the user sees;
//! - [`grpc`]: the `--grpc` story, a tonic client and server through Envoy over HTTP/2.

pub mod drive;
pub mod grpc;
pub mod load;
pub mod phases;
pub mod stage;
pub mod summary;
pub mod view;

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

pub use drive::{PhaseReport, Report};
pub use load::LoadShape;
pub use phases::Phase;
pub use stage::Stage;
pub use view::View;

/// Why the demo could not run.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("reading the policy {path}: {source}")]
    Policy {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Build(#[from] breakwater_wasm::BuildError),
    #[error(transparent)]
    Envoy(#[from] breakwater_envoy::EnvoyError),
    #[error("starting an upstream: {0}")]
    Upstream(std::io::Error),
    #[error("writing the output: {0}")]
    Output(#[from] std::io::Error),
}

/// How to run the demo.
#[derive(Debug, Clone)]
pub struct Options {
    pub phases: Vec<Phase>,
    pub load: LoadShape,
    /// A policy file instead of `examples/policies/demo.json`.
    pub policy: Option<PathBuf>,
}

impl Options {
    /// The full demo.
    pub fn standard() -> Options {
        Options {
            phases: phases::standard(),
            load: LoadShape::default(),
            policy: None,
        }
    }

    /// The same story, shorter.
    pub fn quick() -> Options {
        Options {
            phases: phases::quick(),
            ..Options::standard()
        }
    }
}

/// Starts the stage, drives the phases and writes the summary. The stage is returned still
/// running, for `--keep` and for tests to look at.
pub fn run(
    options: &Options,
    out: &mut dyn Write,
    tty: bool,
    stop: &AtomicBool,
) -> Result<(Stage, Report), DemoError> {
    let stage = Stage::start(options.policy.as_deref(), out)?;
    let report = {
        let mut view = View::new(out, tty);
        drive::drive(&stage, &options.phases, options.load, &mut view, stop)?
    };
    summary::write(out, &report)?;
    Ok((stage, report))
}
