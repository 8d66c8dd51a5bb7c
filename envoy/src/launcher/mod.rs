//! Starting, watching and stopping one Envoy process.
//!
//! # Lifecycle
//! [`Envoy::start`] renders the config into a fresh temporary directory, starts Envoy with its
//! admin interface and listener on port 0 (Envoy picks free ports; the admin address comes back
//! through `--admin-address-path`, the listener's through `/listeners`), and returns once `/ready`
//! answers `LIVE` and every worker has the listener (its per-worker stats exist). Envoy's log goes to `envoy.log`, the access log (stdout) to `access.log`, both
//! in that directory; `--file-flush-interval-msec` keeps the access log seconds-fresh instead of
//! Envoy's default 10 s.
//!
//! Stopping sends SIGTERM, waits, then kills; dropping the handle does the same. When the handle
//! is dropped because a test is panicking, it prints the tail of both logs and keeps the directory.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus};
use std::thread;
use std::time::{Duration, Instant};

use crate::access_log::{self, AccessLogEntry};
use crate::admin::{Admin, Stats};
use crate::client::{self, Request, Response};
use crate::config::{self, EnvoyConfig, Rendered, WasmFilter, ECDS_FILE, LISTENER_NAME};
use crate::ecds::EcdsOutcome;
use crate::error::EnvoyError;
use crate::install::envoy_binary;
use crate::prometheus::Prometheus;

mod process;
use process::{is_startup_listing, spawn, tail};

/// How long Envoy may take to become ready (two busy cores, V8 compiling the module per worker).
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a wait for Envoy to reflect something (a log line, a stat) may take before failing.
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(20);
/// How long Envoy may take to exit after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(20);
/// Lines of each log printed when a test fails.
const TAIL_LINES: usize = 60;

/// The name of a per-worker stat of the `ingress` listener, for example
/// `listener.ingress.worker_1.downstream_cx_total`.
pub fn worker_stat(worker: usize, stat: &str) -> String {
    format!("listener.{LISTENER_NAME}.worker_{worker}.{stat}")
}

/// A running Envoy.
pub struct Envoy {
    child: Option<Child>,
    dir: Option<tempfile::TempDir>,
    path: PathBuf,
    admin: Admin,
    listener: SocketAddr,
    config: EnvoyConfig,
    rendered: Rendered,
}

impl Envoy {
    /// Starts Envoy as `config` says and waits until it is ready.
    pub fn start(config: &EnvoyConfig) -> Result<Envoy, EnvoyError> {
        let binary = envoy_binary()?;
        let dir = tempfile::Builder::new()
            .prefix("breakwater-envoy-")
            .tempdir()
            .map_err(|source| EnvoyError::Io {
                what: "creating a directory for Envoy".to_string(),
                source,
            })?;
        let path = dir.path().to_path_buf();
        let rendered = config::render(config, &path)?;
        let child = spawn(&binary, config, &rendered.bootstrap, &path)?;
        let mut envoy = Envoy {
            child: Some(child),
            dir: Some(dir),
            path,
            // Replaced as soon as Envoy reports its admin address.
            admin: Admin {
                addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            },
            listener: SocketAddr::from(([127, 0, 0, 1], 0)),
            config: config.clone(),
            rendered,
        };
        envoy.wait_ready()?;
        Ok(envoy)
    }

