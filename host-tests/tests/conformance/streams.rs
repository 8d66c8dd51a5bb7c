//! A stream's callbacks in Envoy's order, pauses, local replies, disconnects (Envoy's
//! `FilterManager`, `DownstreamFilterManager::sendLocalReply`, wasm `Context`).

use super::common::{fixture, logged_result, result};
use breakwater_host_tests::{ms, AttemptKind, Callback, Reply, Source, StreamState};

use Callback::*;

#[test]
fn a_request_the_filter_continues_reaches_the_upstream_and_its_answer_the_client() {
    let mut world = fixture().build().expect("starts");
    world.upstream("c", Reply::ok().header("b", "2").body("pong").after(ms(3)));
    let s = world
        .request(0)
        .method("POST")
        .path("/x")
        .header("A", "1")
        .body("ping")
        .cluster("c")
        .send();
    let attempts = world.upstream_attempts("c");
    assert_eq!(attempts.len(), 1);
    let sent = &attempts[0].request;
    assert_eq!((sent.method(), sent.path()), ("POST", "/x"));
    assert_eq!(sent.header("a"), Some("1"), "names arrive lower-cased");
    assert_eq!(sent.body, b"ping");
    assert!(
        world.response(s).is_none(),
        "the upstream answers after 3 ms"
    );
    world.advance(ms(3));
    let response = world.response(s).expect("answered");
    assert_eq!(response.status, 200);
    assert_eq!(response.header("b"), Some("2"));
    assert_eq!(response.body_text(), "pong");
    assert_eq!(
        (response.source, response.details.as_str()),
        (Source::Upstream, "via_upstream")
    );
    assert_eq!(response.at, ms(3));
}

#[test]
fn callbacks_run_in_envoys_order_from_context_creation_to_deletion() {
    let mut world = fixture().build().expect("starts");
    world.upstream("c", Reply::ok().body("b").trailer("t", "1"));
    let s = world
        .request(0)
        .cluster("c")
        .body("x")
        .trailer("rt", "1")
        .send();
    assert_eq!(
        world.callbacks(s),
        vec![
            ContextCreate,
            RequestHeaders,
            RequestBody,
            RequestTrailers,
            ResponseHeaders,
            ResponseBody,
            ResponseTrailers,
            Log,
            Done,
            Delete
        ]
    );
    assert_eq!(
        world.upstream_attempts("c")[0].request.trailers.get("rt"),
        Some("1")
    );
    assert_eq!(
        world.response(s).expect("answered").trailers.get("t"),
        Some("1")
    );
}

#[test]
fn a_client_that_disconnects_mid_request_gets_log_done_delete_and_the_dc_flag() {
    let mut world = fixture().build().expect("starts");
    world.upstream("c", Reply::ok());
    let s = world
        .request(0)
        .cluster("c")
        .body("never read")
        .header("x-fixture-request", "pause")
        .header("x-fixture-log", "property-int response.flags")
        .send();
    world.disconnect(s);
    assert_eq!(world.stream_state(s), StreamState::Disconnected);
    assert_eq!(
        world.callbacks(s),
        vec![ContextCreate, RequestHeaders, Log, Done, Delete]
    );
    assert!(world.upstream_attempts("c").is_empty());
    assert_eq!(
        logged_result(&world, "property-int response.flags"),
        "16384",
        "DC is bit 14 of Envoy's legacy response flags"
    );
}

#[test]
fn a_request_paused_in_its_headers_goes_on_when_the_root_resumes_it() {
    let mut world = fixture().configuration("tick 100").build().expect("starts");
    world.upstream("c", Reply::ok());
    let s = world
        .request(0)
        .cluster("c")
        .body("b")
        .header("x-fixture-request", "resume-on-tick")
        .send();
    assert_eq!(world.callbacks(s), vec![ContextCreate, RequestHeaders]);
    assert!(
        world.upstream_attempts("c").is_empty(),
        "paused: nothing went upstream"
    );
    world.advance(ms(100));
    assert_eq!(
        &world.callbacks(s)[..3],
        &[ContextCreate, RequestHeaders, RequestBody],
        "the body the filter has not seen is delivered once resumed"
    );
    let attempts = world.upstream_attempts("c");
    assert_eq!(attempts.len(), 1);
    assert_eq!(
        attempts[0].request.at,
        ms(100),
        "it went upstream at the tick"
    );
    assert_eq!(world.stream_state(s), StreamState::Complete);
}

