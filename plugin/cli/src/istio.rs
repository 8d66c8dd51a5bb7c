//! Istio `WasmPlugin` manifests, read the way Istio reads them.
//!
//! # What the filter receives
//!
//! istiod keeps `spec.pluginConfig` as a protobuf `Struct` and hands it to Envoy as JSON text
//! (`convertToWasmPluginWrapper` in `pilot/pkg/model/extensions.go`). A `Struct` holds every
//! number as a double, and its JSON prints a whole number without a decimal point: `5`, `5.0`
//! and `5e0` in the YAML all reach the filter as `5`. [`WasmPlugin::plugin_config`] applies the
//! same conversion, so the validator judges the text the filter will get. A number a `Struct`
//! cannot carry (`.inf`, `.nan`) is an error. An absent or empty `pluginConfig` sends no
//! configuration at all, and the filter then runs with every default (as for `{}`).
//!
//! [`documents`] reads YAML into JSON as Kubernetes stores it: a number JSON cannot hold
//! (`.inf`, `.nan`) is an error with its path, not a silent `null`.
//!
//! # Names
//!
//! Envoy's `plugin_name` property is `<namespace>.<name>` of the resource (and the root id is
//! `spec.pluginName`): Breakwater keys its shared state by it, see [`WasmPlugin::plugin_name`].

use serde::Deserialize;
use serde_json::{Map, Number, Value};

pub const API_VERSION: &str = "extensions.istio.io/v1alpha1";
pub const KIND: &str = "WasmPlugin";

/// What is wrong with a manifest file (not with the policy inside it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("YAML document {doc}: {reason}")]
    Yaml { doc: usize, reason: String },
    #[error("{plugin}: {reason}")]
    Invalid { plugin: String, reason: String },
}

/// One `WasmPlugin` of a manifest file.
#[derive(Debug, Clone, PartialEq)]
pub struct WasmPlugin {
    /// `metadata.namespace`; None when the manifest leaves it to `kubectl -n`.
    pub namespace: Option<String>,
    pub name: String,
    pub annotations: Map<String, Value>,
    pub spec: Map<String, Value>,
}

impl WasmPlugin {
    /// `namespace/name`, for messages.
    pub fn id(&self) -> String {
        format!(
            "{}/{}",
            self.namespace.as_deref().unwrap_or("<namespace>"),
            self.name
        )
    }

    /// Envoy's `plugin_name` property for this plugin: Istio sets the Envoy `PluginConfig.name`
    /// to `<namespace>.<name>`. Breakwater's shared-data keys start with it, so two WasmPlugins
    /// never share breaker state, and renaming or moving one starts from fresh state.
    pub fn plugin_name(&self) -> Option<String> {
        self.namespace
            .as_ref()
            .map(|namespace| format!("{namespace}.{}", self.name))
    }

    /// A string field of `spec`.
    pub fn spec_str(&self, field: &str) -> Option<&str> {
        self.spec.get(field).and_then(Value::as_str)
    }

    /// An annotation's value.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.get(key).and_then(Value::as_str)
    }

    /// The configuration text the filter receives, as Istio builds it; None when Istio sends
    /// none (no `pluginConfig`, or an empty one).
    pub fn plugin_config(&self) -> Result<Option<String>, ManifestError> {
        let invalid = |reason: String| ManifestError::Invalid {
            plugin: self.id(),
            reason,
        };
        match self.spec.get("pluginConfig") {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(fields)) if fields.is_empty() => Ok(None),
            Some(config @ Value::Object(_)) => Ok(Some(as_struct(config).to_string())),
            Some(other) => Err(invalid(format!(
                "spec.pluginConfig must be an object (a protobuf Struct), not {other}"
            ))),
        }
    }
}

