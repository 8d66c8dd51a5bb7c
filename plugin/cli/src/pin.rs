//! `pin`: the sha256 pins in the example WasmPlugins, kept equal to the current build.
//!
//! # Three pins, two hashes
//!
//! - `spec.url` names the image by its manifest digest, `oci://<repository>@sha256:<digest>`,
//!   not by a tag: a tag moves with every push, and istio-agent pulls what the tag names *now*
//!   and then compares its digest with `spec.sha256`. Under a reused tag, the manifests of the
//!   previous commit would fetch the new image and fail that check, so a rollback by "the
//!   previous manifests" would give new pods a deny-all filter. A digest names one image for
//!   good (Istio's `pkg/wasm/cache.go` reads a digest in the url). Push each build under a tag
//!   of its own too, so that the registry keeps it (see examples/istio/README.md).
//! - `spec.sha256` is the image's manifest digest: for an `oci://` url that is what Istio checks
//!   after pulling (see [`crate::oci`]).
//! - The annotation `breakwater/module-sha256` is the `.wasm`'s own sha256: what `spec.sha256`
//!   must be when the module is served over `http(s)://` instead, and a way to tell from
//!   `kubectl get wasmplugin -o yaml` which build a cluster runs.
//!
//! # Why the pins must equal the current build
//!
//! The build is reproducible (same toolchain, same `Cargo.lock`, same sources: same bytes) and
//! so is the image, so the manifests in a commit can pin exactly the image that commit
//! produces. A test holds them to it: a pin that drifted would make Istio refuse the module
//! (checksum mismatch) the day someone deploys these manifests with a freshly built image.
//! Every change to the filter therefore needs `cargo run -p breakwater-cli -- pin`, which
//! rewrites the pins in place (only those lines: comments and layout stay); the test's failure
//! message says so.

use crate::istio::{self, ManifestError};
use crate::oci::{self, Image, OciError};
use crate::paths;
use std::path::{Path, PathBuf};

/// The annotation that carries the `.wasm`'s sha256.
pub const MODULE_ANNOTATION: &str = "breakwater/module-sha256";

/// The two hashes of one build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pins {
    /// The image's manifest digest: `spec.sha256` of an `oci://` WasmPlugin.
    pub image: String,
    /// The `.wasm`'s sha256.
    pub module: String,
}

/// Why pins could not be computed, read or written.
#[derive(Debug, thiserror::Error)]
pub enum PinError {
    #[error("building the filter: {0}")]
    Build(#[from] breakwater_wasm::BuildError),
    #[error("{0}")]
    Oci(#[from] OciError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Manifest {
        path: PathBuf,
        source: ManifestError,
    },
    #[error("{path}: WasmPlugin {plugin} has no `{what}` line to pin")]
    Missing {
        path: PathBuf,
        plugin: String,
        what: &'static str,
    },
}

impl Pins {
    pub fn of(image: &Image) -> Pins {
        Pins {
            image: image.digest(),
            module: image.wasm_sha256.clone(),
        }
    }

    /// The pins of the current build (built first if needed).
    pub fn current() -> Result<Pins, PinError> {
        Ok(Pins::of(&current_image()?))
    }
}

/// The image of the current build.
pub fn current_image() -> Result<Image, PinError> {
    let wasm_path = breakwater_wasm::breakwater()?;
    let wasm = std::fs::read(&wasm_path).map_err(|source| PinError::Io {
        path: wasm_path,
        source,
    })?;
    Ok(oci::build_image(&wasm)?)
}

/// The pins one WasmPlugin carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pinned {
    /// `namespace/name`.
    pub plugin: String,
    /// `spec.url`.
    pub url: Option<String>,
    pub image: Option<String>,
    pub module: Option<String>,
}

impl Pinned {
    /// Whether `spec.url` names the image by the digest `image`: `oci://...@sha256:<image>`.
    pub fn url_pins(&self, image: &str) -> bool {
        let wanted = format!("@sha256:{image}");
        self.url
            .as_deref()
            .is_some_and(|url| url.starts_with("oci://") && url.ends_with(&wanted))
    }
}

/// The repository an `oci://` reference names, without its tag or digest:
/// `registry.example.com:5000/breakwater/breakwater` for
/// `registry.example.com:5000/breakwater/breakwater:0.1.0` (a registry's port is kept).
pub fn repository(reference: &str) -> &str {
    let named = reference.split('@').next().unwrap_or(reference);
    let last = named.rfind('/').map_or(0, |slash| slash + 1);
    match named[last..].find(':') {
        Some(colon) => &named[..last + colon],
        None => named,
    }
}

/// The pins of every WasmPlugin in a manifest.
pub fn pinned(text: &str) -> Result<Vec<Pinned>, ManifestError> {
    Ok(istio::wasm_plugins(&istio::documents(text)?)?
        .iter()
        .map(|plugin| Pinned {
            plugin: plugin.id(),
            url: plugin.spec_str("url").map(str::to_string),
            image: plugin.spec_str("sha256").map(str::to_string),
            module: plugin.annotation(MODULE_ANNOTATION).map(str::to_string),
        })
        .collect())
}

