//! Header maps through the SDK: pairs serialization both ways, Envoy's `addCopy`, `setCopy`
//! and `remove`, and which map is reachable when (`Context::getMap`, `getConstMap`).

use super::common::{fixture, logged_result, result};
use breakwater_host_tests::{Reply, World};

fn world() -> World {
    let mut world = fixture().build().expect("starts");
    world.upstream("c", Reply::ok().header("server-thing", "s"));
    world
}

#[test]
fn the_request_header_pairs_reach_the_filter_in_envoys_order() {
    let mut world = world();
    let s = world
        .request(0)
        .path("/a")
        .cluster("c")
        .header("X-One", "1")
        .header("x-request-id", "fixed")
        .header("x-fixture-request", "pairs request")
        .send();
    assert_eq!(
        result(&world.response(s).expect("answered"), "pairs request"),
        ":method:GET,:path:/a,:authority:breakwater.test,:scheme:http,x-one:1,\
         x-request-id:fixed,x-fixture-request:pairs request,x-forwarded-proto:http",
        "pseudo-headers first, then the client's headers, then what Envoy adds"
    );
}

#[test]
fn setting_the_pairs_replaces_the_whole_map_lower_casing_names() {
    let mut world = world();
    world
        .request(0)
        .cluster("c")
        .header(
            "x-fixture-request",
            "set-pairs request :method=PUT,:path=/new,X-Added=1",
        )
        .send();
    let sent = &world.upstream_attempts("c")[0].request;
    let names: Vec<&str> = sent.headers.iter().map(|(n, _)| n).collect();
    assert_eq!(names, vec![":method", ":path", "x-added"]);
    assert_eq!(sent.method(), "PUT");
}

#[test]
fn add_appends_replace_rewrites_the_first_value_and_remove_drops_all() {
    let mut world = world();
    world
        .request(0)
        .cluster("c")
        .header("a", "1")
        .header("a", "2")
        .header("gone", "x")
        .header(
            "x-fixture-request",
            "header request replace a 3; header request add a 4; header request remove gone",
        )
        .send();
    let sent = &world.upstream_attempts("c")[0].request;
    assert_eq!(sent.headers.get_all("a"), vec!["3", "2", "4"]);
    assert_eq!(sent.header("gone"), None);
}

#[test]
fn a_header_lookup_answers_the_first_value_or_not_found() {
    let mut world = world();
    let s = world
        .request(0)
        .cluster("c")
        .header("a", "1")
        .header("a", "2")
        .header(
            "x-fixture-request",
            "header request get a; header request get none",
        )
        .header("x-fixture-response", "header response get server-thing")
        .send();
    let r = world.response(s).expect("answered");
    assert_eq!(result(&r, "header request get a"), "1");
    assert_eq!(result(&r, "header request get none"), "missing");
    assert_eq!(result(&r, "header response get server-thing"), "s");
}

#[test]
fn writing_a_map_outside_its_window_is_bad_argument() {
    let mut world = world();
    let failure = world
        .request(0)
        .cluster("c")
        .header("x-fixture-response", "header request add late 1")
        .try_send()
        .expect_err("the request headers are gone in the response phase");
    assert!(
        failure
            .panic
            .unwrap_or_default()
            .contains("unexpected status: 2"),
        "Envoy answers BadArgument, which the SDK does not expect"
    );
}

#[test]
fn on_log_reads_the_final_maps() {
    let mut world = world();
    world
        .request(0)
        .cluster("c")
        .header("x-fixture-request", "header request add added-late yes")
        .header(
            "x-fixture-log",
            "header request get added-late; header response get server-thing",
        )
        .send();
    assert_eq!(
        logged_result(&world, "header request get added-late"),
        "yes"
    );
    assert_eq!(
        logged_result(&world, "header response get server-thing"),
        "s"
    );
}

/// Envoy accepts obs-text (0x80–0xFF) in header values (`HeaderUtility::headerValueIsValid`
/// allows it, `source/common/http/header_utility.cc`) and the wasm host hands the bytes over as
/// they are (`Context::getHeaderMapPairs`). The fixture reads its scripts with the Rust SDK's
/// `get_http_request_headers`, which unwraps every value as UTF-8: it traps, and its panic shows
/// the very bytes the client sent.
#[test]
fn a_header_value_that_is_not_utf8_reaches_the_filter_as_its_bytes() {
    let mut world = world();
    let failure = world
        .request(0)
        .cluster("c")
        .header_bytes("x-latin", b"caf\xe9")
        .try_send()
        .expect_err("the SDK unwraps every value as UTF-8");
    let panic = failure.panic.clone().unwrap_or_default();
    assert!(
        panic.contains("FromUtf8Error { bytes: [99, 97, 102, 233]"),
        "the filter got b\"caf\\xe9\" unchanged: {failure}"
    );
    assert!(
        world.upstream_attempts("c").is_empty(),
        "the trapped filter stopped it"
    );
}
