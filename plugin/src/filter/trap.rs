//! Test-only: a trap on demand, compiled in only with the `test-trap` cargo feature.
//!
//! # Why
//! What Envoy does when a VM traps (its `failure_policy`, a reload that must find the breakers in
//! shared data, the clients held for a retry when their VM dies) can only be shown with a filter
//! that traps. Breakwater is written never to trap on input, and the worker's byte budget keeps
//! it from running out of memory; so the failure-policy tests build a variant of the real filter
//! that traps when a request carries [`HEADER`], and nothing else differs.
//!
//! # Never shipped
//! The feature is off by default, and the tools build it into a target directory of its own, so
//! the module that is packaged and pinned has none of this code (the same bytes as without it).
//! A VM of the variant says what it is in Envoy's log when it loads its policy.

use proxy_wasm::hostcalls;
use proxy_wasm::types::MapType;

/// The request header that traps the VM: any value. Not an `x-breakwater-` name, which the
/// filter removes from requests.
pub const HEADER: &str = "x-test-trap";

/// Traps the VM if the request carries [`HEADER`]; called first in `on_http_request_headers`.
pub fn on_request_headers() {
    if matches!(
        hostcalls::get_map_value_bytes(MapType::HttpRequestHeaders, HEADER),
        Ok(Some(_))
    ) {
        // The `unreachable` instruction: Envoy logs `Uncaught RuntimeError: unreachable`, as for
        // a panic under `panic = "abort"`.
        core::arch::wasm32::unreachable();
    }
}

/// Warns that this VM runs the test-only variant.
pub fn announce() {
    log::warn!(
        "breakwater: built with the test-trap feature: a request with {HEADER} traps this VM; \
         never deploy this module"
    );
}
