//! The resolved policy table: every (cluster, route) combination merged and checked once, when
//! the policy is parsed, so that a request only looks its entry up.
//!
//! # Layout
//!
//! One row per cluster the policy names plus row 0 for every other cluster (`default` alone);
//! one column per route it names plus column 0 for every other route (no route layer). A lookup
//! hashes two names and indexes a flat vector: no allocation, no merging.

use super::build;
use super::names::NameMap;
use super::problem::{PolicyErrors, Problem};
use super::types::{BreakerPolicy, Effective};

/// The resolved policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Cluster name → row (1..); row 0 is for the clusters the policy does not name.
    pub(crate) clusters: NameMap,
    /// Route name → column (1..); column 0 is for the routes the policy does not name.
    pub(crate) routes: NameMap,
    /// (clusters + 1) × (routes + 1) effective policies, row by row.
    pub(crate) table: Vec<Effective>,
    /// Row 0, column 0 again: what a lookup returns should the table ever be short.
    pub(crate) default: Effective,
    /// `max_worker_buffer`: bytes each worker may hold for retries (request copies and retried
    /// responses).
    pub(crate) worker_buffer: u64,
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
        self.entry(
            self.row(cluster),
            self.routes.get(route).copied().unwrap_or(0),
        )
    }

    /// The breaker policy of a cluster (None when off), ignoring routes.
    pub fn breaker_for(&self, cluster: &str) -> Option<&BreakerPolicy> {
        self.entry(self.row(cluster), 0).breaker.as_ref()
    }

    /// Bytes each worker may hold for retries: the copies of requests kept for a retry and the
    /// retried responses waiting to be relayed (`max_worker_buffer`).
    pub fn worker_buffer(&self) -> u64 {
        self.worker_buffer
    }

    /// Whether any route has a policy of its own: without, the route's name is not needed (and
    /// the filter does not ask Envoy for it).
    pub fn names_routes(&self) -> bool {
        !self.routes.is_empty()
    }

    /// The clusters the policy names, in no particular order.
    pub fn clusters(&self) -> impl Iterator<Item = &str> {
        self.clusters.keys().map(String::as_str)
    }

    fn row(&self, cluster: &str) -> usize {
        self.clusters.get(cluster).copied().unwrap_or(0)
    }

    fn entry(&self, row: usize, column: usize) -> &Effective {
        let width = self.routes.len() + 1;
        let index = row.checked_mul(width).and_then(|i| i.checked_add(column));
        index
            .and_then(|i| self.table.get(i))
            .unwrap_or(&self.default)
    }
}

impl Default for Policy {
    /// The policy of `{}`: every default, for every cluster and route.
    fn default() -> Self {
        build::empty()
    }
}
