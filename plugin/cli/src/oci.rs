//! The OCI image of the filter that Istio pulls, written as an OCI image layout.
//!
//! # Which image format
//!
//! Istio's agent (`pkg/wasm/imagefetcher.go`) accepts the two variants of the Wasm Image
//! Specification. This writes the *compat* variant with OCI media types: one
//! `application/vnd.oci.image.layer.v1.tar+gzip` layer holding `plugin.wasm`, and the manifest
//! annotation `module.wasm.image/variant: compat`. Unlike the *oci* variant, whose custom
//! artifact media types some registries refuse, every registry and every standard tool (skopeo,
//! crane, oras, docker) handles it.
//!
//! # Which digest a WasmPlugin pins
//!
//! For an `oci://` url Istio compares `WasmPlugin.sha256` with the digest of the image manifest
//! (`img.Digest()` in the fetcher), not with the `.wasm`'s own sha256; for `http(s)://` it
//! compares the downloaded bytes'. [`Image::digest`] is the first, [`Image::wasm_sha256`] the
//! second.
//!
//! # Reproducible
//!
//! The same `.wasm` gives the same image, byte for byte, so a digest can be pinned in the
//! repository: no timestamps anywhere (tar entry and gzip header times are 0, the config has no
//! `created`), fixed owner and mode, and a manifest with a single annotation (`oci-spec` keeps
//! annotations in a `HashMap`, whose order would vary).

use oci_spec::image::{
    Arch, Descriptor, Digest, ImageConfigurationBuilder, ImageIndex, ImageIndexBuilder,
    ImageManifest, ImageManifestBuilder, MediaType, OciLayoutBuilder, Os, RootFsBuilder,
    Sha256Digest,
};
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// The file inside the layer that Istio loads (the compat variant's name for it).
pub const WASM_FILE: &str = "plugin.wasm";
/// The manifest annotation that marks the compat variant with OCI media types.
pub const VARIANT_ANNOTATION: &str = "module.wasm.image/variant";
pub const VARIANT: &str = "compat";
/// The index annotation that names a tag in an OCI image layout.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Why an image could not be built, written or read.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("OCI structure: {0}")]
    Spec(#[from] oci_spec::OciSpecError),
    #[error("{0} is not empty and not an OCI image layout: refusing to overwrite it")]
    NotALayout(PathBuf),
    #[error("the image layout is not what Istio can load: {0}")]
    Invalid(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> OciError + '_ {
    move |source| OciError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The sha256 of `bytes`, in lowercase hex (the form `WasmPlugin.sha256` takes).
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn descriptor(media_type: MediaType, blob: &[u8]) -> Result<Descriptor, OciError> {
    let digest = Sha256Digest::from_str(&sha256_hex(blob))?;
    Ok(Descriptor::new(media_type, blob.len() as u64, digest))
}

/// An image in memory: its three blobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub manifest: Vec<u8>,
    pub config: Vec<u8>,
    pub layer: Vec<u8>,
    /// The sha256 of the `.wasm` inside.
    pub wasm_sha256: String,
}

impl Image {
    /// The manifest's digest (hex): what `WasmPlugin.sha256` pins for an `oci://` url.
    pub fn digest(&self) -> String {
        sha256_hex(&self.manifest)
    }
}

/// The image of `wasm`; the same bytes always give the same image.
pub fn build_image(wasm: &[u8]) -> Result<Image, OciError> {
    let tar = layer_tar(wasm)?;
    let layer = gzip(&tar)?;
    let config = ImageConfigurationBuilder::default()
        .architecture(Arch::Wasm)
        .os(Os::from("wasip1"))
        .rootfs(
            RootFsBuilder::default()
                .typ("layers")
                .diff_ids(vec![format!("sha256:{}", sha256_hex(&tar))])
                .build()?,
        )
        .build()?;
    let config = serde_json::to_vec(&config).map_err(|e| OciError::Invalid(e.to_string()))?;
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(descriptor(MediaType::ImageConfig, &config)?)
        .layers(vec![descriptor(MediaType::ImageLayerGzip, &layer)?])
        .annotations(HashMap::from([(
            VARIANT_ANNOTATION.to_string(),
            VARIANT.to_string(),
        )]))
        .build()?;
    let manifest = serde_json::to_vec(&manifest).map_err(|e| OciError::Invalid(e.to_string()))?;
    Ok(Image {
        manifest,
        config,
        layer,
        wasm_sha256: sha256_hex(wasm),
    })
}

/// A tar with one entry, `plugin.wasm`, owned by root, mode 0644, time 0.
fn layer_tar(wasm: &[u8]) -> Result<Vec<u8>, OciError> {
    let mut header = tar::Header::new_ustar();
    header.set_size(wasm.len() as u64);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    let mut builder = tar::Builder::new(Vec::new());
    builder
        .append_data(&mut header, WASM_FILE, wasm)
        .map_err(io(Path::new(WASM_FILE)))?;
    builder.into_inner().map_err(io(Path::new(WASM_FILE)))
}

fn gzip(bytes: &[u8]) -> Result<Vec<u8>, OciError> {
    let mut encoder = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::best());
    encoder
        .write_all(bytes)
        .map_err(io(Path::new("layer.tar.gz")))?;
    encoder.finish().map_err(io(Path::new("layer.tar.gz")))
}

