//! Parsing from end to end: JSON text → tree → one checked layer per scope → every (cluster,
//! route) combination merged, resolved and checked → the table. Each step reports into one
//! [`Report`] and carries on, so a policy's author sees every problem at once: first those of
//! single values, in the order written, then those of rules across fields.

use super::bounds::MAX_RESOLVED;
use super::istio::{classify, service_key, ClusterKind};
use super::json::Node;
use super::layer::{Merge, ScopeLayer};
use super::names::NameMap;
use super::problem::{taints, PolicyErrors, Problem, Report, TOP_LEVEL};
use super::read_scope::{scopes, Scopes};
use super::resolve::{cross_check, effective, Finding};
use super::rule::Rule;
use super::table::{Hosts, Parsed, Policy};
use super::types::{Effective, SpecialClusters};

/// [`Policy::parse`].
pub(crate) fn parse(json: &[u8]) -> Result<Parsed, PolicyErrors> {
    let mut report = Report::default();
    let policy = read(json, &mut report).and_then(|scopes| resolve(&scopes, &mut report));
    match policy {
        Some(policy) if report.problems.is_empty() => Ok(Parsed {
            policy,
            warnings: report.warnings,
        }),
        _ => Err(PolicyErrors(report.problems)),
    }
}

/// The JSON text read into checked scopes; `None` when it is not JSON.
pub(crate) fn read(json: &[u8], report: &mut Report) -> Option<Scopes> {
    match serde_json::from_slice::<Node>(json) {
        Ok(node) => Some(scopes(&node, report)),
        Err(e) => {
            report.shape_problems += 1;
            report.problems.push(Problem {
                scope: TOP_LEVEL.to_owned(),
                path: String::new(),
                value: String::new(),
                rule: Rule::InvalidJson(e.to_string()),
            });
            None
        }
    }
}

/// The policy of `{}`.
pub(crate) fn empty() -> Policy {
    let default = effective(&ScopeLayer::default());
    Policy {
        clusters: NameMap::default(),
        routes: NameMap::default(),
        hosts: Hosts::default(),
        table: vec![default.clone()],
        default,
        worker_buffer: super::defaults::MAX_WORKER_BUFFER,
        special: SpecialClusters::default(),
        bypass: Effective {
            breaker: None,
            retry: None,
        },
        state_scope: None,
    }
}

/// Resolves every combination and checks the rules across fields on each; `None` when the
/// table would be too large to keep.
fn resolve(scopes: &Scopes, report: &mut Report) -> Option<Policy> {
    let hosts = host_rows(&scopes.services);
    let service_rows: usize = hosts.iter().map(|h| h.rows).sum();
    let rows = scopes
        .clusters
        .len()
        .saturating_add(service_rows)
        .saturating_add(1);
    let routes = scopes.routes.len();
    let size = rows.saturating_mul(routes.saturating_add(1));
    if size > MAX_RESOLVED {
        report.problems.push(Problem {
            scope: TOP_LEVEL.to_owned(),
            path: String::new(),
            value: String::new(),
            rule: Rule::TableTooLarge {
                clusters: scopes.clusters.len(),
                service_rows,
                routes,
                size,
            },
        });
        return None;
    }
    let field_problems = report.problems.len();
    let checker = Checker {
        report,
        field_problems,
    };
    let mut table = Table::new(checker, scopes, size);
    // Row 0: default, then every route on a cluster the policy names nowhere.
    table.row(&[]);
    // The rows of every combination of services keys a cluster name can match, host by host.
    let mut lookup = Hosts::default();
    for host in &hosts {
        let mut rows = Vec::with_capacity(host.rows);
        for port in 0..=host.ports.len() {
            for subset in 0..=host.subsets.len() {
                let layers = host.layers(&scopes.services, port, subset);
                rows.push(table.row(&layers));
            }
        }
        let subsets = host.subsets.iter().map(|s| (*s).to_owned()).collect();
        lookup.add(host.host, host.ports.clone(), subsets, rows);
    }
    // One row per cluster named exactly, over the services keys its name matches.
    let mut clusters = NameMap::default();
    for (i, (name, _)) in scopes.clusters.iter().enumerate() {
        let mut layers = match classify(name) {
            ClusterKind::Service { port, subset, host } => hosts
                .iter()
                .find(|h| h.host == host)
                .map(|h| {
                    let port = h.ports.iter().position(|p| *p == port).map_or(0, |i| i + 1);
                    let subset = h.subsets.iter().position(|s| *s == subset);
                    h.layers(&scopes.services, port, subset.map_or(0, |i| i + 1))
                })
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        layers.push(scopes.services.len() + i);
        clusters.insert(name.clone(), table.row(&layers));
    }
    let default = table.entries.first().cloned()?;
    Some(Policy {
        clusters,
        routes: numbered(&scopes.routes),
        hosts: lookup,
        table: table.entries,
        default,
        worker_buffer: scopes
            .worker_buffer
            .unwrap_or(super::defaults::MAX_WORKER_BUFFER),
        special: scopes.special.unwrap_or_default(),
        bypass: Effective {
            breaker: None,
            retry: None,
        },
        state_scope: scopes.state_scope.clone(),
    })
}

/// Names numbered from 1 in the order written: rows or columns of the table.
fn numbered(scopes: &[(String, ScopeLayer)]) -> NameMap {
    let numbers = scopes.iter().enumerate();
    numbers
        .map(|(i, (name, _))| (name.clone(), i + 1))
        .collect()
}

/// The `services` keys of one host: its ports and subsets, each numbered from 1 in the order
/// first written (0 stands for any other), and the entry of each key.
struct HostKeys<'s> {
    host: &'s str,
    ports: Vec<u16>,
    subsets: Vec<&'s str>,
    /// (port number, subset number) → the entry written for exactly that key.
    keys: Vec<((usize, usize), usize)>,
    /// (ports + 1) × (subsets + 1).
    rows: usize,
}

