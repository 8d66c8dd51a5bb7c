//! Parsing from end to end: JSON text → tree → one checked layer per scope → every (cluster,
//! route) combination merged, resolved and checked → the table. Each step reports into one
//! [`Report`] and carries on, so a policy's author sees every problem at once: first those of
//! single values, in the order written, then those of rules across fields.

use super::bounds::MAX_RESOLVED;
use super::json::Node;
use super::layer::{Merge, ScopeLayer};
use super::names::NameMap;
use super::problem::{taints, PolicyErrors, Problem, Report, TOP_LEVEL};
use super::read_scope::{scopes, Scopes};
use super::resolve::{cross_check, effective, Finding};
use super::table::{Parsed, Policy};

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
                rule: format!("the policy is not valid JSON: {e}"),
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
        table: vec![default.clone()],
        default,
        worker_buffer: super::defaults::MAX_WORKER_BUFFER,
    }
}

/// Resolves every combination and checks the rules across fields on each; `None` when the
/// table would be too large to keep.
fn resolve(scopes: &Scopes, report: &mut Report) -> Option<Policy> {
    let (clusters, routes) = (scopes.clusters.len(), scopes.routes.len());
    let size = clusters
        .saturating_add(1)
        .saturating_mul(routes.saturating_add(1));
    if size > MAX_RESOLVED {
        report.problems.push(Problem {
            scope: TOP_LEVEL.to_owned(),
            path: String::new(),
            value: String::new(),
            rule: format!(
                "{clusters} clusters and {routes} routes resolve to {size} policies, which \
                 every worker keeps; must be at most {MAX_RESOLVED}"
            ),
        });
        return None;
    }
    let field_problems = report.problems.len();
    let mut checker = Checker {
        report,
        field_problems,
    };
    let mut table = Vec::with_capacity(size);
    // Row 0: default, then every route on a cluster the policy does not name.
    let (default, default_found) =
        checker.resolve(scopes.default.clone(), "default", &["default"], &[]);
    table.push(default.clone());
    let mut on_default = Vec::with_capacity(routes);
    for (name, layer) in &scopes.routes {
        let scope = format!("routes.{name}");
        let merged = scopes.default.clone().merge(layer.clone());
        let contributors = ["default", scope.as_str()];
        let (effective, found) = checker.resolve(merged, &scope, &contributors, &[&default_found]);
        table.push(effective);
        on_default.push(found);
    }
    // One row per cluster: the cluster, then every route on it.
    for (cluster, layer) in &scopes.clusters {
        let cluster_scope = format!("clusters.{cluster}");
        let merged = scopes.default.clone().merge(layer.clone());
        let contributors = ["default", cluster_scope.as_str()];
        let (effective, own_found) = checker.resolve(
            merged.clone(),
            &cluster_scope,
            &contributors,
            &[&default_found],
        );
        table.push(effective);
        for ((route, route_layer), route_found) in scopes.routes.iter().zip(&on_default) {
            let route_scope = format!("routes.{route}");
            let scope = format!("{route_scope} with {cluster_scope}");
            let inherited: [&[Finding]; 3] = [&default_found, &own_found, route_found];
            let contributors = ["default", cluster_scope.as_str(), route_scope.as_str()];
            let merged = merged.clone().merge(route_layer.clone());
            table.push(checker.resolve(merged, &scope, &contributors, &inherited).0);
        }
    }
    Some(Policy {
        clusters: numbered(&scopes.clusters),
        routes: numbered(&scopes.routes),
        table,
        default,
        worker_buffer: scopes
            .worker_buffer
            .unwrap_or(super::defaults::MAX_WORKER_BUFFER),
    })
}

/// Names numbered from 1 in the order written: rows or columns of the table.
fn numbered(scopes: &[(String, ScopeLayer)]) -> NameMap {
    let numbers = scopes.iter().enumerate();
    numbers
        .map(|(i, (name, _))| (name.clone(), i + 1))
        .collect()
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
    ) -> (super::types::Effective, Vec<Finding>) {
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
                rule: finding.rule.clone(),
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
