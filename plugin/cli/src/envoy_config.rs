//! `validate` on an Envoy config (a bootstrap, a listener or an HTTP connection manager, as YAML
//! or JSON): where Breakwater sits in each filter chain, its policy, and what the routes do that
//! its retries cannot follow.
//!
//! # What is checked, and why
//! - **Breakwater is the last filter before the router.** A retry is dispatched straight to the
//!   cluster, so a filter between Breakwater and the router (authorization, rate limiting, header
//!   changes) is skipped by every retry, and its own refusals reach Breakwater looking like the
//!   upstream's. An error.
//! - **The policy** is checked by the filter's own parser, as for a policy file.
//! - **Routes whose requests Breakwater retries** (the effective policy for the route's cluster
//!   and name has `max_attempts` above 1):
//!   - a rewrite (`prefix_rewrite`, `regex_rewrite`, `path_rewrite_policy`, the `host_rewrite_*`
//!     family, `auto_host_rewrite`) or header changes (`request_headers_to_add` and
//!     `request_headers_to_remove` of the route, its virtual host or the route config): a retry
//!     is built from the request as it reached Breakwater, which Envoy gives a filter before the
//!     router changed it, so the retry goes without them (README, "Retries and the route");
//!   - response header changes of the route, its virtual host or the route config: a retried
//!     response's head replaces the first response's, which the router had changed;
//!   - a route `timeout` shorter than the policy's `deadline`: Envoy stops the route's timer
//!     once the first response has wholly arrived, so the deadline alone bounds the client's wait;
//!   - a `retry_policy` on the route or its virtual host: the router retries the first attempt
//!     before Breakwater sees its failure, and Breakwater then retries on top (its own retries
//!     go past the route), so a request costs up to the router's attempts plus Breakwater's;
//!   - an `ORIGINAL_DST` cluster: a dispatched call has no downstream connection to take the
//!     original destination from, so a retry finds no host.
//!
//!   Each is a warning: the policy still works, but not as the route says.

use breakwater::policy::Policy;
use serde_json::Value;
use std::fmt::Write as _;
use std::time::Duration;

/// The filter chain of one HTTP connection manager, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Chain {
    /// Where it is: the listener's name, or `connection manager N`.
    pub place: String,
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
}

/// The checks of every connection manager in `documents`, and of every Breakwater filter config
/// delivered on its own (an ECDS `TypedExtensionConfig`); `None` when they hold neither.
pub fn check(documents: &[Value]) -> Option<Vec<Chain>> {
    let mut managers = Vec::new();
    for document in documents {
        find_managers(document, None, &mut managers);
    }
    if managers.is_empty() {
        let extensions: Vec<Chain> = documents.iter().flat_map(extensions_of).collect();
        return (!extensions.is_empty()).then_some(extensions);
    }
    let clusters: Vec<&Value> = documents.iter().flat_map(clusters_of).collect();
    let chains = managers
        .iter()
        .enumerate()
        .map(|(i, (listener, hcm))| {
            let place = listener
                .clone()
                .unwrap_or_else(|| format!("connection manager {}", i + 1));
            check_manager(place, hcm, &clusters)
        })
        .collect();
    Some(chains)
}

/// Every object with `http_filters` (an HTTP connection manager's config), with the name of
/// the listener it is in.
fn find_managers<'a>(
    value: &'a Value,
    listener: Option<String>,
    found: &mut Vec<(Option<String>, &'a Value)>,
) {
    match value {
        Value::Object(fields) => {
            if fields.get("http_filters").is_some_and(Value::is_array) {
                found.push((listener, value));
                return;
            }
            let listener = match (fields.get("name"), fields.get("filter_chains")) {
                (Some(Value::String(name)), Some(_)) => Some(format!("listener {name}")),
                _ => listener,
            };
            for child in fields.values() {
                find_managers(child, listener.clone(), found);
            }
        }
        Value::Array(items) => {
            for item in items {
                find_managers(item, listener.clone(), found);
            }
        }
        _ => {}
    }
}

/// The Breakwater filter configs of an ECDS document (a `TypedExtensionConfig`, or a discovery
/// response listing them), each checked for its policy alone: where it goes in a chain is the
/// listener's business.
fn extensions_of(document: &Value) -> Vec<Chain> {
    let resources = match document.get("resources").and_then(Value::as_array) {
        Some(list) => list.iter().collect(),
        None => vec![document],
    };
    resources
        .into_iter()
        .filter(|r| r.get("typed_config").is_some() && is_breakwater(r))
        .map(|r| {
            let name = r.get("name").and_then(Value::as_str).unwrap_or("(unnamed)");
            let mut chain = Chain {
                place: format!("filter config {name}"),
                errors: Vec::new(),
                warnings: Vec::new(),
            };
            check_policy(&mut chain, r);
            chain
        })
        .collect()
}

