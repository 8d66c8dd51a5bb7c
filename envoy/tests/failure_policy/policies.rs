//! What Envoy 1.40 does after a plugin's VM traps, under each `failure_policy`, shown with the
//! `breakwater-panic` fixture (traps on `x-panic`) and one worker.

use std::time::Duration;

use breakwater_envoy::client;
use breakwater_envoy::{EnvoyConfig, FailurePolicy, Request, WasmFilter};

use crate::common::{
    get, panic_envoy, panic_wasm, reloads, start, trap, trapped, upstream, Reloads,
};
use crate::sink::Sink;

const NO_RELOAD: Reloads = Reloads {
    success: 0,
    failure: 0,
    backoff: 0,
};

#[test]
fn fail_closed_answers_503_to_every_later_request_and_never_replaces_the_vm() {
    let upstream = upstream("a");
    let envoy = panic_envoy(&upstream, FailurePolicy::FailClosed);
    let before = get(&envoy, "/before");
    assert_eq!(before.status, 200);
    assert!(before.header("x-panic-vm").is_some(), "the filter runs");

    assert_eq!(trap(&envoy).status, 503, "the trapping request fails");
    assert!(trapped(&envoy), "Envoy logged the VM's trap");
    for i in 0..3 {
        let after = get(&envoy, &format!("/after/{i}"));
        assert_eq!(
            after.status, 503,
            "the worker's VM is dead: every request fails"
        );
        assert!(after.header("x-panic-vm").is_none(), "no filter served it");
    }
    assert_eq!(
        upstream.count("GET", "/after/0") + upstream.count("GET", "/trap"),
        0,
        "FAIL_CLOSED sends nothing upstream once the VM failed"
    );
    assert_eq!(
        reloads(&envoy, "breakwater"),
        NO_RELOAD,
        "no reload is tried"
    );
}

#[test]
fn fail_open_lets_later_requests_skip_the_filter_and_never_replaces_the_vm() {
    let upstream = upstream("a");
    let envoy = panic_envoy(&upstream, FailurePolicy::FailOpen);
    assert_eq!(get(&envoy, "/before").status, 200);

    assert_eq!(
        trap(&envoy).status,
        503,
        "even under FAIL_OPEN the request whose callback trapped fails"
    );
    assert!(trapped(&envoy), "Envoy logged the VM's trap");
    assert_eq!(upstream.count("GET", "/trap"), 0);
    for i in 0..3 {
        let path = format!("/after/{i}");
        let after = get(&envoy, &path);
        assert_eq!(after.status, 200, "requests flow");
        assert!(
            after.header("x-panic-vm").is_none(),
            "but the filter no longer runs: for Breakwater, no breaker and no retries"
        );
        assert_eq!(upstream.count("GET", &path), 1);
    }
    assert_eq!(
        reloads(&envoy, "breakwater"),
        NO_RELOAD,
        "no reload is tried"
    );
}

#[test]
fn fail_reload_fails_the_trapping_request_then_a_new_vm_serves_with_shared_data_intact() {
    let upstream = upstream("a");
    // A 10 ms backoff: Envoy counts it from the failed VM's creation (at start-up), so the first
    // request after the trap reloads (the default 1 s is the next test's).
    let envoy = start(
        &EnvoyConfig::new()
            .cluster("a", upstream.addr())
            .concurrency(1)
            .filter(
                WasmFilter::new(panic_wasm())
                    .failure_policy(FailurePolicy::FailReload)
                    .reload_backoff(Duration::from_millis(10)),
            ),
    );
    let first = get(&envoy, "/before/0");
    let second = get(&envoy, "/before/1");
    let old_vm = first
        .header("x-panic-vm")
        .expect("served by the filter")
        .to_owned();
    assert_eq!(
        second.header("x-panic-vm"),
        Some(old_vm.as_str()),
        "one VM, one worker"
    );
    assert_eq!(second.header("x-panic-total"), Some("2"));

    // The backoff runs from the worker's VM creation (`last_load`), and a 10 ms base draws an
    // interval below 15 ms: on an idle machine the requests above take less than that, and a
    // request right after the trap would still be held back (503, `vm_reload_backoff`).
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(
        trap(&envoy).status,
        503,
        "the trapping request itself fails"
    );
    assert!(trapped(&envoy), "Envoy logged the VM's trap");
    assert_eq!(upstream.count("GET", "/trap"), 0);

    let after = get(&envoy, "/after");
    assert_eq!(after.status, 200, "the next request is served");
    let new_vm = after
        .header("x-panic-vm")
        .expect("by the filter, in a new VM");
    assert_ne!(new_vm, old_vm, "a new VM");
    assert_eq!(
        after.header("x-panic-served"),
        Some("1"),
        "that starts from scratch"
    );
    assert_eq!(
        after.header("x-panic-total"),
        Some("3"),
        "while shared data kept the count of the VM that died"
    );
    let counts = reloads(&envoy, "breakwater");
    assert_eq!(counts.success, 1, "one reload: {counts:?}");
    assert_eq!(counts.failure, 0, "{counts:?}");
}