/// `value` as it comes out of a protobuf `Struct`: numbers become doubles, whole ones print
/// without a decimal point.
pub fn as_struct(value: &Value) -> Value {
    match value {
        Value::Number(n) => {
            let double = n.as_f64().unwrap_or_default();
            // Go's protojson prints a whole double without a decimal point; up to 2^53 it is an
            // exact integer.
            if double.fract() == 0.0 && double.abs() < 9.0e15 {
                Value::Number(Number::from(double as i64))
            } else {
                Value::Number(n.clone())
            }
        }
        Value::Array(items) => Value::Array(items.iter().map(as_struct).collect()),
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), as_struct(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// A YAML value as JSON, as Kubernetes stores it: scalar keys become strings; a number JSON
/// (and so a protobuf `Struct`) cannot hold is an error naming its path.
fn to_json(yaml: &serde_yaml_ng::Value, path: &str) -> Result<Value, String> {
    use serde_yaml_ng::Value as Yaml;
    Ok(match yaml {
        Yaml::Null => Value::Null,
        Yaml::Bool(b) => Value::Bool(*b),
        Yaml::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Value::from(i),
            (_, Some(u), _) => Value::from(u),
            (_, _, Some(f)) => Number::from_f64(f)
                .map(Value::Number)
                .ok_or_else(|| format!("{path}: {n} is not a finite number"))?,
            _ => return Err(format!("{path}: {n} is not a number JSON can hold")),
        },
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Sequence(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| to_json(item, &format!("{path}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        Yaml::Mapping(fields) => {
            let mut object = Map::new();
            for (key, value) in fields {
                let key = match key {
                    Yaml::String(s) => s.clone(),
                    Yaml::Number(n) => n.to_string(),
                    Yaml::Bool(b) => b.to_string(),
                    other => return Err(format!("{path}: the key {other:?} is not a scalar")),
                };
                let inner = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                object.insert(key, to_json(value, &inner)?);
            }
            Value::Object(object)
        }
        Yaml::Tagged(tagged) => to_json(&tagged.value, path)?,
    })
}

/// Every document of a YAML stream, as JSON values (empty documents skipped).
pub fn documents(text: &str) -> Result<Vec<Value>, ManifestError> {
    let mut documents = Vec::new();
    for (i, document) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let error = |reason: String| ManifestError::Yaml { doc: i + 1, reason };
        let yaml = serde_yaml_ng::Value::deserialize(document).map_err(|e| error(e.to_string()))?;
        let value = to_json(&yaml, "").map_err(error)?;
        if !value.is_null() {
            documents.push(value);
        }
    }
    Ok(documents)
}

/// The `WasmPlugin`s among `documents`; other kinds are skipped.
pub fn wasm_plugins(documents: &[Value]) -> Result<Vec<WasmPlugin>, ManifestError> {
    let mut plugins = Vec::new();
    for (i, document) in documents.iter().enumerate() {
        if document["kind"] != KIND {
            continue;
        }
        let problem = |reason: &str| ManifestError::Yaml {
            doc: i + 1,
            reason: format!("WasmPlugin {reason}"),
        };
        if document["apiVersion"] != API_VERSION {
            return Err(problem(&format!(
                "apiVersion is {}, expected {API_VERSION}",
                document["apiVersion"]
            )));
        }
        let metadata = &document["metadata"];
        let name = metadata["name"]
            .as_str()
            .ok_or_else(|| problem("has no metadata.name"))?;
        let object = |value: &Value| value.as_object().cloned().unwrap_or_default();
        plugins.push(WasmPlugin {
            namespace: metadata["namespace"].as_str().map(str::to_string),
            name: name.to_string(),
            annotations: object(&metadata["annotations"]),
            spec: document["spec"]
                .as_object()
                .cloned()
                .ok_or_else(|| problem(&format!("{name} has no spec object")))?,
        });
    }
    Ok(plugins)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plugins(yaml: &str) -> Vec<WasmPlugin> {
        wasm_plugins(&documents(yaml).expect("YAML")).expect("WasmPlugins")
    }

    const PLUGIN: &str = "
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata:
  name: breakwater
  namespace: istio-system
spec:
  url: oci://registry.example.com/breakwater:0.1.0
  pluginConfig:
    default:
      circuit_breaker: { failure_threshold: 5.0, timeout: 30s }
      retry: { exponential_base: 1.5, budget: { ratio: 0.2 } }
";

    #[test]
    fn plugin_config_arrives_as_json_with_whole_numbers_printed_as_integers() {
        let [plugin] = plugins(PLUGIN).try_into().expect("one plugin");
        let config = plugin.plugin_config().unwrap().expect("a configuration");
        let json: Value = serde_json::from_str(&config).unwrap();
        assert_eq!(
            json["default"]["circuit_breaker"]["failure_threshold"].to_string(),
            "5",
            "a Struct number 5.0 prints as 5, which the filter reads as an integer"
        );
        assert_eq!(json["default"]["retry"]["exponential_base"], 1.5);
        assert_eq!(json["default"]["circuit_breaker"]["timeout"], "30s");
    }

    #[test]
    fn the_plugin_name_is_namespace_dot_name_as_istio_sets_it() {
        let [plugin] = plugins(PLUGIN).try_into().expect("one plugin");
        assert_eq!(
            plugin.plugin_name().as_deref(),
            Some("istio-system.breakwater")
        );
        assert_eq!(plugin.id(), "istio-system/breakwater");
    }

    #[test]
    fn an_absent_or_empty_plugin_config_sends_nothing() {
        for spec in ["{ url: x }", "{ url: x, pluginConfig: {} }"] {
            let yaml = format!(
                "apiVersion: {API_VERSION}\nkind: WasmPlugin\nmetadata: {{ name: a }}\nspec: {spec}\n"
            );
            let [plugin] = plugins(&yaml).try_into().expect("one plugin");
            assert_eq!(plugin.plugin_config().unwrap(), None, "{spec}");
            assert_eq!(plugin.plugin_name(), None, "no namespace: kubectl decides");
        }
    }

    #[test]
    fn a_number_a_struct_cannot_hold_is_an_error_with_its_path() {
        let yaml = format!(
            "apiVersion: {API_VERSION}\nkind: WasmPlugin\nmetadata: {{ name: a }}\n\
             spec: {{ pluginConfig: {{ default: {{ retry: {{ max_attempts: .inf }} }} }} }}\n"
        );
        let error = documents(&yaml).expect_err("infinity");
        assert!(
            error
                .to_string()
                .contains("spec.pluginConfig.default.retry.max_attempts"),
            "{error}"
        );
    }

    #[test]
    fn other_kinds_are_skipped_and_a_wrong_api_version_is_an_error() {
        let yaml = format!("kind: Service\napiVersion: v1\n---\n{PLUGIN}");
        assert_eq!(plugins(&yaml).len(), 1, "the Service is not a WasmPlugin");
        let wrong = PLUGIN.replace("v1alpha1", "v9");
        let error = wasm_plugins(&documents(&wrong).unwrap()).expect_err("unknown version");
        assert!(error.to_string().contains("document 1"), "{error}");
    }

    #[test]
    fn a_plugin_config_that_is_not_an_object_is_an_error() {
        let yaml = format!(
            "apiVersion: {API_VERSION}\nkind: WasmPlugin\nmetadata: {{ name: a, namespace: b }}\n\
             spec: {{ pluginConfig: [1] }}\n"
        );
        let [plugin] = plugins(&yaml).try_into().expect("one plugin");
        let error = plugin.plugin_config().expect_err("a list");
        assert!(error
            .to_string()
            .starts_with("b/a: spec.pluginConfig must be an object"));
    }
}
