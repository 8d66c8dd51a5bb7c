//! JSON Schema of the wrappers whose serde impls are written by hand (feature `schema`): they
//! describe what those impls accept, so the schema refuses exactly what serde refuses.

use super::wrappers::{Entries, Toggle};
use super::{RawRetry, RawRouteRetry, BUDGET_ON_ROUTE};
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use std::borrow::Cow;

impl JsonSchema for RawRouteRetry {
    fn schema_name() -> Cow<'static, str> {
        "RawRouteRetry".into()
    }

    /// `retry`'s schema with `budget` refused: a property whose schema nothing satisfies.
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let mut schema = RawRetry::json_schema(generator);
        let description = "`routes.<name>.retry`: any `retry` field but `budget`.";
        schema.insert("description".into(), description.into());
        let why = format!("Not allowed on a route: {BUDGET_ON_ROUTE}.");
        let refused = json_schema!({ "not": {}, "description": why });
        if let Some(properties) = schema.get_mut("properties").and_then(|p| p.as_object_mut()) {
            properties.insert("budget".into(), refused.to_value());
        }
        schema
    }
}

impl<T: JsonSchema> JsonSchema for Toggle<T> {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        format!("Toggle_{}", T::schema_name()).into()
    }

    /// The value, or `null` to turn this part off in the scope. Written as `if null ... else
    /// <value>` rather than `anyOf`: a mistake inside the value (a typo of a field) is then
    /// reported as itself, not as "not valid under any of the given schemas".
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let value = generator.subschema_for::<T>();
        json_schema!({
            "if": { "type": "null" },
            "then": { "description": "Turns this part off in this scope." },
            "else": value
        })
    }
}

impl<T: JsonSchema> JsonSchema for Entries<T> {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        format!("Entries_{}", T::schema_name()).into()
    }

    /// An object with free-form keys (each key once).
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let value = generator.subschema_for::<T>();
        json_schema!({ "type": "object", "additionalProperties": value })
    }
}
