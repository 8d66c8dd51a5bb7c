//! Conformance tests of the harness itself, mostly against the `breakwater-fixture` filter: each
//! module pins one family of Envoy behaviours, with the Envoy source it comes from.

mod calls;
mod clusters;
mod common;
mod effective_context;
mod faults;
mod fuel;
mod handmade;
mod lifecycle;
mod local_replies;
mod maps;
mod metrics;
mod mid_body;
mod properties;
mod races;
mod reset_after_headers;
mod shared_data;
mod streamed_body;
mod streams;
mod ticks;
mod time_and_wasi;
mod upstream_failures;
mod vm_ids;