/// Checks the inline policy of the Breakwater filter `filter`; the policy if it is accepted.
fn check_policy(chain: &mut Chain, filter: &Value) -> Option<Policy> {
    let Some(json) = configuration(filter) else {
        chain.warnings.push(
            "Breakwater's configuration is not inline (ECDS?): check that file as well".into(),
        );
        return None;
    };
    match Policy::parse(json.as_bytes()) {
        Ok(parsed) => {
            chain
                .warnings
                .extend(parsed.warnings.iter().map(|p| format!("policy: {p}")));
            Some(parsed.policy)
        }
        Err(errors) => {
            chain
                .errors
                .extend(errors.0.iter().map(|p| format!("policy: {p}")));
            None
        }
    }
}

/// The static clusters of a bootstrap (or a bare list of clusters).
fn clusters_of(document: &Value) -> Vec<&Value> {
    let list = document
        .pointer("/static_resources/clusters")
        .or_else(|| document.get("clusters"))
        .and_then(Value::as_array);
    list.map(|l| l.iter().collect()).unwrap_or_default()
}

fn check_manager(place: String, hcm: &Value, clusters: &[&Value]) -> Chain {
    let mut chain = Chain {
        place,
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    let filters = hcm["http_filters"]
        .as_array()
        .map_or(&[][..], Vec::as_slice);
    let names: Vec<&str> = filters
        .iter()
        .map(|f| f.get("name").and_then(Value::as_str).unwrap_or("(unnamed)"))
        .collect();
    let Some(at) = filters.iter().position(is_breakwater) else {
        chain
            .warnings
            .push("no Breakwater filter in this chain".to_string());
        return chain;
    };
    match filters.iter().position(is_router) {
        Some(router) if router == at + 1 => {}
        Some(router) if router > at => chain.errors.push(format!(
            "Breakwater must be the last filter before the router, but {} come(s) between: \
             retries are dispatched straight to the cluster and skip them, and their own \
             replies reach Breakwater looking like the upstream's",
            names[at + 1..router].join(", ")
        )),
        Some(_) => chain
            .errors
            .push("Breakwater comes after the router: it never sees a request".to_string()),
        None => chain
            .errors
            .push("no router in this chain: nothing is sent upstream".to_string()),
    }
    let Some(policy) = check_policy(&mut chain, &filters[at]) else {
        return chain;
    };
    if let Some(routes) = hcm.get("route_config") {
        check_routes(&mut chain, routes, &policy, clusters);
    }
    chain
}

/// Whether an HTTP filter is Breakwater: named `breakwater`, or a wasm filter whose plugin name
/// or root id is `breakwater`, or whose module is `breakwater.wasm`.
fn is_breakwater(filter: &Value) -> bool {
    let named = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .is_some_and(|s| s.contains("breakwater"))
    };
    let config = filter.pointer("/typed_config/config");
    named(filter.get("name"))
        || config.is_some_and(|c| {
            named(c.get("name"))
                || named(c.get("root_id"))
                || named(c.pointer("/vm_config/code/local/filename"))
        })
}

fn is_router(filter: &Value) -> bool {
    filter.get("name").and_then(Value::as_str) == Some("envoy.filters.http.router")
        || filter
            .pointer("/typed_config/@type")
            .and_then(Value::as_str)
            .is_some_and(|t| t.ends_with("envoy.extensions.filters.http.router.v3.Router"))
}

/// The policy text of an inline wasm filter (`configuration` is a `StringValue`).
fn configuration(filter: &Value) -> Option<String> {
    let value = filter.pointer("/typed_config/config/configuration")?;
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Object(fields) => fields
            .get("value")
            .and_then(Value::as_str)
            .map(str::to_owned),
        _ => None,
    }
}

/// Route features that change the request on its way upstream.
const REWRITES: [&str; 8] = [
    "prefix_rewrite",
    "regex_rewrite",
    "path_rewrite_policy",
    "host_rewrite_literal",
    "auto_host_rewrite",
    "host_rewrite_header",
    "host_rewrite_path_regex",
    "host_rewrite",
];
const HEADER_CHANGES: [&str; 2] = ["request_headers_to_add", "request_headers_to_remove"];
/// Route features that change the response on its way to the client.
const RESPONSE_CHANGES: [&str; 2] = ["response_headers_to_add", "response_headers_to_remove"];
/// Envoy's route timeout when a route sets none.
const DEFAULT_ROUTE_TIMEOUT: Duration = Duration::from_secs(15);

