//! The real `breakwater.wasm` under FAIL_RELOAD: its VM runs out of memory and traps, Envoy
//! replaces it, and the new VM finds the open breaker in shared data.

use std::sync::Arc;
use std::time::{Duration, Instant};

use breakwater_envoy::{EnvoyConfig, FailurePolicy, Response, Route, WasmFilter};
use serde_json::json;

use crate::common::{get, reloads, start, trapped, upstream};
use crate::flood::{put, Sink};

/// Flood requests: more than 1 GiB / 16 MiB in flight at once.
const FLOOD: usize = 80;
/// Just over 8 MiB: the copy's buffer doubles to 16 MiB, twice the bytes sent.
const BODY: usize = 8 * 1024 * 1024 + 64 * 1024;
/// A bound on how long the flood may take to exhaust the VM before the test gives up.
const FLOOD_LIMIT: Duration = Duration::from_secs(180);

fn breakwater() -> WasmFilter {
    let policy = json!({
        "default": { "circuit_breaker": null, "retry": null },
        "clusters": {
            // Opens after 3 failures and stays open far longer than the test.
            "flaky": { "circuit_breaker": { "failure_threshold": 3, "timeout": "1h" } },
            // Retry-eligible PUTs with bodies up to the largest copy the policy allows.
            "bulk": { "retry": { "max_attempts": 2, "max_request_body": 16_777_216 } }
        }
    });
    let wasm =
        breakwater_wasm::breakwater().unwrap_or_else(|e| panic!("breakwater.wasm must build: {e}"));
    WasmFilter::new(wasm)
        .configuration(&policy.to_string())
        .failure_policy(FailurePolicy::FailReload)
}

fn is_fallback(r: &Response) -> bool {
    r.status == 503 && r.header("x-breakwater-breaker") == Some("open")
}

#[test]
fn an_open_breaker_is_still_open_in_the_vm_that_replaces_one_that_ran_out_of_memory() {
    let flaky = upstream("flaky");
    flaky.respond_with(503);
    let sink = Sink::start();
    let envoy = start(
        &EnvoyConfig::new()
            .cluster("flaky", flaky.addr())
            .cluster("bulk", sink.addr())
            // No route timeout: the held requests keep their copies however slow the flood.
            .route(Route::prefix("bulk", "/bulk", "bulk").timeout(Duration::ZERO))
            .route(Route::prefix("flaky", "/", "flaky"))
            .concurrency(1)
            .filter(breakwater()),
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

    // 2. The flood: the worker's VM runs out of memory and traps.
    let body = Arc::new(vec![b'x'; BODY]);
    let listener = envoy.listener();
    let flood: Vec<_> = (0..FLOOD)
        .map(|i| put(listener, format!("/bulk/{i}"), Arc::clone(&body)))
        .collect();
    let started = Instant::now();
    while !trapped(&envoy) && sink.received() < FLOOD {
        assert!(
            started.elapsed() < FLOOD_LIMIT,
            "the flood neither trapped the VM nor got through within {FLOOD_LIMIT:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    sink.release();
    let statuses: Vec<Option<u16>> = flood
        .into_iter()
        .map(|t| t.join().expect("a flood thread"))
        .collect();
    assert!(
        trapped(&envoy),
        "{FLOOD} requests of {BODY} bytes held at once must exhaust the VM's 1 GiB: {statuses:?}"
    );
    let log = envoy.log();
    assert!(
        log.contains("memory allocation of") && log.contains("proxy_on_request_body failed"),
        "the filter itself ran out of memory while copying a request body"
    );
    assert!(
        statuses.contains(&Some(503)),
        "requests in flight on the failed VM fail closed: {statuses:?}"
    );

    // 3. The next requests: a new VM (FAIL_RELOAD, once the backoff allows), and the breaker
    //    it reads from shared data is still open.
    let mut answer = get(&envoy, "/flaky");
    let deadline = Instant::now() + Duration::from_secs(20);
    while reloads(&envoy, "breakwater").success == 0 {
        assert!(Instant::now() < deadline, "Envoy never reloaded the VM");
        assert_eq!(answer.status, 503, "until the reload, requests fail closed");
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
