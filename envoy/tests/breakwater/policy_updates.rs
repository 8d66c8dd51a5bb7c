//! Loading and rolling out policies (POLICY.md "Validation"): an invalid policy is refused with a
//! log line naming the field, at start-up and through ECDS, and an accepted ECDS update takes
//! effect without a restart while the breakers keep their state.

use breakwater_envoy::{EcdsOutcome, Envoy, EnvoyConfig, EnvoyError, Reply, Upstream};
use serde_json::{json, Value};

use crate::common::{breakwater, is_fallback, start, upstream, Metrics};

/// The line the filter logs for a `half_open_attempts: 0` under `clusters.payments`.
const HALF_OPEN_PROBLEM: &str = "circuit_breaker.half_open_attempts: 0 is out of range, \
                                 must be 1..=1000 (at clusters.payments)";

fn invalid_policy() -> Value {
    json!({
        "default": { "retry": { "max_attempts": 3 } },
        "clusters": { "payments": { "circuit_breaker": { "half_open_attempts": 0 } } }
    })
}

fn ecds_envoy(upstream: &Upstream, policy: &Value) -> Envoy {
    start(
        &EnvoyConfig::new()
            .cluster("a", upstream.addr())
            .filter(breakwater(policy))
            .ecds(),
    )
}

#[test]
fn envoy_refuses_to_start_with_an_invalid_policy_and_the_log_names_the_field() {
    let upstream = upstream("a");
    let err = Envoy::start(
        &EnvoyConfig::new()
            .cluster("a", upstream.addr())
            .filter(breakwater(&invalid_policy())),
    )
    .err()
    .expect("Envoy must refuse the policy");
    let message = err.to_string();
    assert!(
        matches!(err, EnvoyError::Exited { .. }),
        "Envoy exited: {message}"
    );
    assert!(
        message.contains(HALF_OPEN_PROBLEM),
        "the log names the field, the value, the rule and the scope: {message}"
    );
    assert!(
        message.contains("Unable to create Wasm plugin breakwater"),
        "Envoy says it refused the filter: {message}"
    );
}

#[test]
fn an_invalid_ecds_update_is_refused_and_the_previous_policy_keeps_serving() {
    let upstream = upstream("a");
    let good = json!({
        "default": {
            "retry": { "max_attempts": 3, "base_delay": "10ms", "budget": null }
        }
    });
    let envoy = ecds_envoy(&upstream, &good);
    let pid = envoy.pid();

    let outcome = envoy
        .update_filter_configuration(&invalid_policy().to_string(), Some("2-invalid"))
        .expect("Envoy decides");
    assert_eq!(outcome, EcdsOutcome::Rejected);
    let log = envoy.log();
    assert!(
        log.contains(&format!("breakwater: invalid policy: {HALF_OPEN_PROBLEM}")),
        "the filter's log line names the field"
    );
    assert!(log.contains("Filesystem config update rejected"));

    // The previous policy still retries (three attempts).
    upstream.fail_first_per_path(2, Reply::Status(503));
    let response = envoy.get("/after-refusal").expect("a response");
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(
        response.header("x-breakwater-attempts"),
        Some("3"),
        "the last accepted policy serves"
    );
    let stats = envoy.stats().expect("stats");
    assert_eq!(
        stats.text("extension_config_discovery.http_filter.breakwater.version_text"),
        Some("1"),
        "the accepted version is still the first one"
    );
    assert_eq!(envoy.pid(), pid, "no restart");
}

