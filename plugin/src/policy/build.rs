//! Parsing from end to end: JSON text → tree → raw policy → one checked layer per scope → every
//! (cluster, route) combination merged, resolved and checked → the table. Each step reports into
//! one [`Report`] and carries on, so a policy's author sees every problem at once.

use super::bounds::MAX_RESOLVED;
use super::check::toggle;
use super::json::Node;
use super::layer::{Merge, ScopeLayer};
use super::names::NameMap;
use super::problem::{taints, At, PolicyErrors, Problem, Report, TOP_LEVEL};
use super::raw::{Entries, RawPolicy, RawRoute, RawScope, Toggle};
use super::resolve::{cross_check, effective, Finding};
use super::table::{Parsed, Policy};
use super::{check_breaker, check_retry, collect};

/// [`Policy::parse`].
pub(crate) fn parse(json: &[u8]) -> Result<Parsed, PolicyErrors> {
    let node: Node = serde_json::from_slice(json).map_err(|e| {
        PolicyErrors(vec![Problem {
            scope: TOP_LEVEL.to_owned(),
            path: String::new(),
            value: String::new(),
            rule: format!("the policy is not valid JSON: {e}"),
        }])
    })?;
    let mut report = Report::default();
    let raw = collect::policy(&node, &mut report);
    let scopes = Scopes::check(&raw, &mut report);
    let policy = scopes.resolve(&mut report);
    // Listed scope by scope, in the order written; combinations of a route and a cluster last.
    let order = written_scopes(&node);
    let (problems, warnings) = (
        in_order(report.problems, &order),
        in_order(report.warnings, &order),
    );
    match policy {
        Some(policy) if problems.is_empty() => Ok(Parsed { policy, warnings }),
        _ => Err(PolicyErrors(problems)),
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
    }
}

/// The scopes of the policy text in the order written, numbered.
fn written_scopes(node: &Node) -> NameMap {
    let mut order = NameMap::default();
    let mut add = |scope: String| {
        let next = order.len();
        order.entry(scope).or_insert(next);
    };
    add(TOP_LEVEL.to_owned());
    let Node::Object(top) = node else {
        return order;
    };
    for (key, value) in top {
        match (key.as_str(), value) {
            ("default", _) => add(key.clone()),
            ("clusters" | "routes", Node::Object(named)) => {
                named
                    .iter()
                    .for_each(|(name, _)| add(format!("{key}.{name}")));
            }
            _ => {}
        }
    }
    order
}

/// Problems listed scope by scope in the order written; those of a route meeting a cluster
/// last, in the order found. A stable bucket pass, not a sort: this runs once per
/// configuration and a sort would add kilobytes to the `.wasm`.
fn in_order(problems: Vec<Problem>, order: &NameMap) -> Vec<Problem> {
    let mut buckets: Vec<Vec<Problem>> = Vec::new();
    buckets.resize_with(order.len() + 1, Vec::new);
    for problem in problems {
        let rank = order.get(&problem.scope).copied().unwrap_or(order.len());
        if let Some(bucket) = buckets.get_mut(rank) {
            bucket.push(problem);
        }
    }
    buckets.into_iter().flatten().collect()
}

/// Every scope's own layer.
struct Scopes {
    default: ScopeLayer,
    clusters: Vec<(String, ScopeLayer)>,
    routes: Vec<(String, ScopeLayer)>,
}

impl Scopes {
    fn check(raw: &RawPolicy, report: &mut Report) -> Scopes {
        let default = raw
            .default
            .as_ref()
            .map_or_else(ScopeLayer::default, |scope| {
                scope_layer(&mut At::new(report, "default"), scope)
            });
        let clusters = named(&raw.clusters, "clusters", report, scope_layer);
        let routes = named(&raw.routes, "routes", report, route_layer);
        Scopes {
            default,
            clusters,
            routes,
        }
    }

