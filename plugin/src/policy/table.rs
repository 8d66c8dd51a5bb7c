//! The resolved policy table: every (cluster, route) combination merged and checked once, when
//! the policy is parsed, so that a request only looks its entry up.

use super::build;
use super::problem::{PolicyErrors, Problem};
use super::types::{BreakerPolicy, Effective};
use std::collections::HashMap;

/// The resolved policy: the effective policy of `default`, of each configured cluster, and of
/// each configured route on each of them.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// For clusters the policy does not name.
    pub(crate) default: Resolved,
    pub(crate) clusters: HashMap<String, Resolved>,
}

/// One cluster's entry (or the default's): its own effective policy and that of every route on
/// it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Resolved {
    pub effective: Effective,
    pub routes: HashMap<String, Effective>,
}

/// A policy that passed validation, with the warnings about risky but legal values.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub policy: Policy,
    pub warnings: Vec<Problem>,
}

impl Policy {
    /// Parses and validates; Err holds every problem; Ok holds the policy and its warnings.
    pub fn parse(json: &[u8]) -> Result<Parsed, PolicyErrors> {
        build::parse(json)
    }

    /// The effective policy for a request: default, merged with `clusters.<cluster>`, then
    /// `routes.<route>`. Unknown names fall back (unknown cluster → default; unknown route → no
    /// route layer). Cheap: no allocation, no merging at request time.
    pub fn lookup(&self, cluster: &str, route: &str) -> &Effective {
        let resolved = self.resolved(cluster);
        resolved.routes.get(route).unwrap_or(&resolved.effective)
    }

    /// The breaker policy of a cluster (None when off), ignoring routes.
    pub fn breaker_for(&self, cluster: &str) -> Option<&BreakerPolicy> {
        self.resolved(cluster).effective.breaker.as_ref()
    }

    /// The clusters the policy names, in no particular order.
    pub fn clusters(&self) -> impl Iterator<Item = &str> {
        self.clusters.keys().map(String::as_str)
    }

    fn resolved(&self, cluster: &str) -> &Resolved {
        self.clusters.get(cluster).unwrap_or(&self.default)
    }
}

impl Default for Policy {
    /// The policy of `{}`: every default, for every cluster and route.
    fn default() -> Self {
        build::empty()
    }
}
