//! The example WasmPlugins against Istio's own WasmPlugin CRD, vendored from Istio 1.26.0 and
//! 1.27.0 (`tests/data/istio/`, with source, commit and licence in each file): the manifests as
//! shipped pass 1.27's schema, their `FAIL_RELOAD` fails 1.26's, and the FAIL_OPEN variant of
//! examples/istio/README.md passes it. This is the version matrix of that README, and of
//! `breakwater_cli::versions`, checked against the schemas Istio's API server enforces.
//!
//! The CRD's CEL rules (`x-kubernetes-validations`) are not JSON Schema: the ones that can
//! touch the examples are restated below, each with the rule's own message.

use breakwater_cli::istio;
use breakwater_cli::paths;
use breakwater_cli::versions::{IstioVersion, FAIL_RELOAD};
use serde_json::Value;

fn read(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The `openAPIV3Schema` of the WasmPlugin CRD of Istio `version`.
fn crd_schema(version: &str) -> Value {
    let path = paths::root().join(format!(
        "plugin/cli/tests/data/istio/wasmplugin-crd-{version}.yaml"
    ));
    let crd: serde_yaml_ng::Value = serde_yaml_ng::from_str(&read(&path)).expect("YAML");
    let crd: Value = serde_json::to_value(crd).expect("as JSON");
    assert_eq!(crd["spec"]["names"]["kind"], "WasmPlugin");
    let versions = crd["spec"]["versions"].as_array().expect("versions");
    let served = versions
        .iter()
        .find(|v| v["name"] == "v1alpha1")
        .expect("v1alpha1");
    served["schema"]["openAPIV3Schema"].clone()
}

fn validator(version: &str) -> jsonschema::Validator {
    jsonschema::validator_for(&crd_schema(version)).expect("a schema jsonschema compiles")
}

/// Every WasmPlugin document of the example manifests, as (file, document).
fn example_plugins() -> Vec<(String, Value)> {
    let files = paths::files(&paths::istio(), &["yaml", "yml"]).expect("examples/istio/");
    let mut plugins = Vec::new();
    for path in files {
        for document in istio::documents(&read(&path)).expect("YAML") {
            if document["kind"] == "WasmPlugin" {
                plugins.push((paths::shown(&path), document));
            }
        }
    }
    assert!(plugins.len() >= 3, "the three example plugins");
    plugins
}

fn errors(validator: &jsonschema::Validator, document: &Value) -> Vec<String> {
    validator
        .iter_errors(document)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

#[test]
fn the_example_manifests_pass_istio_1_27s_wasmplugin_schema() {
    let schema = validator("1.27.0");
    for (file, plugin) in example_plugins() {
        let found = errors(&schema, &plugin);
        assert!(found.is_empty(), "{file}: {found:#?}");
        // The schema is live: what Istio's API server refuses, it refuses too.
        for (field, wrong) in [
            ("phase", Value::from("LAST")),
            ("priority", Value::from("lowest")),
            ("imagePullPolicy", Value::from("Sometimes")),
            ("failStrategy", Value::from("FAIL_SOFTLY")),
        ] {
            let mut bad = plugin.clone();
            bad["spec"][field] = wrong;
            assert!(
                !schema.is_valid(&bad),
                "{file}: a wrong {field} must be refused"
            );
        }
    }
}

#[test]
fn before_1_27_fail_reload_is_refused_and_the_fail_open_variant_passes() {
    let schema = validator("1.26.0");
    assert_eq!(
        FAIL_RELOAD,
        "1.27".parse::<IstioVersion>().unwrap(),
        "the validator's version, which these two schemas bear out"
    );
    for (file, plugin) in example_plugins() {
        let reloads = plugin["spec"]["failStrategy"] == "FAIL_RELOAD";
        let found = errors(&schema, &plugin);
        if reloads {
            assert!(
                found
                    .iter()
                    .any(|e| e.contains("FAIL_RELOAD") && e.contains("failStrategy")),
                "{file}: Istio 1.26 refuses FAIL_RELOAD: {found:#?}"
            );
        } else {
            assert!(found.is_empty(), "{file}: {found:#?}");
        }
        let mut variant = plugin.clone();
        if reloads {
            variant["spec"]["failStrategy"] = "FAIL_OPEN".into();
        }
        let found = errors(&schema, &variant);
        assert!(
            found.is_empty(),
            "{file}, FAIL_OPEN variant, on 1.26: {found:#?}"
        );
    }
}

#[test]
fn the_example_manifests_keep_the_crds_cel_rules() {
    for (file, plugin) in example_plugins() {
        let spec = &plugin["spec"];
        // "url must have schema one of [http, https, file, oci]"
        let url = spec["url"].as_str().unwrap_or_default();
        let scheme = url.split("://").next().unwrap_or_default();
        assert!(
            ["http", "https", "file", "oci"].contains(&scheme) && url.contains("://"),
            "{file}: {url}"
        );
        // "only one of targetRefs or selector can be set"
        let set = ["selector", "targetRef", "targetRefs"]
            .iter()
            .filter(|f| spec.get(**f).is_some())
            .count();
        assert!(set <= 1, "{file}: selector and targetRefs together");
        // "wildcard not allowed in label key match" / "... label value match" / "key must not
        // be empty"
        if let Some(labels) = spec["selector"]["matchLabels"].as_object() {
            for (key, value) in labels {
                let value = value.as_str().unwrap_or_default();
                assert!(!key.is_empty() && !key.contains('*') && !value.contains('*'));
            }
        }
        // "cross namespace referencing is not currently supported"
        for target in spec["targetRefs"].as_array().into_iter().flatten() {
            assert!(target.get("namespace").is_none(), "{file}: {target}");
        }
    }
}
