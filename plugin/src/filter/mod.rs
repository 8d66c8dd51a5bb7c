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
//! # Layers
//! Each module uses only the layers below its own and, in its layer, the modules named before it
//! (none imports one above it, so there is no cycle among them):
//! 1. **Host and bookkeeping**: reads from the host ([`host`]: clock, properties, header maps),
//!    what the filter writes to it ([`outbound`]), [`shared`] data, [`metrics`], the worker's byte
//!    budget ([`memory`]), rate-limited [`logs`], and the test-only `trap`.
//! 2. **Configuration and plain data**: a validated [`config`] and what it found of each cluster,
//!    a request's [`copy`], and breaker [`events`] turned into logs and metrics.
//! 3. **One request**: its [`exchange`] (admission, attempts, copy), what the filter sends and
//!    holds ([`reply`]: the fallback, a retry's headers, a retry's response to relay), gRPC
//!    outcomes and fallback ([`grpc`]), and the retry [`queue`] of jobs that wait or fly.
//! 4. **The worker** ([`worker`]): the container of what outlives a callback (metrics ids,
//!    randomness, the budget's batches, held successes, the retry queue, relays), with its
//!    bookkeeping (budget writes, breaker observations).
//! 5. **Acting with the worker**: a root's [`timer`] (its retries and the worker's flush),
//!    [`judge`] (an attempt's end: the breaker's report, the retry's plan and budget), and
//!    [`relay`] (a retried request's final response, written into the held response's place).
//! 6. **Retries** ([`retries`]): what a retry does when it is due, answered, or cancelled.
//! 7. **Contexts**: the [`http`] stream and, on top, the [`root`] context that creates streams
//!    and ticks for their retries.
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