fn check_routes(chain: &mut Chain, config: &Value, policy: &Policy, clusters: &[&Value]) {
    let config_changes = changes_of(config);
    for host in config["virtual_hosts"].as_array().into_iter().flatten() {
        let host_changes = changes_of(host);
        let host_retries = host.get("retry_policy").is_some();
        for route in host["routes"].as_array().into_iter().flatten() {
            let name = route.get("name").and_then(Value::as_str).unwrap_or("");
            let action = &route["route"];
            let shown = if name.is_empty() {
                "an unnamed route".to_string()
            } else {
                format!("route {name:?}")
            };
            for cluster in route_clusters(action) {
                let Some(retry) = policy
                    .lookup(cluster, name)
                    .retry
                    .as_ref()
                    .filter(|r| r.max_attempts > 1)
                else {
                    continue;
                };
                let subject = format!("{shown} to cluster {cluster:?}");
                let mut changes: Vec<String> = REWRITES
                    .iter()
                    .filter(|f| action.get(**f).is_some())
                    .map(|f| (*f).to_string())
                    .collect();
                changes.extend(changes_of(route).into_iter().map(|f| format!("route {f}")));
                changes.extend(host_changes.iter().map(|f| format!("virtual host {f}")));
                changes.extend(config_changes.iter().map(|f| format!("route config {f}")));
                if !changes.is_empty() {
                    chain.warnings.push(format!(
                        "{subject}: Breakwater retries it, but a retry is sent without the \
                         route's {}: it reaches the upstream as the request reached Breakwater",
                        changes.join(", ")
                    ));
                }
                let mut response_changes: Vec<String> = Vec::new();
                for (what, value) in [
                    ("route", route),
                    ("virtual host", host),
                    ("route config", config),
                ] {
                    for field in RESPONSE_CHANGES {
                        if value
                            .get(field)
                            .and_then(Value::as_array)
                            .is_some_and(|a| !a.is_empty())
                        {
                            response_changes.push(format!("{what} {field}"));
                        }
                    }
                }
                if !response_changes.is_empty() {
                    chain.warnings.push(format!(
                        "{subject}: a retried response replaces the first response's head, which \
                         the router had changed, so it goes without the route's {}",
                        response_changes.join(", ")
                    ));
                }
                let timeout = match action.get("timeout") {
                    Some(t) => envoy_duration(t),
                    None => Some(DEFAULT_ROUTE_TIMEOUT),
                };
                if let Some(timeout) = timeout.filter(|t| !t.is_zero() && *t < retry.deadline) {
                    chain.warnings.push(format!(
                        "{subject}: the route's timeout ({}) is shorter than the policy's \
                         retry.deadline ({}): while Breakwater retries, the client may wait up \
                         to the deadline; set retry.deadline to at most the route timeout",
                        seconds(timeout),
                        seconds(retry.deadline)
                    ));
                }
                if action.get("retry_policy").is_some() || host_retries {
                    chain.warnings.push(format!(
                        "{subject}: Envoy's own retry_policy applies too: the router retries \
                         the first attempt, then Breakwater retries on top; turn one off"
                    ));
                }
                if cluster_type(clusters, cluster) == Some("ORIGINAL_DST") {
                    chain.warnings.push(format!(
                        "{subject}: an ORIGINAL_DST cluster: a retry has no original \
                         destination to go to; turn retries off for it"
                    ));
                }
            }
        }
    }
}

/// The header-change fields `value` sets.
fn changes_of(value: &Value) -> Vec<&'static str> {
    HEADER_CHANGES
        .iter()
        .copied()
        .filter(|f| {
            value
                .get(*f)
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty())
        })
        .collect()
}

/// The clusters a route action sends to: `cluster`, or each of `weighted_clusters`.
fn route_clusters(action: &Value) -> Vec<&str> {
    if let Some(cluster) = action.get("cluster").and_then(Value::as_str) {
        return vec![cluster];
    }
    action
        .pointer("/weighted_clusters/clusters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("name").and_then(Value::as_str))
        .collect()
}

fn cluster_type<'a>(clusters: &[&'a Value], name: &str) -> Option<&'a str> {
    clusters
        .iter()
        .find(|c| c.get("name").and_then(Value::as_str) == Some(name))
        .and_then(|c| c.get("type"))
        .and_then(Value::as_str)
}

/// A protobuf JSON duration (`"5s"`, `"0.250s"`) or `{ seconds, nanos }`.
fn envoy_duration(value: &Value) -> Option<Duration> {
    match value {
        Value::String(text) => {
            let secs: f64 = text.strip_suffix('s')?.parse().ok()?;
            (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
        }
        Value::Object(fields) => {
            let secs = fields.get("seconds").and_then(Value::as_u64).unwrap_or(0);
            let nanos = fields.get("nanos").and_then(Value::as_u64).unwrap_or(0);
            Some(Duration::from_secs(secs) + Duration::from_nanos(nanos))
        }
        _ => None,
    }
}

fn seconds(d: Duration) -> String {
    format!("{}s", d.as_secs_f64())
}

/// The report for one file: one line per chain, then one per error and warning.
pub fn render(file: &str, chains: &[Chain]) -> String {
    let mut out = String::new();
    for chain in chains {
        let verdict = if chain.errors.is_empty() {
            "valid"
        } else {
            "invalid"
        };
        let _ = writeln!(out, "{file}: {}: {verdict}", chain.place);
        for error in &chain.errors {
            let _ = writeln!(out, "  error: {error}");
        }
        for warning in &chain.warnings {
            let _ = writeln!(out, "  warning: {warning}");
        }
    }
    out
}
