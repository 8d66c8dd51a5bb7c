//! End-to-end tests of Breakwater itself: the current `breakwater.wasm` (built from the sources by
//! `breakwater_wasm::breakwater()`) in the real Envoy 1.40 with two workers, in front of the
//! controllable test upstream. Each test states one promise of POLICY.md and checks it where a user
//! would: at the client, at the upstream, and in Envoy's stats.
//!
//! # Rules these tests keep
//! - Both workers serve: traffic that must prove cross-worker behaviour goes over keep-alive
//!   connections whose worker is known (`common::Placed` opens them one at a time and reads the
//!   per-worker listener stats), held open together and used in parallel.
//! - Nothing depends on how fast the machine is: waits poll with generous deadlines, an upstream
//!   that must be caught mid-request is held (`Upstream::hold`), never delayed, and no assertion
//!   is about elapsed time. Breaker timeouts are short (1–2 s) to keep the suite fast.

mod common;

mod breaker;
mod breaker_with_retries;
mod http2;
mod metrics;
mod policy_updates;
mod retries;
mod retry_failures;
