//! `breakwater-cli validate` as an operator runs it: the report on stdout and the exit code,
//! for policy files and WasmPlugin manifests.

use std::path::Path;
use std::process::Command;

/// Runs `breakwater-cli args` and returns (exit code, stdout).
fn run(args: &[&str]) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_breakwater-cli"))
        .args(args)
        .output()
        .expect("breakwater-cli runs");
    (
        output.status.code().expect("an exit code"),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

fn file(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

const INVALID_POLICY: &str = r#"{
  "default": { "retry": { "max_attempts": 0, "jiter": true } },
  "clusters": { "payments": { "circuit_breaker": { "half_open_attempts": 0 } } }
}"#;

#[test]
fn a_valid_policy_file_passes_with_exit_code_0() {
    let dir = tempfile::tempdir().unwrap();
    let path = file(
        dir.path(),
        "ok.json",
        r#"{"default": {"retry": {"max_attempts": 2}}}"#,
    );
    assert_eq!(run(&["validate", &path]), (0, format!("{path}: valid\n")));
}

#[test]
fn an_invalid_policy_file_lists_every_problem_with_path_value_and_rule_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let path = file(dir.path(), "bad.json", INVALID_POLICY);
    let (code, out) = run(&["validate", &path]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.starts_with(&format!("{path}: invalid, 3 problems\n")),
        "{out}"
    );
    for line in [
        "  error: circuit_breaker.half_open_attempts: 0 is out of range, must be 1..=1000 (at clusters.payments)",
        "  error: retry.max_attempts: 0 is out of range, must be 1..=10 (at default)",
    ] {
        assert!(out.lines().any(|l| l == line), "expected {line:?} in:\n{out}");
    }
    assert!(
        out.lines()
            .any(|l| l.starts_with("  error: retry.jiter: true ")),
        "the unknown field, named with its value: {out}"
    );
}

#[test]
fn a_wasm_plugin_manifest_is_checked_through_its_plugin_config() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        "apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: {{ name: good, namespace: shop }}
spec:
  url: oci://registry.example.com/breakwater:0.1.0
  pluginConfig:
    default: {{ circuit_breaker: {{ failure_threshold: 5.0, timeout: 30s }} }}
---
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: {{ name: bad, namespace: shop }}
spec:
  url: oci://registry.example.com/breakwater:0.1.0
  pluginConfig: {}
",
        INVALID_POLICY
    );
    let path = file(dir.path(), "plugins.yaml", &yaml);
    let (code, out) = run(&["validate", &path]);
    assert_eq!(code, 1, "one plugin is invalid: {out}");
    assert!(
        out.contains(&format!("{path}: WasmPlugin shop/good: valid\n")),
        "5.0 arrives as 5 through Istio's Struct, so it is a valid count: {out}"
    );
    assert!(
        out.contains(&format!(
            "{path}: WasmPlugin shop/bad: invalid, 3 problems\n"
        )),
        "{out}"
    );
    assert!(
        out.contains("  error: circuit_breaker.half_open_attempts: 0 is out of range, must be 1..=1000 (at clusters.payments)\n"),
        "{out}"
    );
}

#[test]
fn the_example_manifests_and_policies_all_validate() {
    let root = breakwater_cli::paths::root();
    let mut files: Vec<String> = Vec::new();
    for dir in ["examples/istio", "examples/policies"] {
        for path in breakwater_cli::paths::files(&root.join(dir), &["yaml", "json"]).unwrap() {
            files.push(path.to_string_lossy().into_owned());
        }
    }
    let mut args = vec!["validate", "--strict"];
    args.extend(files.iter().map(String::as_str));
    let (code, out) = run(&args);
    assert_eq!(
        code, 0,
        "every example is valid and without warnings:\n{out}"
    );
    assert_eq!(
        out.lines().filter(|l| l.ends_with(": valid")).count(),
        files.len(),
        "{out}"
    );
}

#[test]
fn warnings_fail_only_under_strict() {
    let dir = tempfile::tempdir().unwrap();
    let path = file(
        dir.path(),
        "w.json",
        r#"{"default": {"retry": {"max_attempts": 7}}}"#,
    );
    let (code, out) = run(&["validate", &path]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("valid, 1 warning\n  warning: retry.max_attempts: 7 "),
        "{out}"
    );
    assert_eq!(run(&["validate", "--strict", &path]).0, 1);
}

#[test]
fn a_file_that_is_no_policy_or_cannot_be_read_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let service = file(
        dir.path(),
        "svc.yaml",
        "apiVersion: v1\nkind: Service\nmetadata: { name: a }\n",
    );
    let (code, out) = run(&["validate", &service]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("neither a policy (JSON) nor a manifest with a WasmPlugin"),
        "{out}"
    );
    let missing = dir.path().join("missing.json");
    assert_eq!(run(&["validate", &missing.to_string_lossy()]).0, 2);
}

#[test]
fn schema_check_passes_on_the_committed_schema() {
    let (code, out) = run(&["schema", "--check"]);
    assert_eq!(code, 0, "{out}");
}
