//! The Envoy process itself: its command line, its stop, and reading its log.

use std::fs;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::Instant;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::{POLL, STOP_TIMEOUT};
use crate::config::EnvoyConfig;
use crate::error::EnvoyError;

pub(super) fn spawn(
    binary: &Path,
    config: &EnvoyConfig,
    bootstrap: &Path,
    dir: &Path,
) -> Result<Child, EnvoyError> {
    let file = |name: &str| {
        let path = dir.join(name);
        fs::File::create(&path).map_err(|source| EnvoyError::Io {
            what: format!("creating {}", path.display()),
            source,
        })
    };
    let mut command = Command::new(binary);
    command
        .arg("-c")
        .arg(bootstrap)
        .args(["--concurrency", &config.concurrency.to_string()])
        // Several Envoys run at once in the tests; hot restart would make them share memory.
        .arg("--disable-hot-restart")
        .arg("--admin-address-path")
        .arg(dir.join("admin.addr"))
        .args(["--file-flush-interval-msec", "50"])
        .args(["--log-level", &config.log_level])
        .stdin(Stdio::null())
        .stdout(file("access.log")?)
        .stderr(file("envoy.log")?);
    if let Some(levels) = &config.component_log_level {
        command.args(["--component-log-level", levels]);
    }
    command.spawn().map_err(|source| EnvoyError::Io {
        what: format!("starting {}", binary.display()),
        source,
    })
}

/// Whether an Envoy log line is part of a start-up listing: its message (after the
/// `[source/...:N] ` location) is indented.
pub(super) fn is_startup_listing(line: &str) -> bool {
    line.find("[source/")
        .and_then(|at| line[at..].find("] ").map(|end| at + end + 2))
        .is_some_and(|message| line[message..].starts_with(' '))
}

pub(super) fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Stops Envoy: SIGTERM, then a kill if it has not exited within [`STOP_TIMEOUT`].
pub(super) fn stop(mut child: Child) -> Result<ExitStatus, EnvoyError> {
    let io = |what: &str| {
        let what = what.to_string();
        move |source| EnvoyError::Io { what, source }
    };
    if let Some(status) = child.try_wait().map_err(io("checking on Envoy"))? {
        return Ok(status);
    }
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
    }
    let deadline = Instant::now() + STOP_TIMEOUT;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().map_err(io("waiting for Envoy"))? {
            return Ok(status);
        }
        thread::sleep(POLL);
    }
    let _ = child.kill();
    child.wait().map_err(io("waiting for the killed Envoy"))
}
