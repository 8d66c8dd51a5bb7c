//! Breakwater: a circuit breaker and jittered retries for Envoy, as a proxy-wasm filter.
//!
//! The crate has two halves:
//! - [`policy`] and [`core`] are pure Rust: the policy JSON, the breaker state machine, backoff,
//!   outcome classification, the retry budget and their shared-data encodings. They import nothing
//!   from `proxy_wasm`; time and randomness are arguments, so they are tested natively.
//! - `filter` is the thin glue that runs inside Envoy: it reads the host clock and properties,
//!   keeps state in shared data and turns core events into logs and metrics. It is only compiled
//!   for `wasm32`.

pub mod core;
pub mod policy;

#[cfg(target_arch = "wasm32")]
mod filter;
