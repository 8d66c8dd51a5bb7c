//! Where the repository keeps what this tool reads and writes.

use std::path::{Path, PathBuf};

/// The workspace root.
pub fn root() -> PathBuf {
    breakwater_wasm::workspace_root()
}

/// `examples/policy.schema.json`: the committed JSON Schema.
pub fn schema() -> PathBuf {
    root().join("examples").join("policy.schema.json")
}

/// `examples/istio/`: the WasmPlugin manifests.
pub fn istio() -> PathBuf {
    root().join("examples").join("istio")
}

/// `examples/policies/`: plain policy files.
pub fn policies() -> PathBuf {
    root().join("examples").join("policies")
}

/// `examples/grafana/breakwater.json`: the dashboard.
pub fn dashboard() -> PathBuf {
    root()
        .join("examples")
        .join("grafana")
        .join("breakwater.json")
}

/// `target/oci/breakwater/`: where `oci` writes the image layout by default.
pub fn oci_layout() -> PathBuf {
    root().join("target").join("oci").join("breakwater")
}

/// The files in `dir` whose extension is one of `extensions`, sorted.
pub fn files(dir: &Path, extensions: &[&str]) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if path.is_file() && extensions.contains(&extension) {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// `path` relative to the workspace root when it lies inside it, for messages.
pub fn shown(path: &Path) -> String {
    let root = root();
    path.strip_prefix(&root)
        .unwrap_or(path)
        .display()
        .to_string()
}
