//! One wasmtime [`Engine`] per process and each module compiled once.
//!
//! # Why a cache, and two of them
//! The tests use a debug build of wasmtime (a release build takes about 9 minutes here), whose
//! Cranelift needs 4–6 s to compile a 100–200 KB module. So:
//! - within a process, every [`crate::World`] shares the compiled [`Module`], keyed by the path
//!   and a hash of the bytes (a rebuilt module is compiled again, never served stale);
//! - across processes (each test binary is one), the compiled code is kept next to the module
//!   in `target/wasm/cwasm/`, named by the hash of the wasm bytes and of the engine's
//!   configuration and version, so only the first test binary after a change pays. Files are
//!   written to a temporary name and renamed, so binaries starting together never see half a
//!   file; a file wasmtime refuses is compiled afresh.
//!
//! The engine meters fuel (about one unit per wasm instruction) so that the harness can report
//! the filter's wasm work per callback and per request.

use crate::HarnessError;
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use wasmtime::{Config, Engine, Module};

/// The process-wide engine.
pub(crate) fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let mut config = Config::new();
        config.consume_fuel(true);
        // An unknown `Config` is a bug in this file, not an input error.
        Engine::new(&config).expect("a fuel-metering wasmtime engine")
    })
}

type Cache = Mutex<HashMap<(PathBuf, u64), Arc<Module>>>;

/// The compiled module at `path`, compiled at most once for the same bytes.
pub(crate) fn load(path: &Path) -> Result<Arc<Module>, HarnessError> {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let bytes = std::fs::read(path).map_err(|e| HarnessError::Read {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    let key = (path.to_path_buf(), digest(&bytes));
    let cache = CACHE.get_or_init(Default::default);
    // Holding the lock while compiling makes a second world wait for the first compilation
    // instead of compiling the same bytes again.
    let mut cache = cache
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(module) = cache.get(&key) {
        return Ok(Arc::clone(module));
    }
    let module = Arc::new(compile(path, &bytes)?);
    cache.insert(key, Arc::clone(&module));
    Ok(module)
}

fn compile(path: &Path, bytes: &[u8]) -> Result<Module, HarnessError> {
    let stored = stored_path(bytes);
    if stored.is_file() {
        // SAFETY: `Module::deserialize_file` runs the file's machine code, so the file must come
        // from `Module::serialize` of a compatible engine. Only this function writes files
        // under that name, which carries the engine's compatibility hash, and it writes them
        // whole (rename after write); wasmtime also checks the version and configuration
        // recorded in the file and refuses a mismatch, which falls through to compiling.
        if let Ok(module) = unsafe { Module::deserialize_file(engine(), &stored) } {
            return Ok(module);
        }
    }
    let module = Module::new(engine(), bytes).map_err(|e| HarnessError::Compile {
        path: path.display().to_string(),
        reason: format!("{e:#}"),
    })?;
    // Keeping the compiled code is an optimization: failing to is not an error.
    if let Ok(serialized) = module.serialize() {
        let _ = store(&stored, &serialized);
    }
    Ok(module)
}

/// Where the compiled form of `bytes` is kept.
fn stored_path(bytes: &[u8]) -> PathBuf {
    let mut hasher = DefaultHasher::new();
    engine().precompile_compatibility_hash().hash(&mut hasher);
    let engine_key = hasher.finish();
    breakwater_wasm::target_dir()
        .join("cwasm")
        .join(format!("{:016x}-{engine_key:016x}.cwasm", digest(bytes)))
}

fn store(target: &Path, serialized: &[u8]) -> std::io::Result<()> {
    let dir = target.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let temporary = dir.join(format!(".{}.tmp", std::process::id()));
    std::fs::write(&temporary, serialized)?;
    std::fs::rename(&temporary, target)
}

fn digest(bytes: &[u8]) -> u64 {
    let mut hasher = DefaultHasher::new();
    bytes.hash(&mut hasher);
    hasher.finish()
}
