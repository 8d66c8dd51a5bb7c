//! How upstream failures on the stream path reach the filter: Envoy's router turns them into
//! local replies with a status, a response flag and details (`source/common/router/router.cc`;
//! flag bits from `CoreResponseFlag` in `envoy/stream_info/stream_info.h`).

use super::common::{fixture, result};
use breakwater_host_tests::{flags, ms, Reply, Response, Source, StreamState, World};

const SEEN: &str =
    "property-int response.code;property-int response.flags;property response.code_details";

fn failed(reply: Reply) -> (World, Response) {
    let mut world = fixture().build().expect("starts");
    world.upstream("c", reply);
    let s = world
        .request(0)
        .cluster("c")
        .timeout(ms(100))
        .header("x-fixture-response", SEEN)
        .send();
    world.advance(ms(200));
    let response = world.response(s).expect("Envoy answered");
    (world, response)
}

fn assert_seen_by_filter(response: &Response, code: u16, flag: u64, details: &str) {
    assert_eq!(
        result(response, "property-int response.code"),
        code.to_string()
    );
    assert_eq!(
        result(response, "property-int response.flags"),
        flag.to_string()
    );
    assert_eq!(result(response, "property response.code_details"), details);
}

#[test]
fn a_refused_connection_is_envoys_503_with_the_uf_flag() {
    let (_, response) = failed(Reply::refuse().after(ms(2)));
    assert_eq!(response.status, 503);
    assert_eq!(response.source, Source::Envoy);
    assert_eq!(
        response.body_text(),
        "upstream connect error or disconnect/reset before headers. reset reason: connection failure"
    );
    assert_eq!(response.flags, flags::UPSTREAM_CONNECTION_FAILURE);
    assert_eq!(flags::UPSTREAM_CONNECTION_FAILURE, 32, "UF is bit 5");
    assert_seen_by_filter(
        &response,
        503,
        32,
        "upstream_reset_before_response_started{connection_failure}",
    );
    assert_eq!(response.at, ms(2));
}

#[test]
fn a_reset_before_headers_is_envoys_503_with_the_ur_flag() {
    let (_, response) = failed(Reply::reset());
    assert_eq!(response.status, 503);
    assert_eq!(
        response.body_text(),
        "upstream connect error or disconnect/reset before headers. reset reason: remote reset"
    );
    assert_eq!(flags::UPSTREAM_REMOTE_RESET, 16, "UR is bit 4");
    assert_seen_by_filter(
        &response,
        503,
        16,
        "upstream_reset_before_response_started{remote_reset}",
    );
}

#[test]
fn an_upstream_that_never_answers_is_envoys_504_at_the_route_timeout() {
    let (world, response) = failed(Reply::timeout());
    assert_eq!((response.status, response.at), (504, ms(100)));
    assert_eq!(response.body_text(), "upstream request timeout");
    assert_eq!(flags::UPSTREAM_REQUEST_TIMEOUT, 4, "UT is bit 2");
    assert_seen_by_filter(&response, 504, 4, "upstream_response_timeout");
    assert!(!world.upstream_attempts("c")[0].delivered);
}

#[test]
fn an_answer_later_than_the_route_timeout_is_a_504_too() {
    let (_, response) = failed(Reply::ok().after(ms(150)));
    assert_eq!((response.status, response.at), (504, ms(100)));
}

#[test]
fn an_answer_the_filter_sees_carries_via_upstream_and_no_flags() {
    let (_, response) = failed(Reply::status(503).after(ms(1)));
    assert_eq!(response.source, Source::Upstream);
    assert_seen_by_filter(&response, 503, 0, "via_upstream");
}

/// A head the filter let pass; a head it held is in `reset_after_headers.rs`.
#[test]
fn a_reset_after_the_response_started_resets_the_client_stream() {
    let mut world = fixture().build().expect("starts");
    world.upstream("c", Reply::ok().body("partial").reset_after_headers());
    let s = world.request(0).cluster("c").send();
    assert_eq!(
        world.stream_state(s),
        StreamState::Reset {
            details: "upstream_reset_after_response_started{remote_reset}".into()
        }
    );
    assert!(
        world.response(s).is_none(),
        "the client got no whole response"
    );
}

#[test]
fn without_a_route_timeout_a_silent_upstream_leaves_the_world_stuck() {
    let mut world = fixture()
        .route_timeout(None)
        .idle_limit(ms(1_000))
        .build()
        .expect("starts");
    world.upstream("c", Reply::timeout());
    world.request(0).cluster("c").send();
    let stuck = world
        .try_run_until_idle()
        .expect_err("nothing will ever happen");
    assert!(
        stuck.message.contains("never answers"),
        "the report says where the stream waits: {stuck}"
    );
}

/// Envoy's router adds `x-envoy-upstream-service-time` to every upstream response before the
/// encoder filters see it (`Filter::onUpstreamHeaders`, `source/common/router/router.cc`), and
/// never to its own local replies.
#[test]
fn an_upstream_answer_carries_the_routers_service_time_and_envoys_own_replies_do_not() {
    const GET: &str = "header response get x-envoy-upstream-service-time";
    let seen = |reply: Reply| {
        let mut world = fixture().build().expect("starts");
        world.upstream("c", reply);
        let s = world
            .request(0)
            .cluster("c")
            .timeout(ms(100))
            .header("x-fixture-response", GET)
            .send();
        world.advance(ms(200));
        result(&world.response(s).expect("answered"), GET)
    };
    assert_eq!(seen(Reply::status(503).after(ms(7))), "7");
    assert_eq!(seen(Reply::ok()), "0");
    assert_eq!(seen(Reply::refuse()), "missing");
    assert_eq!(seen(Reply::timeout()), "missing");
}
