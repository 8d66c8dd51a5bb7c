//! Starting, readiness and stopping.

use breakwater_envoy::client::{self, Request};
use breakwater_envoy::{worker_stat, Envoy, EnvoyConfig, EnvoyError};

use crate::common::{counting, envoy_in_front_of, noop, upstream};

#[test]
fn envoy_starts_ready_with_two_workers_and_stops_cleanly_on_sigterm() {
    let upstream = upstream("a");
    let envoy = envoy_in_front_of(&upstream, noop(""));
    assert!(
        envoy.admin().is_ready(),
        "start returns once /ready answers"
    );
    assert_ne!(
        envoy.listener().port(),
        0,
        "the listener's real port is known"
    );
    let stats = envoy.stats().expect("stats");
    assert_eq!(
        stats.number("listener_manager.workers_started"),
        Some(1),
        "the workers are running"
    );
    for worker in 0..2 {
        // Each worker's watchdog stats appear when its thread registers, which can be a moment
        // after the listener is ready on every worker.
        envoy
            .wait_for(
                &format!("worker {worker} to exist (two by default)"),
                || {
                    Ok(envoy
                        .stats()?
                        .number(&format!("server.worker_{worker}.watchdog_miss"))
                        .is_some())
                },
            )
            .expect("both workers");
    }
    let stats = envoy.stats().expect("stats");
    assert!(
        stats.number("server.worker_2.watchdog_miss").is_none(),
        "and no third"
    );
    assert_eq!(envoy.get("/").expect("a response").status, 200);
    let admin = envoy.admin();
    let status = envoy.stop().expect("Envoy stops");
    assert!(
        status.success(),
        "SIGTERM ends Envoy with exit code 0: {status}"
    );
    assert!(
        client::send(admin.addr, &Request::get("/ready")).is_err(),
        "nothing answers on the admin port after the stop"
    );
}

#[test]
fn dropping_the_handle_stops_envoy() {
    let upstream = upstream("a");
    let envoy = envoy_in_front_of(&upstream, noop(""));
    let pid = envoy.pid().expect("running");
    let listener = envoy.listener();
    drop(envoy);
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "Envoy {pid} is gone (stopped and reaped)"
    );
    assert!(
        client::send(listener, &Request::get("/")).is_err(),
        "the listener is closed"
    );
}

#[test]
fn the_concurrency_is_configurable() {
    let upstream = upstream("a");
    let envoy = crate::common::start(
        &EnvoyConfig::new()
            .cluster("a", upstream.addr())
            .filter(noop(""))
            .concurrency(1),
    );
    let stats = envoy.stats().expect("stats");
    assert!(stats
        .number(&worker_stat(0, "downstream_cx_total"))
        .is_some());
    assert!(
        stats
            .number(&worker_stat(1, "downstream_cx_total"))
            .is_none(),
        "one worker only"
    );
}

#[test]
fn a_filter_that_refuses_its_config_fails_the_start_with_envoys_log() {
    let upstream = upstream("a");
    let config = EnvoyConfig::new()
        .cluster("a", upstream.addr())
        .filter(noop("{\"count_as\": 5}"));
    let err = Envoy::start(&config)
        .err()
        .expect("Envoy refuses a filter that rejects its config");
    let message = err.to_string();
    assert!(
        matches!(err, EnvoyError::Exited { .. }),
        "Envoy exited: {message}"
    );
    assert!(
        message.contains("breakwater-noop: invalid configuration, refused"),
        "the error carries the filter's own log line: {message}"
    );
}

#[test]
fn the_counting_filter_is_loaded_on_every_worker() {
    let upstream = upstream("a");
    let envoy = envoy_in_front_of(&upstream, counting("noop.requests"));
    let outcomes = envoy
        .send_concurrently(4, 3, |_, _| Request::get("/"))
        .expect("connections open");
    let responses: Vec<_> = outcomes.into_iter().flatten().collect();
    assert!(
        responses
            .iter()
            .all(|r| matches!(r, Ok(r) if r.status == 200)),
        "{responses:?}"
    );
    assert_eq!(
        envoy.stats().expect("stats").wasm_metric("noop.requests"),
        Some(12),
        "the counter sums the increments of both workers' VMs"
    );
}
