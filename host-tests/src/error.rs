//! What can go wrong: setting up a world ([`HarnessError`]) or running the module ([`Failure`]).

use crate::observe::{LogLine, VmId};
use crate::Callback;
use std::fmt;

/// Why a [`World`](crate::World) could not be built or an operation could not run.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// The module could not be built by cargo.
    #[error(transparent)]
    Build(#[from] breakwater_wasm::BuildError),
    /// The module file could not be read.
    #[error("could not read {path}: {reason}")]
    Read { path: String, reason: String },
    /// wasmtime rejected the module.
    #[error("wasmtime could not compile {path}: {reason}")]
    Compile { path: String, reason: String },
    /// Instantiation failed: most often an import the harness does not provide, which the
    /// message names.
    #[error("instantiating the module for {vm} failed: {reason}")]
    Instantiate { vm: VmId, reason: String },
    /// The module lacks something Envoy requires (an ABI version export, an allocator, memory).
    #[error("the module is not a proxy-wasm 0.2.1 module: {0}")]
    NotProxyWasm(String),
    /// `proxy_on_vm_start` returned false: Envoy fails the VM.
    #[error("{vm}: proxy_on_vm_start returned false")]
    StartFailed { vm: VmId, logs: Vec<LogLine> },
    /// `proxy_on_configure` returned false: Envoy rejects the configuration.
    #[error("{vm}: proxy_on_configure rejected the configuration")]
    ConfigureRejected { vm: VmId, logs: Vec<LogLine> },
    /// The module trapped while the world was being built.
    #[error("{0}")]
    Trap(Box<Failure>),
    /// The builder was given something it cannot use.
    #[error("invalid world: {0}")]
    Invalid(String),
}

impl From<Failure> for HarnessError {
    fn from(failure: Failure) -> Self {
        HarnessError::Trap(Box::new(failure))
    }
}

/// A wasm trap (an SDK panic, `unreachable`, a host call the harness refused) or a stuck world.
/// It carries what a person needs to see why: where, the panic message, and the log.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The VM that failed, if a VM failed.
    pub vm: Option<VmId>,
    /// The callback that was running.
    pub callback: Option<Callback>,
    /// The context the callback ran for.
    pub context: u32,
    /// What wasmtime or the harness reported.
    pub message: String,
    /// The SDK's panic message (its last critical log line in that call), if it panicked.
    pub panic: Option<String>,
    /// The world's log up to the failure.
    pub logs: Vec<LogLine>,
    /// The last scheduling steps before the failure, oldest first.
    pub trace: Vec<String>,
}

impl Failure {
    pub(crate) fn stuck(message: String, logs: Vec<LogLine>, trace: Vec<String>) -> Self {
        Failure {
            vm: None,
            callback: None,
            context: 0,
            message,
            panic: None,
            logs,
            trace,
        }
    }
}

/// How many log lines and trace steps a failure prints.
const SHOWN: usize = 60;

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.vm, &self.callback) {
            (Some(vm), Some(cb)) => write!(
                f,
                "wasm trap in {vm} during {} (context {}): {}",
                cb.export_name(),
                self.context,
                self.message
            )?,
            _ => write!(f, "{}", self.message)?,
        }
        if let Some(panic) = &self.panic {
            write!(f, "\n  panic: {panic}")?;
        }
        let skip = self.logs.len().saturating_sub(SHOWN);
        write!(f, "\n  log ({} lines, last {}):", self.logs.len(), SHOWN)?;
        for line in &self.logs[skip..] {
            write!(f, "\n    {line}")?;
        }
        if !self.trace.is_empty() {
            write!(f, "\n  schedule (last steps):")?;
            for step in self
                .trace
                .iter()
                .skip(self.trace.len().saturating_sub(SHOWN))
            {
                write!(f, "\n    {step}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for Failure {}
