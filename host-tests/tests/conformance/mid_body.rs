//! An upstream that sends its head and half its body, then resets (`Reply::reset_mid_body`).
//! Envoy's router answers the reset with its own 502, flag UPE, details
//! `upstream_reset_after_response_started{protocol_error}` (`Filter::onUpstreamReset`,
//! `source/common/router/router.cc`), and `FilterManager::sendLocalReply`
//! (`source/common/http/filter_manager.cc`) makes of it either a reset of the client's stream
//! (the head already went to the client) or a reply written straight to the client past the
//! filter chain (`sendDirectLocalReply`: the filter held the head). Measured on Envoy 1.40 in
//! `envoy/tests/faults/mid_body.rs`.

use super::common::{
    assert_direct_reply_past_the_held_head, fixture, logged_result, seen_at_log, SEEN_AT_LOG,
};
use breakwater_host_tests::{
    flags, ms, Callback::*, Reply, Source, StreamState, MID_BODY_DEFAULT_LEN,
};

const DETAILS: &str = "upstream_reset_after_response_started{protocol_error}";
#[test]
fn upe_is_bit_23() {
    assert_eq!(flags::UPSTREAM_PROTOCOL_ERROR, 0x80_0000);
}

#[test]
fn a_head_the_filter_let_pass_then_a_reset_mid_body_resets_the_clients_stream() {
    let mut world = fixture().build().expect("starts");
    world.upstream("c", Reply::ok().body("0123456789").reset_mid_body());
    let s = world
        .request(0)
        .cluster("c")
        .header("x-fixture-response", "header response get content-length")
        .header("x-fixture-response-body", "body response get")
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
            ResponseBody,
            Log,
            Done,
            Delete
        ],
        "the half body that came passed the filter too; no trailers, no second response"
    );
    assert_eq!(
        logged_result(&world, "header response get content-length"),
        "10",
        "the head announced the whole body"
    );
    assert_eq!(
        logged_result(&world, "body response get"),
        "01234",
        "the first half came before the reset"
    );
    assert_eq!(
        seen_at_log(&world),
        (
            "200".to_string(),
            flags::UPSTREAM_PROTOCOL_ERROR.to_string(),
            DETAILS.to_string()
        ),
        "response.code stays the upstream's; the reset adds UPE and its details"
    );
}

#[test]
fn a_head_the_filter_held_then_a_reset_mid_body_is_envoys_502_sent_past_the_filter() {
    let mut world = fixture().build().expect("starts");
    world.upstream("c", Reply::status(503).reset_mid_body());
    let s = world
        .request(0)
        .cluster("c")
        .header("x-fixture-response", "pause")
        .header("x-fixture-log", SEEN_AT_LOG)
        .send();
    assert_direct_reply_past_the_held_head(
        &world,
        s,
        502,
        "protocol error",
        flags::UPSTREAM_PROTOCOL_ERROR,
        DETAILS,
    );
}

#[test]
fn without_a_body_the_head_announces_the_default_length() {
    let mut world = fixture().build().expect("starts");
    world.upstream("c", Reply::ok().reset_mid_body());
    world
        .request(0)
        .cluster("c")
        .header("x-fixture-response", "header response get content-length")
        .header("x-fixture-response-body", "body response get")
        .send();
    assert_eq!(
        logged_result(&world, "header response get content-length"),
        MID_BODY_DEFAULT_LEN.to_string()
    );
    assert_eq!(
        logged_result(&world, "body response get").len(),
        MID_BODY_DEFAULT_LEN / 2
    );
}

#[test]
fn a_later_reset_leaves_the_held_response_open_until_it_comes() {
    let mut world = fixture().build().expect("starts");
    world.upstream(
        "c",
        Reply::status(503)
            .after(ms(10))
            .reset_mid_body_after(ms(40)),
    );
    let s = world
        .request(0)
        .cluster("c")
        .timeout(ms(20))
        .header("x-fixture-response", "pause")
        .send();
    world.advance(ms(49));
    assert_eq!(
        world.stream_state(s),
        StreamState::Open,
        "held between head and reset; the route timeout does not apply to a started response"
    );
    assert_eq!(world.callbacks(s).last(), Some(&ResponseHeaders));
    world.advance(ms(1));
    let response = world.response(s).expect("Envoy answered at the reset");
    assert_eq!((response.status, response.at), (502, ms(50)));
}

