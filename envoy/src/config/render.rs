//! Turns an [`EnvoyConfig`] into files Envoy reads, starting from the operator configs.
//!
//! Every change finds its target by name (listener `ingress`, filter `breakwater`, the HTTP
//! connection manager) and fails with the file and the missing part if an edit of the configs
//! moved it, so the configs and the launcher cannot drift apart silently.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::json::{array, at, duration, load, loopback, named, object, template_error};
use super::{
    Balance, ConfigError, Delivery, EnvoyConfig, HealthCheck, Match, NativeResilience, WasmFilter,
};

/// The static bootstrap operators use.
pub const STATIC_YAML: &str = include_str!("../../configs/static.yaml");
/// The bootstrap whose filter config comes from ECDS.
pub const DYNAMIC_ECDS_YAML: &str = include_str!("../../configs/dynamic-ecds.yaml");
/// The ECDS resource file that `DYNAMIC_ECDS_YAML` watches.
pub const ECDS_RESOURCE_YAML: &str = include_str!("../../configs/breakwater-ecds.yaml");

/// The listener clients connect to, in both bootstraps.
pub const LISTENER_NAME: &str = "ingress";
/// The ECDS resource file's name inside the watched directory.
pub const ECDS_FILE: &str = "ecds.json";

const FILTER_NAME: &str = "breakwater";
const HCM_NAME: &str = "envoy.filters.network.http_connection_manager";
/// Where the configs expect the module; replaced by the real path.
const WASM_PLACEHOLDER: &str = "/etc/envoy/breakwater.wasm";
/// The watched ECDS directory of the configs; replaced by the real one.
const ECDS_DIR_PLACEHOLDER: &str = "/etc/envoy/breakwater";

/// The files written for one Envoy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The bootstrap to pass with `-c`.
    pub bootstrap: PathBuf,
    /// For ECDS delivery: the watched directory holding [`ECDS_FILE`].
    pub ecds_dir: Option<PathBuf>,
}

type Result<T> = std::result::Result<T, ConfigError>;

/// Points a Wasm filter's `config` at the module and sets the plugin's identity and (if given)
/// its configuration.
fn patch_plugin(
    config: &mut Value,
    filter: &WasmFilter,
    configuration: Option<&str>,
    file: &'static str,
) -> Result<()> {
    let fields = object(config, "the Wasm filter's config", file)?;
    fields.insert("name".into(), json!(filter.plugin_name));
    fields.insert("root_id".into(), json!(filter.root_id));
    if let Some(policy) = filter.failure_policy {
        fields.insert("failure_policy".into(), json!(policy.as_str()));
    }
    if let Some(base) = filter.reload_backoff {
        fields.insert(
            "reload_config".into(),
            json!({ "backoff": { "base_interval": duration(base) } }),
        );
    }
    *at(config, &["vm_config", "code", "local", "filename"], file)? =
        json!(filter.wasm.display().to_string());
    if let Some(json_text) = configuration {
        *at(config, &["configuration", "value"], file)? = json!(json_text);
    }
    Ok(())
}

/// The ECDS resource file for `filter` with `configuration` (`None`: the file's own policy),
/// rendered from `breakwater-ecds.yaml`; `version` sets `version_info`.
pub fn ecds_resource(
    filter: &WasmFilter,
    configuration: Option<&str>,
    version: Option<&str>,
) -> Result<Value> {
    const FILE: &str = "configs/breakwater-ecds.yaml";
    let mut resource = load(ECDS_RESOURCE_YAML, FILE)?;
    if let Some(v) = version {
        object(&mut resource, "the resource file", FILE)?.insert("version_info".into(), json!(v));
    }
    let entry = named(
        at(&mut resource, &["resources"], FILE)?,
        FILTER_NAME,
        "resource",
        FILE,
    )?;
    patch_plugin(
        at(entry, &["typed_config", "config"], FILE)?,
        filter,
        configuration,
        FILE,
    )?;
    Ok(resource)
}

