//! Behaviours of the real filter that the `filter_exchange` target found wrong, kept as
//! specifications. They run the current `breakwater.wasm` in the harness, like the target:
//!
//! ```sh
//! cargo test --manifest-path fuzz/Cargo.toml -p breakwater-fuzz-filter
//! ```

use breakwater_host_tests::{Reply, World};

fn world(policy: &str) -> World {
    World::builder()
        .breakwater()
        .canary(false)
        .main_thread_vm(false)
        .configuration(policy)
        .build()
        .unwrap_or_else(|e| panic!("the filter starts: {e}"))
}

#[test]
fn an_upstream_cannot_claim_retries_or_a_fallback_that_did_not_happen() {
    // Found by `filter_exchange`: a response that needed no retry reached the client with the
    // upstream's own `x-breakwater-attempts` (an upstream behind another Breakwater, or one
    // that imitates it), so the client, and the access log's `%RESP(X-BREAKWATER-ATTEMPTS)%`,
    // counted retries that never happened. POLICY.md gives `x-breakwater-attempts` to responses
    // that needed retries, and `x-breakwater-breaker` to fallbacks; the filter already strips
    // `x-breakwater-*` from the responses it relays after a retry, but passes a first attempt's
    // response through untouched.
    let mut w = world("{}");
    w.upstream(
        "a",
        Reply::ok()
            .header("x-breakwater-attempts", "7")
            .header("x-breakwater-breaker", "open"),
    );
    let s = w.request(0).path("/").cluster("a").send();
    w.run_until_idle();
    let response = w.response(s).expect("a response");
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("x-breakwater-attempts"),
        None,
        "one attempt: no attempt count, and not the upstream's"
    );
    assert_eq!(
        response.header("x-breakwater-breaker"),
        None,
        "not a fallback: no breaker header, and not the upstream's"
    );
}