fn blob_path(dir: &Path, digest: &str) -> PathBuf {
    dir.join("blobs").join("sha256").join(digest)
}

/// Writes `image` as an OCI image layout in `dir`, tagged `tag`, replacing a layout already
/// there (but nothing else: a non-empty directory that is not a layout is refused).
pub fn write_layout(image: &Image, dir: &Path, tag: &str) -> Result<(), OciError> {
    if dir.exists() {
        let empty = std::fs::read_dir(dir).map_err(io(dir))?.next().is_none();
        if !empty && !dir.join("oci-layout").is_file() {
            return Err(OciError::NotALayout(dir.to_path_buf()));
        }
        std::fs::remove_dir_all(dir).map_err(io(dir))?;
    }
    let blobs = dir.join("blobs").join("sha256");
    std::fs::create_dir_all(&blobs).map_err(io(&blobs))?;
    for blob in [&image.config, &image.layer, &image.manifest] {
        let path = blob_path(dir, &sha256_hex(blob));
        std::fs::write(&path, blob).map_err(io(&path))?;
    }
    let mut manifest = descriptor(MediaType::ImageManifest, &image.manifest)?;
    manifest.set_annotations(Some(HashMap::from([(
        REF_NAME.to_string(),
        tag.to_string(),
    )])));
    let index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(vec![manifest])
        .build()?;
    let layout = OciLayoutBuilder::default()
        .image_layout_version("1.0.0")
        .build()?;
    write_json(&dir.join("oci-layout"), &layout)?;
    write_json(&dir.join("index.json"), &index)
}

fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<(), OciError> {
    let bytes = serde_json::to_vec_pretty(value).map_err(|e| OciError::Invalid(e.to_string()))?;
    std::fs::write(path, bytes).map_err(io(path))
}

/// An image read back from a layout, every blob checked against its descriptor.
#[derive(Debug, Clone)]
pub struct ReadImage {
    /// The manifest's digest (hex).
    pub digest: String,
    pub manifest: ImageManifest,
    /// The tag the index gives it, if any.
    pub tag: Option<String>,
    /// `plugin.wasm`, out of the layer.
    pub wasm: Vec<u8>,
}

