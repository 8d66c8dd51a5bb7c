//! `schema`: the JSON Schema of the policy, generated from the raw policy types
//! (`breakwater::policy::raw`, feature `schema`) and committed as `examples/policy.schema.json`
//! for editors and CI.
//!
//! The schema checks the policy's shape: which fields exist (unknown ones are refused, as the
//! filter refuses them, and named), their JSON types, `null` only where it turns a part off;
//! and every rule of a single field that JSON Schema can state, from the filter's own bounds
//! (`rules`). The rules between fields, and the few single-field rules JSON Schema cannot state
//! (see `rules`), are the filter's: `breakwater-cli validate` checks those too.

mod rules;

pub use rules::{DURATION_PATTERN, TOKEN_PATTERN};

use breakwater::policy::raw::RawPolicy;
use schemars::generate::SchemaSettings;
use serde_json::Value;

/// The schema's `$id`: a name, not a place to fetch it from.
pub const ID: &str = "urn:breakwater:policy:v1";

/// The policy's JSON Schema (draft 2020-12).
pub fn generate() -> Value {
    let generator = SchemaSettings::draft2020_12().into_generator();
    let mut schema = generator.into_root_schema_for::<RawPolicy>().to_value();
    refuse_null_in_options(&mut schema);
    rules::constrain(&mut schema);
    if let Some(object) = schema.as_object_mut() {
        object.insert("$id".into(), ID.into());
        object.insert("title".into(), "Breakwater policy".into());
        object.insert(
            "description".into(),
            "The Breakwater filter's configuration (POLICY.md): `default` for every upstream \
             cluster, `clusters.<name>` merged over it, `routes.<name>` merged last. Generated \
             by `cargo run -p breakwater-cli -- schema --write`; do not edit."
                .into(),
        );
    }
    schema
}

/// schemars lets every `Option` field be `null`, but the raw types' `Option` fields refuse it
/// (`raw::present`: `"timeout": null` is an error, not "inherit"). This takes the `null` that
/// schemars added back out: from `"type": [..., "null"]` lists and as a bare `{"type": "null"}`
/// alternative. The `null` that turns a `Toggle` part off carries a description and stays, and
/// so does a route's `"circuit_breaker": null` (the `Null` type, referenced by name).
fn refuse_null_in_options(schema: &mut Value) {
    match schema {
        Value::Object(object) => {
            if let Some(Value::Array(types)) = object.get_mut("type") {
                if types.len() > 1 {
                    types.retain(|t| t != "null");
                }
                if let [only] = types.as_slice() {
                    let only = only.clone();
                    object.insert("type".into(), only);
                }
            }
            if let Some(Value::Array(alternatives)) = object.get_mut("anyOf") {
                let bare_null = serde_json::json!({ "type": "null" });
                alternatives.retain(|a| *a != bare_null);
                if let [only] = alternatives.as_slice() {
                    let only = only.clone();
                    object.remove("anyOf");
                    if let Value::Object(fields) = only {
                        object.extend(fields);
                    }
                }
            }
            object.values_mut().for_each(refuse_null_in_options);
        }
        Value::Array(items) => items.iter_mut().for_each(refuse_null_in_options),
        _ => {}
    }
}

/// The schema as committed: pretty JSON with a final newline.
pub fn text() -> String {
    let mut text = serde_json::to_string_pretty(&generate()).unwrap_or_default();
    text.push('\n');
    text
}
