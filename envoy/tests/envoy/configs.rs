//! The operator configs in envoy/configs/: they load in real Envoy and do not drift apart.

use std::path::Path;
use std::process::Command;

use breakwater_envoy::config::{
    validation_copy, DYNAMIC_ECDS_YAML, ECDS_RESOURCE_YAML, STATIC_YAML,
};
use breakwater_envoy::{envoy_binary, EcdsCounters, EnvoyConfig, WasmFilter};
use serde_json::Value;

use crate::common::{noop_wasm, start, upstream};

/// Runs `envoy --mode validate` on `file`; returns Envoy's output on failure.
fn validate(file: &Path) -> Result<(), String> {
    let binary = envoy_binary().unwrap_or_else(|e| panic!("Envoy must be available: {e}"));
    let output = Command::new(binary)
        .args(["--mode", "validate", "-c"])
        .arg(file)
        .output()
        .expect("envoy runs");
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// The operator configs with only their paths changed, written to `dir`.
fn operator_files(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let wasm = noop_wasm();
    let ecds_dir = dir.join("ecds");
    std::fs::create_dir(&ecds_dir).expect("ecds dir");
    std::fs::write(
        ecds_dir.join("ecds.yaml"),
        validation_copy(ECDS_RESOURCE_YAML, &wasm, &ecds_dir),
    )
    .expect("resource written");
    let static_file = dir.join("static.yaml");
    let dynamic_file = dir.join("dynamic-ecds.yaml");
    std::fs::write(&static_file, validation_copy(STATIC_YAML, &wasm, &ecds_dir)).expect("written");
    std::fs::write(
        &dynamic_file,
        validation_copy(DYNAMIC_ECDS_YAML, &wasm, &ecds_dir),
    )
    .expect("written");
    (static_file, dynamic_file)
}

#[test]
fn the_operator_configs_pass_envoys_validation_with_their_own_policy() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (static_file, dynamic_file) = operator_files(dir.path());
    validate(&static_file).unwrap_or_else(|log| panic!("static.yaml must validate:\n{log}"));
    validate(&dynamic_file).unwrap_or_else(|log| panic!("dynamic-ecds.yaml must validate:\n{log}"));
}

#[test]
fn validation_loads_the_filter_so_a_refused_policy_fails_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (static_file, _) = operator_files(dir.path());
    let text = std::fs::read_to_string(&static_file).expect("read back");
    let start = text.find("value: |").expect("the policy block");
    let broken = format!(
        "{}value: '[1, 2]'\n{}",
        &text[..start],
        &text[text.find("          # The router").expect("router")..]
    );
    std::fs::write(&static_file, broken).expect("written");
    let log = validate(&static_file).expect_err("the no-op filter refuses a JSON array");
    assert!(
        log.contains("Unable to create Wasm plugin breakwater"),
        "{log}"
    );
}

fn yaml(text: &str) -> Value {
    serde_yaml_ng::from_str(text).expect("the config is YAML")
}

/// Takes the `breakwater` http filter out of a bootstrap and returns it.
fn take_filter(bootstrap: &mut Value) -> Value {
    let filters = bootstrap["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
        ["typed_config"]["http_filters"]
        .as_array_mut()
        .expect("http_filters");
    let at = filters
        .iter()
        .position(|f| f["name"] == "breakwater")
        .expect("the breakwater filter");
    filters.remove(at)
}

#[test]
fn the_static_and_ecds_configs_differ_only_in_how_the_filter_arrives() {
    let mut fixed = yaml(STATIC_YAML);
    let mut dynamic = yaml(DYNAMIC_ECDS_YAML);
    let inline = take_filter(&mut fixed);
    let discovered = take_filter(&mut dynamic);
    dynamic.as_object_mut().expect("a mapping").remove("node");
    assert_eq!(
        fixed, dynamic,
        "listener, routes, clusters, stats tags and access log are the same"
    );

    let resource = yaml(ECDS_RESOURCE_YAML);
    assert_eq!(
        resource["resources"][0]["typed_config"], inline["typed_config"],
        "the ECDS resource carries the same filter config and policy as static.yaml"
    );
    let default = &discovered["config_discovery"]["default_config"];
    assert_eq!(
        default["config"]["vm_config"],
        inline["typed_config"]["config"]["vm_config"]
    );
    assert_eq!(default["config"]["configuration"]["value"], "{}");
}

#[test]
fn the_operator_ecds_resource_loads_in_a_running_envoy() {
    let upstream = upstream("backend");
    let envoy = start(
        &EnvoyConfig::new()
            .cluster("backend", upstream.addr())
            .filter(WasmFilter::new(noop_wasm()))
            .ecds(),
    );
    let stats = envoy.stats().expect("stats");
    let counters = EcdsCounters::read(&stats);
    assert_eq!(
        counters.update_success, 1,
        "the first resource file was accepted: {counters:?}"
    );
    assert_eq!(counters.config_fail, 0);
    assert_eq!(
        stats.text("extension_config_discovery.http_filter.breakwater.version_text"),
        Some("1"),
        "version_info of the file shows as version_text"
    );
    assert_eq!(envoy.get("/").expect("a response").status, 200);
}