#[test]
fn under_fail_reload_requests_get_503_until_the_backoff_allows_a_new_vm() {
    // Envoy's default backoff: a reload at most every 1 s (jittered upwards), counted from the
    // failed VM's creation. Requests in between get the same 503 as under FAIL_CLOSED.
    let upstream = upstream("a");
    let envoy = panic_envoy(&upstream, FailurePolicy::FailReload);
    assert_eq!(get(&envoy, "/before").status, 200);
    assert_eq!(trap(&envoy).status, 503);

    let mut refused = 0;
    let mut recovered = None;
    envoy
        .wait_for("a new VM to serve after the backoff", || {
            let response = get(&envoy, "/after");
            if response.status == 200 {
                recovered = Some(response);
                return Ok(true);
            }
            assert_eq!(
                response.status, 503,
                "until the reload, requests fail closed"
            );
            assert!(response.header("x-panic-vm").is_none());
            refused += 1;
            Ok(false)
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let recovered = recovered.expect("recovered");
    assert!(
        recovered.header("x-panic-vm").is_some(),
        "the filter runs again"
    );
    let counts = reloads(&envoy, "breakwater");
    assert_eq!(counts.success, 1, "{counts:?}");
    assert_eq!(
        counts.backoff, refused,
        "each request refused after the trap was a reload held back by the backoff: {counts:?}"
    );
    assert_eq!(
        upstream.count("GET", "/after"),
        1,
        "only the served request went upstream"
    );
}

#[test]
fn a_one_millisecond_reload_backoff_crashes_envoy_1_40_at_the_first_reload() {
    // Envoy picks each reload interval as `base + random % (base / 2)` in whole milliseconds
    // (`JitteredLowerBoundBackOffStrategy`), and a 1 ms base divides by zero: a release build
    // only asserts `base > 1` in debug. Operators must keep `reload_config.backoff.base_interval`
    // at 2 ms or more (examples/failure-policy.md).
    let upstream = upstream("a");
    let envoy = start(
        &EnvoyConfig::new()
            .cluster("a", upstream.addr())
            .concurrency(1)
            .filter(
                WasmFilter::new(panic_wasm())
                    .failure_policy(FailurePolicy::FailReload)
                    .reload_backoff(Duration::from_millis(1)),
            ),
    );
    assert_eq!(
        get(&envoy, "/before").status,
        200,
        "Envoy accepts the config"
    );
    assert_eq!(trap(&envoy).status, 503);
    assert!(
        envoy.get("/after").is_err(),
        "the request that would reload the VM gets no response"
    );
    envoy
        .wait_for("Envoy's crash report", || {
            Ok(envoy.log().contains("Caught Floating point exception"))
        })
        .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn a_request_in_flight_on_the_vm_that_traps_fails_under_every_policy() {
    // Even FAIL_OPEN does not let a stream that the failed VM had already seen go on unfiltered:
    // its next callback (here, the upstream's response headers) meets the failed VM and Envoy
    // answers 503 instead of the upstream's response.
    for policy in [
        FailurePolicy::FailClosed,
        FailurePolicy::FailOpen,
        FailurePolicy::FailReload,
    ] {
        let sink = Sink::start();
        let envoy = start(
            &EnvoyConfig::new()
                .cluster("a", sink.addr())
                .concurrency(1)
                .filter(WasmFilter::new(panic_wasm()).failure_policy(policy)),
        );
        let listener = envoy.listener();
        let in_flight =
            std::thread::spawn(move || client::send(listener, &Request::get("/in-flight")));
        envoy
            .wait_for("the request to reach the upstream", || {
                Ok(sink.received() == 1)
            })
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(trap(&envoy).status, 503, "{policy:?}");
        sink.release();
        let response = in_flight
            .join()
            .expect("the client thread")
            .unwrap_or_else(|e| panic!("{policy:?}: the request in flight gets a response: {e}"));
        assert_eq!(
            response.status, 503,
            "{policy:?}: the upstream answered 200, but the VM that saw the request had failed"
        );
    }
}

#[test]
fn under_fail_closed_an_accepted_config_update_brings_up_a_new_vm() {
    // The way out of FAIL_CLOSED (and FAIL_OPEN) without a restart: any accepted change of the
    // filter's config (here by ECDS) builds new VMs, which see the same shared data.
    let upstream = upstream("a");
    let envoy = start(
        &EnvoyConfig::new()
            .cluster("a", upstream.addr())
            .concurrency(1)
            .ecds()
            .filter(WasmFilter::new(panic_wasm()).failure_policy(FailurePolicy::FailClosed)),
    );
    let old_vm = get(&envoy, "/before")
        .header("x-panic-vm")
        .expect("the filter runs")
        .to_owned();
    assert_eq!(trap(&envoy).status, 503);
    assert_eq!(
        get(&envoy, "/failed").status,
        503,
        "the worker's VM is dead"
    );

    let outcome = envoy
        .update_filter_configuration(r#"{"version": 2}"#, Some("2"))
        .unwrap_or_else(|e| panic!("the update is written: {e}"));
    assert_eq!(outcome, breakwater_envoy::EcdsOutcome::Accepted);
    let after = get(&envoy, "/after");
    assert_eq!(after.status, 200, "a new VM serves");
    assert_ne!(after.header("x-panic-vm"), Some(old_vm.as_str()));
    assert_eq!(
        after.header("x-panic-total"),
        Some("2"),
        "and counts on from the shared data of the VM that failed"
    );
    assert_eq!(
        reloads(&envoy, "breakwater").success,
        0,
        "not a FAIL_RELOAD reload"
    );
}
