//! The filter's contexts as Envoy drives them: root contexts through the plugin lifecycle
//! ([`lifecycle`]), HTTP streams ([`stream`]), dispatched calls ([`calls`]), and the actions
//! deferred to after each VM call ([`deferred`]).
//!
//! # Why one module
//! Streams and root contexts call each other, as in Envoy: every callback ends by running the
//! actions it deferred, which may move a stream or delete a root (`proxy_done`); a stream's end
//! shuts down a superseded root once it has no stream left; a root's shutdown runs callbacks
//! whose deferred actions move streams again. That recursion stays inside this module; what sits
//! above it (the engine, the host functions, the world) only starts it, and what sits below (the
//! VMs, the world's data) knows nothing of it.

pub mod calls;
mod deferred;
pub mod lifecycle;
pub mod stream;

pub(crate) use deferred::drain;
