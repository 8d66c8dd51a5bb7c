//! The policy: the plugin JSON of `POLICY.md`, parsed, validated and resolved per cluster and
//! route.
//!
//! # Steps
//!
//! 1. The text is parsed into a JSON tree that keeps key order and repeated keys (`json`).
//! 2. The tree is read in one pass, scope by scope (`default`, `services.<key>`,
//!    `clusters.<name>`, `routes.<name>`), into layers of the values each scope sets, checked (`read*`): the JSON
//!    type of every field (unknown fields, repeated fields and wrong types included) and its
//!    rule, every problem reported with the scope where the value was written. The [`raw`]
//!    types describe the same JSON for serde and the schema; a property test holds the reader
//!    to exactly the shapes they accept. Each field of `circuit_breaker` and `retry` is
//!    declared once, in one table (`fields`): its raw type, its checked type, its default, its
//!    check with its bounds, and its reader; the raw types (and the schema's rules), the layers,
//!    their merge, the defaults and the reader's dispatch are made from it.
//! 3. Layers merge `default` → the `services` keys that an Istio cluster name matches (`HOST`,
//!    `HOST:PORT`, `HOST#SUBSET`, `HOST:PORT#SUBSET`, see `istio`) → `clusters.<name>` →
//!    `routes.<name>` like a JSON merge patch (`layer`); the defaults (`fields`) fill the rest; the rules that relate
//!    fields are checked on every merged combination (`resolve`).
//! 4. The result is a table with one entry per combination of scopes a request can meet
//!    ([`Policy`]), so a request only looks its entry up; Istio's special clusters
//!    (`PassthroughCluster`, ...) get neither breaker nor retries unless `special_clusters` says
//!    `"guard"` or `clusters` names them.
//!
//! Everything here ends up in the filter's `.wasm`, which must stay small: hence one shared
//! reader per kind of value, no sorting, and one map type hashed with FNV (see `names`).
//!
//! # Breaker settings are per cluster
//!
//! One breaker serves every route to a cluster (`POLICY.md` "Scopes and merging"), so retry
//! settings may differ per route but breaker settings may not: the breaker of a cluster resolves
//! from `default`, `services` and `clusters.<name>` only, and [`Policy::breaker_for`] ignores routes. A route
//! may set `"circuit_breaker": null`: that route bypasses the breaker (its requests are neither
//! gated nor counted), which [`Policy::lookup`] shows as `breaker: None`. Any other
//! `circuit_breaker` under `routes.<name>` is an error saying that breaker settings are per
//! cluster: silently ignoring it, or giving a route settings that a shared breaker cannot honour,
//! would both mislead.
//!
//! # The retry budget is per cluster
//!
//! Every route to a cluster draws on the cluster's one retry budget (shared data), so
//! `retry.budget` may be set under `default` and `clusters.<name>` only; under `routes.<name>`
//! it is an error, `null` included (`read_retry` says why: per-route windows would turn the
//! shared window into a lifetime ratio). A route may still turn `retry` off with `null`: it
//! then does not retry. So every entry of the table for one cluster that has a budget has the
//! same budget (a property test holds the parser to it).
//!
//! # `max_timeout` below a raised `timeout`
//!
//! `POLICY.md`'s own example writes `"max_timeout": "60s"` in `default` and raises `timeout` to
//! 120s for `clusters.payments`. Refusing that merge would refuse the contract's example, so a
//! `max_timeout` shorter than a `timeout` written in another scope becomes the timeout (the
//! open time does not grow) with a warning; written in the same scope it is an error.
//!
//! # Problems and warnings
//!
//! Validation reports every problem at once, one line each (see [`Problem`]); a policy with a
//! problem is refused whole. Warnings flag risky but legal values: `failure_threshold` 1 or 2,
//! `max_attempts` above 5, `per_try_timeout` longer than the breaker `timeout` (when retries
//! are on), a breaker whose every trigger is off, and the `max_timeout` case above. A rule
//! that relates fields of different scopes is reported in the most specific scope involved,
//! `routes.<r> with clusters.<c>` when only that combination breaks it.

pub mod bounds;
mod build;
pub mod defaults;
mod duration;
mod fields;
mod istio;
mod json;
mod layer;
pub(crate) mod names;
mod problem;
pub mod raw;
mod read;
mod read_breaker;
mod read_retry;
mod read_scope;
mod resolve;
mod rule;
mod suggest;
mod table;
mod types;

pub use problem::{PolicyErrors, Problem, TOP_LEVEL};
pub use rule::{Across, Rule};
pub use table::{Entry, Parsed, Policy, Row};
pub use types::*;

#[cfg(test)]
mod tests;
