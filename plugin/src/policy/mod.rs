//! The policy: the plugin JSON of `POLICY.md`, parsed, validated and resolved per cluster and
//! route.

mod types;

pub use types::*;
