//! The attempt record: what the harness keeps of every request that reached an upstream.
//!
//! Each request a cluster's script was asked about (one the filter let through, or a call it
//! dispatched) is recorded once, in order, with the [`Reply`] the script gave and whether that
//! answer reached Envoy. Tests read the record ([`crate::World::upstream_attempts`],
//! [`crate::World::attempts`]) to count retries and see what each try carried; the harness
//! itself finds an answer's attempt by its index in the record.

use super::script::{Reply, UpstreamRequest};

/// One request that reached an upstream, with what the script answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub request: UpstreamRequest,
    pub reply: Reply,
    /// Whether the answer reached Envoy; false if the client or the filter gave up first.
    pub delivered: bool,
}
