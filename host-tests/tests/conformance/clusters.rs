//! Clusters the router cannot send to: a missing one (`Filter::decodeHeaders` in
//! `source/common/router/router.cc`, `refreshCachedRoute` in
//! `source/common/http/conn_manager_impl.cc`) and one without a healthy host
//! (`sendNoHealthyUpstreamResponse`, measured in `envoy/tests/faults/real_traffic/`).

use super::common::{fixture, logged_result, result, seen_at_log, SEEN_AT_LOG};
use breakwater_host_tests::{flags, ms, Callback, Reply, Source, StreamState, World};

use Callback::*;

/// What the fixture's `chunk` command saw in each request body callback, in order.
fn chunks_seen(world: &World) -> Vec<String> {
    world
        .logs_containing(" chunk=")
        .iter()
        .filter_map(|l| l.message.split(" chunk=").nth(1).map(str::to_string))
        .collect()
}

#[test]
fn a_missing_cluster_has_no_name_and_the_router_answers_503_nc() {
    let mut world = fixture().build().expect("starts");
    world.cluster_absent("gone");
    let s = world
        .request(0)
        .route("checkout")
        .cluster("gone")
        .header(
            "x-fixture-request",
            "property xds.cluster_name; property xds.route_name",
        )
        .header("x-fixture-log", SEEN_AT_LOG)
        .send();
    let response = world.response(s).expect("the router answered at once");
    assert_eq!(
        result(&response, "property xds.cluster_name"),
        "missing",
        "no upstream cluster info: get_property is NotFound"
    );
    assert_eq!(result(&response, "property xds.route_name"), "checkout");
    assert_eq!(
        (response.status, response.source.clone(), response.flags),
        (503, Source::Envoy, flags::NO_CLUSTER_FOUND)
    );
    assert_eq!(response.details, "cluster_not_found");
    assert!(response.body.is_empty(), "the router's reply has no body");
    assert_eq!(response.header("content-type"), None);
    assert_eq!(response.header("content-length"), None);
    assert_eq!(
        world.callbacks(s),
        vec![
            ContextCreate,
            RequestHeaders,
            ResponseHeaders,
            Log,
            Done,
            Delete
        ],
        "the router's reply runs through the filter's response callbacks (headers only)"
    );
    assert_eq!(
        seen_at_log(&world),
        (
            "503".into(),
            flags::NO_CLUSTER_FOUND.to_string(),
            "cluster_not_found".into()
        )
    );
    assert!(world.attempts().is_empty(), "nothing reached any upstream");
}

#[test]
fn a_cluster_that_comes_back_is_named_and_routed_again() {
    let mut world = fixture().build().expect("starts");
    world.cluster_absent("c");
    let first = world.request(0).cluster("c").send();
    assert_eq!(world.response(first).expect("answered").status, 503);
    world.cluster_ready("c").upstream("c", Reply::ok());
    let s = world
        .request(0)
        .cluster("c")
        .header("x-fixture-request", "property xds.cluster_name")
        .send();
    let response = world.response(s).expect("answered");
    assert_eq!(response.status, 200);
    assert_eq!(result(&response, "property xds.cluster_name"), "c");
}

#[test]
fn the_router_looks_the_cluster_up_when_the_headers_pass_the_filter() {
    let mut world = fixture().configuration("tick 10").build().expect("starts");
    world.upstream("c", Reply::ok());
    let s = world
        .request(0)
        .cluster("c")
        .header("x-fixture-request", "resume-on-tick")
        .send();
    world.cluster_absent("c");
    world.advance(ms(10));
    let response = world.response(s).expect("answered when the filter resumed");
    assert_eq!(
        (response.status, response.details.as_str()),
        (503, "cluster_not_found"),
        "the cluster was gone by the time the router saw the headers"
    );
    assert!(world.attempts().is_empty());
}

#[test]
fn envoys_no_healthy_upstream_reply_is_a_503_uh_with_its_body() {
    let mut world = fixture().build().expect("starts");
    world.cluster_unhealthy("c");
    let s = world
        .request(0)
        .cluster("c")
        .header("x-fixture-request", "property xds.cluster_name")
        .send();
    let response = world.response(s).expect("answered at once");
    assert_eq!(
        result(&response, "property xds.cluster_name"),
        "c",
        "the cluster exists"
    );
    assert_eq!(
        (response.status, response.source.clone(), response.flags),
        (503, Source::Envoy, flags::NO_HEALTHY_UPSTREAM)
    );
    assert_eq!(response.details, "no_healthy_upstream");
    assert_eq!(response.body_text(), "no healthy upstream");
    assert_eq!(response.header("content-type"), Some("text/plain"));
    assert!(world.attempts().is_empty());
}

#[test]
fn after_envoys_no_healthy_upstream_reply_the_filter_gets_no_request_body_at_all() {
    let mut world = fixture().build().expect("starts");
    world.cluster_unhealthy("c");
    let s = world
        .request(0)
        .method("PUT")
        .cluster("c")
        .header("x-fixture-every-request-body", "chunk")
        .header(
            "x-fixture-response",
            "property-int response.flags; property response.code_details; pause",
        )
        .body_chunk(ms(0), "ab")
        .stream_body(["cd", "ef"], ms(10))
        .send();
    world.advance(ms(100));
    assert_eq!(
        world.callbacks(s),
        vec![ContextCreate, RequestHeaders, ResponseHeaders],
        "measured on Envoy 1.40: the router answers while decoding the headers, and no \
         proxy_on_request_body follows, not even for the piece that came with the head"
    );
    assert!(chunks_seen(&world).is_empty());
    assert_eq!(
        logged_result(&world, "property response.code_details"),
        "no_healthy_upstream"
    );
    assert_eq!(
        logged_result(&world, "property-int response.flags"),
        flags::NO_HEALTHY_UPSTREAM.to_string()
    );
    assert_eq!(
        world.stream_state(s),
        StreamState::Open,
        "the filter holds the 503, as Breakwater does for a retry"
    );
}

#[test]
fn dispatching_to_a_missing_cluster_is_bad_argument_and_to_an_unhealthy_one_an_internal_failure() {
    let mut world = fixture().build().expect("starts");
    world
        .upstream("c", Reply::ok())
        .upstream("sick", Reply::ok())
        .upstream("gone", Reply::ok())
        .cluster_absent("gone")
        .cluster_unhealthy("sick");
    let s = world
        .request(0)
        .cluster("c")
        .header("x-fixture-request", "dispatch gone 100; dispatch sick 100")
        .send();
    let response = world.response(s).expect("answered");
    assert_eq!(
        result(&response, "dispatch gone 100"),
        "BadArgument",
        "getThreadLocalCluster finds nothing"
    );
    assert_eq!(
        result(&response, "dispatch sick 100"),
        "InternalFailure",
        "the AsyncClient's router answers inside send, which returns no request"
    );
    let refused: Vec<(String, bool)> = world
        .refused_calls()
        .into_iter()
        .map(|r| (r.cluster, r.injected))
        .collect();
    assert_eq!(
        refused,
        vec![("gone".into(), false), ("sick".into(), false)],
        "Envoy's own refusals, not injected ones"
    );
    assert_eq!(
        world.upstream_attempts("sick").len(),
        0,
        "no call reached the cluster"
    );
    world.run_until_idle();
    assert!(
        world.logs_containing("call token=").is_empty(),
        "no proxy_on_http_call_response ever comes for either"
    );
}
