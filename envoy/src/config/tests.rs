//! Rendering, checked on the JSON it produces (real Envoy loads it in the integration tests).

use std::net::SocketAddr;

use serde_json::Value;

use super::*;

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn rendered(config: &EnvoyConfig) -> (tempfile::TempDir, Value, Rendered) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let files = render(config, dir.path()).expect("the config renders");
    let text = std::fs::read_to_string(&files.bootstrap).expect("the bootstrap was written");
    let json = serde_json::from_str(&text).expect("the bootstrap is JSON");
    (dir, json, files)
}

fn hcm(bootstrap: &Value) -> &Value {
    &bootstrap["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
}

fn http_filter_names(bootstrap: &Value) -> Vec<String> {
    hcm(bootstrap)["http_filters"]
        .as_array()
        .expect("http_filters is a list")
        .iter()
        .map(|f| f["name"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn ports_are_left_to_envoy_and_bound_to_loopback() {
    let (_dir, b, _) = rendered(&EnvoyConfig::new().cluster("a", addr(8080)));
    for address in [
        &b["admin"]["address"]["socket_address"],
        &b["static_resources"]["listeners"][0]["address"]["socket_address"],
    ] {
        assert_eq!(
            address["address"], "127.0.0.1",
            "nothing listens beyond loopback"
        );
        assert_eq!(address["port_value"], 0, "Envoy picks a free port itself");
    }
}

#[test]
fn without_routes_one_default_route_goes_to_the_first_cluster() {
    let (_dir, b, _) = rendered(
        &EnvoyConfig::new()
            .cluster("a", addr(1))
            .cluster("b", addr(2)),
    );
    let routes = &hcm(&b)["route_config"]["virtual_hosts"][0]["routes"];
    assert_eq!(routes.as_array().map(Vec::len), Some(1));
    assert_eq!(routes[0]["name"], "default");
    assert_eq!(routes[0]["route"]["cluster"], "a");
}

#[test]
fn routes_are_named_and_match_by_prefix_or_header() {
    let config = EnvoyConfig::new()
        .cluster("a", addr(1))
        .cluster("outbound|8080||reviews.default.svc.cluster.local", addr(2))
        .route(Route::header(
            "by-header",
            "x-to",
            "b",
            "outbound|8080||reviews.default.svc.cluster.local",
        ))
        .route(Route::prefix("to-a", "/a", "a"));
    let (_dir, b, _) = rendered(&config);
    let routes = &hcm(&b)["route_config"]["virtual_hosts"][0]["routes"];
    assert_eq!(routes[0]["name"], "by-header");
    assert_eq!(routes[0]["match"]["headers"][0]["name"], "x-to");
    assert_eq!(
        routes[0]["match"]["headers"][0]["string_match"]["exact"],
        "b"
    );
    assert_eq!(
        routes[0]["route"]["cluster"],
        "outbound|8080||reviews.default.svc.cluster.local"
    );
    assert_eq!(routes[1]["match"]["prefix"], "/a");
    let clusters = &b["static_resources"]["clusters"];
    assert_eq!(
        clusters[1]["name"],
        "outbound|8080||reviews.default.svc.cluster.local"
    );
    assert_eq!(
        clusters[1]["load_assignment"]["cluster_name"],
        clusters[1]["name"]
    );
    assert_eq!(
        clusters[1]["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
            ["socket_address"]["port_value"],
        2
    );
    assert_eq!(
        clusters[1]["connect_timeout"], "1s",
        "settings of the config's cluster carry over"
    );
}

#[test]
fn a_route_to_an_unknown_cluster_is_refused() {
    let config = EnvoyConfig::new()
        .cluster("a", addr(1))
        .route(Route::prefix("r", "/", "nope"));
    let dir = tempfile::tempdir().expect("a temp dir");
    let err = render(&config, dir.path()).expect_err("cluster nope does not exist");
    assert!(
        err.to_string().contains("\"nope\""),
        "the error names the cluster: {err}"
    );
}

#[test]
fn the_static_filter_gets_the_module_identity_and_policy() {
    let filter = WasmFilter::new("/tmp/x.wasm")
        .configuration("{\"a\":1}")
        .plugin_name("p")
        .root_id("r");
    let (_dir, b, files) = rendered(&EnvoyConfig::new().cluster("a", addr(1)).filter(filter));
    assert_eq!(
        http_filter_names(&b),
        vec!["breakwater", "envoy.filters.http.router"]
    );
    let config = &hcm(&b)["http_filters"][0]["typed_config"]["config"];
    assert_eq!(
        config["vm_config"]["code"]["local"]["filename"],
        "/tmp/x.wasm"
    );
    assert_eq!(config["configuration"]["value"], "{\"a\":1}");
    assert_eq!(config["name"], "p");
    assert_eq!(config["root_id"], "r");
    assert_eq!(files.ecds_dir, None);
    assert!(
        b["stats_config"]["stats_tags"]
            .as_array()
            .is_some_and(|t| t.len() == 2),
        "the stats tags of the config survive"
    );
}

#[test]
fn without_a_filter_only_the_router_is_left() {
    let (_dir, b, _) = rendered(&EnvoyConfig::new().cluster("a", addr(1)));
    assert_eq!(http_filter_names(&b), vec!["envoy.filters.http.router"]);
}

#[test]
fn ecds_points_envoy_at_a_watched_directory_holding_the_resource() {
    let filter = WasmFilter::new("/tmp/x.wasm").configuration("{\"count_as\":\"c\"}");
    let (_dir, b, files) = rendered(
        &EnvoyConfig::new()
            .cluster("a", addr(1))
            .filter(filter)
            .ecds(),
    );
    let watched = files.ecds_dir.expect("ECDS has a directory");
    let source =
        &hcm(&b)["http_filters"][0]["config_discovery"]["config_source"]["path_config_source"];
    assert_eq!(
        source["path"],
        watched.join(ECDS_FILE).display().to_string()
    );
    assert_eq!(
        source["watched_directory"]["path"],
        watched.display().to_string()
    );
    let resource: Value = serde_json::from_str(
        &std::fs::read_to_string(watched.join(ECDS_FILE)).expect("the resource file exists"),
    )
    .expect("the resource file is JSON");
    let config = &resource["resources"][0]["typed_config"]["config"];
    assert_eq!(config["configuration"]["value"], "{\"count_as\":\"c\"}");
    assert_eq!(
        config["vm_config"]["code"]["local"]["filename"],
        "/tmp/x.wasm"
    );
    let default = &hcm(&b)["http_filters"][0]["config_discovery"]["default_config"]["config"];
    assert_eq!(
        default["vm_config"]["code"]["local"]["filename"],
        "/tmp/x.wasm"
    );
    assert_eq!(
        default["configuration"]["value"], "{}",
        "the default config keeps the empty policy"
    );
}

#[test]
fn native_resilience_adds_route_retries_and_outlier_detection() {
    let config = EnvoyConfig::new()
        .cluster("a", addr(1))
        .native_resilience(NativeResilience::default());
    let (_dir, b, _) = rendered(&config);
    let retry = &hcm(&b)["route_config"]["virtual_hosts"][0]["routes"][0]["route"]["retry_policy"];
    assert_eq!(retry["num_retries"], 2);
    assert_eq!(retry["retry_back_off"]["base_interval"], "0.1s");
    assert_eq!(
        b["static_resources"]["clusters"][0]["outlier_detection"]["consecutive_5xx"],
        5
    );
    let cluster = &b["static_resources"]["clusters"][0];
    assert!(
        cluster.get("circuit_breakers").is_none() && cluster.get("common_lb_config").is_none(),
        "by default Envoy's own retry limit and panic threshold apply"
    );
}

#[test]
fn native_resilience_can_lift_the_retry_limit_and_turn_panic_routing_off() {
    let native = NativeResilience {
        max_retries: Some(1000),
        healthy_panic_threshold: Some(0.0),
        ..NativeResilience::default()
    };
    let config = EnvoyConfig::new()
        .cluster("a", addr(1))
        .native_resilience(native);
    let (_dir, b, _) = rendered(&config);
    let cluster = &b["static_resources"]["clusters"][0];
    assert_eq!(
        cluster["circuit_breakers"]["thresholds"][0]["max_retries"], 1000,
        "retries in flight are no longer capped at Envoy's 3"
    );
    assert_eq!(
        cluster["common_lb_config"]["healthy_panic_threshold"]["value"], 0.0,
        "an ejected single host stops receiving traffic"
    );
}

#[test]
fn exact_balance_is_a_test_knob_the_kernel_balance_leaves_out() {
    let exact = rendered(&EnvoyConfig::new().cluster("a", addr(1))).1;
    let kernel = rendered(
        &EnvoyConfig::new()
            .cluster("a", addr(1))
            .balance(Balance::Kernel),
    )
    .1;
    let listener = |b: &Value| b["static_resources"]["listeners"][0].clone();
    assert!(listener(&exact)["connection_balance_config"]["exact_balance"].is_object());
    assert!(listener(&kernel).get("connection_balance_config").is_none());
}

#[test]
fn the_access_log_format_matches_the_parser() {
    let (_dir, b, _) = rendered(&EnvoyConfig::new().cluster("a", addr(1)));
    let format = &hcm(&b)["access_log"][0]["typed_config"]["log_format"]["json_format"];
    let mut keys: Vec<&str> = format
        .as_object()
        .expect("json_format is a mapping")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    let mut expected = crate::access_log::KEYS.to_vec();
    expected.sort_unstable();
    assert_eq!(
        keys, expected,
        "static.yaml's json_format and AccessLogEntry agree"
    );
}

#[test]
fn validation_copies_change_only_the_paths() {
    let dir = std::path::Path::new("/work/x");
    let copy = validation_copy(DYNAMIC_ECDS_YAML, &dir.join("noop.wasm"), &dir.join("ecds"));
    assert!(copy.contains("filename: /work/x/noop.wasm"));
    assert!(copy.contains("path: /work/x/ecds/ecds.yaml"));
    assert!(copy.contains("watched_directory: { path: /work/x/ecds }"));
    assert!(!copy.contains("/etc/envoy"), "no operator path is left");
    assert_eq!(copy.lines().count(), DYNAMIC_ECDS_YAML.lines().count());
}

#[test]
fn the_access_log_can_be_dropped_for_benchmarks() {
    let (_dir, b, _) = rendered(
        &EnvoyConfig::new()
            .cluster("a", addr(1))
            .without_access_log(),
    );
    assert!(hcm(&b).get("access_log").is_none());
    assert!(
        hcm(&b).get("route_config").is_some(),
        "only the access log went"
    );
}

#[test]
fn idle_and_connect_timeouts_are_set_only_when_asked() {
    let (_dir, plain, _) = rendered(&EnvoyConfig::new().cluster("a", addr(1)));
    assert!(hcm(&plain).get("stream_idle_timeout").is_none());
    let routes = &hcm(&plain)["route_config"]["virtual_hosts"][0]["routes"];
    assert!(routes[0]["route"].get("idle_timeout").is_none());

    let config = EnvoyConfig::new()
        .cluster("a", addr(1))
        .route(Route::prefix("held", "/", "a").idle_timeout(Duration::from_secs(2)))
        .stream_idle_timeout(Duration::from_millis(4500))
        .connect_timeout(Duration::from_secs(10));
    let (_dir, b, _) = rendered(&config);
    assert_eq!(hcm(&b)["stream_idle_timeout"], "4.5s");
    let routes = &hcm(&b)["route_config"]["virtual_hosts"][0]["routes"];
    assert_eq!(routes[0]["route"]["idle_timeout"], "2s");
    assert_eq!(
        b["static_resources"]["clusters"][0]["connect_timeout"],
        "10s"
    );
}

#[test]
fn an_h2c_cluster_speaks_http2_to_its_endpoint_and_the_others_stay_http1() {
    let (_dir, b, _) = rendered(
        &EnvoyConfig::new()
            .h2c_cluster("grpc", addr(1))
            .cluster("plain", addr(2)),
    );
    let clusters = &b["static_resources"]["clusters"];
    let options = &clusters[0]["typed_extension_protocol_options"]
        ["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"];
    assert_eq!(
        options["@type"],
        "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
    );
    assert!(
        options["explicit_http_config"]["http2_protocol_options"].is_object(),
        "{options}"
    );
    assert!(clusters[1]
        .get("typed_extension_protocol_options")
        .is_none());
}

#[test]
fn a_cluster_may_have_several_endpoints_and_fields_of_its_own() {
    let (_dir, b, _) = rendered(
        &EnvoyConfig::new().cluster("a", addr(1)).add_cluster(
            Cluster::new("h", addr(2))
                .endpoint(addr(3))
                .field("lb_policy", "\"RING_HASH\""),
        ),
    );
    let clusters = &b["static_resources"]["clusters"];
    let ports = |i: usize| -> Vec<u64> {
        clusters[i]["load_assignment"]["endpoints"][0]["lb_endpoints"]
            .as_array()
            .expect("lb_endpoints is a list")
            .iter()
            .map(|e| e["endpoint"]["address"]["socket_address"]["port_value"].as_u64())
            .map(|p| p.expect("a port"))
            .collect()
    };
    assert_eq!(ports(0), vec![1]);
    assert_eq!(ports(1), vec![2, 3], "both endpoints, in order");
    assert_eq!(clusters[1]["lb_policy"], "RING_HASH");
    assert_ne!(
        clusters[0]["lb_policy"], "RING_HASH",
        "the field is the one cluster's"
    );
}

#[test]
fn a_connect_route_matches_connect_requests_for_one_authority() {
    let (_dir, b, _) = rendered(
        &EnvoyConfig::new()
            .cluster("a", addr(1))
            .route(Route::connect("tunnel", "echo:1", "a")),
    );
    let route = &hcm(&b)["route_config"]["virtual_hosts"][0]["routes"][0];
    assert_eq!(route["name"], "tunnel");
    assert_eq!(route["match"]["connect_matcher"], serde_json::json!({}));
    assert_eq!(route["match"]["headers"][0]["name"], ":authority");
    assert_eq!(
        route["match"]["headers"][0]["string_match"]["exact"],
        "echo:1"
    );
    assert_eq!(route["route"]["cluster"], "a");
}
