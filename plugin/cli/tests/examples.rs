//! The committed examples hold to the code: the JSON Schema is the one the raw policy types
//! generate, every example policy passes both the schema and the filter's own validation, and
//! the Istio manifests make the choices their comments promise.

use breakwater_cli::istio::{self, WasmPlugin};
use breakwater_cli::{paths, schema, validate};
use serde_json::Value;
use std::path::PathBuf;

fn read(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn manifests() -> Vec<PathBuf> {
    let files = paths::files(&paths::istio(), &["yaml", "yml"]).expect("examples/istio/");
    assert!(
        files.len() >= 3,
        "mesh-wide, workload and gateway manifests: {files:?}"
    );
    files
}

fn wasm_plugins() -> Vec<WasmPlugin> {
    manifests()
        .iter()
        .flat_map(|path| {
            let documents = istio::documents(&read(path)).expect("YAML");
            istio::wasm_plugins(&documents).expect("WasmPlugins")
        })
        .collect()
}

/// Every example policy as the filter receives it: the policy files, the contract's own
/// example, and each WasmPlugin's pluginConfig as Istio delivers it.
fn example_policies() -> Vec<(String, String)> {
    let mut policies: Vec<(String, String)> = paths::files(&paths::policies(), &["json"])
        .expect("examples/policies/")
        .into_iter()
        .map(|path| (paths::shown(&path), read(&path)))
        .collect();
    let contract = paths::root().join("plugin/src/policy/tests/policy_md_example.json");
    policies.push((paths::shown(&contract), read(&contract)));
    for plugin in wasm_plugins() {
        let config = plugin
            .plugin_config()
            .expect("a pluginConfig Istio can carry");
        policies.push((
            format!("WasmPlugin {}", plugin.id()),
            config.unwrap_or_else(|| "{}".into()),
        ));
    }
    policies
}

fn compiled_schema() -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(&read(&paths::schema())).expect("the schema is JSON");
    jsonschema::validator_for(&schema).expect("the committed schema is a valid JSON Schema")
}

#[test]
fn the_committed_schema_is_the_one_the_policy_types_generate() {
    assert!(
        read(&paths::schema()) == schema::text(),
        "examples/policy.schema.json has drifted from the raw policy types: \
         run `cargo run -p breakwater-cli -- schema --write` and commit the result"
    );
}