#[test]
fn an_ecds_update_takes_effect_without_a_restart_and_an_open_breaker_stays_open() {
    let upstream = upstream("a");
    let policy = |fallback_body: &str, max_attempts: u32| {
        json!({
            "default": {
                "circuit_breaker": {
                    "failure_threshold": 3,
                    "timeout": "30s",
                    "fallback": { "status": 503, "body": fallback_body }
                },
                "retry": { "max_attempts": max_attempts, "base_delay": "10ms", "budget": null }
            }
        })
    };
    let envoy = ecds_envoy(&upstream, &policy("first policy", 1));
    let pid = envoy.pid();

    upstream.respond_with(503);
    for i in 0..3 {
        let response = envoy.get(&format!("/fail/{i}")).expect("a response");
        assert!(!is_fallback(&response));
    }
    let open = envoy.get("/open").expect("a response");
    assert!(is_fallback(&open), "three failures opened the breaker");
    assert_eq!(open.text(), "first policy");

    let outcome = envoy
        .update_filter_configuration(&policy("second policy", 3).to_string(), Some("2"))
        .expect("Envoy decides");
    assert_eq!(outcome, EcdsOutcome::Accepted);

    let hits = upstream.total();
    upstream.respond_with(200);
    let still_open = envoy.get("/still-open").expect("a response");
    assert!(
        is_fallback(&still_open),
        "the breaker opened under the first policy is still open under the second: {still_open:?}"
    );
    assert_eq!(
        still_open.text(),
        "second policy",
        "the new policy's fallback serves"
    );
    assert_eq!(upstream.total(), hits, "the upstream is still spared");

    let metrics = Metrics::read(&envoy, "a");
    assert_eq!(
        metrics.get("breaker_opened_total"),
        1,
        "opened once, not reset by the update"
    );
    assert_eq!(metrics.state(), Some(1));
    assert_eq!(metrics.get("rejected_total"), 2);
    let stats = envoy.stats().expect("stats");
    assert_eq!(
        stats.text("extension_config_discovery.http_filter.breakwater.version_text"),
        Some("2")
    );
    assert_eq!(envoy.pid(), pid, "no restart");
}

#[test]
fn an_operator_can_force_the_breaker_open_and_release_it_through_ecds() {
    let upstream = upstream("a");
    let policy = |mode: &str| json!({ "default": { "circuit_breaker": { "mode": mode } } });
    let envoy = ecds_envoy(&upstream, &policy("enforce"));
    assert_eq!(envoy.get("/before").expect("a response").status, 200);

    let outcome = envoy
        .update_filter_configuration(&policy("forced_open").to_string(), Some("2"))
        .expect("Envoy decides");
    assert_eq!(outcome, EcdsOutcome::Accepted);
    let hits = upstream.total();
    for i in 0..3 {
        let response = envoy.get(&format!("/forced/{i}")).expect("a response");
        assert!(
            is_fallback(&response),
            "forced_open: every request gets the fallback"
        );
    }
    assert_eq!(upstream.total(), hits, "and the upstream sees none of them");

    let outcome = envoy
        .update_filter_configuration(&policy("enforce").to_string(), Some("3"))
        .expect("Envoy decides");
    assert_eq!(outcome, EcdsOutcome::Accepted);
    let response = envoy.get("/after").expect("a response");
    assert_eq!(
        response.status, 200,
        "released: traffic flows again: {response:?}"
    );
}

/// An istiod upgrade to 1.30 renames the plugin in Envoy from `<namespace>.<name>` to
/// `<namespace>.<name>~istio-translated-wasmplugin` and keeps its root id (`pluginName`): the
/// ECDS update that follows must find every breaker as it was.
#[test]
fn a_breaker_opened_under_one_plugin_name_is_still_open_after_the_ecds_update_that_renames_it() {
    let upstream = upstream("a");
    let policy = json!({
        "default": {
            "circuit_breaker": {
                "failure_threshold": 3,
                "timeout": "30s",
                "fallback": { "status": 503, "body": "still open" }
            },
            "retry": null
        }
    });
    let filter = |name: &str| breakwater(&policy).plugin_name(name).root_id("breakwater");
    let envoy = start(
        &EnvoyConfig::new()
            .cluster("a", upstream.addr())
            .filter(filter("istio-system.breakwater"))
            .ecds(),
    );
    upstream.respond_with(503);
    for i in 0..3 {
        let response = envoy.get(&format!("/fail/{i}")).expect("a response");
        assert!(!is_fallback(&response));
    }
    assert!(
        is_fallback(&envoy.get("/open").expect("a response")),
        "three failures opened it"
    );

    let renamed = filter("istio-system.breakwater~istio-translated-wasmplugin");
    let outcome = envoy
        .update_filter(&renamed, Some("2"))
        .expect("Envoy decides");
    assert_eq!(outcome, EcdsOutcome::Accepted);
    assert!(
        envoy
            .log()
            .contains("plugin 'istio-system.breakwater~istio-translated-wasmplugin', state scope 'breakwater'"),
        "the new configuration runs under the new name"
    );
    let hits = upstream.total();
    upstream.respond_with(200);
    let response = envoy.get("/after-rename").expect("a response");
    assert!(
        is_fallback(&response) && response.text() == "still open",
        "the breaker is still open under the new name: {response:?}"
    );
    assert_eq!(upstream.total(), hits, "the upstream is still spared");
}
