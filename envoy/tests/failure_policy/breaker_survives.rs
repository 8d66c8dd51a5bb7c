//! The real `breakwater.wasm` under FAIL_RELOAD: its VM traps, Envoy replaces it, and the new VM
//! finds the open breaker in shared data.
//!
//! The filter never traps on input, nor (with its worker byte budget) for lack of memory, so the
//! test traps it on demand: it runs the module built with the test-only `test-trap` feature,
//! which traps on a request with `x-test-trap` and is otherwise the shipped filter.

use std::time::{Duration, Instant};

use breakwater_envoy::{EnvoyConfig, FailurePolicy, Response, WasmFilter};
use serde_json::json;

use crate::common::{
    breakwater_trap_wasm, get, reloads, start, trap_breakwater, trapped, upstream,
};

fn breakwater() -> WasmFilter {
    let policy = json!({
        "default": { "retry": null },
        // Opens after 3 failures and stays open far longer than the test.
        "clusters": { "flaky": { "circuit_breaker": { "failure_threshold": 3, "timeout": "1h" } } }
    });
    WasmFilter::new(breakwater_trap_wasm())
        .configuration(&policy.to_string())
        .failure_policy(FailurePolicy::FailReload)
}

fn is_fallback(r: &Response) -> bool {
    r.status == 503 && r.header("x-breakwater-breaker") == Some("open")
}

#[test]
fn an_open_breaker_is_still_open_in_the_vm_that_replaces_one_that_trapped() {
    let flaky = upstream("flaky");
    flaky.respond_with(503);
    let envoy = start(
        &EnvoyConfig::new()
            .cluster("flaky", flaky.addr())
            .concurrency(1)
            .filter(breakwater()),
    );
    assert!(
        envoy.log().contains("built with the test-trap feature"),
        "the VM says it is the test-only variant"
    );

    // 1. Three failures open the breaker of cluster `flaky`; the fourth request gets the fallback.
    for _ in 0..3 {
        assert_eq!(get(&envoy, "/flaky").status, 503, "the upstream's own 503");
    }
    let fallback = get(&envoy, "/flaky");
    assert!(is_fallback(&fallback), "the breaker opened: {fallback:?}");
    assert_eq!(
        flaky.total(),
        3,
        "the open breaker keeps requests from the upstream"
    );

    // 2. The worker's VM traps.
    let trapping = trap_breakwater(&envoy);
    assert_eq!(trapping.status, 503, "the trapping request fails");
    assert!(
        !is_fallback(&trapping),
        "Envoy's own 503 for a failed VM, not the filter's fallback: {trapping:?}"
    );
    assert!(trapped(&envoy), "Envoy logged the VM's trap");
    assert!(
        envoy
            .log()
            .contains("proxy_on_request_headers failed: Uncaught RuntimeError: unreachable"),
        "the filter trapped in its request-headers callback"
    );

    // 3. The next requests: a new VM (FAIL_RELOAD, once the backoff allows), and the breaker
    //    it reads from shared data is still open.
    let mut answer = get(&envoy, "/flaky");
    let deadline = Instant::now() + Duration::from_secs(20);
    while reloads(&envoy, "breakwater").success == 0 {
        assert!(Instant::now() < deadline, "Envoy never reloaded the VM");
        assert_eq!(answer.status, 503, "until the reload, requests fail closed");
        assert!(!is_fallback(&answer), "no filter serves them: {answer:?}");
        std::thread::sleep(Duration::from_millis(100));
        answer = get(&envoy, "/flaky");
    }
    assert!(
        is_fallback(&answer),
        "the new VM finds the breaker open in shared data: {answer:?}"
    );
    assert_eq!(
        flaky.total(),
        3,
        "no request reached the failing upstream: the breaker survived the VM"
    );
    let state = envoy
        .stats()
        .expect("stats")
        .wasm_metric("breakwater.breakwater_cluster=.=flaky;.;breaker_state");
    assert_eq!(state, Some(1), "the new VM's breaker gauge says open");
}

#[test]
fn the_shipped_module_has_no_trap() {
    let shipped =
        breakwater_wasm::breakwater().unwrap_or_else(|e| panic!("breakwater.wasm must build: {e}"));
    let has_header = |path: &std::path::Path| {
        let bytes = std::fs::read(path).expect("the module is readable");
        bytes
            .windows(b"x-test-trap".len())
            .any(|w| w == b"x-test-trap")
    };
    assert!(
        has_header(&breakwater_trap_wasm()),
        "the test-only variant names its header"
    );
    assert!(
        !has_header(&shipped),
        "the shipped module has none of the test-trap code"
    );

    let upstream = upstream("a");
    let envoy = start(
        &EnvoyConfig::new()
            .cluster("a", upstream.addr())
            .concurrency(1)
            .filter(WasmFilter::new(shipped).failure_policy(FailurePolicy::FailClosed)),
    );
    let response = trap_breakwater(&envoy);
    assert_eq!(response.status, 200, "served: {response:?}");
    assert_eq!(upstream.count("GET", "/trap"), 1);
    assert!(!trapped(&envoy), "the shipped filter ignores x-test-trap");
    assert_eq!(get(&envoy, "/after").status, 200, "and keeps serving");
}
