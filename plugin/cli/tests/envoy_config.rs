//! `breakwater-cli validate` on Envoy configs: Breakwater's place in the filter chain, its
//! policy, and the route features its retries cannot follow.

use breakwater_cli::envoy_config::{check, Chain};
use breakwater_cli::istio::documents;

/// A connection manager with `filters` (YAML list items, Breakwater among them as `BW`) and one
/// route `api` to cluster `svc` with `route_extra` in its action and `entry_extra` beside it.
fn config(filters: &str, policy: &str, route_extra: &str, entry_extra: &str) -> String {
    let breakwater = format!(
        r#"
      - name: breakwater
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
          config:
            root_id: breakwater
            configuration:
              "@type": type.googleapis.com/google.protobuf.StringValue
              value: '{policy}'"#
    );
    format!(
        r#"
static_resources:
  listeners:
  - name: edge
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - name: api
                match: {{ prefix: "/" }}
                route: {{ cluster: svc{route_extra} }}{entry_extra}
          http_filters:{}
  clusters:
  - name: svc
    type: STATIC
"#,
        filters.replace("BW", &breakwater).replace('\n', "\n    ")
    )
}

const ROUTER: &str = r#"
      - name: envoy.filters.http.router
        typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }"#;
const LUA: &str = r#"
      - name: authz
        typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua }"#;
const RETRIES: &str = r#"{"default": {"retry": {"max_attempts": 3}}}"#;
const NO_RETRIES: &str = r#"{"default": {"retry": null}}"#;

fn checked(text: &str) -> Chain {
    let chains = check(&documents(text).expect("YAML")).expect("an Envoy config");
    assert_eq!(chains.len(), 1, "{chains:?}");
    chains.into_iter().next().expect("one")
}

#[test]
fn the_shipped_configs_place_breakwater_right_before_the_router() {
    for file in ["static.yaml", "dynamic-ecds.yaml", "breakwater-ecds.yaml"] {
        let path = format!("{}/../../envoy/configs/{file}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).expect("readable");
        let chains = check(&documents(&text).expect("YAML")).expect("an Envoy config");
        for chain in chains {
            assert!(chain.errors.is_empty(), "{file}: {chain:?}");
            assert!(
                chain.warnings.iter().all(|w| w.contains("not inline")),
                "{file}: {chain:?}"
            );
        }
    }
}

#[test]
fn a_filter_between_breakwater_and_the_router_is_an_error_that_names_it() {
    let chain = checked(&config(&format!("BW{LUA}{ROUTER}"), RETRIES, "", ""));
    assert_eq!(chain.errors.len(), 1, "{chain:?}");
    assert!(chain.errors[0].contains("authz"), "{chain:?}");
    let fine = checked(&config(&format!("{LUA}BW{ROUTER}"), RETRIES, "", ""));
    assert!(fine.errors.is_empty(), "{fine:?}");
    let after = checked(&config(&format!("{ROUTER}BW"), RETRIES, "", ""));
    assert!(after.errors[0].contains("after the router"), "{after:?}");
}

#[test]
fn a_refused_policy_is_an_error() {
    let chain = checked(&config(
        &format!("BW{ROUTER}"),
        r#"{"default": {"retry": {"max_attempts": 0}}}"#,
        "",
        "",
    ));
    assert!(
        chain.errors.iter().any(|e| e.contains("max_attempts")),
        "{chain:?}"
    );
}

#[test]
fn rewrites_and_header_changes_on_a_retried_route_are_named() {
    let chain = checked(&config(
        &format!("BW{ROUTER}"),
        RETRIES,
        r#", prefix_rewrite: "/v2/", host_rewrite_literal: "svc.internal""#,
        "\n                request_headers_to_remove: [\"x-secret\"]",
    ));
    let warning = chain
        .warnings
        .iter()
        .find(|w| w.contains("sent without"))
        .expect("a warning");
    for feature in [
        "prefix_rewrite",
        "host_rewrite_literal",
        "request_headers_to_remove",
    ] {
        assert!(warning.contains(feature), "{feature}: {warning}");
    }
    let off = checked(&config(
        &format!("BW{ROUTER}"),
        NO_RETRIES,
        r#", prefix_rewrite: "/v2/""#,
        "",
    ));
    assert!(off.warnings.is_empty(), "not retried: {off:?}");
}

#[test]
fn a_route_timeout_below_the_deadline_and_stacked_retries_are_warned() {
    let chain = checked(&config(
        &format!("BW{ROUTER}"),
        RETRIES,
        r#", timeout: 5s, retry_policy: { retry_on: "5xx" }"#,
        "",
    ));
    assert!(
        chain.warnings.iter().any(|w| w.contains("timeout (5s)")),
        "{chain:?}"
    );
    assert!(
        chain.warnings.iter().any(|w| w.contains("retry_policy")),
        "{chain:?}"
    );
    let equal = checked(&config(
        &format!("BW{ROUTER}"),
        RETRIES,
        ", timeout: 15s",
        "",
    ));
    assert!(
        equal.warnings.is_empty(),
        "the default deadline is 15s: {equal:?}"
    );
}

#[test]
fn an_original_dst_cluster_under_retries_is_warned() {
    let text = config(&format!("BW{ROUTER}"), RETRIES, "", "").replace("STATIC", "ORIGINAL_DST");
    let chain = checked(&text);
    assert!(
        chain.warnings.iter().any(|w| w.contains("ORIGINAL_DST")),
        "{chain:?}"
    );
}

#[test]
fn response_header_changes_on_a_retried_route_are_named() {
    let chain = checked(&config(
        &format!("BW{ROUTER}"),
        RETRIES,
        "",
        "\n                response_headers_to_add: [{ header: { key: x-frame-options, value: DENY } }]",
    ));
    assert!(
        chain
            .warnings
            .iter()
            .any(|w| w.contains("route response_headers_to_add")),
        "{chain:?}"
    );
}
