//! Operator tooling for Breakwater, behind the `breakwater-cli` binary (see `main.rs`):
//!
//! - [`validate`]: policies and WasmPlugin manifests, checked by the filter's own parser.
//! - [`envoy_config`]: Envoy configs: Breakwater's place in the filter chain, its policy, and the
//!   route features its retries cannot follow.
//! - [`schema`]: the policy's JSON Schema, generated from the raw policy types.
//! - [`oci`]: the OCI image Istio pulls, written as an OCI image layout, and read back.
//! - [`pin`]: the example manifests' sha256 pins, kept equal to the current build.
//! - [`istio`]: WasmPlugin manifests read the way Istio reads them.
//! - [`dashboard`]: the Grafana dashboard's queries taken apart, for its test.

pub mod dashboard;
pub mod envoy_config;
pub mod istio;
pub mod oci;
pub mod paths;
pub mod pin;
pub mod schema;
pub mod validate;
pub mod versions;
