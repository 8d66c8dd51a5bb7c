//! Rolling out filter configs through ECDS, without restarting Envoy.

use breakwater_envoy::{EcdsCounters, EcdsOutcome, Envoy, EnvoyConfig, Upstream};

use crate::common::{counting, noop, start, upstream};

fn ecds_envoy(upstream: &Upstream, configuration: &str) -> Envoy {
    start(
        &EnvoyConfig::new()
            .cluster("a", upstream.addr())
            .filter(noop(configuration))
            .ecds(),
    )
}

fn send(envoy: &Envoy, n: usize) {
    for _ in 0..n {
        assert_eq!(envoy.get("/").expect("a response").status, 200);
    }
}

#[test]
fn replacing_the_resource_file_changes_the_filter_config_without_a_restart() {
    let upstream = upstream("a");
    let envoy = ecds_envoy(&upstream, "{\"count_as\": \"noop.first\"}");
    let pid = envoy.pid();
    send(&envoy, 2);

    let outcome = envoy
        .update_filter_configuration("{\"count_as\": \"noop.second\"}", Some("2"))
        .expect("Envoy decides");
    assert_eq!(outcome, EcdsOutcome::Accepted);
    send(&envoy, 3);

    let stats = envoy.stats().expect("stats");
    assert_eq!(
        stats.wasm_metric("noop.first"),
        Some(2),
        "the old config counted until the swap"
    );
    assert_eq!(
        stats.wasm_metric("noop.second"),
        Some(3),
        "the new config counts from the swap"
    );
    assert_eq!(
        stats.text("extension_config_discovery.http_filter.breakwater.version_text"),
        Some("2")
    );
    assert_eq!(envoy.pid(), pid, "the same Envoy process");
    assert_eq!(
        stats.number("listener_manager.listener_modified"),
        Some(0),
        "the listener was not rebuilt either, so open connections stay"
    );
}

#[test]
fn a_refused_config_is_reported_and_the_previous_one_keeps_serving() {
    let upstream = upstream("a");
    let envoy = ecds_envoy(&upstream, "{\"count_as\": \"noop.good\"}");
    let before = EcdsCounters::read(&envoy.stats().expect("stats"));

    let outcome = envoy
        .update_filter_configuration("{\"count_as\": 5}", Some("bad"))
        .expect("Envoy decides");
    assert_eq!(outcome, EcdsOutcome::Rejected);
    send(&envoy, 4);

    let stats = envoy.stats().expect("stats");
    let after = EcdsCounters::read(&stats);
    assert_eq!(
        after.update_rejected,
        before.update_rejected + 1,
        "{after:?}"
    );
    assert_eq!(after.config_fail, before.config_fail + 1, "{after:?}");
    assert_eq!(after.update_success, before.update_success, "{after:?}");
    assert_eq!(
        after.config_reload,
        before.config_reload + 1,
        "Envoy 1.40 counts a refused update as a config_reload too: {after:?}"
    );
    assert_eq!(
        stats.wasm_metric("noop.good"),
        Some(4),
        "the previous config serves every request"
    );
    assert_eq!(
        stats.text("extension_config_discovery.http_filter.breakwater.version_text"),
        Some("1"),
        "version_text keeps the accepted file's version_info, not the refused one's"
    );
    let log = envoy.log();
    assert!(
        log.contains("breakwater-noop: invalid configuration, refused"),
        "the filter says why"
    );
    assert!(
        log.contains("Filesystem config update rejected: Unable to create Wasm plugin breakwater"),
        "Envoy logs the rejection"
    );
    let dump = envoy
        .admin()
        .config_dump(Some("ecds_filters"))
        .expect("config dump")
        .to_string();
    assert!(
        dump.contains(r#"{\"count_as\": 5}"#),
        "Envoy 1.40's ecds_filters dump shows the refused config although it does not serve \
         (documented in the README; if this changes, update the docs): {dump}"
    );
}

#[test]
fn a_refused_first_config_leaves_the_default_config_serving() {
    let upstream = upstream("a");
    let envoy = ecds_envoy(&upstream, "[\"not an object\"]");
    let counters = EcdsCounters::read(&envoy.stats().expect("stats"));
    assert_eq!(counters.update_rejected, 1, "{counters:?}");
    assert_eq!(counters.update_success, 0, "{counters:?}");
    assert_eq!(
        envoy.get("/").expect("a response").status,
        200,
        "the default_config of dynamic-ecds.yaml serves (without it: 500, flag NFCF)"
    );
    let outcome = envoy
        .update_filter_configuration("{\"count_as\": \"noop.fixed\"}", None)
        .expect("Envoy decides");
    assert_eq!(
        outcome,
        EcdsOutcome::Accepted,
        "a good file fixes it without a restart"
    );
    send(&envoy, 1);
    assert_eq!(
        envoy.stats().expect("stats").wasm_metric("noop.fixed"),
        Some(1)
    );
}

#[test]
fn updates_need_an_ecds_envoy() {
    let upstream = upstream("a");
    let envoy = start(
        &EnvoyConfig::new()
            .cluster("a", upstream.addr())
            .filter(counting("x")),
    );
    let err = envoy
        .update_filter_configuration("{}", None)
        .expect_err("static delivery");
    assert!(
        matches!(err, breakwater_envoy::EnvoyError::NotEcds),
        "{err}"
    );
}
