//! Builds the current `breakwater.wasm`, or another wasm crate of this workspace, for the tests,
//! the demo and the benchmarks.
//!
//! # Why a build step at run time
//! A test must never run a stale `.wasm`. Rather than trust a file on disk, every process that
//! needs the module asks cargo to build it once: cargo's own freshness check rebuilds exactly when
//! the sources changed, and cargo's file lock makes concurrent test binaries wait for one build.
//!
//! The build goes to its own target directory, `target/wasm/`, because the `cargo test` that
//! started us may still hold the lock on `target/` itself.
//!
//! # Test-only variants
//! [`build_with_features`] builds a crate with extra cargo features, such as `breakwater`'s
//! `test-trap` (a filter that traps on demand, for the failure-policy tests). Each feature set
//! gets a target directory of its own (`target/wasm-test-trap/`), so a variant never overwrites
//! nor invalidates the module in `target/wasm/`, the one the tools package and pin.
//!
//! # The wasm target on first use
//! `rust-toolchain.toml` names `wasm32-wasip1`, but rustup adds a toolchain file's targets only
//! when it installs the toolchain, not to one already installed; and the nested `cargo` runs the
//! toolchain's cargo directly, past rustup's proxy. So before the first build the builder looks
//! for the target's standard library in the toolchain's sysroot and, when it is missing, runs
//! `rustup target add wasm32-wasip1` for that toolchain, saying so; without rustup it fails with
//! the one-line fix.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// The wasm target every module is built for.
pub const TARGET: &str = "wasm32-wasip1";

/// Why a module could not be built.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BuildError {
    #[error("could not run `{cargo}` to build {package}.wasm: {reason}")]
    Spawn {
        cargo: String,
        package: String,
        reason: String,
    },
    #[error(
        "`cargo build --release --target {TARGET} -p {package}` failed \
         (is the target installed? `rustup target add {TARGET}`):\n{stderr}"
    )]
    Failed { package: String, stderr: String },
    #[error("cargo reported success but {0} is missing")]
    Missing(PathBuf),
    #[error(
        "the {TARGET} target is not installed for this toolchain and could not be added \
         ({reason}); run `rustup target add {TARGET}`"
    )]
    NoTarget { reason: String },
}

/// The workspace root (the directory holding the root `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("plugin/wasm sits two levels below the workspace root")
        .to_path_buf()
}

/// The target directory the modules are built in.
pub fn target_dir() -> PathBuf {
    workspace_root().join("target").join("wasm")
}

/// The target directory of modules built with `features` (sorted, joined by `-`):
/// `target/wasm-<features>/`; [`target_dir`] without any.
pub fn target_dir_with_features(features: &[&str]) -> PathBuf {
    if features.is_empty() {
        return target_dir();
    }
    let mut features = features.to_vec();
    features.sort_unstable();
    features.dedup();
    workspace_root()
        .join("target")
        .join(format!("wasm-{}", features.join("-")))
}

/// The current `breakwater.wasm`, built (or rebuilt) first if needed.
pub fn breakwater() -> Result<PathBuf, BuildError> {
    build("breakwater")
}

/// The current module of workspace crate `package`, built (or rebuilt) first if needed; once per
/// process and package.
pub fn build(package: &str) -> Result<PathBuf, BuildError> {
    build_with_features(package, &[])
}

/// The current module of workspace crate `package` with the cargo `features` turned on (none:
/// the same module as [`build`]), built (or rebuilt) first if needed in
/// [`target_dir_with_features`]; once per process, package and feature set. For test-only
/// variants: the features never reach the module in `target/wasm/`.
pub fn build_with_features(package: &str, features: &[&str]) -> Result<PathBuf, BuildError> {
    /// Each (package, target directory)'s build result in this process.
    type Built = HashMap<(String, PathBuf), Result<PathBuf, BuildError>>;
    static BUILT: OnceLock<Mutex<Built>> = OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    let target_dir = target_dir_with_features(features);
    // Holding the lock across the build serializes this process's builds, which cargo would do
    // anyway, and makes a second caller wait for the first one's result instead of racing it.
    let mut built = built
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    built
        .entry((package.to_string(), target_dir.clone()))
        .or_insert_with(|| run_cargo(package, features, &target_dir))
        .clone()
}

