use super::*;

/// A small valid-looking module: the Wasm magic and version, then some bytes.
fn module(tail: &[u8]) -> Vec<u8> {
    let mut wasm = b"\0asm\x01\0\0\0".to_vec();
    wasm.extend_from_slice(tail);
    wasm
}

fn written(wasm: &[u8]) -> (tempfile::TempDir, Image) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let image = build_image(wasm).expect("the image builds");
    write_layout(&image, dir.path(), "0.1.0").expect("the layout is written");
    (dir, image)
}

fn manifest_json(image: &Image) -> serde_json::Value {
    serde_json::from_slice(&image.manifest).expect("the manifest is JSON")
}

#[test]
fn the_same_module_always_gives_the_same_image_digest() {
    let wasm = module(b"same");
    assert_eq!(
        build_image(&wasm).unwrap(),
        build_image(&wasm).unwrap(),
        "no timestamps or map order may leak into the blobs: the digest is pinned in manifests"
    );
    assert_ne!(
        build_image(&wasm).unwrap().digest(),
        build_image(&module(b"other")).unwrap().digest(),
        "another module, another digest"
    );
}

#[test]
fn the_manifest_has_the_media_types_and_annotation_istio_reads_as_the_compat_variant() {
    let image = build_image(&module(b"x")).unwrap();
    let manifest = manifest_json(&image);
    // Written out literally: these strings are what Istio's image fetcher compares against.
    assert_eq!(manifest["schemaVersion"], 2);
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.oci.image.config.v1+json"
    );
    let layers = manifest["layers"].as_array().expect("layers");
    assert_eq!(layers.len(), 1, "the compat variant has one layer");
    assert_eq!(
        layers[0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    assert_eq!(
        manifest["annotations"],
        serde_json::json!({ "module.wasm.image/variant": "compat" })
    );
}

#[test]
fn the_config_names_the_wasm_platform_and_the_uncompressed_layer() {
    let image = build_image(&module(b"x")).unwrap();
    let config: serde_json::Value = serde_json::from_slice(&image.config).unwrap();
    assert_eq!(config["architecture"], "wasm");
    assert_eq!(config["os"], "wasip1");
    assert!(config.get("created").is_none(), "no time in the image");
    let tar = layer_tar(&module(b"x")).unwrap();
    assert_eq!(
        config["rootfs"]["diff_ids"][0],
        format!("sha256:{}", sha256_hex(&tar)),
        "diff_ids name the uncompressed tar"
    );
}

#[test]
fn a_written_layout_reads_back_to_the_same_module_and_digest() {
    let wasm = module(b"round trip");
    let (dir, image) = written(&wasm);
    let read = read_layout(dir.path()).expect("the layout reads back");
    assert_eq!(read.wasm, wasm, "plugin.wasm is the module, byte for byte");
    assert_eq!(read.digest, image.digest());
    assert_eq!(read.tag.as_deref(), Some("0.1.0"));
    assert_eq!(image.wasm_sha256, sha256_hex(&wasm));
}

#[test]
fn the_layout_has_the_standard_files_that_push_tools_read() {
    let (dir, image) = written(&module(b"files"));
    let layout: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("oci-layout")).unwrap()).unwrap();
    assert_eq!(layout, serde_json::json!({ "imageLayoutVersion": "1.0.0" }));
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("index.json")).unwrap()).unwrap();
    assert_eq!(index["schemaVersion"], 2);
    assert_eq!(
        index["manifests"][0]["digest"],
        format!("sha256:{}", image.digest())
    );
    assert_eq!(
        index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
        "0.1.0"
    );
    let blobs = std::fs::read_dir(dir.path().join("blobs/sha256")).unwrap();
    assert_eq!(blobs.count(), 3, "manifest, config and layer");
}

#[test]
fn a_blob_that_does_not_match_its_digest_is_refused() {
    let (dir, image) = written(&module(b"tamper"));
    let layer = manifest_json(&image)["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    std::fs::write(dir.path().join("blobs/sha256").join(&layer), b"changed").unwrap();
    let error = read_layout(dir.path()).expect_err("a changed layer must not read back");
    assert!(
        error.to_string().contains("descriptor says"),
        "the error says which blob and why: {error}"
    );
}

#[test]
fn a_layer_without_a_wasm_module_is_refused() {
    let error = build_image(b"not wasm at all")
        .and_then(|image| {
            let dir = tempfile::tempdir().unwrap();
            write_layout(&image, dir.path(), "x")?;
            read_layout(dir.path())
        })
        .expect_err("Istio refuses a binary without the Wasm magic, so must the reader");
    assert!(error.to_string().contains("not a Wasm binary"), "{error}");
}

#[test]
fn writing_replaces_an_old_layout_but_never_an_unrelated_directory() {
    let (dir, _) = written(&module(b"old"));
    let image = build_image(&module(b"new")).unwrap();
    write_layout(&image, dir.path(), "0.2.0").expect("an old layout is replaced");
    assert_eq!(read_layout(dir.path()).unwrap().wasm, module(b"new"));
    assert_eq!(
        std::fs::read_dir(dir.path().join("blobs/sha256"))
            .unwrap()
            .count(),
        3,
        "no stale blobs"
    );

    let other = tempfile::tempdir().unwrap();
    std::fs::write(other.path().join("notes.txt"), b"mine").unwrap();
    let error = write_layout(&image, other.path(), "x").expect_err("not a layout");
    assert!(matches!(error, OciError::NotALayout(_)), "{error}");
    assert!(other.path().join("notes.txt").is_file(), "left alone");
}