/// Writes `value` as JSON to `dir/name` by writing a hidden temporary file in `dir` and renaming
/// it over the target: readers (Envoy's watcher) see the old file or the new one, never half.
pub fn write_atomically(dir: &Path, name: &str, value: &Value) -> Result<()> {
    let target = dir.join(name);
    let staging = dir.join(format!(".{name}.tmp"));
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ConfigError::Io { path, source }
    };
    let text =
        serde_json::to_string_pretty(value).map_err(|e| ConfigError::Invalid(e.to_string()))?;
    fs::write(&staging, text).map_err(io(&staging))?;
    fs::rename(&staging, &target).map_err(io(&target))
}

/// Renders `config` into `dir`: the bootstrap, and for ECDS the watched directory and its first
/// resource file.
pub fn render(config: &EnvoyConfig, dir: &Path) -> Result<Rendered> {
    let ecds = config.filter.is_some() && config.delivery == Delivery::Ecds;
    let (text, file) = if ecds {
        (DYNAMIC_ECDS_YAML, "configs/dynamic-ecds.yaml")
    } else {
        (STATIC_YAML, "configs/static.yaml")
    };
    let mut bootstrap = load(text, file)?;
    *at(&mut bootstrap, &["admin", "address"], file)? = loopback(0);
    let tags = array(
        at(&mut bootstrap, &["stats_config", "stats_tags"], file)?,
        "stats_tags",
        file,
    )?;
    for (name, regex) in &config.stats_tags {
        tags.push(json!({ "tag_name": name, "regex": regex }));
    }

    let listeners = at(&mut bootstrap, &["static_resources", "listeners"], file)?;
    let listener = named(listeners, LISTENER_NAME, "listener", file)?;
    *at(listener, &["address"], file)? = loopback(0);
    if config.balance == Balance::Exact {
        object(listener, "the listener", file)?.insert(
            "connection_balance_config".into(),
            json!({ "exact_balance": {} }),
        );
    }
    let chain = array(
        at(listener, &["filter_chains"], file)?,
        "filter_chains",
        file,
    )?
    .first_mut()
    .ok_or_else(|| template_error(file, "the listener has no filter chain"))?;
    let hcm = at(
        named(
            at(chain, &["filters"], file)?,
            HCM_NAME,
            "network filter",
            file,
        )?,
        &["typed_config"],
        file,
    )?;

    render_routes(config, hcm, file)?;
    merge(
        hcm,
        &config.connection_manager,
        "the HTTP connection manager",
        file,
    )?;
    if let Some(timeout) = config.stream_idle_timeout {
        object(hcm, "the HTTP connection manager", file)?
            .insert("stream_idle_timeout".into(), duration(timeout));
    }
    if !config.access_log {
        object(hcm, "the HTTP connection manager", file)?.remove("access_log");
    }

    let mut ecds_dir = None;
    let http_filters = array(at(hcm, &["http_filters"], file)?, "http_filters", file)?;
    let position = http_filters
        .iter()
        .position(|f| f.get("name").and_then(Value::as_str) == Some(FILTER_NAME))
        .ok_or_else(|| template_error(file, format!("no http filter named {FILTER_NAME:?}")))?;
    for (offset, filter) in config.filters_after.iter().enumerate() {
        http_filters.insert(
            position + 1 + offset,
            parse(filter, "a filter after", file)?,
        );
    }
    for (offset, filter) in config.filters_before.iter().enumerate() {
        http_filters.insert(position + offset, parse(filter, "a filter before", file)?);
    }
    let position = position + config.filters_before.len();
    match &config.filter {
        None => {
            http_filters.remove(position);
        }
        Some(filter) if !ecds => {
            let entry = &mut http_filters[position];
            patch_plugin(
                at(entry, &["typed_config", "config"], file)?,
                filter,
                filter.configuration.as_deref(),
                file,
            )?;
        }
        Some(filter) => {
            let watched = dir.join("ecds");
            fs::create_dir_all(&watched).map_err(|source| ConfigError::Io {
                path: watched.clone(),
                source,
            })?;
            let discovery = at(&mut http_filters[position], &["config_discovery"], file)?;
            let source = at(discovery, &["config_source", "path_config_source"], file)?;
            *at(source, &["path"], file)? = json!(watched.join(ECDS_FILE).display().to_string());
            *at(source, &["watched_directory", "path"], file)? =
                json!(watched.display().to_string());
            patch_plugin(
                at(discovery, &["default_config", "config"], file)?,
                filter,
                None,
                file,
            )?;
            let resource = ecds_resource(filter, filter.configuration.as_deref(), None)?;
            write_atomically(&watched, ECDS_FILE, &resource)?;
            ecds_dir = Some(watched);
        }
    }

    render_clusters(config, &mut bootstrap, file)?;

    let path = dir.join("bootstrap.json");
    let text = serde_json::to_string_pretty(&bootstrap)
        .map_err(|e| ConfigError::Invalid(e.to_string()))?;
    fs::write(&path, text).map_err(|source| ConfigError::Io {
        path: path.clone(),
        source,
    })?;
    Ok(Rendered {
        bootstrap: path,
        ecds_dir,
    })
}