#[test]
fn every_example_policy_validates_against_the_schema() {
    let schema = compiled_schema();
    let policies = example_policies();
    assert!(
        policies.len() >= 7,
        "files, the contract's example and 3 plugins"
    );
    for (name, text) in policies {
        let policy: Value = serde_json::from_str(&text).expect("JSON");
        let errors: Vec<String> = schema.iter_errors(&policy).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{name} breaks the schema: {errors:#?}");
    }
}

#[test]
fn every_example_policy_is_accepted_by_the_filters_own_validation() {
    for (name, text) in example_policies() {
        if let Err(problems) = validate::check_policy(text.as_bytes()) {
            panic!("the filter would refuse {name}: {problems:#?}");
        }
    }
}

#[test]
fn the_example_wasm_plugins_carry_no_warnings() {
    for plugin in wasm_plugins() {
        let config = plugin
            .plugin_config()
            .unwrap()
            .unwrap_or_else(|| "{}".into());
        let warnings = validate::check_policy(config.as_bytes()).expect("valid");
        assert!(warnings.is_empty(), "{}: {warnings:#?}", plugin.id());
    }
    // Nor notes: `validate` on the manifests as an operator runs it.
    for path in manifests() {
        for checked in validate::check_file(&path).unwrap() {
            assert!(
                checked.is_valid() && checked.notes.is_empty(),
                "{}: {checked:?}",
                path.display()
            );
        }
    }
}

#[test]
fn the_schema_refuses_the_shapes_the_filter_refuses() {
    let schema = compiled_schema();
    let refused = [
        r#"{"defaults": {}}"#,
        r#"{"default": {"circuit_breaker": {"failure_treshold": 5}}}"#,
        r#"{"default": {"circuit_breaker": {"timeout": null}}}"#,
        r#"{"default": {"retry": {"max_attempts": "3"}}}"#,
        r#"{"default": {"retry": {"jitter": "sometimes"}}}"#,
        r#"{"routes": {"r": {"circuit_breaker": {"failure_threshold": 1}}}}"#,
        r#"{"default": {"circuit_breaker": {"mode": "open"}}}"#,
        r#"{"routes": {"r": {"retry": {"budget": {"window": "1s"}}}}}"#,
        r#"{"routes": {"r": {"retry": {"budget": null}}}}"#,
    ];
    for text in refused {
        let policy: Value = serde_json::from_str(text).unwrap();
        assert!(!schema.is_valid(&policy), "the schema must refuse {text}");
        assert!(
            validate::check_policy(text.as_bytes()).is_err(),
            "and so does the filter: {text}"
        );
    }
    let accepted = [
        r#"{}"#,
        r#"{"default": {"circuit_breaker": null, "retry": {"budget": null}}}"#,
        r#"{"routes": {"r": {"circuit_breaker": null}}}"#,
        r#"{"routes": {"r": {"retry": {"max_attempts": 2, "idempotency_header": null}}}}"#,
        r#"{"clusters": {"c": {"retry": {"budget": {"window": "1s"}}}}}"#,
        r#"{"default": {"retry": {"jitter": "decorrelated", "base_delay": 0.5}}}"#,
        r#"{"default": {"circuit_breaker": {"failure_on": ["no-healthy-upstream", "overflow"]}}}"#,
    ];
    for text in accepted {
        let policy: Value = serde_json::from_str(text).unwrap();
        assert!(schema.is_valid(&policy), "the schema must accept {text}");
    }
}

#[test]
fn the_example_wasm_plugins_pin_an_oci_image_and_set_phase_priority_and_fail_strategy() {
    for plugin in wasm_plugins() {
        let id = plugin.id();
        let url = plugin.spec_str("url").unwrap_or_default();
        assert!(
            url.starts_with("oci://"),
            "{id}: the image `oci` writes: {url}"
        );
        let sha = plugin.spec_str("sha256").unwrap_or_default();
        assert!(
            sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit()),
            "{id}: sha256 pinned: {sha:?}"
        );
        assert!(
            url.ends_with(&format!("@sha256:{sha}")),
            "{id}: the url names the pinned image by its digest, never by a tag that a newer \
             build can move: {url}"
        );
        assert_eq!(plugin.spec_str("pluginName"), Some("breakwater"), "{id}");
        assert_eq!(
            plugin.spec_str("phase"),
            Some("UNSPECIFIED_PHASE"),
            "{id}: last before the router"
        );
        assert_eq!(
            plugin.spec["priority"],
            i64::from(i32::MIN),
            "{id}: last within its phase: Istio sorts an unset priority as the lowest, so any \
             higher value would run every plugin without one after Breakwater"
        );
        // examples/failure-policy.md: sidecars reload a failed VM; the gateway fails open, since
        // a failed module fetch must never shut the site's one way in.
        let strategy = if plugin.spec.get("targetRefs").is_some() {
            "FAIL_OPEN"
        } else {
            "FAIL_RELOAD"
        };
        assert_eq!(plugin.spec_str("failStrategy"), Some(strategy), "{id}");
        assert!(
            plugin.plugin_name().is_some(),
            "{id}: a namespace, so a known plugin_name"
        );
    }
}

/// The labels a selector requires.
fn selector(plugin: &WasmPlugin) -> Option<&serde_json::Map<String, Value>> {
    plugin.spec.get("selector")?.get("matchLabels")?.as_object()
}

