//! Scripted upstream clusters, in three parts:
//! - [`script`]: the language a test scripts an upstream's answers in ([`Reply`],
//!   [`Sequence`], a closure of the [`UpstreamRequest`]);
//! - [`attempt`]: what the harness records of each request that reached an upstream
//!   ([`Attempt`]);
//! - [`envoy`]: Envoy's failure model, how Envoy turns what the upstream did into the reply, the
//!   flags and the details the filter and the client see.
//!
//! They are apart because they change for different reasons: the language grows with what tests
//! need to say, the record with what they need to check, and the failure model only when Envoy's
//! behaviour (measured on a real Envoy) says so.

pub mod attempt;
pub mod envoy;
pub mod script;

pub use attempt::Attempt;
pub(crate) use attempt::Attempts;
pub use envoy::UPSTREAM_SERVICE_TIME;
pub(crate) use envoy::{upstream_message, UpstreamFailure};
pub use script::{
    AttemptKind, Reply, Sequence, UpstreamRequest, UpstreamScript, MID_BODY_DEFAULT_LEN,
};
pub(crate) use script::{Cut, ReplyKind};
