//! The resolved policy table: every combination of scopes a request can meet merged and checked
//! once, when the policy is parsed, so that a request only looks its entry up.
//!
//! # Layout
//!
//! One row per combination of cluster scopes, one column per route the policy names plus column
//! 0 for every other route (no route layer). The rows:
//!
//! - row 0: `default` alone, for every cluster the policy names nowhere;
//! - for each host of `services`, one row per (port, subset) pair its keys name, "any other"
//!   included: the `services` entries that such a cluster matches, merged least specific first;
//! - one row per `clusters` entry, merged over the `services` entries its name matches.
//!
//! A combination that repeats (a host written without any port) shares its row.
//!
//! # Lookup
//!
//! An exact `clusters` name wins; otherwise the cluster name is read as Istio's
//! (`istio::classify`, without allocating) and an `outbound|PORT|SUBSET|HOST` name finds its
//! host's row by its port and subset; a special cluster gets no breaker and no retries unless
//! `special_clusters` is `"guard"`; anything else gets row 0. At most two hashes of a name and
//! two short scans: no cache is needed, and none is kept.

use super::build;
use super::istio::{classify, ClusterKind};
use super::names::NameMap;
use super::problem::{PolicyErrors, Problem};
use super::types::{BreakerPolicy, Effective, SpecialClusters};

/// The resolved policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Cluster name (exact) → row.
    pub(crate) clusters: NameMap,
    /// Route name → column (1..); column 0 is for the routes the policy does not name.
    pub(crate) routes: NameMap,
    /// The hosts of `services`, with their rows.
    pub(crate) hosts: Hosts,
    /// rows × (routes + 1) effective policies, row by row.
    pub(crate) table: Vec<Effective>,
    /// Row 0, column 0 again: what a lookup returns should the table ever be short.
    pub(crate) default: Effective,
    /// `max_worker_buffer`: bytes each worker may hold for retries (request copies and retried
    /// responses).
    pub(crate) worker_buffer: u64,
    /// `special_clusters`.
    pub(crate) special: SpecialClusters,
    /// No breaker, no retries: what a bypassed special cluster gets.
    pub(crate) bypass: Effective,
    /// `state_scope`, if written.
    pub(crate) state_scope: Option<String>,
}

/// The hosts that `services` names, each with the rows of its (port, subset) pairs.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Hosts {
    /// Host → index in `list`.
    index: NameMap,
    list: Vec<HostRows>,
}

#[derive(Debug, Clone, PartialEq)]
struct HostRows {
    /// The ports its keys name; port `i` (from 1) is at `i - 1`, 0 is any other.
    ports: Vec<u16>,
    /// The subsets its keys name, numbered the same way.
    subsets: Vec<String>,
    /// (ports + 1) × (subsets + 1) rows, port by port.
    rows: Vec<usize>,
}

impl Hosts {
    /// Adds a host's rows, `rows[port * (subsets + 1) + subset]`.
    pub(crate) fn add(
        &mut self,
        host: &str,
        ports: Vec<u16>,
        subsets: Vec<String>,
        rows: Vec<usize>,
    ) {
        self.index.insert(host.to_owned(), self.list.len());
        self.list.push(HostRows {
            ports,
            subsets,
            rows,
        });
    }

    /// The row of a service cluster; `None` when no `services` key names its host.
    fn row(&self, host: &str, port: u16, subset: &str) -> Option<usize> {
        if self.list.is_empty() {
            return None;
        }
        let h = self.list.get(*self.index.get(host)?)?;
        let port = h.ports.iter().position(|p| *p == port).map_or(0, |i| i + 1);
        let subset = h
            .subsets
            .iter()
            .position(|s| s == subset)
            .map_or(0, |i| i + 1);
        let i = port * (h.subsets.len() + 1) + subset;
        h.rows.get(i).copied()
    }
}

/// Where a request's effective policy is in the table of one [`Policy`] (see
/// [`Policy::locate`]); `None`: a bypassed special cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry(Option<(usize, usize)>);

/// A cluster's row in the table of one [`Policy`] (see [`Policy::row_of`]); `None`: a bypassed
/// special cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row(Option<usize>);

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

    /// The effective policy for a request to `cluster` (Envoy's `xds.cluster_name`) on `route`
    /// (`xds.route_name`): `default`, merged with the `services` keys an Istio cluster name
    /// matches (least specific first), then `clusters.<cluster>`, then `routes.<route>`. A
    /// special Istio cluster that the policy does not name gets neither breaker nor retries
    /// unless `special_clusters` is `"guard"`. Cheap: no allocation, no merging at request time.
    pub fn lookup(&self, cluster: &str, route: &str) -> &Effective {
        self.at(self.locate(cluster, route))
    }

    /// Where [`Policy::lookup`] finds the entry of `cluster` and `route`: a request locates its
    /// entry once and reads it with [`Policy::at`] on every later callback, without hashing the
    /// names again.
    pub fn locate(&self, cluster: &str, route: &str) -> Entry {
        self.locate_in(self.row_of(cluster), route)
    }

    /// The row of `cluster`'s entries, which every route to it shares: what a request finds
    /// through its cluster alone, worth keeping per cluster ([`Policy::locate_in`] then finds
    /// the route's entry in it).
    pub fn row_of(&self, cluster: &str) -> Row {
        Row(self.row(cluster))
    }

    /// [`Policy::locate`] for a cluster whose row is known.
    pub fn locate_in(&self, row: Row, route: &str) -> Entry {
        match row.0 {
            Some(row) => Entry(Some((row, self.column(route)))),
            None => Entry(None),
        }
    }

    /// The entry [`Policy::locate`] found (in this policy).
    pub fn at(&self, entry: Entry) -> &Effective {
        match entry.0 {
            Some((row, column)) => self.entry(row, column),
            None => &self.bypass,
        }
    }

    /// The breaker policy of a cluster (None when off), ignoring routes.
    pub fn breaker_for(&self, cluster: &str) -> Option<&BreakerPolicy> {
        self.entry(self.row(cluster)?, 0).breaker.as_ref()
    }

    /// Bytes each worker may hold for retries: the copies of requests kept for a retry and the
    /// retried responses waiting to be relayed (`max_worker_buffer`).
    pub fn worker_buffer(&self) -> u64 {
        self.worker_buffer
    }

    /// `state_scope`: the name the shared-data keys are made under, if the policy sets one.
    pub fn state_scope(&self) -> Option<&str> {
        self.state_scope.as_deref()
    }

    /// Whether any route has a policy of its own: without, the route's name is not needed (and
    /// the filter does not ask Envoy for it).
    pub fn names_routes(&self) -> bool {
        !self.routes.is_empty()
    }

    /// The clusters the policy names exactly, in no particular order.
    pub fn clusters(&self) -> impl Iterator<Item = &str> {
        self.clusters.keys().map(String::as_str)
    }

    /// The row of a cluster; `None` for a special cluster that is bypassed.
    fn row(&self, cluster: &str) -> Option<usize> {
        if !self.clusters.is_empty() {
            if let Some(row) = self.clusters.get(cluster) {
                return Some(*row);
            }
        }
        match classify(cluster) {
            ClusterKind::Service { port, subset, host } => {
                Some(self.hosts.row(host, port, subset).unwrap_or(0))
            }
            ClusterKind::Special if self.special == SpecialClusters::Bypass => None,
            ClusterKind::Special | ClusterKind::Other => Some(0),
        }
    }

    fn column(&self, route: &str) -> usize {
        if self.routes.is_empty() {
            return 0;
        }
        self.routes.get(route).copied().unwrap_or(0)
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