    fn wait_ready(&mut self) -> Result<(), EnvoyError> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let address_file = self.path.join("admin.addr");
        loop {
            if let Some(status) = self.try_wait()? {
                return Err(EnvoyError::Exited {
                    status: status.to_string(),
                    log: self.log_tail(TAIL_LINES),
                });
            }
            if self.admin.addr.port() == 0 {
                if let Some(addr) = fs::read_to_string(&address_file)
                    .ok()
                    .and_then(|text| text.trim().parse().ok())
                {
                    self.admin = Admin { addr };
                }
            }
            if self.admin.addr.port() != 0 && self.admin.is_ready() {
                break;
            }
            if Instant::now() > deadline {
                return Err(EnvoyError::NotReady {
                    timeout: READY_TIMEOUT,
                    log: self.log_tail(TAIL_LINES),
                });
            }
            thread::sleep(POLL);
        }
        self.listener = self
            .admin
            .listener_address(LISTENER_NAME)?
            .ok_or_else(|| EnvoyError::NoListener(LISTENER_NAME.to_string()))?;
        // `/ready` can answer before every worker has added the listener; a worker that has
        // not would miss connections (and exact balance would skip it).
        let workers = self.config.concurrency;
        self.wait_for("the listener on every worker", || {
            let stats = self.stats()?;
            Ok((0..workers).all(|w| {
                stats
                    .number(&worker_stat(w, "downstream_cx_total"))
                    .is_some()
            }))
        })
    }

    fn try_wait(&mut self) -> Result<Option<ExitStatus>, EnvoyError> {
        match &mut self.child {
            None => Ok(None),
            Some(child) => child.try_wait().map_err(|source| EnvoyError::Io {
                what: "checking on Envoy".to_string(),
                source,
            }),
        }
    }

    /// Envoy's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The listener clients connect to.
    pub fn listener(&self) -> SocketAddr {
        self.listener
    }

    pub fn admin(&self) -> Admin {
        self.admin
    }

    /// The config this Envoy was started with.
    pub fn config(&self) -> &EnvoyConfig {
        &self.config
    }

    /// The directory with the rendered config and the logs.
    pub fn dir(&self) -> &Path {
        &self.path
    }

    pub fn bootstrap_path(&self) -> &Path {
        &self.rendered.bootstrap
    }

    /// Sends `request` through Envoy on a fresh connection.
    pub fn send(&self, request: &Request) -> Result<Response, EnvoyError> {
        Ok(client::send(self.listener, request)?)
    }

    /// A keep-alive connection to Envoy's listener (see [`client::Session`]).
    pub fn session(&self) -> Result<client::Session, EnvoyError> {
        Ok(client::Session::open(self.listener)?)
    }

    /// `GET path` through Envoy.
    pub fn get(&self, path: &str) -> Result<Response, EnvoyError> {
        self.send(&Request::get(path))
    }

    /// See [`client::send_concurrently`]: `connections` connections to Envoy, opened together.
    pub fn send_concurrently(
        &self,
        connections: usize,
        requests_per_connection: usize,
        make: impl Fn(usize, usize) -> Request,
    ) -> Result<Vec<Vec<Result<Response, client::ClientError>>>, EnvoyError> {
        Ok(client::send_concurrently(
            self.listener,
            connections,
            requests_per_connection,
            make,
        )?)
    }

    pub fn stats(&self) -> Result<Stats, EnvoyError> {
        Ok(self.admin.stats()?)
    }

    pub fn prometheus(&self) -> Result<Prometheus, EnvoyError> {
        Ok(self.admin.prometheus()?)
    }

    /// The access log so far.
    pub fn access_log(&self) -> Result<Vec<AccessLogEntry>, EnvoyError> {
        let text = fs::read_to_string(self.path.join("access.log")).unwrap_or_default();
        Ok(access_log::parse(&text)?)
    }

    /// Waits until the access log holds at least `n` entries and returns them all.
    pub fn wait_for_access_log(&self, n: usize) -> Result<Vec<AccessLogEntry>, EnvoyError> {
        let mut entries = Vec::new();
        self.wait_for(&format!("{n} access log entries"), || {
            entries = self.access_log()?;
            Ok(entries.len() >= n)
        })?;
        Ok(entries)
    }

    /// Polls `condition` until it holds, failing after [`SETTLE_TIMEOUT`] with `what` and the
    /// tail of Envoy's log. For things Envoy reflects asynchronously (stats after a config
    /// update, access log lines); never for timing behaviour.
    pub fn wait_for(
        &self,
        what: &str,
        mut condition: impl FnMut() -> Result<bool, EnvoyError>,
    ) -> Result<(), EnvoyError> {
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        loop {
            if condition()? {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(EnvoyError::Timeout {
                    what: what.to_string(),
                    timeout: SETTLE_TIMEOUT,
                    log: self.log_tail(TAIL_LINES),
                });
            }
            thread::sleep(POLL);
        }
    }

    /// Envoy's own log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.path.join("envoy.log")).unwrap_or_default()
    }

    /// The last `lines` lines of Envoy's log, without the start-up listings of extensions and
    /// header maps (dozens of very long lines that say nothing about a failure).
    pub fn log_tail(&self, lines: usize) -> String {
        let log = self.log();
        let kept: Vec<&str> = log.lines().filter(|l| !is_startup_listing(l)).collect();
        tail(&kept.join("\n"), lines)
    }

    /// Rolls out a new filter configuration through ECDS (the Envoy must have been started with
    /// [`EnvoyConfig::ecds`]): replaces the watched resource file atomically, then waits until
    /// Envoy has accepted or rejected it. `version` becomes the file's `version_info`.
    pub fn update_filter_configuration(
        &self,
        configuration: &str,
        version: Option<&str>,
    ) -> Result<EcdsOutcome, EnvoyError> {
        let (Some(dir), Some(filter)) = (&self.rendered.ecds_dir, &self.config.filter) else {
            return Err(EnvoyError::NotEcds);
        };
        let before = crate::ecds::EcdsCounters::read(&self.stats()?);
        let resource = config::ecds_resource(filter, Some(configuration), version)?;
        config::write_atomically(dir, ECDS_FILE, &resource)?;
        let mut after = before;
        self.wait_for("Envoy to accept or reject the ECDS update", || {
            after = crate::ecds::EcdsCounters::read(&self.stats()?);
            Ok(after.decided() > before.decided())
        })?;
        Ok(EcdsOutcome::between(before, after))
    }

    /// Rolls out a whole new filter through ECDS, names included (as istiod does when an upgrade
    /// renames the plugin), and waits until Envoy has accepted or rejected it. The filter's
    /// module must be the one Envoy runs, or Envoy starts another VM.
    pub fn update_filter(
        &self,
        filter: &WasmFilter,
        version: Option<&str>,
    ) -> Result<EcdsOutcome, EnvoyError> {
        let Some(dir) = &self.rendered.ecds_dir else {
            return Err(EnvoyError::NotEcds);
        };
        let before = crate::ecds::EcdsCounters::read(&self.stats()?);
        let resource = config::ecds_resource(filter, filter.configuration.as_deref(), version)?;
        config::write_atomically(dir, ECDS_FILE, &resource)?;
        let mut after = before;
        self.wait_for("Envoy to accept or reject the ECDS update", || {
            after = crate::ecds::EcdsCounters::read(&self.stats()?);
            Ok(after.decided() > before.decided())
        })?;
        Ok(EcdsOutcome::between(before, after))
    }

    /// Stops Envoy: SIGTERM, then a kill if it has not exited in time.
    pub fn stop(mut self) -> Result<ExitStatus, EnvoyError> {
        self.terminate()
    }

    fn terminate(&mut self) -> Result<ExitStatus, EnvoyError> {
        match self.child.take() {
            Some(child) => process::stop(child),
            None => Err(EnvoyError::NotRunning),
        }
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!("{}", self.diagnostics());
            if let Some(dir) = self.dir.take() {
                let kept = dir.keep();
                eprintln!("breakwater-envoy: kept {} for inspection", kept.display());
            }
        }
        if self.child.is_some() {
            let _ = self.terminate();
        }
    }
}

impl Envoy {
    /// What a failing test prints: where things are and the tail of both logs.
    pub fn diagnostics(&self) -> String {
        let access = fs::read_to_string(self.path.join("access.log")).unwrap_or_default();
        format!(
            "--- Envoy (admin {}, listener {}, files in {}) ---\n\
             --- envoy.log, last {TAIL_LINES} lines ---\n{}\n\
             --- access.log, last 20 lines ---\n{}\n--- end of Envoy logs ---",
            self.admin.addr,
            self.listener,
            self.path.display(),
            self.log_tail(TAIL_LINES),
            tail(&access, 20),
        )
    }
}
