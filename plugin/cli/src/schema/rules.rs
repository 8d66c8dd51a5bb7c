//! The filter's single-field rules, written into the generated schema: ranges, the duration
//! grammar, outcome names and status codes, header names and values, key shapes. Which field
//! gets which rule, and with which bounds, comes from the filter's own field table (each field's
//! `breakwater::policy::raw::Check`, whose bounds the filter's reader enforces), so a field
//! cannot be left out here and the schema and the validator cannot drift apart;
//! `tests/schema_bounds.rs` derives bad values from the same constants
//! (`breakwater::policy::bounds`) and checks that both refuse each one.
//!
//! # What JSON Schema cannot say
//!
//! - A duration string's range: `"25h"` has the right grammar and is out of range for
//!   `timeout`, and only the validator knows (a bare number of seconds is range-checked here).
//! - `5.0` where an integer belongs: JSON Schema counts it an integer, the filter does not.
//! - The fallback body's limit is in bytes, `maxLength` counts characters.
//! - The rules between fields (`max_delay` ≥ `base_delay`, ...), and a header written twice in
//!   two cases.
//!
//! `breakwater-cli validate` checks all of these with the filter's own code.

use breakwater::core::outcome::grpc;
use breakwater::policy::bounds::*;
use breakwater::policy::raw::{
    Check, RawBreaker, RawBudget, RawFailureRate, RawFallback, RawRetry, RawSlowCall,
};
use breakwater::policy::OUTCOME_NAMES;
use serde_json::{json, Value};
use std::ops::RangeInclusive;
use std::time::Duration;

/// Each object of the policy's field table, by its definition in the schema, with its fields'
/// checks; `""` is the policy's top level, which is not in the table. `routes.<name>.retry`
/// (`RawRouteRetry`) has `retry`'s fields.
fn objects() -> [(&'static str, &'static [(&'static str, Check)]); 8] {
    const TOP: &[(&str, Check)] = &[("max_worker_buffer", Check::Integer(MAX_WORKER_BUFFER))];
    [
        ("", TOP),
        ("RawBreaker", RawBreaker::CHECKS),
        ("RawFailureRate", RawFailureRate::CHECKS),
        ("RawSlowCall", RawSlowCall::CHECKS),
        ("RawFallback", RawFallback::CHECKS),
        ("RawRetry", RawRetry::CHECKS),
        ("RawRouteRetry", RawRetry::CHECKS),
        ("RawBudget", RawBudget::CHECKS),
    ]
}

/// The grammar of a duration string: a decimal number without sign or exponent, then the unit.
pub const DURATION_PATTERN: &str = r"^[0-9]+(\.[0-9]+)?(ms|s|m|h)$";

/// An HTTP token (RFC 9110): what method and header names are made of.
pub const TOKEN_PATTERN: &str = r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$";

/// A header value the filter sends: no control character but tab, no space or tab at either end.
const HEADER_VALUE_PATTERN: &str = "^([^\\u0000-\\u0008\\u000A-\\u001F\\u007F-\\u009F\\t ]\
     ([^\\u0000-\\u0008\\u000A-\\u001F\\u007F-\\u009F]*\
     [^\\u0000-\\u0008\\u000A-\\u001F\\u007F-\\u009F\\t ])?)?$";

/// A port as Istio writes it: 1..=65535 without leading zeros.
const PORT: &str =
    "([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])";

/// Writes every rule into `schema` (as generated from the raw types).
pub fn constrain(schema: &mut Value) {
    for (definition, checks) in objects() {
        for (property, check) in checks {
            if let Some(field) = field(schema, definition, property) {
                apply(field, check);
            }
        }
    }
    let top = |name: &str| json!(["properties", name]);
    let keys = [
        (top("services"), service_key_pattern()),
        (top("clusters"), json!({ "minLength": 1 })),
        (top("routes"), json!({ "minLength": 1 })),
    ];
    for (path, names) in keys {
        if let Some(Value::Object(map)) = at(schema, &path) {
            map.insert("propertyNames".into(), names);
        }
    }
    if let Some(Value::Object(map)) = at(schema, &top("state_scope")) {
        let pattern = format!("^[A-Za-z0-9._-]{{1,{STATE_SCOPE_BYTES}}}$");
        map.insert("pattern".into(), pattern.into());
    }
    drop_unused_definitions(schema);
}

/// Removes the definitions that no `$ref` names any more (`RawDuration`, `RawOutcome`: each
/// field now carries its own bounds).
fn drop_unused_definitions(schema: &mut Value) {
    let text = schema.to_string();
    if let Some(Value::Object(definitions)) = schema.get_mut("$defs") {
        definitions.retain(|name, _| text.contains(&format!("\"#/$defs/{name}\"")));
    }
}

fn service_key_pattern() -> Value {
    json!({ "pattern": format!("^[A-Za-z0-9*._-]+(:{PORT})?(#[A-Za-z0-9._-]+)?$") })
}

/// The schema of `property` in definition `definition` (or at the top level for `""`), seen
/// through a part that `null` turns off (`if null ... else <value>`).
fn field<'s>(schema: &'s mut Value, definition: &str, property: &str) -> Option<&'s mut Value> {
    let path = if definition.is_empty() {
        json!(["properties", property])
    } else {
        json!(["$defs", definition, "properties", property])
    };
    let field = at(schema, &path)?;
    if field.get("else").is_some() {
        return field.get_mut("else");
    }
    Some(field)
}

fn at<'s>(schema: &'s mut Value, path: &Value) -> Option<&'s mut Value> {
    let mut here = schema;
    for key in path.as_array()? {
        here = here.get_mut(key.as_str()?)?;
    }
    Some(here)
}