/// Replaces the virtual host's routes with the requested ones, each a copy of the config's first
/// route (so its settings carry over).
fn render_routes(config: &EnvoyConfig, hcm: &mut Value, file: &'static str) -> Result<()> {
    let routes = config.effective_routes()?;
    let host = array(
        at(hcm, &["route_config", "virtual_hosts"], file)?,
        "virtual_hosts",
        file,
    )?
    .first_mut()
    .ok_or_else(|| template_error(file, "the route config has no virtual host"))?;
    merge(host, &config.virtual_host, "the virtual host", file)?;
    let list = array(at(host, &["routes"], file)?, "routes", file)?;
    let base = list
        .first()
        .cloned()
        .ok_or_else(|| template_error(file, "the virtual host has no route"))?;
    let mut rendered = Vec::with_capacity(routes.len());
    for route in routes {
        let mut entry = base.clone();
        let fields = object(&mut entry, "a route", file)?;
        fields.insert("name".into(), json!(route.name));
        let matcher = match &route.matcher {
            Match::Prefix(prefix) => json!({ "prefix": prefix }),
            Match::Header { name, value } => json!({
                "prefix": "/",
                "headers": [{ "name": name, "string_match": { "exact": value } }]
            }),
            Match::Connect { authority } => json!({
                "connect_matcher": {},
                "headers": [{ "name": ":authority", "string_match": { "exact": authority } }]
            }),
        };
        fields.insert("match".into(), matcher);
        let action = object(at(&mut entry, &["route"], file)?, "a route's action", file)?;
        action.insert("cluster".into(), json!(route.cluster));
        if let Some(timeout) = route.timeout {
            action.insert("timeout".into(), duration(timeout));
        }
        if let Some(timeout) = route.idle_timeout {
            action.insert("idle_timeout".into(), duration(timeout));
        }
        if let Some(native) = &config.native {
            action.insert("retry_policy".into(), retry_policy(native));
        }
        merge(
            at(&mut entry, &["route"], file)?,
            &route.action,
            "a route's action",
            file,
        )?;
        merge(&mut entry, &route.entry, "a route", file)?;
        rendered.push(entry);
    }
    *list = rendered;
    Ok(())
}

/// Sets each `(field, JSON text)` on the object `target`.
fn merge(
    target: &mut Value,
    fields: &[(String, String)],
    what: &str,
    file: &'static str,
) -> Result<()> {
    for (field, json) in fields {
        let value = parse(json, what, file)?;
        object(target, what, file)?.insert(field.clone(), value);
    }
    Ok(())
}

/// Parses JSON text given for `what`.
fn parse(json: &str, what: &str, _file: &'static str) -> Result<Value> {
    serde_json::from_str(json).map_err(|e| ConfigError::Invalid(format!("{what}: {e}: {json}")))
}