#[test]
fn the_filters_own_local_reply_passes_through_its_response_callbacks() {
    let mut world = fixture().build().expect("starts");
    world.upstream("c", Reply::ok());
    let s = world
        .request(0)
        .cluster("c")
        .body("unread")
        .header("x-fixture-request", "local-reply 418 teapot")
        .send();
    let response = world.response(s).expect("answered locally");
    assert_eq!(
        (response.status, response.body_text().as_str()),
        (418, "teapot")
    );
    assert_eq!(response.source, Source::Filter);
    assert_eq!(response.header("x-fixture"), Some("local"));
    assert_eq!(response.header("content-type"), Some("text/plain"));
    assert_eq!(
        result(&response, "local-reply 418 teapot"),
        "ok",
        "the filter's on_response_headers ran for its own reply and added its results"
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
        "the request body is never delivered after a local reply"
    );
    assert!(world.upstream_attempts("c").is_empty());
}

/// The held head is in Envoy's filter manager (its response headers are set) but was not
/// encoded to the client, so `DownstreamFilterManager::sendLocalReply` takes the
/// `sendDirectLocalReply` branch: the reply goes to the codec past every encoder filter.
#[test]
fn a_reply_from_the_root_while_the_response_is_paused_goes_straight_to_the_client() {
    let mut world = fixture().configuration("tick 10").build().expect("starts");
    world.upstream("c", Reply::ok().body("from upstream"));
    let s = world
        .request(0)
        .cluster("c")
        .header("x-fixture-response", "reply-on-tick 299")
        .send();
    world.advance(ms(10));
    let response = world.response(s).expect("the root's reply");
    assert_eq!(
        (response.status, response.body_text().as_str()),
        (299, "tick reply")
    );
    assert_eq!(response.header("x-fixture-reply"), Some("tick"));
    assert!(
        response.header("x-fixture-result").is_none(),
        "the reply bypassed the filter: its on_response_headers did not run again"
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
        ]
    );
}

#[test]
fn a_retry_dispatched_from_the_root_replaces_a_failed_response() {
    let mut world = fixture().configuration("tick 10").build().expect("starts");
    world.upstream("c", Reply::status(503));
    world.upstream("backup", Reply::ok().body("second try").after(ms(4)));
    let s = world
        .request(0)
        .cluster("c")
        .header("x-fixture-response", "retry-on-tick backup")
        .send();
    world.advance(ms(20));
    let response = world.response(s).expect("answered by the retry");
    assert_eq!(
        (response.status, response.body_text().as_str()),
        (200, "second try")
    );
    assert_eq!(response.header("x-fixture-retried"), Some("1"));
    assert_eq!(
        response.at,
        ms(14),
        "tick at 10 ms, the call answers 4 ms later"
    );
    let retry = &world.upstream_attempts("backup")[0];
    assert!(matches!(retry.request.kind, AttemptKind::Call { .. }));
}

#[test]
fn resuming_a_stream_whose_client_left_is_bad_argument() {
    let mut world = fixture().configuration("tick 10").build().expect("starts");
    world.upstream("c", Reply::ok());
    let s = world
        .request(0)
        .cluster("c")
        .header("x-fixture-request", "reply-on-tick 200")
        .send();
    world.disconnect(s);
    world.advance(ms(10));
    let tick = world.logs_containing("tick-action");
    assert_eq!(tick.len(), 1);
    assert!(
        tick[0].message.ends_with("effective=Err(BadArgument)"),
        "the context is gone: {}",
        tick[0].message
    );
}

