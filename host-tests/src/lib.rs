//! `breakwater-host-tests`: a deterministic stand-in for Envoy that runs a compiled proxy-wasm
//! module (ABI 0.2.1) the way Envoy 1.40 does, in virtual time, so every behaviour of a filter,
//! including races between worker threads and the timing of retries, is tested in
//! milliseconds.
//!
//! # A tour
//! ```
//! use breakwater_host_tests::{ms, Reply, World};
//!
//! let mut world = World::builder()
//!     .fixture() // or .breakwater(), .package("crate"), .module(path)
//!     .workers(4)
//!     .configuration("tick 100")
//!     .seed(7)
//!     .build()
//!     .expect("the plugin starts");
//! world.upstream("payments", Reply::status(503).after(ms(20)));
//! let s = world.request(2).path("/pay").cluster("payments").send();
//! world.advance(ms(50));
//! let response = world.response(s).expect("answered");
//! assert_eq!(response.status, 503);
//! assert_eq!(world.upstream_attempts("payments").len(), 1);
//! assert_eq!(world.tick_period(2), Some(ms(100)));
//! ```
//!
//! # What it models, and from where
//! The sources are proxy-wasm-cpp-host (`src/exports.cc`, `src/context.cc`, `src/wasm.cc`,
//! `src/shared_data.cc`, `src/pairs_util.cc`) and Envoy (`source/extensions/common/wasm/`,
//! `source/common/http/filter_manager.cc`, `source/common/router/router.cc`,
//! `envoy/stream_info/stream_info.h`). Each module's docs state its rules:
//! - the plugin lifecycle, the configuration canary, reconfiguration and ticks: [`lifecycle`];
//! - a stream's callbacks, pauses, local replies, and its end: [`stream`]; what a local reply
//!   looks like (gRPC, `HEAD`, `local_reply_config`): [`local_reply`]; a request body that
//!   streams in over time: [`stream::feed`]; what reaches the upstream, and when it answers:
//!   [`stream::forward`];
//! - scripted upstreams and how their failures reach the filter: [`upstream`] and [`calls`];
//!   clusters the router cannot send to (missing, no healthy host): [`clusters`];
//! - header maps and which map is reachable when: [`abi`]; the pairs format: [`pairs`];
//! - shared data (compare-and-swap) and queues, one namespace per VM id: [`shared`]; more
//!   than one plugin, and what their VM ids share: [`plugins`]; metrics: [`metrics`];
//! - properties: [`props`]; the virtual clock: [`clock`];
//! - ordering of simultaneous work and preemption at shared state: [`Interleaving`];
//! - faults a test injects (contention, refused dispatches): [`faults`].
//!
//! A module trap (an SDK panic included) fails the operation that ran it with a [`Failure`]
//! that shows the panic message, the log and the last scheduling steps. Fuel metering gives
//! the filter's wasm work per callback and per request ([`World::fuel`]); every host call is
//! counted by import and callback too ([`World::host_calls`]).
//!
//! # Layers
//! Each module uses only the ones below it (no module imports one above it, so there is no
//! cycle among them):
//! 1. **Data**: plain types and their bookkeeping, no behaviour: [`HeaderMap`] and messages,
//!    the observations a test reads ([`StreamState`], [`Response`], [`flags`], ...), [`pairs`],
//!    [`clock`], [`metrics`], [`shared`] data and queues, scheduled events, the
//!    [`Interleaving`], proxy-wasm statuses, errors, compiled modules, the [`upstream`] script
//!    language, attempt record and failure model, [`clusters`], [`faults`], [`local_reply`],
//!    host-call counts, [`plugins`]' descriptions; on top of them the world's state, which holds
//!    them all and imports nothing that acts, and the [`props`] read from it.
//! 2. **VMs**: a wasmtime instance, its host state (contexts, the callback in progress, deferred
//!    actions), and the core that keeps the world's state beside the slots holding the VMs: one
//!    module, because those types hold each other.
//! 3. **Contexts**: what Envoy does with the filter's contexts: [`stream`]s, root contexts
//!    through the [`lifecycle`], dispatched [`calls`], and the actions deferred to after each VM
//!    call. They call each other (a deferred action moves a stream, a stream's end shuts a root
//!    down), so they are one module.
//! 4. **Engine**: the event loop in virtual time, and the preemption points.
//! 5. **Host functions** ([`abi`]): the imports the module calls. They sit above the engine and
//!    the contexts because they drive them: a host call that touches shared state is a
//!    preemption point that may run another VM first, and `proxy_http_call` starts a call.
//! 6. **World**: the API a test drives: [`World`], [`WorldBuilder`], [`RequestBuilder`], what a
//!    test reads back, and the world's side of faults and plugins.
//!
//! # Not modeled
//! gRPC calls (they trap by name), foreign functions (`NotFound`), network filters, HTTP/2
//! specifics, Envoy's own retries and per-try timeouts (the filter's retries are what is under
//! test), response headers Envoy adds after the filter chain (`date`, `server`), the router's
//! rarer local replies (maintenance mode, overload, invalid `x-envoy-*` headers), plugins that
//! share one VM per thread because their VM keys match ([`plugins`]). `local_reply_config` is a
//! hook a test writes ([`LocalReplyEdit`]), not Envoy's mapper and format configuration.

// The layers, from the bottom (see "Layers" above).
// 1. Data.
pub mod clock;
pub mod clusters;
mod error;
mod events;
pub mod faults;
mod headers;
mod host_calls;
mod interleave;
pub mod local_reply;
pub mod metrics;
mod module;
mod observe;
pub mod pairs;
pub mod plugins;
pub mod props;
pub mod shared;
mod state;
mod status;
pub mod upstream;

// 2. VMs.
mod vm;

// 3. Contexts.
mod contexts;

// 4. Engine.
mod engine;

// 5. Host functions.
pub mod abi;

// 6. World.
mod world;

pub use contexts::{calls, lifecycle, stream};
pub use error::{Failure, HarnessError};
pub use faults::{CallRefusal, ContendedWrite, Contention, LateAction, Refusal, RefusedCall};
pub use headers::HeaderMap;
pub use host_calls::HostCallReport;
pub use interleave::Interleaving;
pub use local_reply::LocalReplyEdit;
pub use metrics::{MetricKind, MetricValue};
pub use observe::{
    flags, Callback, LogLevel, LogLine, PluginId, Response, Source, StreamId, StreamState, VmId,
};
pub use plugins::Plugin;
pub use state::{CallbackFuel, FuelReport};
pub use upstream::{
    Attempt, AttemptKind, Reply, Sequence, UpstreamRequest, UpstreamScript, MID_BODY_DEFAULT_LEN,
};
pub use world::{RequestBuilder, SharedValue, World, WorldBuilder, DEFAULT_ROUTE_TIMEOUT};

/// `Duration::from_millis`, for readable scenarios.
pub const fn ms(millis: u64) -> std::time::Duration {
    std::time::Duration::from_millis(millis)
}
