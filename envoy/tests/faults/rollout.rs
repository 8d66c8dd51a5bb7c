//! Rolling out policies through ECDS while traffic flows.
//!
//! An update builds a new root context (a new plugin configuration) in every worker's VM while
//! streams of the old one are still in flight, some of them with retries waiting in the worker's
//! queue or dispatched by the old root. None of that may fail a request: against a healthy
//! upstream every response stays 2xx, and a retry that was pending when the policy changed is
//! still delivered.

use std::sync::Arc;
use std::thread;

use breakwater_envoy::ecds::EcdsCounters;
use breakwater_envoy::soak::load::MakeRequest;
use breakwater_envoy::soak::{Load, LoadSpec};
use breakwater_envoy::{EcdsOutcome, Envoy, EnvoyConfig, Reply, Request, Route, Upstream};
use serde_json::{json, Value};

use crate::common::{
    assert_no_wasm_errors, assert_nothing_in_flight, breakwater, start, stat, upstream, wait_until,
    wasm_health, Metrics,
};

/// Requests answered between two updates, so each update lands in the middle of traffic.
const BETWEEN_UPDATES: u64 = 100;

fn ecds_envoy(upstream: &Upstream, policy: &Value) -> Envoy {
    start(
        &EnvoyConfig::new()
            .cluster("a", upstream.addr())
            .filter(breakwater(policy))
            .ecds(),
    )
}

/// `GET /r/<n>`, and every tenth request a `POST` with a body and an idempotency key.
fn requests() -> Arc<MakeRequest> {
    Arc::new(|_, n| {
        let path = format!("/r/{n}");
        if n % 10 == 9 {
            Request::post(&path, vec![b'b'; 300]).header("idempotency-key", &format!("k{n}"))
        } else {
            Request::get(&path)
        }
    })
}

fn start_load(envoy: &Envoy, rate: f64) -> Load {
    Load::start(
        envoy.listener(),
        &LoadSpec {
            connections: 8,
            rate,
            make: requests(),
        },
    )
}

/// Rolls out `policies` one after another while `load` runs, each after [`BETWEEN_UPDATES`] more
/// answers; each must meet its expected outcome. Returns the last version rolled out.
fn roll_out(envoy: &Envoy, load: &Load, policies: &[(Value, EcdsOutcome)]) -> String {
    let mut version = String::new();
    for (i, (policy, expected)) in policies.iter().enumerate() {
        let answered = load.tally().answered();
        wait_until("traffic between two updates", || {
            load.tally().answered() >= answered + BETWEEN_UPDATES
        });
        version = format!("{}", i + 2);
        let outcome = envoy
            .update_filter_configuration(&policy.to_string(), Some(&version))
            .expect("Envoy decides on the update");
        assert_eq!(outcome, *expected, "update {version}: {policy}");
    }
    let answered = load.tally().answered();
    wait_until("traffic after the last update", || {
        load.tally().answered() >= answered + BETWEEN_UPDATES
    });
    version
}

/// Policies that all retry without a budget, so a request whose first attempt fails is always
/// retried once, whatever policy it meets.
fn retrying_policies() -> Vec<Value> {
    vec![
        json!({ "default": { "retry": { "max_attempts": 2, "base_delay": "10ms", "budget": null } } }),
        json!({ "default": {
            "circuit_breaker": { "mode": "shadow", "failure_threshold": 3 },
            "retry": { "max_attempts": 4, "base_delay": "5ms", "jitter": "full", "budget": null }
        } }),
        json!({
            "default": { "retry": { "max_attempts": 3, "base_delay": "20ms", "budget": null } },
            "clusters": { "a": { "retry": { "jitter": "decorrelated", "max_delay": "100ms" } } },
            "routes": { "default": { "retry": { "base_delay": "15ms" } } }
        }),
        json!({ "default": {
            "circuit_breaker": null,
            "retry": {
                "max_attempts": 2,
                "base_delay": "30ms",
                "budget": { "ratio": 1.0, "min_per_second": 1000, "window": "5s" }
            }
        } }),
        json!({ "default": {
            "circuit_breaker": { "failure_threshold": 5, "timeout": "5s" },
            "retry": { "max_attempts": 3, "base_delay": "10ms", "jitter": "equal", "budget": null }
        } }),
    ]
}

/// A policy the filter refuses (`half_open_attempts: 0`).
fn refused_policy() -> Value {
    json!({ "default": { "circuit_breaker": { "half_open_attempts": 0 } } })
}