impl HostKeys<'_> {
    /// The entries a cluster with this port and subset number matches, least specific first:
    /// `HOST`, `HOST:PORT`, `HOST#SUBSET`, `HOST:PORT#SUBSET`.
    /// Each entry is its index in `services` (see [`Table::row`]).
    fn layers(&self, entries: &[(String, ScopeLayer)], port: usize, subset: usize) -> Vec<usize> {
        let wanted = [(0, 0), (port, 0), (0, subset), (port, subset)];
        let mut layers = Vec::with_capacity(4);
        for (i, key) in wanted.iter().enumerate() {
            // (port, 0) and (0, subset) are (0, 0) again when the port or subset is "any other".
            if wanted[..i].contains(key) {
                continue;
            }
            let entry = self.keys.iter().find(|(k, _)| k == key);
            if let Some((_, entry)) = entry.filter(|(_, e)| *e < entries.len()) {
                layers.push(*entry);
            }
        }
        layers
    }
}

/// The `services` entries grouped by host, in the order first written; keys that do not parse
/// were reported when read and are left out.
fn host_rows(services: &[(String, ScopeLayer)]) -> Vec<HostKeys<'_>> {
    let mut hosts: Vec<HostKeys> = Vec::new();
    for (entry, (key, _)) in services.iter().enumerate() {
        let Ok(key) = service_key(key) else { continue };
        let place = match hosts.iter().position(|h| h.host == key.host) {
            Some(place) => place,
            None => {
                hosts.push(HostKeys {
                    host: key.host,
                    ports: Vec::new(),
                    subsets: Vec::new(),
                    keys: Vec::new(),
                    rows: 1,
                });
                hosts.len() - 1
            }
        };
        let Some(host) = hosts.get_mut(place) else {
            continue;
        };
        let port = key.port.map_or(0, |port| number(&mut host.ports, port));
        let subset = key
            .subset
            .map_or(0, |subset| number(&mut host.subsets, subset));
        host.keys.push(((port, subset), entry));
        host.rows = (host.ports.len() + 1) * (host.subsets.len() + 1);
    }
    hosts
}

/// The number (from 1) of `value` in `list`, added at the end when new.
fn number<T: PartialEq>(list: &mut Vec<T>, value: T) -> usize {
    match list.iter().position(|v| *v == value) {
        Some(i) => i + 1,
        None => {
            list.push(value);
            list.len()
        }
    }
}

/// The table as it is built, row by row.
struct Table<'r, 's> {
    checker: Checker<'r>,
    scopes: &'s Scopes,
    /// The scope names: every `services.<key>`, then every `clusters.<name>`.
    names: Vec<String>,
    entries: Vec<Effective>,
    /// Each row's scopes (see [`key`]): a combination resolved before gets the same row.
    rows: NameMap,
    /// What the rules found on each row's column 0, by row.
    found: Vec<Vec<Finding>>,
    /// What the rules found on each route over `default` alone.
    on_default: Vec<Vec<Finding>>,
}

impl<'r, 's> Table<'r, 's> {
    fn new(checker: Checker<'r>, scopes: &'s Scopes, size: usize) -> Self {
        let mut names = Vec::with_capacity(scopes.services.len() + scopes.clusters.len());
        for (kind, list) in [
            ("services.", &scopes.services),
            ("clusters.", &scopes.clusters),
        ] {
            for (name, _) in list {
                names.push(scope_name(kind, name));
            }
        }
        Table {
            checker,
            scopes,
            names,
            entries: Vec::with_capacity(size),
            rows: NameMap::default(),
            found: Vec::new(),
            on_default: Vec::with_capacity(scopes.routes.len()),
        }
    }

