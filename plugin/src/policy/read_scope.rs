//! Reading the top of the policy: `default`, `services.<key>`, `clusters.<name>` and
//! `routes.<name>`, each in its own scope, in the order written, and the top-level settings.

use super::bounds::{MAX_WORKER_BUFFER, STATE_SCOPE_BYTES};
use super::istio::service_key;
use super::json::{quote, show, Node};
use super::layer::ScopeLayer;
use super::names::{seen_before, NameMap};
use super::problem::{At, Report, TOP_LEVEL};
use super::raw::Toggle;
use super::read::{integer, object, text, toggle};
use super::read_breaker::breaker;
use super::read_retry::{retry, route_retry};
use super::rule::Rule;
use super::types::SpecialClusters;

/// Every scope's own layer: what it sets, checked.
#[derive(Debug, Default)]
pub(crate) struct Scopes {
    pub default: ScopeLayer,
    pub services: Vec<(String, ScopeLayer)>,
    pub clusters: Vec<(String, ScopeLayer)>,
    pub routes: Vec<(String, ScopeLayer)>,
    /// `max_worker_buffer`, if written.
    pub worker_buffer: Option<u64>,
    /// `special_clusters`, if written.
    pub special: Option<SpecialClusters>,
    /// `state_scope`, if written.
    pub state_scope: Option<String>,
}

/// Reads the whole policy; what could not be read is left out and reported.
pub(crate) fn scopes(node: &Node, report: &mut Report) -> Scopes {
    let mut at = At::new(report, TOP_LEVEL);
    let mut scopes = Scopes::default();
    if !matches!(node, Node::Object(_)) {
        at.shape(show(node), Rule::NotAPolicy);
        return scopes;
    }
    let known = &[
        "default",
        "services",
        "clusters",
        "routes",
        "special_clusters",
        "state_scope",
        "max_worker_buffer",
    ];
    object(node, &mut at, known, &mut |name, node, at| match name {
        "max_worker_buffer" => {
            let bytes = integer(node, at, MAX_WORKER_BUFFER);
            scopes.worker_buffer = bytes.and_then(|b| u64::try_from(b).ok());
        }
        "special_clusters" => scopes.special = special(node, at),
        "state_scope" => scopes.state_scope = state_scope(node, at),
        "default" => {
            let default = at.scope("default".to_owned(), |at| scope(node, at));
            scopes.default = default.unwrap_or_default();
        }
        "services" => named(node, at, "services", service, &mut scopes.services),
        "clusters" => named(node, at, "clusters", cluster, &mut scopes.clusters),
        "routes" => named(node, at, "routes", route, &mut scopes.routes),
        _ => {}
    });
    scopes
}

/// `state_scope`: a name for the shared-data keys (see `bounds::STATE_SCOPE_BYTES`).
fn state_scope(node: &Node, at: &mut At) -> Option<String> {
    let scope = text(node, at)?;
    let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_');
    if scope.is_empty() || scope.len() > STATE_SCOPE_BYTES || !scope.bytes().all(allowed) {
        at.problem(quote(scope), Rule::NotAStateScope);
        return None;
    }
    Some(scope.to_owned())
}

/// `special_clusters`: `"bypass"` or `"guard"`.
fn special(node: &Node, at: &mut At) -> Option<SpecialClusters> {
    let value = match node {
        Node::String(s) if s == "bypass" => Some(SpecialClusters::Bypass),
        Node::String(s) if s == "guard" => Some(SpecialClusters::Guard),
        _ => None,
    };
    if value.is_none() {
        at.shape(show(node), Rule::NotSpecialClusters);
    }
    value
}

/// `services`, `clusters` or `routes` (`kind`): each entry is its own scope, `<kind>.<name>`.
fn named(
    node: &Node,
    at: &mut At,
    kind: &str,
    read: fn(&str, &Node, &mut At) -> Option<ScopeLayer>,
    into: &mut Vec<(String, ScopeLayer)>,
) {
    let Node::Object(entries) = node else {
        at.shape(show(node), Rule::NotAnObjectOfNames);
        return;
    };
    let mut written = NameMap::default();
    for (name, value) in entries {
        if seen_before(&mut written, name) {
            at.field(name, |at| at.shape(show(value), Rule::RepeatedName));
        } else if name.is_empty() {
            // Envoy reports an empty name for whatever it left unnamed (a route without a
            // name), so an entry named "" would quietly apply to all of those. Its value is
            // still read, for its own problems.
            at.field("\"\"", |at| at.problem(String::new(), Rule::EmptyName));
            at.scope(format!("{kind}.\"\""), |at| read(name, value, at));
        } else if let Some(layer) = at.scope(format!("{kind}.{name}"), |at| read(name, value, at)) {
            into.push((name.clone(), layer));
        }
    }
}

/// `services.<key>`: a scope whose key must match Istio's cluster names (see `istio`).
fn service(key: &str, node: &Node, at: &mut At) -> Option<ScopeLayer> {
    match service_key(key) {
        Ok(parsed) => {
            if !parsed.host.contains('.') {
                at.warning(quote(key), Rule::HostWithoutDot);
            }
        }
        Err(why) => {
            at.problem(quote(key), Rule::NotAServiceKey(why));
        }
    }
    scope(node, at)
}

/// `clusters.<name>`: a scope, with a warning for a name no cluster of Istio's has.
fn cluster(name: &str, node: &Node, at: &mut At) -> Option<ScopeLayer> {
    let host =
        !name.contains('|') && (name.ends_with(".svc.cluster.local") || name.ends_with(".svc"));
    if host {
        at.warning(quote(name), Rule::ClusterIsServiceHost);
    }
    scope(node, at)
}

/// `default`, `services.<key>` or `clusters.<name>`: both halves.
fn scope(node: &Node, at: &mut At) -> Option<ScopeLayer> {
    let mut l = ScopeLayer::default();
    let known = &["circuit_breaker", "retry"];
    let is_object = object(node, at, known, &mut |name, node, at| match name {
        "circuit_breaker" => l.breaker = toggle(node, at, breaker),
        "retry" => l.retry = toggle(node, at, retry),
        _ => {}
    });
    is_object.then_some(l)
}

/// `routes.<name>`: breaker settings are per cluster, so a route may only bypass the breaker;
/// the retry budget is per cluster too, so a route's `retry` may not set it.
fn route(_: &str, node: &Node, at: &mut At) -> Option<ScopeLayer> {
    let mut l = ScopeLayer::default();
    let known = &["circuit_breaker", "retry"];
    let is_object = object(node, at, known, &mut |name, node, at| match name {
        "circuit_breaker" => match node {
            Node::Null => l.breaker = Toggle::Off,
            other => {
                at.shape(show(other), Rule::BreakerOnRoute);
            }
        },
        "retry" => l.retry = toggle(node, at, route_retry),
        _ => {}
    });
    is_object.then_some(l)
}