#[test]
fn rolling_out_policies_under_load_fails_no_request() {
    let upstream = upstream("a");
    let envoy = ecds_envoy(&upstream, &json!({}));
    let health = wasm_health(&envoy);
    let before = EcdsCounters::read(&envoy.stats().expect("stats"));
    let load = start_load(&envoy, 200.0);

    let mut policies: Vec<(Value, EcdsOutcome)> = retrying_policies()
        .into_iter()
        .map(|p| (p, EcdsOutcome::Accepted))
        .collect();
    policies.insert(2, (refused_policy(), EcdsOutcome::Rejected));
    policies.push((
        json!({ "default": { "retry": null } }),
        EcdsOutcome::Accepted,
    ));
    policies.push((json!({}), EcdsOutcome::Accepted));
    let last = roll_out(&envoy, &load, &policies);

    let finished = load.stop();
    let tally = finished.tally;
    assert_eq!(
        tally.ok,
        tally.sent,
        "every request got a 2xx across {} updates: {tally:?} {:?}",
        policies.len(),
        finished.errors
    );
    assert!(tally.sent >= BETWEEN_UPDATES * policies.len() as u64);
    let stats = envoy.stats().expect("stats");
    assert_eq!(
        stats.number_or_zero("http.ingress_http.downstream_rq_5xx"),
        0
    );
    let after = EcdsCounters::read(&stats);
    assert_eq!(after.update_success - before.update_success, 7);
    assert_eq!(after.update_rejected - before.update_rejected, 1);
    assert_eq!(
        stats.text("extension_config_discovery.http_filter.breakwater.version_text"),
        Some(last.as_str())
    );
    assert_nothing_in_flight(&envoy);
    let errors = wasm_health(&envoy).errors_besides_refusals_since(&health);
    assert!(
        errors.is_empty(),
        "no wasm error besides the refusal's own lines: {errors:?}"
    );
}

#[test]
fn requests_whose_retries_span_rollouts_are_all_answered_by_their_retry() {
    let upstream = upstream("a");
    let policies = retrying_policies();
    let envoy = ecds_envoy(&upstream, &policies[0]);
    let health = wasm_health(&envoy);
    // Every request fails its first attempt: at any moment some retries wait or are in flight.
    upstream.fail_first_per_path(1, Reply::Status(503));
    let load = start_load(&envoy, 100.0);

    let accepted: Vec<_> = policies
        .into_iter()
        .skip(1)
        .chain([json!({ "default": { "retry": { "max_attempts": 2, "base_delay": "50ms", "budget": null } } })])
        .map(|p| (p, EcdsOutcome::Accepted))
        .collect();
    roll_out(&envoy, &load, &accepted);

    let finished = load.stop();
    let tally = finished.tally;
    assert_eq!(
        tally.ok, tally.sent,
        "every request's retry answered it: {tally:?} {:?}",
        finished.errors
    );
    assert_eq!(
        tally.retried, tally.sent,
        "every answer came from a retry (x-breakwater-attempts)"
    );
    assert_eq!(
        Metrics::read(&envoy, "a").get("retries_total"),
        tally.sent,
        "one retry per request, none lost and none doubled"
    );
    assert_nothing_in_flight(&envoy);
    assert_no_wasm_errors(&envoy, &health);
}

#[test]
fn a_retry_waiting_and_one_in_flight_during_an_update_are_both_carried_through() {
    let waiting = upstream("waiting");
    let hanging = upstream("hanging");
    // Version 1 retries once; version 2 does not retry at all.
    let policy = |max_attempts: u32| {
        json!({
            "default": {
                "circuit_breaker": { "failure_threshold": 100 },
                "retry": { "max_attempts": max_attempts, "per_try_timeout": "1s", "budget": null }
            },
            "clusters": {
                "waiting": { "retry": { "base_delay": "3s", "jitter": false } },
                "hanging": { "retry": { "base_delay": "10ms" } }
            }
        })
    };
    let envoy = start(
        &EnvoyConfig::new()
            .cluster("waiting", waiting.addr())
            .cluster("hanging", hanging.addr())
            .route(Route::prefix("waiting", "/waiting", "waiting"))
            .route(Route::prefix("hanging", "/hanging", "hanging"))
            .filter(breakwater(&policy(2)))
            .ecds(),
    );
    let health = wasm_health(&envoy);
    waiting.fail_first_per_path(1, Reply::Status(503));
    hanging.fail_first_per_path(1, Reply::Status(503));
    hanging.set_default(Reply::Never);

    let (w, h) = thread::scope(|s| {
        let w = s.spawn(|| envoy.get("/waiting").expect("an answer"));
        let h = s.spawn(|| envoy.get("/hanging").expect("an answer"));
        wait_until("the first 503 to be held for its retry", || {
            stat(&envoy, "cluster.waiting.upstream_rq_503") == 1
        });
        wait_until("the other retry to be in flight", || hanging.total() == 2);
        let outcome = envoy
            .update_filter_configuration(&policy(1).to_string(), Some("2"))
            .expect("Envoy decides");
        assert_eq!(outcome, EcdsOutcome::Accepted);
        (
            w.join().unwrap_or_else(|e| std::panic::resume_unwind(e)),
            h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)),
        )
    });
    assert_eq!(
        w.status, 200,
        "the waiting retry ran after the update: {w:?}"
    );
    assert_eq!(w.header("x-breakwater-attempts"), Some("2"));
    assert_eq!(
        h.status, 504,
        "the retry in flight ended with its own timeout: {h:?}"
    );
    assert_eq!(h.header("x-breakwater-attempts"), Some("2"));
    let fresh = envoy.get("/waiting/fresh").expect("an answer");
    assert_eq!(
        (fresh.status, fresh.header("x-breakwater-attempts")),
        (503, None),
        "a request that arrives after the update meets version 2: no retry"
    );
    assert_nothing_in_flight(&envoy);
    assert_no_wasm_errors(&envoy, &health);
}