#[test]
fn no_proxy_is_selected_by_two_example_wasm_plugins() {
    // Istio applies every WasmPlugin that selects a proxy: two Breakwaters on one proxy would be
    // two breakers per cluster and multiplied retries.
    let plugins = wasm_plugins();
    let by_label: Vec<&WasmPlugin> = plugins.iter().filter(|p| selector(p).is_some()).collect();
    for (i, a) in by_label.iter().enumerate() {
        for b in &by_label[i + 1..] {
            let (la, lb) = (selector(a).unwrap(), selector(b).unwrap());
            let conflict = la.iter().any(|(k, v)| lb.get(k).is_some_and(|w| w != v));
            assert!(
                conflict,
                "{} and {} can select the same pod: their selectors must require different \
                 values of one label",
                a.id(),
                b.id()
            );
        }
    }
    for plugin in &plugins {
        let targets = plugin.spec.get("targetRefs");
        assert!(
            selector(plugin).is_some_and(|labels| labels.contains_key("breakwater/policy"))
                || targets.is_some_and(|t| t[0]["kind"] == "Gateway"),
            "{}: selects by breakwater/policy, or attaches to a Gateway (whose pods carry no \
             breakwater/policy label)",
            plugin.id()
        );
        assert!(
            !(selector(plugin).is_none() && targets.is_none()),
            "{}: a plugin without selector or targetRefs applies to every proxy",
            plugin.id()
        );
    }
}

/// examples/istio/README.md, Versions: the manifests as shipped suit Istio 1.27 and later; for
/// 1.24 to 1.26 the sidecar manifests need the FAIL_OPEN variant, made with one substitution.
#[test]
fn the_manifests_suit_istio_1_27_and_their_fail_open_variant_suits_1_26() {
    let v = |s: &str| Some(s.parse().expect("a version"));
    for path in manifests() {
        let text = read(&path);
        let shown = paths::shown(&path);
        let check = |text: &str, istio| validate::check_bytes_for(text.as_bytes(), istio);
        for ok in check(&text, v("1.27")).unwrap() {
            assert!(ok.is_valid(), "{shown} on Istio 1.27: {ok:?}");
        }
        let reloads = text.contains("failStrategy: FAIL_RELOAD");
        for older in check(&text, v("1.26")).unwrap() {
            assert_eq!(
                older.is_valid(),
                !reloads,
                "{shown} on Istio 1.26: refused exactly when it says FAIL_RELOAD: {older:?}"
            );
        }
        let variant = text.replace("failStrategy: FAIL_RELOAD", "failStrategy: FAIL_OPEN");
        for checked in check(&variant, v("1.26")).unwrap() {
            assert!(
                checked.is_valid(),
                "{shown}, FAIL_OPEN variant, on 1.26: {checked:?}"
            );
        }
    }
}

/// examples/istio/README.md gives Istio users Breakwater's anchored stats tags as a bootstrap
/// override: the very rules of `envoy/configs/static.yaml`, which the Envoy tests measure.
#[test]
fn the_readmes_bootstrap_override_carries_the_anchored_tags_of_the_envoy_configs() {
    let readme = read(&paths::istio().join("README.md"));
    let block = readme
        .split("```json")
        .skip(1)
        .filter_map(|b| b.split("```").next())
        .find(|b| b.contains("stats_tags"))
        .expect("the README shows the override");
    let override_json: Value = serde_json::from_str(block).expect("the override is JSON");
    let config: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&read(&paths::root().join("envoy/configs/static.yaml")))
            .expect("YAML");
    let config: Value = serde_json::to_value(config).expect("as JSON");
    let tags = &config["stats_config"]["stats_tags"];
    assert!(
        tags.as_array().is_some_and(|t| t.len() == 2),
        "the config's two tags: {tags}"
    );
    assert_eq!(&override_json["stats_config"]["stats_tags"], tags);
    for tag in tags.as_array().into_iter().flatten() {
        let regex = tag["regex"].as_str().unwrap_or_default();
        assert!(
            regex.starts_with("^wasmcustom\\.breakwater\\."),
            "anchored: {regex}"
        );
    }
}