fn apply(field: &mut Value, check: &Check) {
    let Value::Object(map) = field else { return };
    let keywords = match check {
        Check::Shape => return,
        Check::Integer(range) => json!({
            "type": "integer", "minimum": range.start(), "maximum": range.end()
        }),
        Check::Number(range) => json!({
            "type": "number", "minimum": range.start(), "maximum": range.end()
        }),
        Check::Rate => json!({
            "type": "number", "exclusiveMinimum": 0, "maximum": RATE_THRESHOLD_MAX
        }),
        Check::Duration(range) => {
            map.remove("$ref");
            duration(range)
        }
        Check::FailureOutcomes => json!({ "type": "array", "items": outcome(true) }),
        Check::RetryOutcomes => json!({ "type": "array", "items": outcome(false) }),
        Check::Methods => json!({
            "type": "array", "items": { "type": "string", "pattern": TOKEN_PATTERN }
        }),
        Check::IdempotencyHeader => json!({
            "type": "string",
            "pattern": TOKEN_PATTERN,
            "not": { "pattern": unusable_keys() },
        }),
        Check::FallbackHeaders => json!({
            "type": "object",
            "propertyNames": {
                "pattern": TOKEN_PATTERN,
                "not": { "pattern": reserved_fallback_headers() },
            },
            "additionalProperties": { "type": "string", "pattern": HEADER_VALUE_PATTERN },
        }),
        Check::FallbackBody => json!({ "type": "string", "maxLength": MAX_FALLBACK_BODY_BYTES }),
    };
    if let Value::Object(keywords) = keywords {
        map.remove("format");
        map.extend(keywords);
    }
}

/// A duration field: a string of the duration grammar, or a number of seconds within `range`.
/// Bare numbers are rounded to the millisecond before their range is checked, so the bounds
/// are widened by just under half a millisecond each way.
fn duration(range: &RangeInclusive<Duration>) -> Value {
    let seconds = |d: &Duration| d.as_secs_f64();
    let low = (seconds(range.start()) - 0.0005).max(0.0);
    let high = seconds(range.end()) + 0.0005;
    json!({
        "if": { "type": "string" },
        "then": { "pattern": DURATION_PATTERN },
        "else": { "type": "number", "minimum": low, "exclusiveMaximum": high },
    })
}

/// An entry of `failure_on` or `retry_on`: a name, a code, or a code in digits.
fn outcome(failure: bool) -> Value {
    let (codes, allowed): (Value, Vec<u16>) = if failure {
        let (low, high) = (*FAILURE_CODES.start(), *FAILURE_CODES.end());
        let codes = json!({ "type": "integer", "minimum": low, "maximum": high });
        (codes, FAILURE_CODES.collect())
    } else {
        let (low, high) = (*RETRYABLE_5XX.start(), *RETRYABLE_5XX.end());
        let codes = json!({ "type": "integer", "anyOf": [
            { "enum": RETRYABLE_4XX },
            { "minimum": low, "maximum": high },
        ]});
        (
            codes,
            RETRYABLE_4XX.into_iter().chain(RETRYABLE_5XX).collect(),
        )
    };
    let digits = format!("^0*({})$", code_alternatives(&allowed));
    // gRPC statuses, by name or as `grpc-N`, are outcomes for the breaker only: gRPC requests
    // are not retried.
    let names: Vec<&str> = if failure {
        OUTCOME_NAMES
            .iter()
            .chain(grpc::NAMES.iter())
            .copied()
            .collect()
    } else {
        OUTCOME_NAMES.to_vec()
    };
    let mut forms = vec![json!({ "enum": names }), json!({ "pattern": digits })];
    if failure {
        forms.push(json!({ "pattern": format!("^{}([1-9]|1[0-6])$", grpc::NUMBERED) }));
    }
    json!({
        "if": { "type": "string" },
        "then": { "anyOf": forms },
        "else": codes,
    })
}

/// `codes` (three digits each) as regex alternatives: a whole hundred as `5[0-9]{2}`, the
/// others one by one.
fn code_alternatives(codes: &[u16]) -> String {
    let mut parts = Vec::new();
    for hundred in 1..=9u16 {
        let first = hundred * 100;
        let these: Vec<u16> = codes
            .iter()
            .copied()
            .filter(|c| (first..first + 100).contains(c))
            .collect();
        if these.len() == 100 {
            parts.push(format!("{hundred}[0-9]{{2}}"));
        } else {
            parts.extend(these.iter().map(u16::to_string));
        }
    }
    parts.join("|")
}

/// The headers `idempotency_header` may not name (the filter's `unusable_key`), any case.
fn unusable_keys() -> String {
    let prefixes = ["x-breakwater-", "x-forwarded-", "x-envoy-", "x-b3-"];
    let names = [
        "x-request-id",
        "traceparent",
        "tracestate",
        "b3",
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "host",
        "content-length",
    ];
    alternatives(&prefixes, &names)
}

/// The headers a fallback may not set (the filter and Envoy set them), any case.
fn reserved_fallback_headers() -> String {
    let names = ["retry-after", "content-length", "transfer-encoding"];
    alternatives(&["x-breakwater-"], &names)
}

/// A pattern for names that start with one of `prefixes` or are one of `names`, in any case.
fn alternatives(prefixes: &[&str], names: &[&str]) -> String {
    let any_case = |s: &&str| -> String {
        s.chars()
            .map(|c| match c {
                'a'..='z' => format!("[{}{c}]", c.to_ascii_uppercase()),
                '-' | '.' => format!("\\{c}"),
                _ => c.to_string(),
            })
            .collect()
    };
    let prefixes: Vec<String> = prefixes.iter().map(any_case).collect();
    let names: Vec<String> = names.iter().map(any_case).collect();
    format!("^({})|^({})$", prefixes.join("|"), names.join("|"))
}