#[test]
fn a_filter_reply_before_the_reset_wins_and_the_reset_changes_nothing() {
    let mut world = fixture().configuration("tick 100").build().expect("starts");
    world.upstream("c", Reply::status(503).reset_mid_body_after(ms(300)));
    let s = world
        .request(0)
        .cluster("c")
        .header("x-fixture-response", "reply-on-tick 299")
        .send();
    world.advance(ms(1_000));
    let response = world.response(s).expect("answered");
    assert_eq!((response.status, response.at), (299, ms(100)));
    assert_eq!(response.source, Source::Filter);
    assert_eq!(
        response.flags, 0,
        "no UPE: the reset came after the stream ended"
    );
    assert!(world.late_actions().is_empty());
}

#[test]
fn a_client_that_leaves_before_the_reset_has_only_the_dc_flag() {
    let mut world = fixture().build().expect("starts");
    world.upstream("c", Reply::status(503).reset_mid_body_after(ms(300)));
    let s = world
        .request(0)
        .cluster("c")
        .header("x-fixture-response", "pause")
        .header("x-fixture-log", SEEN_AT_LOG)
        .disconnect_after(ms(50))
        .send();
    world.advance(ms(1_000));
    assert_eq!(world.stream_state(s), StreamState::Disconnected);
    assert_eq!(
        seen_at_log(&world),
        (
            "503".to_string(),
            flags::DOWNSTREAM_CONNECTION_TERMINATION.to_string(),
            "via_upstream".to_string()
        )
    );
}

#[test]
fn a_call_that_meets_a_reset_mid_body_comes_back_as_a_reset_when_the_upstream_resets() {
    let mut world = fixture().configuration("tick 100").build().expect("starts");
    world.upstream("c", Reply::status(503));
    world.upstream(
        "auth",
        Reply::ok()
            .body("whole")
            .after(ms(10))
            .reset_mid_body_after(ms(30)),
    );
    let s = world
        .request(0)
        .cluster("c")
        .header("x-fixture-response", "retry-on-tick auth")
        .send();
    world.advance(ms(139));
    assert_eq!(
        world.stream_state(s),
        StreamState::Open,
        "the call is buffered whole: nothing comes back at its head (110 ms)"
    );
    world.advance(ms(1));
    let response = world.response(s).expect("the fixture answered the reset");
    assert_eq!((response.status, response.at), (502, ms(140)));
    assert_eq!(response.header("x-fixture-retried"), Some("reset"));
    assert_eq!(
        world.logs_containing("retry-response").len(),
        1,
        "one callback"
    );
    assert!(world.logs_containing("retry-response")[0]
        .message
        .contains("status=0 headers=0"));
}

#[test]
fn a_call_whose_reset_is_no_earlier_than_its_timeout_is_a_504() {
    let mut world = fixture().configuration("tick 100").build().expect("starts");
    world.upstream("c", Reply::status(503));
    // The fixture's retries time out after 1 s.
    world.upstream("auth", Reply::ok().reset_mid_body_after(ms(1_000)));
    let s = world
        .request(0)
        .cluster("c")
        .header("x-fixture-response", "retry-on-tick auth")
        .send();
    world.advance(ms(2_000));
    let response = world.response(s).expect("answered");
    assert_eq!((response.status, response.at), (504, ms(1_100)));
}

#[test]
fn a_held_stream_that_envoy_ends_drops_its_retrys_late_answer() {
    let mut world = fixture().configuration("tick 100").build().expect("starts");
    world.upstream("c", Reply::status(503).reset_mid_body_after(ms(150)));
    world.upstream("auth", Reply::ok().after(ms(200)));
    let s = world
        .request(0)
        .cluster("c")
        .header("x-fixture-response", "retry-on-tick auth")
        .send();
    world.advance(ms(1_000));
    let response = world.response(s).expect("Envoy answered");
    assert_eq!(
        (response.status, response.at),
        (502, ms(150)),
        "Envoy's 502 ends the held stream while its retry is in flight"
    );
    let attempts = world.upstream_attempts("auth");
    assert_eq!(attempts.len(), 1);
    assert!(
        attempts[0].delivered,
        "the call still comes back to the root at 300 ms"
    );
    let line = &world.logs_containing("retry-response")[0].message;
    assert!(
        line.contains("effective=Err(BadArgument)"),
        "its context is gone: {line}"
    );
    assert!(world.late_actions().is_empty());
}