/// `text` with every `sha256:` and `breakwater/module-sha256:` value replaced by `pins`, and
/// every `url: oci://` naming the image by its digest. Line by line, so that comments and layout
/// stay as written.
pub fn repin(text: &str, pins: &Pins) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches(['\n', '\r']);
        let ending = &line[body.len()..];
        let indent = &body[..body.len() - body.trim_start().len()];
        let content = body.trim_start();
        if let Some(reference) = content.strip_prefix("url: oci://") {
            let repository = repository(reference.trim());
            out.push_str(&format!(
                "{indent}url: oci://{repository}@sha256:{}{ending}",
                pins.image
            ));
        } else if content.starts_with("sha256:") {
            out.push_str(&format!("{indent}sha256: {}{ending}", pins.image));
        } else if content.starts_with(&format!("{MODULE_ANNOTATION}:")) {
            out.push_str(&format!(
                "{indent}{MODULE_ANNOTATION}: \"{}\"{ending}",
                pins.module
            ));
        } else {
            out.push_str(line);
        }
    }
    out
}

/// Pins every WasmPlugin of the manifest at `path`; returns whether the file changes. With
/// `write` false, nothing is written (a check).
pub fn pin_file(path: &Path, pins: &Pins, write: bool) -> Result<bool, PinError> {
    let io = |source| PinError::Io {
        path: path.to_path_buf(),
        source,
    };
    let text = std::fs::read_to_string(path).map_err(io)?;
    let new = repin(&text, pins);
    let manifest = |source| PinError::Manifest {
        path: path.to_path_buf(),
        source,
    };
    for plugin in pinned(&new).map_err(manifest)? {
        let missing = |what| PinError::Missing {
            path: path.to_path_buf(),
            plugin: plugin.plugin.clone(),
            what,
        };
        if plugin.image.as_ref() != Some(&pins.image) {
            return Err(missing("sha256:"));
        }
        if !plugin.url_pins(&pins.image) {
            return Err(missing("url: oci://"));
        }
        if plugin.module.as_ref() != Some(&pins.module) {
            return Err(missing(MODULE_ANNOTATION));
        }
    }
    let changed = new != text;
    if changed && write {
        std::fs::write(path, new).map_err(io)?;
    }
    Ok(changed)
}

/// The example manifests: every YAML file in `examples/istio/`.
pub fn manifests() -> Result<Vec<PathBuf>, PinError> {
    let dir = paths::istio();
    paths::files(&dir, &["yaml", "yml"]).map_err(|source| PinError::Io { path: dir, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = "\
# A comment that must stay.
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata:
  name: breakwater
  namespace: istio-system
  annotations:
    breakwater/module-sha256: \"old\"
spec:
  url: oci://registry.example.com/breakwater:0.1.0
  # The image digest.
  sha256: 0000000000000000000000000000000000000000000000000000000000000000
  pluginConfig: {}
";

    fn pins() -> Pins {
        Pins {
            image: "a".repeat(64),
            module: "b".repeat(64),
        }
    }

    #[test]
    fn repinning_changes_only_the_three_pin_lines() {
        let new = repin(MANIFEST, &pins());
        let changed: Vec<(&str, &str)> = MANIFEST
            .lines()
            .zip(new.lines())
            .filter(|(old, new)| old != new)
            .collect();
        assert_eq!(changed.len(), 3, "{changed:?}");
        let digest = "a".repeat(64);
        assert_eq!(
            pinned(&new).unwrap(),
            [Pinned {
                plugin: "istio-system/breakwater".into(),
                url: Some(format!(
                    "oci://registry.example.com/breakwater@sha256:{digest}"
                )),
                image: Some(digest.clone()),
                module: Some("b".repeat(64)),
            }]
        );
        assert!(pinned(&new).unwrap()[0].url_pins(&digest));
        assert_eq!(repin(&new, &pins()), new, "pinning twice changes nothing");
    }

    #[test]
    fn a_plugin_without_a_pin_line_is_an_error_not_a_silent_skip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.yaml");
        std::fs::write(
            &path,
            MANIFEST.replace("    breakwater/module-sha256: \"old\"\n", ""),
        )
        .unwrap();
        let error = pin_file(&path, &pins(), true).expect_err("nothing to pin the module in");
        assert!(error.to_string().contains(MODULE_ANNOTATION), "{error}");
    }

    #[test]
    fn checking_writes_nothing_and_pinning_writes_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.yaml");
        std::fs::write(&path, MANIFEST).unwrap();
        assert!(pin_file(&path, &pins(), false).unwrap(), "would change");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), MANIFEST);
        assert!(pin_file(&path, &pins(), true).unwrap(), "changed");
        assert!(!pin_file(&path, &pins(), true).unwrap(), "already pinned");
    }
}

#[cfg(test)]
mod reference_tests {
    use super::repository;

    #[test]
    fn the_repository_drops_a_tag_or_a_digest_and_keeps_a_registry_port() {
        let digest = format!("sha256:{}", "c".repeat(64));
        for (reference, expected) in [
            (
                "registry.example.com/breakwater/breakwater:0.1.0",
                "registry.example.com/breakwater/breakwater",
            ),
            (
                "registry.example.com:5000/breakwater:0.1.0",
                "registry.example.com:5000/breakwater",
            ),
            (
                "registry.example.com:5000/breakwater",
                "registry.example.com:5000/breakwater",
            ),
            ("localhost/breakwater", "localhost/breakwater"),
        ] {
            assert_eq!(repository(reference), expected, "{reference}");
            let pinned = format!("{reference}@{digest}");
            assert_eq!(repository(&pinned), expected, "{pinned}");
        }
    }
}
