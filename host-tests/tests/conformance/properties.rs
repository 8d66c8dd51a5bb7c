//! `proxy_get_property` answers and encodings as Envoy gives them (`Context::getProperty`).

use super::common::{fixture, logged_result, result};
use breakwater_host_tests::{ms, Reply};

#[test]
fn routing_and_plugin_names_are_strings() {
    let mut world = fixture()
        .plugin_name("istio-system.breakwater")
        .root_id("breakwater")
        .build()
        .expect("starts");
    world.upstream("payments", Reply::ok());
    let script = "property xds.cluster_name; property xds.route_name; property plugin_name; \
                  property plugin_root_id; property plugin_vm_id";
    let s = world
        .request(0)
        .cluster("payments")
        .route("checkout")
        .header("x-fixture-request", script)
        .send();
    let r = world.response(s).expect("answered");
    assert_eq!(result(&r, "property xds.cluster_name"), "payments");
    assert_eq!(result(&r, "property xds.route_name"), "checkout");
    assert_eq!(
        result(&r, "property plugin_name"),
        "istio-system.breakwater"
    );
    assert_eq!(result(&r, "property plugin_root_id"), "breakwater");
    assert_eq!(
        result(&r, "property plugin_vm_id"),
        "missing",
        "an empty value comes back as no data, which the SDK reads as None"
    );
}

#[test]
fn request_properties_follow_the_request_headers_window() {
    let mut world = fixture().build().expect("starts");
    world.upstream("c", Reply::ok());
    let s = world
        .request(0)
        .path("/p?q=1")
        .cluster("c")
        .header("x-fixture-request", "property request.path; property request.url_path; property request.query; property request.method")
        .header("x-fixture-response", "property request.path")
        .header("x-fixture-log", "property request.host")
        .send();
    let r = world.response(s).expect("answered");
    assert_eq!(result(&r, "property request.url_path"), "/p");
    assert_eq!(result(&r, "property request.query"), "q=1");
    assert_eq!(result(&r, "property request.method"), "GET");
    let paths = r.header_values("x-fixture-result");
    assert!(
        paths.contains(&"property request.path=/p?q=1")
            && paths.contains(&"property request.path=missing"),
        "readable in on_http_request_headers, gone in the response phase: {paths:?}"
    );
    assert_eq!(
        logged_result(&world, "property request.host"),
        "breakwater.test",
        "on_log reads the final request headers"
    );
}

#[test]
fn response_code_and_flags_are_eight_byte_integers() {
    let mut world = fixture().build().expect("starts");
    world.upstream("c", Reply::status(503));
    let s = world
        .request(0)
        .cluster("c")
        .header("x-fixture-request", "property-int response.code")
        .header(
            "x-fixture-response",
            "property-int response.code; property-int response.flags",
        )
        .send();
    let r = world.response(s).expect("answered");
    let codes = r.header_values("x-fixture-result");
    assert!(
        codes.contains(&"property-int response.code=missing"),
        "no response code before the response: {codes:?}"
    );
    assert!(codes.contains(&"property-int response.code=503"));
    assert_eq!(result(&r, "property-int response.flags"), "0");
}

#[test]
fn request_time_is_the_virtual_clock_in_unix_nanoseconds() {
    let mut world = fixture().build().expect("starts");
    world.upstream("c", Reply::ok());
    world.advance(ms(1_500));
    let s = world
        .request(0)
        .cluster("c")
        .header("x-fixture-request", "property-int request.time")
        .send();
    let expected =
        (breakwater_host_tests::clock::START_UNIX_SECS * 1_000_000_000 + 1_500_000_000).to_string();
    assert_eq!(
        result(
            &world.response(s).expect("answered"),
            "property-int request.time"
        ),
        expected
    );
}

#[test]
fn properties_given_to_the_builder_and_set_by_the_filter_are_answered() {
    let mut world = fixture()
        .property("node.id", "sidecar~10.0.0.1")
        .build()
        .expect("starts");
    world.upstream("c", Reply::ok());
    let s = world
        .request(0)
        .cluster("c")
        .header(
            "x-fixture-request",
            "property node.id; set-property mine v1; property mine; property other",
        )
        .send();
    let r = world.response(s).expect("answered");
    assert_eq!(result(&r, "property node.id"), "sidecar~10.0.0.1");
    assert_eq!(
        result(&r, "property mine"),
        "v1",
        "kept in the stream's filter state"
    );
    assert_eq!(result(&r, "property other"), "missing");
}