/// Reads the one image of the layout in `dir` the way a registry client and then Istio's
/// fetcher would: index → manifest → layer → `plugin.wasm`, checking each blob's digest and
/// size and the media types and annotation Istio needs.
pub fn read_layout(dir: &Path) -> Result<ReadImage, OciError> {
    let invalid = |what: String| OciError::Invalid(what);
    let layout_path = dir.join("oci-layout");
    let layout: serde_json::Value = read_json(&layout_path)?;
    if layout["imageLayoutVersion"] != "1.0.0" {
        return Err(invalid(format!("oci-layout says {layout}")));
    }
    let index: ImageIndex = read_json(&dir.join("index.json"))?;
    let [entry] = index.manifests().as_slice() else {
        return Err(invalid(format!(
            "index.json lists {} manifests, expected one",
            index.manifests().len()
        )));
    };
    if *entry.media_type() != MediaType::ImageManifest {
        return Err(invalid(format!(
            "index.json lists a {}, not an image manifest (Istio takes an image, not an index)",
            entry.media_type()
        )));
    }
    let manifest_bytes = read_blob(dir, entry)?;
    let manifest: ImageManifest = serde_json::from_slice(&manifest_bytes)
        .map_err(|e| invalid(format!("the manifest does not parse: {e}")))?;
    check_manifest(&manifest)?;
    let [layer] = manifest.layers().as_slice() else {
        return Err(invalid("the compat variant has exactly one layer".into()));
    };
    read_blob(dir, manifest.config())?;
    let wasm = wasm_of_layer(&read_blob(dir, layer)?)?;
    Ok(ReadImage {
        digest: sha256_hex(&manifest_bytes),
        tag: entry
            .annotations()
            .as_ref()
            .and_then(|a| a.get(REF_NAME).cloned()),
        manifest,
        wasm,
    })
}

fn check_manifest(manifest: &ImageManifest) -> Result<(), OciError> {
    let variant = manifest
        .annotations()
        .as_ref()
        .and_then(|a| a.get(VARIANT_ANNOTATION));
    let problem = if manifest.schema_version() != 2 {
        Some(format!("schemaVersion {}", manifest.schema_version()))
    } else if *manifest.config().media_type() != MediaType::ImageConfig {
        Some(format!(
            "config media type {}",
            manifest.config().media_type()
        ))
    } else if manifest
        .layers()
        .iter()
        .any(|l| *l.media_type() != MediaType::ImageLayerGzip)
    {
        Some("a layer that is not tar+gzip".to_string())
    } else if variant.map(String::as_str) != Some(VARIANT) {
        Some(format!("{VARIANT_ANNOTATION} is {variant:?}"))
    } else {
        None
    };
    match problem {
        Some(problem) => Err(OciError::Invalid(format!("the manifest has {problem}"))),
        None => Ok(()),
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, OciError> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| OciError::Invalid(format!("{}: {e}", path.display())))
}

/// A blob, checked against the digest and size its descriptor gives.
fn read_blob(dir: &Path, descriptor: &Descriptor) -> Result<Vec<u8>, OciError> {
    let digest: &Digest = descriptor.digest();
    if digest.algorithm().as_ref() != "sha256" {
        return Err(OciError::Invalid(format!("digest {digest} is not sha256")));
    }
    let path = blob_path(dir, digest.digest());
    let bytes = std::fs::read(&path).map_err(io(&path))?;
    let actual = sha256_hex(&bytes);
    if actual != digest.digest() || bytes.len() as u64 != descriptor.size() {
        return Err(OciError::Invalid(format!(
            "blob {} has sha256 {actual} and {} bytes, its descriptor says {} and {}",
            path.display(),
            bytes.len(),
            digest.digest(),
            descriptor.size()
        )));
    }
    Ok(bytes)
}

/// `plugin.wasm` out of a tar+gzip layer (any directory, as Istio matches the base name).
fn wasm_of_layer(layer: &[u8]) -> Result<Vec<u8>, OciError> {
    let gz = flate2::read::GzDecoder::new(layer);
    let mut archive = tar::Archive::new(gz);
    let entries = archive.entries().map_err(io(Path::new("layer")))?;
    for entry in entries {
        let mut entry = entry.map_err(io(Path::new("layer")))?;
        let path = entry.path().map_err(io(Path::new("layer")))?.into_owned();
        if path.file_name().and_then(|n| n.to_str()) == Some(WASM_FILE) {
            let mut wasm = Vec::new();
            entry.read_to_end(&mut wasm).map_err(io(&path))?;
            if !wasm.starts_with(b"\0asm") {
                return Err(OciError::Invalid(format!(
                    "{} is not a Wasm binary",
                    path.display()
                )));
            }
            return Ok(wasm);
        }
    }
    Err(OciError::Invalid(format!("the layer holds no {WASM_FILE}")))
}

#[cfg(test)]
mod tests;