    /// Resolves every combination and checks the rules across fields on each; `None` when the
    /// table would be too large to keep.
    fn resolve(&self, report: &mut Report) -> Option<Policy> {
        let (clusters, routes) = (self.clusters.len(), self.routes.len());
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
            checker.resolve(self.default.clone(), "default", &["default"], &[]);
        table.push(default.clone());
        let mut on_default = Vec::with_capacity(routes);
        for (name, layer) in &self.routes {
            let scope = format!("routes.{name}");
            let merged = self.default.clone().merge(layer.clone());
            let contributors = ["default", scope.as_str()];
            let (effective, found) =
                checker.resolve(merged, &scope, &contributors, &[&default_found]);
            table.push(effective);
            on_default.push(found);
        }
        // One row per cluster: the cluster, then every route on it.
        for (cluster, layer) in &self.clusters {
            let cluster_scope = format!("clusters.{cluster}");
            let merged = self.default.clone().merge(layer.clone());
            let contributors = ["default", cluster_scope.as_str()];
            let (effective, own_found) = checker.resolve(
                merged.clone(),
                &cluster_scope,
                &contributors,
                &[&default_found],
            );
            table.push(effective);
            for ((route, route_layer), route_found) in self.routes.iter().zip(&on_default) {
                let route_scope = format!("routes.{route}");
                let scope = format!("{route_scope} with {cluster_scope}");
                let inherited: [&[Finding]; 3] = [&default_found, &own_found, route_found];
                let contributors = ["default", cluster_scope.as_str(), route_scope.as_str()];
                let merged = merged.clone().merge(route_layer.clone());
                table.push(checker.resolve(merged, &scope, &contributors, &inherited).0);
            }
        }
        Some(Policy {
            clusters: numbered(&self.clusters),
            routes: numbered(&self.routes),
            table,
            default,
        })
    }
}

/// Names numbered from 1 in the order written: rows or columns of the table.
fn numbered(scopes: &[(String, ScopeLayer)]) -> NameMap {
    let numbers = scopes.iter().enumerate();
    numbers
        .map(|(i, (name, _))| (name.clone(), i + 1))
        .collect()
}

/// The layers of `clusters` or `routes` (`kind`), each checked in its own scope.
fn named<T>(
    raw: &Option<Entries<T>>,
    kind: &str,
    report: &mut Report,
    layer: fn(&mut At, &T) -> ScopeLayer,
) -> Vec<(String, ScopeLayer)> {
    let mut layers = Vec::new();
    for (name, raw) in raw.iter().flat_map(|entries| entries.0.iter()) {
        if name.is_empty() {
            // Envoy reports an empty name for whatever it left unnamed (a route without a name),
            // so an entry named "" would quietly apply to all of those.
            let at = &mut At::new(report, TOP_LEVEL);
            at.field(kind, |at| {
                at.field("\"\"", |at| {
                    at.problem(
                        String::new(),
                        "is an empty name, which matches whatever Envoy leaves unnamed; give the entry a name",
                    )
                })
            });
            continue;
        }
        let at = &mut At::new(report, format!("{kind}.{name}"));
        layers.push((name.clone(), layer(at, raw)));
    }
    layers
}

/// `default` or `clusters.<name>`: checks both halves.
fn scope_layer(at: &mut At, raw: &RawScope) -> ScopeLayer {
    ScopeLayer {
        breaker: toggle(
            at,
            "circuit_breaker",
            &raw.circuit_breaker,
            check_breaker::breaker,
        ),
        retry: toggle(at, "retry", &raw.retry, check_retry::retry),
    }
}

/// `routes.<name>`: the breaker can only be bypassed (the reader refused anything else).
fn route_layer(at: &mut At, raw: &RawRoute) -> ScopeLayer {
    ScopeLayer {
        breaker: match raw.circuit_breaker {
            Some(_) => Toggle::Off,
            None => Toggle::Unset,
        },
        retry: toggle(at, "retry", &raw.retry, check_retry::retry),
    }
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