#[test]
fn request_headers_are_out_of_reach_in_the_response_phase_as_in_envoy() {
    let mut world = fixture().build().expect("starts");
    world.upstream("c", Reply::ok());
    let failure = world
        .request(0)
        .cluster("c")
        .header("x-fixture-response", "header request get x-a")
        .try_send()
        .expect_err("Envoy answers BadArgument and the SDK panics");
    assert_eq!(failure.callback, Some(ResponseHeaders));
    let panic = failure.panic.clone().unwrap_or_default();
    assert!(
        panic.contains("unexpected status: 2"),
        "the SDK's panic is shown: {failure}"
    );
    assert!(
        failure.to_string().contains("log ("),
        "the report carries the log: {failure}"
    );
    let again = world
        .try_advance(ms(1))
        .expect_err("the world stays failed");
    assert_eq!(again.message, failure.message);
}

#[test]
fn the_filter_can_rewrite_bodies_on_their_way() {
    let mut world = fixture().build().expect("starts");
    world.upstream("c", Reply::ok().body("upstream"));
    let s = world
        .request(0)
        .cluster("c")
        .body("original")
        .header("x-fixture-request-body", "body request set replaced")
        .header("x-fixture-response-body", "body response append !")
        .send();
    assert_eq!(world.upstream_attempts("c")[0].request.body, b"replaced");
    assert_eq!(
        world.response(s).expect("answered").body_text(),
        "upstream!"
    );
}

#[test]
fn a_filter_that_resets_the_stream_leaves_the_client_without_a_response() {
    let mut world = fixture().build().expect("starts");
    world.upstream("c", Reply::ok());
    let s = world
        .request(0)
        .cluster("c")
        .header("x-fixture-request", "reset")
        .send();
    assert_eq!(
        world.stream_state(s),
        StreamState::Reset {
            details: "wasm_close_stream".into()
        }
    );
    assert!(world.response(s).is_none());
}

#[test]
fn requests_arrive_when_told_and_clients_leave_when_told() {
    let mut world = fixture().build().expect("starts");
    world.upstream("c", Reply::ok().after(ms(50)));
    let late = world.request(0).cluster("c").at(ms(30)).send();
    let leaver = world
        .request(0)
        .cluster("c")
        .disconnect_after(ms(20))
        .send();
    assert_eq!(world.stream_state(late), StreamState::Scheduled);
    world.advance(ms(30));
    assert_eq!(world.stream_state(late), StreamState::Open);
    assert_eq!(world.stream_state(leaver), StreamState::Disconnected);
    assert_eq!(
        world.run_until_idle(),
        ms(50),
        "the late request is answered at 80 ms"
    );
    assert!(
        !world.upstream_attempts("c")[0].delivered,
        "the leaver's answer had no one to reach"
    );
}

#[test]
fn a_request_routed_to_an_unscripted_cluster_fails_with_a_hint() {
    let mut world = fixture().build().expect("starts");
    let failure = world
        .request(0)
        .cluster("nobody")
        .try_send()
        .expect_err("the cluster has no upstream");
    assert!(
        failure.message.contains("world.upstream(\"nobody\""),
        "the report says how to fix the test: {failure}"
    );
}

#[test]
fn a_local_reply_takes_effect_only_after_the_callback_returns() {
    let mut world = fixture().build().expect("starts");
    world.upstream("c", Reply::ok());
    let s = world
        .request(0)
        .cluster("c")
        .header(
            "x-fixture-request",
            "local-reply 418 t; property-int response.code; shared-set after reply 0",
        )
        .send();
    let response = world.response(s).expect("answered locally");
    assert_eq!(response.status, 418);
    assert_eq!(
        result(&response, "property-int response.code"),
        "missing",
        "inside the callback the reply has not happened yet"
    );
    assert_eq!(
        result(&response, "shared-set after reply 0"),
        "Ok",
        "the callback runs to its end"
    );
}