    /// The row of the scopes `numbers` (indexes in `names`: every `services` entry, then every
    /// `clusters` entry) merged over `default` in that order, with one column per route;
    /// resolved and checked once per distinct combination.
    fn row(&mut self, numbers: &[usize]) -> usize {
        let own_key = key(numbers, None);
        if let Some(row) = self.rows.get(own_key.as_str()) {
            return *row;
        }
        let mut merged = self.scopes.default.clone();
        for n in numbers {
            merged = merged.merge(self.layer(*n).clone());
        }
        // The findings of every row with one scope fewer were reported there already.
        let mut parents: Vec<&[Finding]> = Vec::with_capacity(numbers.len() + 2);
        for left_out in 0..numbers.len() {
            let fewer = self.rows.get(key(numbers, Some(left_out)).as_str());
            if let Some(found) = fewer.and_then(|row| self.found.get(*row)) {
                parents.push(found);
            }
        }
        let mut contributors: Vec<&str> = Vec::with_capacity(numbers.len() + 2);
        contributors.push("default");
        let mut label = String::new();
        for n in numbers.iter().rev() {
            let name = self.names.get(*n).map_or("", String::as_str);
            if !label.is_empty() {
                label.push_str(" with ");
            }
            label.push_str(name);
            contributors.push(name);
        }
        if label.is_empty() {
            label.push_str("default");
        }
        let (effective, own) =
            self.checker
                .resolve(merged.clone(), &label, &contributors, &parents);
        self.entries.push(effective);
        let row = self.found.len();
        for (i, (route, route_layer)) in self.scopes.routes.iter().enumerate() {
            let route_scope = scope_name("routes.", route);
            let mut scope = route_scope.clone();
            if !numbers.is_empty() {
                scope.push_str(" with ");
                scope.push_str(&label);
            }
            let mut with_route = contributors.clone();
            with_route.push(&route_scope);
            let mut inherited = parents.clone();
            inherited.push(&own);
            inherited.push(self.on_default.get(i).map_or(&[][..], Vec::as_slice));
            let merged = merged.clone().merge(route_layer.clone());
            let (effective, found) = self
                .checker
                .resolve(merged, &scope, &with_route, &inherited);
            self.entries.push(effective);
            if numbers.is_empty() {
                self.on_default.push(found);
            }
        }
        self.found.push(own);
        self.rows.insert(own_key, row);
        row
    }

    /// The scope numbered `n` in `names`.
    fn layer(&self, n: usize) -> &ScopeLayer {
        let services = &self.scopes.services;
        let entry = match n.checked_sub(services.len()) {
            None => services.get(n),
            Some(i) => self.scopes.clusters.get(i),
        };
        entry.map_or(&self.scopes.default, |(_, layer)| layer)
    }
}

/// `kind` (with its dot) followed by `name`: `clusters.payments`.
fn scope_name(kind: &str, name: &str) -> String {
    let mut scope = String::with_capacity(kind.len() + name.len());
    scope.push_str(kind);
    scope.push_str(name);
    scope
}

/// A row's key: its scopes' numbers in merge order, one `,` after each, leaving out the one at
/// `skip`.
fn key(numbers: &[usize], skip: Option<usize>) -> String {
    let mut key = String::new();
    for (i, n) in numbers.iter().enumerate() {
        if Some(i) != skip {
            key.push_str(&n.to_string());
            key.push(',');
        }
    }
    key
}

/// Resolves merged layers and reports what the rules across fields find.
struct Checker<'r> {
    report: &'r mut Report,
    /// How many of the report's problems are about single fields (the first ones): only those
    /// make a field unreliable.
    field_problems: usize,
}

impl Checker<'_> {
    /// The effective policy of `merged` and what the rules found on it. A finding is reported
    /// under `scope` unless a scope it inherits from (`inherited`) already has it, or one of its
    /// fields has a problem of its own in one of the `contributors`.
    fn resolve(
        &mut self,
        merged: ScopeLayer,
        scope: &str,
        contributors: &[&str],
        inherited: &[&[Finding]],
    ) -> (Effective, Vec<Finding>) {
        let effective = effective(&merged);
        let found = cross_check(&merged, &effective);
        let field_problems = self
            .report
            .problems
            .get(..self.field_problems)
            .unwrap_or(&[]);
        let mut reported = Vec::new();
        for finding in &found {
            let known = inherited.iter().any(|set| set.contains(finding));
            let tainted = finding.fields.iter().any(|field| {
                contributors
                    .iter()
                    .any(|scope| taints(field_problems, scope, field))
            });
            if known || tainted {
                continue;
            }
            let problem = Problem {
                scope: scope.to_owned(),
                path: finding.path.to_owned(),
                value: finding.value.clone(),
                rule: Rule::Across(finding.rule),
            };
            reported.push((finding.warning, problem));
        }
        for (warning, problem) in reported {
            let list = if warning {
                &mut self.report.warnings
            } else {
                &mut self.report.problems
            };
            list.push(problem);
        }
        (effective, found)
    }
}