/// Replaces the clusters with the requested ones, each a copy of the config's first cluster.
fn render_clusters(config: &EnvoyConfig, bootstrap: &mut Value, file: &'static str) -> Result<()> {
    let list = array(
        at(bootstrap, &["static_resources", "clusters"], file)?,
        "clusters",
        file,
    )?;
    let base = list
        .first()
        .cloned()
        .ok_or_else(|| template_error(file, "no cluster"))?;
    let mut rendered = Vec::with_capacity(config.clusters.len());
    for cluster in &config.clusters {
        let mut entry = base.clone();
        let fields = object(&mut entry, "a cluster", file)?;
        fields.insert("name".into(), json!(cluster.name));
        if let Some(timeout) = config.connect_timeout {
            fields.insert("connect_timeout".into(), duration(timeout));
        }
        let endpoints: Vec<Value> = std::iter::once(&cluster.addr)
            .chain(&cluster.more_endpoints)
            .map(|addr| {
                json!({ "endpoint": { "address": { "socket_address": {
                    "address": addr.ip().to_string(),
                    "port_value": addr.port()
                }}}})
            })
            .collect();
        fields.insert(
            "load_assignment".into(),
            json!({
                "cluster_name": cluster.name,
                "endpoints": [{ "lb_endpoints": endpoints }]
            }),
        );
        if cluster.http2 {
            fields.insert(
                "typed_extension_protocol_options".into(),
                json!({ "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                    "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                    "explicit_http_config": { "http2_protocol_options": {} }
                }}),
            );
        }
        if let Some(check) = &cluster.health_check {
            fields.insert("health_checks".into(), health_checks(check));
            fields.insert(
                "common_lb_config".into(),
                json!({ "healthy_panic_threshold": { "value": 0 } }),
            );
        }
        if let Some(native) = &config.native {
            fields.insert("outlier_detection".into(), outlier_detection(native));
            if let Some(max_retries) = native.max_retries {
                fields.insert(
                    "circuit_breakers".into(),
                    json!({ "thresholds": [{ "priority": "DEFAULT", "max_retries": max_retries }] }),
                );
            }
            if let Some(threshold) = native.healthy_panic_threshold {
                fields.insert(
                    "common_lb_config".into(),
                    json!({ "healthy_panic_threshold": { "value": threshold } }),
                );
            }
        }
        merge(&mut entry, &cluster.fields, "a cluster", file)?;
        rendered.push(entry);
    }
    *list = rendered;
    Ok(())
}

/// One strict HTTP health check (see [`HealthCheck`]).
fn health_checks(check: &HealthCheck) -> Value {
    json!([{
        "timeout": "1s",
        "interval": duration(check.interval),
        // Envoy checks a cluster without traffic every 60 s by default: too slow for a test.
        "no_traffic_interval": duration(check.interval),
        "unhealthy_threshold": 1,
        "healthy_threshold": 1,
        "http_health_check": { "path": check.path }
    }])
}

fn retry_policy(native: &NativeResilience) -> Value {
    json!({
        "retry_on": native.retry_on,
        "num_retries": native.num_retries,
        "per_try_timeout": duration(native.per_try_timeout),
        "retry_back_off": {
            "base_interval": duration(native.backoff_base),
            "max_interval": duration(native.backoff_max)
        }
    })
}

fn outlier_detection(native: &NativeResilience) -> Value {
    json!({
        "consecutive_5xx": native.consecutive_5xx,
        "interval": duration(native.ejection_interval),
        "base_ejection_time": duration(native.base_ejection_time),
        "max_ejection_percent": native.max_ejection_percent
    })
}

/// An operator config with only its paths changed, for `envoy --mode validate`: the module at
/// `wasm` and the ECDS directory `ecds_dir`. Everything else, the policy included, is verbatim.
pub fn validation_copy(config_text: &str, wasm: &Path, ecds_dir: &Path) -> String {
    config_text
        .replace(WASM_PLACEHOLDER, &wasm.display().to_string())
        .replace(ECDS_DIR_PLACEHOLDER, &ecds_dir.display().to_string())
}
