//! Shared pieces of the fuzz targets: generators that turn fuzzer bytes into policies (as JSON
//! text for the parser, or as validated values for the core), and the invariants every target
//! checks.
//!
//! # Why generators as well as raw bytes
//! Raw bytes exercise the parser's error paths well, but rarely get past the JSON syntax into
//! the validator's rules. [`policy_json`] writes policy-shaped JSON from the fuzzer's choices
//! (every field of POLICY.md, mostly valid values, sometimes a wrong type, `null`, an edge value
//! or an unknown field), so the fuzzer spends its time on the rules. [`breaker_policy`] and
//! [`budget_policy`] build validated policies directly, inside the bounds of
//! `breakwater::policy::bounds`, because the core only ever sees policies that passed
//! validation.

pub mod breaker_bytes;
pub mod checks;
pub mod policy_json;
pub mod policy_values;

pub use policy_json::policy_json;
pub use policy_values::{breaker_policy, budget_policy};