fn run_cargo(package: &str, features: &[&str], target_dir: &Path) -> Result<PathBuf, BuildError> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    ensure_target(&cargo)?;
    let mut command = Command::new(&cargo);
    if let Some(flags) = remap_flags() {
        command.env("CARGO_ENCODED_RUSTFLAGS", flags);
    }
    command.args(["build", "--release", "--target", TARGET, "-p", package]);
    if !features.is_empty() {
        command.args(["--features", &features.join(",")]);
    }
    let output = command
        .current_dir(workspace_root())
        .arg("--target-dir")
        .arg(target_dir)
        // A build script or test runner may have set these for the outer build; they must not
        // redirect or reconfigure this one.
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("RUSTFLAGS")
        .output()
        .map_err(|e| BuildError::Spawn {
            cargo: cargo.clone(),
            package: package.to_string(),
            reason: e.to_string(),
        })?;
    if !output.status.success() {
        let package = match features {
            [] => package.to_string(),
            _ => format!("{package} --features {}", features.join(",")),
        };
        return Err(BuildError::Failed {
            package,
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        });
    }
    let artifact = target_dir
        .join(TARGET)
        .join("release")
        .join(format!("{}.wasm", package.replace('-', "_")));
    if artifact.is_file() {
        Ok(artifact)
    } else {
        Err(BuildError::Missing(artifact))
    }
}

/// Makes sure the toolchain that runs `cargo` has the wasm target's standard library, adding it
/// with rustup when missing (once per process).
fn ensure_target(cargo: &str) -> Result<(), BuildError> {
    static CHECKED: OnceLock<Result<(), BuildError>> = OnceLock::new();
    CHECKED
        .get_or_init(|| {
            let rustc = rustc_beside(cargo);
            match target_installed(&rustc) {
                Some(true) => return Ok(()),
                // Not a rustup layout we can read: let cargo say what is wrong.
                None => return Ok(()),
                Some(false) => {}
            }
            eprintln!(
                "breakwater: the {TARGET} target is missing from this toolchain; installing it \
                 (rustup target add {TARGET})"
            );
            // In the workspace, so that rustup picks the toolchain `rust-toolchain.toml` names
            // (or the one the outer `cargo +toolchain` set in RUSTUP_TOOLCHAIN).
            let status = Command::new("rustup")
                .current_dir(workspace_root())
                .args(["target", "add", TARGET])
                .status()
                .map_err(|e| BuildError::NoTarget {
                    reason: format!("could not run rustup: {e}"),
                })?;
            if !status.success() || target_installed(&rustc) != Some(true) {
                return Err(BuildError::NoTarget {
                    reason: format!("`rustup target add {TARGET}` ended with {status}"),
                });
            }
            Ok(())
        })
        .clone()
}

/// The `rustc` of the same toolchain as `cargo` (beside it), or the one on `PATH`.
fn rustc_beside(cargo: &str) -> PathBuf {
    let cargo = Path::new(cargo);
    match cargo.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.join("rustc"),
        _ => PathBuf::from("rustc"),
    }
}

/// Whether the toolchain of `rustc` has the wasm target's standard library; `None` when the
/// sysroot cannot be read.
fn target_installed(rustc: &Path) -> Option<bool> {
    let output = Command::new(rustc)
        .args(["--print", "sysroot"])
        .env_remove("RUSTFLAGS")
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let sysroot = String::from_utf8(output.stdout).ok()?;
    let lib = Path::new(sysroot.trim()).join("lib").join("rustlib");
    if !lib.is_dir() {
        return None;
    }
    Some(lib.join(TARGET).join("lib").is_dir())
}

/// Rustc flags that make the module independent of where the crates live: panic locations of
/// dependencies embed their source path under `CARGO_HOME`, so without this the module (and the
/// image digest pinned in `examples/istio/`) would differ between machines.
fn remap_flags() -> Option<String> {
    let home = std::env::var("CARGO_HOME")
        .ok()
        .or_else(|| std::env::var("HOME").ok().map(|h| format!("{h}/.cargo")))?;
    Some(format!("--remap-path-prefix={home}=/cargo"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workspace_root_holds_the_workspace_manifest() {
        let manifest = std::fs::read_to_string(workspace_root().join("Cargo.toml"))
            .expect("the root Cargo.toml is readable");
        assert!(
            manifest.contains("[workspace]"),
            "root manifest is the workspace"
        );
    }

    #[test]
    fn a_feature_set_builds_in_a_target_directory_of_its_own() {
        assert_eq!(target_dir_with_features(&[]), target_dir());
        let trap = target_dir_with_features(&["test-trap"]);
        assert_eq!(trap, workspace_root().join("target").join("wasm-test-trap"));
        assert_ne!(trap, target_dir(), "never beside the shipped module");
        assert_eq!(
            target_dir_with_features(&["b", "a", "b"]),
            target_dir_with_features(&["a", "b"]),
            "one directory per set, whatever the order"
        );
    }

    #[test]
    fn an_unknown_package_fails_with_cargos_message() {
        let err = build("no-such-package-here").expect_err("cargo cannot build a missing package");
        assert!(
            err.to_string().contains("no-such-package-here"),
            "the error names the package: {err}"
        );
    }
}
