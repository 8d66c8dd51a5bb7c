//! The proxy-wasm glue: the only part of Breakwater that talks to the host.
//!
//! # Shape
//! Envoy runs one VM per worker thread. In each VM:
//! - a [`root::Root`] per plugin configuration parses the policy (`on_configure`), drives the
//!   worker's retry queue from its tick, dispatches retries and receives their responses;
//! - an [`http::Stream`] per client request gates it through the cluster's breaker, keeps a copy
//!   of a retry-eligible request, and judges the first attempt's response;
//! - the [`worker::Worker`] (one per VM, in a thread-local) holds what outlives a single callback:
//!   the retries waiting or in flight, the metric ids, and the batched request counts of the retry
//!   budget.
//!
//! State that all workers must agree on (the breaker, the budget) lives in shared data, read and
//! written through [`shared`] with bounded compare-and-swap loops.
//!
//! # Never panic
//! A panic traps the worker's VM and Envoy then fails every request on that worker. Nothing here
//! unwraps host results or input: headers are read as bytes, properties are decoded leniently, and
//! shared-data bytes that do not decode are replaced by a fresh state and reported.

mod config;
mod copy;
mod events;
mod exchange;
mod grpc;
mod host;
mod http;
mod judge;
mod logs;
mod memory;
mod metrics;
mod outbound;
mod queue;
mod relay;
mod reply;
mod retries;
mod root;
mod shared;
mod timer;
#[cfg(feature = "test-trap")]
mod trap;
mod worker;

use proxy_wasm::traits::RootContext;
use proxy_wasm::types::LogLevel;

proxy_wasm::main! {{
    // The host filters by its own log level as well; debug lines are off the per-request path.
    proxy_wasm::set_log_level(LogLevel::Debug);
    proxy_wasm::set_root_context(|context_id| -> Box<dyn RootContext> {
        Box::new(root::Root::new(context_id))
    });
}}
