//! An upstream that sends its head, then resets the stream (`Reply::reset_after_headers`).
//! Envoy's router answers the reset with its own 503 (every reset but a protocol error is a
//! `ServiceUnavailable`), flag UR, details `upstream_reset_after_response_started{remote_reset}`
//! (`Filter::onUpstreamReset` and `Filter::onUpstreamAbort`, `source/common/router/router.cc`:
//! `LateUpstreamReset` because `downstream_response_started_` was set when the head went to the
//! filter chain). `FilterManager::sendLocalReply` (`source/common/http/filter_manager.cc`) makes
//! of it either a reset of the client's stream (the filter let the head pass) or a reply written
//! straight to the client past the filter chain (`sendDirectLocalReply`: the filter held the
//! head), as for `Reply::reset_mid_body` (see `mid_body.rs`).

use super::common::{
    assert_direct_reply_past_the_held_head, fixture, logged_result, seen_at_log, SEEN_AT_LOG,
};
use breakwater_host_tests::{flags, Callback::*, Reply, Source, StreamState};

const DETAILS: &str = "upstream_reset_after_response_started{remote_reset}";
#[test]
fn a_head_the_filter_let_pass_then_a_reset_resets_the_clients_stream() {
    let mut world = fixture().build().expect("starts");
    world.upstream("c", Reply::ok().body("partial").reset_after_headers());
    let s = world
        .request(0)
        .cluster("c")
        .header("x-fixture-response", "header response get content-length")
        .header("x-fixture-log", SEEN_AT_LOG)
        .send();
    assert_eq!(
        world.stream_state(s),
        StreamState::Reset {
            details: DETAILS.into()
        },
        "the head is with the client: Envoy can only reset the stream"
    );
    assert!(
        world.response(s).is_none(),
        "the client got no whole response"
    );
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
        "no body came, no second response"
    );
    assert_eq!(
        logged_result(&world, "header response get content-length"),
        "7",
        "the head announced the body that never came"
    );
    assert_eq!(
        seen_at_log(&world),
        (
            "200".to_string(),
            flags::UPSTREAM_REMOTE_RESET.to_string(),
            DETAILS.to_string()
        ),
        "response.code stays the upstream's; the reset adds UR and its details"
    );
    assert!(world.late_actions().is_empty());
}

#[test]
fn a_head_the_filter_held_then_a_reset_is_envoys_503_sent_past_the_filter() {
    let mut world = fixture().build().expect("starts");
    world.upstream("c", Reply::ok().body("partial").reset_after_headers());
    let s = world
        .request(0)
        .cluster("c")
        .header("x-fixture-response", "pause")
        .header("x-fixture-log", SEEN_AT_LOG)
        .send();
    assert_direct_reply_past_the_held_head(
        &world,
        s,
        503,
        "remote reset",
        flags::UPSTREAM_REMOTE_RESET,
        DETAILS,
    );
}

#[test]
fn a_held_503_then_a_reset_is_envoys_503_not_the_upstreams() {
    let mut world = fixture().build().expect("starts");
    world.upstream(
        "c",
        Reply::status(503)
            .header("x-upstream", "yes")
            .reset_after_headers(),
    );
    let s = world
        .request(0)
        .cluster("c")
        .header("x-fixture-response", "pause")
        .send();
    let response = world.response(s).expect("Envoy answered");
    assert_eq!(
        (response.status, response.source.clone()),
        (503, Source::Envoy)
    );
    assert_eq!(response.header("x-upstream"), None, "not the held head");
    assert_eq!(response.flags, flags::UPSTREAM_REMOTE_RESET);
    assert_eq!(response.details, DETAILS);
}

#[test]
fn a_filter_that_answers_the_held_head_itself_wins_and_the_reset_changes_nothing() {
    let mut world = fixture().build().expect("starts");
    world.upstream("c", Reply::status(503).reset_after_headers());
    let s = world
        .request(0)
        .cluster("c")
        .header("x-fixture-response", "local-reply 299 mine")
        .send();
    let response = world.response(s).expect("answered");
    assert_eq!(response.status, 299);
    assert_eq!(response.source, Source::Filter);
    assert_eq!(
        response.flags, 0,
        "no UR: the reset came after the stream ended"
    );
    assert!(world.late_actions().is_empty());
}
