//! The OCI image of the current build and the sha256 pins of the example manifests.
//!
//! This test builds the filter (cargo's own freshness check makes that cheap when nothing
//! changed). It fails after every change to the filter until the pins are renewed with
//! `cargo run -p breakwater-cli -- pin`: the build is reproducible, so the manifests of a commit
//! pin exactly the image that commit produces (see `breakwater_cli::pin`).

use breakwater_cli::oci::{self, sha256_hex};
use breakwater_cli::paths;
use breakwater_cli::pin::{self, Pins};

const RENEW: &str = "run `cargo run -p breakwater-cli -- pin` and commit examples/istio/";

#[test]
fn the_image_carries_the_current_build_and_the_manifests_pin_it() {
    let wasm_path = breakwater_wasm::breakwater().expect("the filter builds");
    let wasm = std::fs::read(&wasm_path).expect("the built .wasm");
    let dir = tempfile::tempdir().unwrap();
    let image = oci::build_image(&wasm).expect("the image builds");
    oci::write_layout(&image, dir.path(), "test").expect("the layout is written");

    // Read back as a registry client and Istio's fetcher would.
    let read = oci::read_layout(dir.path()).expect("the layout reads back");
    assert!(
        read.wasm == wasm,
        "plugin.wasm in the image is the current build, byte for byte"
    );
    let current = Pins {
        image: read.digest.clone(),
        module: sha256_hex(&read.wasm),
    };
    assert_eq!(current, Pins::of(&image));

    let manifests = pin::manifests().expect("examples/istio/");
    assert!(!manifests.is_empty());
    for path in manifests {
        let text = std::fs::read_to_string(&path).unwrap();
        let pinned = pin::pinned(&text).expect("the manifest parses");
        assert!(
            !pinned.is_empty(),
            "{} has WasmPlugins",
            paths::shown(&path)
        );
        for plugin in pinned {
            let at = format!("{} (WasmPlugin {})", paths::shown(&path), plugin.plugin);
            assert_eq!(
                plugin.module.as_deref(),
                Some(current.module.as_str()),
                "{at}: the annotated plugin.wasm sha256 is not the current build's: {RENEW}"
            );
            assert_eq!(
                plugin.image.as_deref(),
                Some(current.image.as_str()),
                "{at}: spec.sha256 is not the current build's image digest: {RENEW}"
            );
            assert!(
                plugin.url_pins(&current.image),
                "{at}: spec.url {:?} does not name the current build's image by its digest: \
                 {RENEW}",
                plugin.url
            );
        }
    }
}

#[test]
fn pin_check_agrees_with_the_manifests() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_breakwater-cli"))
        .args(["pin", "--check"])
        .output()
        .expect("breakwater-cli runs");
    assert!(
        output.status.success(),
        "{}{}\n{RENEW}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
