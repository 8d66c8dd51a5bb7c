//! Small helpers for editing the configs as JSON values, each failing with the file and the part
//! that is missing.

use std::time::Duration;

use serde_json::{json, Map, Value};

use super::ConfigError;

type Result<T> = std::result::Result<T, ConfigError>;

pub(super) fn template_error(file: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Template {
        file,
        reason: reason.into(),
    }
}

pub(super) fn load(text: &str, file: &'static str) -> Result<Value> {
    serde_yaml_ng::from_str(text).map_err(|e| template_error(file, e.to_string()))
}

/// The value at `path` below `value`.
pub(super) fn at<'a>(
    value: &'a mut Value,
    path: &[&str],
    file: &'static str,
) -> Result<&'a mut Value> {
    let mut current = value;
    for key in path {
        current = current
            .get_mut(*key)
            .ok_or_else(|| template_error(file, format!("no `{}` (in {})", key, path.join("."))))?;
    }
    Ok(current)
}

pub(super) fn object<'a>(
    value: &'a mut Value,
    what: &str,
    file: &'static str,
) -> Result<&'a mut Map<String, Value>> {
    value
        .as_object_mut()
        .ok_or_else(|| template_error(file, format!("{what} is not a mapping")))
}

pub(super) fn array<'a>(
    value: &'a mut Value,
    what: &str,
    file: &'static str,
) -> Result<&'a mut Vec<Value>> {
    value
        .as_array_mut()
        .ok_or_else(|| template_error(file, format!("{what} is not a list")))
}

/// The element of list `value` whose `name` is `name`.
pub(super) fn named<'a>(
    value: &'a mut Value,
    name: &str,
    what: &str,
    file: &'static str,
) -> Result<&'a mut Value> {
    array(value, what, file)?
        .iter_mut()
        .find(|item| item.get("name").and_then(Value::as_str) == Some(name))
        .ok_or_else(|| template_error(file, format!("no {what} named {name:?}")))
}

pub(super) fn loopback(port: u16) -> Value {
    json!({ "socket_address": { "address": "127.0.0.1", "port_value": port } })
}

/// A protobuf JSON duration.
pub(super) fn duration(d: Duration) -> Value {
    Value::String(format!("{}s", d.as_secs_f64()))
}
