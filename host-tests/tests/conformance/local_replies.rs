//! What a local reply looks like: gRPC requests get a trailers-only reply, `HEAD` requests no
//! body, `local_reply_config` rewrites every reply (`Utility::prepareLocalReply` and
//! `encodeLocalReply` in `source/common/http/utility.cc`, `LocalReplyImpl::rewrite` in
//! `source/common/local_reply/local_reply.cc`, `DownstreamFilterManager::sendLocalReply` and
//! `sendDirectLocalReply` in `source/common/http/filter_manager.cc`).

use super::common::{fixture, result, seen_at_log, SEEN_AT_LOG};
use breakwater_host_tests::{ms, Callback, Reply, Response, Source, StreamId, World};
use std::cell::Cell;
use std::rc::Rc;

use Callback::*;

/// A gRPC call to the fixture that runs `script` in its request headers.
fn grpc_call(world: &mut World, script: &str) -> StreamId {
    world
        .request(0)
        .method("POST")
        .path("/pkg.Svc/Method")
        .header("content-type", "application/grpc")
        .header("x-fixture-request", script)
        .header("x-fixture-log", SEEN_AT_LOG)
        .cluster("c")
        .send()
}

fn grpc_world() -> World {
    let mut world = fixture().build().expect("starts");
    world.upstream("c", Reply::ok());
    world
}

fn answered(world: &World, s: StreamId) -> Response {
    world.response(s).expect("answered")
}

#[test]
fn a_local_reply_to_a_grpc_request_is_trailers_only_with_the_mapped_status() {
    let mut world = grpc_world();
    let s = grpc_call(&mut world, "local-reply 503 no capacity");
    let response = answered(&world, s);
    assert_eq!(response.status, 200, "a gRPC reply is HTTP 200");
    assert_eq!(response.header("content-type"), Some("application/grpc"));
    assert_eq!(
        response.header("grpc-status"),
        Some("14"),
        "503 is UNAVAILABLE"
    );
    assert_eq!(response.header("grpc-message"), Some("no capacity"));
    assert_eq!(response.header("content-length"), None);
    assert!(response.body.is_empty(), "the body became grpc-message");
    assert_eq!(
        response.header("x-fixture"),
        Some("local"),
        "the filter's headers stay"
    );
    assert_eq!(response.source, Source::Filter);
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
        "trailers-only: the headers end the stream, no on_response_body"
    );
    assert_eq!(
        seen_at_log(&world).0,
        "503",
        "response.code is the HTTP status the local reply was given \
         (LocalReplyImpl::rewrite sets it before the gRPC conversion)"
    );
}

#[test]
fn grpc_status_follows_envoys_table_for_each_http_status() {
    let mut world = grpc_world();
    for (http, grpc) in [
        (400, "13"),
        (401, "16"),
        (403, "7"),
        (404, "12"),
        (429, "14"),
        (502, "14"),
        (503, "14"),
        (504, "14"),
        (500, "2"),
        (418, "2"),
    ] {
        let s = grpc_call(&mut world, &format!("local-reply {http} x"));
        assert_eq!(
            answered(&world, s).header("grpc-status"),
            Some(grpc),
            "HTTP {http}"
        );
    }
}

#[test]
fn grpc_message_is_percent_encoded() {
    let mut world = grpc_world();
    let s = grpc_call(&mut world, "local-reply 503 50% off~ café");
    assert_eq!(
        answered(&world, s).header("grpc-message"),
        Some("50%25 off%7E caf%C3%A9"),
        "`%`, `~` and every byte outside the printable ASCII below `~` are escaped, upper-case hex"
    );
}

#[test]
fn a_grpc_status_the_filter_gives_wins_over_the_mapped_one() {
    let mut world = grpc_world();
    let s = grpc_call(&mut world, "local-reply-headers 503 grpc-status=9 busy");
    assert_eq!(
        answered(&world, s).header("grpc-status"),
        Some("9"),
        "a grpc-status header the reply carries is kept"
    );
    let s = grpc_call(&mut world, "grpc-reply 8 slow down");
    let response = answered(&world, s);
    assert_eq!(
        (
            response.status,
            response.header("grpc-status"),
            response.header("grpc-message")
        ),
        (200, Some("8"), Some("slow down")),
        "send_grpc_response's status argument is used as is"
    );
}

#[test]
fn a_grpc_web_or_pathless_request_gets_a_plain_http_reply() {
    let mut world = grpc_world();
    let s = world
        .request(0)
        .method("POST")
        .header("content-type", "application/grpc-web")
        .header("x-fixture-request", "local-reply 503 busy")
        .cluster("c")
        .send();
    let response = answered(&world, s);
    assert_eq!(
        (response.status, response.body_text().as_str()),
        (503, "busy")
    );
    assert_eq!(response.header("grpc-status"), None);
}

#[test]
fn envoys_own_replies_to_a_grpc_request_are_trailers_only_too() {
    let mut world = fixture().build().expect("starts");
    world.upstream("c", Reply::timeout());
    let s = world
        .request(0)
        .method("POST")
        .path("/pkg.Svc/Method")
        .header("content-type", "application/grpc+proto")
        .timeout(ms(100))
        .cluster("c")
        .send();
    world.advance(ms(100));
    let response = answered(&world, s);
    assert_eq!(
        (
            response.status,
            response.header("grpc-status"),
            response.header("grpc-message")
        ),
        (200, Some("14"), Some("upstream request timeout")),
        "the router's 504 becomes UNAVAILABLE"
    );
    assert_eq!(response.source, Source::Envoy);
}

#[test]
fn a_direct_reply_past_a_held_head_is_still_trailers_only_for_grpc() {
    let mut world = fixture().configuration("tick 10").build().expect("starts");
    world.upstream("c", Reply::ok().body("from upstream"));
    let s = world
        .request(0)
        .method("POST")
        .path("/pkg.Svc/Method")
        .header("content-type", "application/grpc")
        .header("x-fixture-response", "reply-on-tick 503")
        .cluster("c")
        .send();
    world.advance(ms(10));
    let response = answered(&world, s);
    assert_eq!(
        (
            response.status,
            response.header("grpc-status"),
            response.header("grpc-message")
        ),
        (200, Some("14"), Some("tick reply")),
        "sendDirectLocalReply builds the reply the same way"
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
        "one on_response_headers, the held head's: the reply went past the filter"
    );
}

#[test]
fn a_local_reply_to_a_head_request_has_no_body_but_keeps_its_length() {
    let mut world = fixture().build().expect("starts");
    world.upstream("c", Reply::ok());
    let s = world
        .request(0)
        .method("HEAD")
        .header("x-fixture-request", "local-reply 503 busy")
        .cluster("c")
        .send();
    let response = answered(&world, s);
    assert_eq!(response.status, 503);
    assert!(response.body.is_empty());
    assert_eq!(response.header("content-length"), Some("4"));
    assert_eq!(response.header("content-type"), Some("text/plain"));
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
        "the headers end the stream"
    );
}

#[test]
fn an_empty_local_reply_loses_the_content_headers_the_filter_gave() {
    let mut world = fixture().build().expect("starts");
    world.upstream("c", Reply::ok());
    let s = world
        .request(0)
        .header(
            "x-fixture-request",
            "local-reply-headers 503 content-type=application/json,content-length=9,x-a=1",
        )
        .cluster("c")
        .send();
    let response = answered(&world, s);
    assert_eq!(response.header("content-type"), None);
    assert_eq!(response.header("content-length"), None);
    assert_eq!(response.header("x-a"), Some("1"));
}

#[test]
fn local_reply_config_rewrites_every_local_reply_the_filters_and_envoys() {
    let seen = Rc::new(Cell::new(0));
    let count = Rc::clone(&seen);
    let mut world = fixture()
        .local_reply_config(move |edit| {
            count.set(count.get() + 1);
            if edit.status == 503 {
                edit.status = 429;
                edit.body = b"{\"error\":\"busy\"}\n".to_vec();
                edit.content_type = "application/json".into();
                edit.headers.add("x-mapped", edit.details);
            }
        })
        .build()
        .expect("starts");
    world.upstream("c", Reply::ok());
    let s = world
        .request(0)
        .header("x-fixture-request", "local-reply 503 busy")
        .header("x-fixture-log", SEEN_AT_LOG)
        .cluster("c")
        .send();
    let response = answered(&world, s);
    assert_eq!(response.status, 429, "the mapper's status");
    assert_eq!(response.body_text(), "{\"error\":\"busy\"}\n");
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert_eq!(response.header("content-length"), Some("17"));
    assert_eq!(
        response.header("x-mapped"),
        Some(""),
        "the filter gave no details"
    );
    assert_eq!(
        result(&response, "local-reply 503 busy"),
        "ok",
        "the filter saw the rewritten reply in its response callbacks"
    );
    assert_eq!(
        seen_at_log(&world).0,
        "429",
        "response.code follows the rewrite"
    );

    world.cluster_unhealthy("c");
    let s = world.request(0).cluster("c").send();
    let response = answered(&world, s);
    assert_eq!(
        (response.status, response.header("x-mapped")),
        (429, Some("no_healthy_upstream")),
        "Envoy's own reply is rewritten too"
    );
    assert_eq!(seen.get(), 2, "the hook ran once per local reply");

    let s = world
        .request(0)
        .method("POST")
        .path("/pkg.Svc/Method")
        .header("content-type", "application/grpc")
        .cluster("c")
        .send();
    let response = answered(&world, s);
    assert_eq!(
        (
            response.header("grpc-status"),
            response.header("grpc-message")
        ),
        (Some("14"), Some("{\"error\":\"busy\"}")),
        "gRPC: the rewritten 429 maps to UNAVAILABLE, the JSON body's newline is dropped"
    );
}

#[test]
fn a_rewritten_body_takes_the_body_formats_content_type_unless_the_rewrite_set_its_own() {
    let mut world = fixture()
        .local_reply_config(|edit| {
            edit.body = b"rewritten".to_vec();
            if edit.status == 500 {
                edit.headers.replace("content-type", "text/x-custom");
            }
        })
        .build()
        .expect("starts");
    world.upstream("c", Reply::ok());
    let s = world
        .request(0)
        .header(
            "x-fixture-request",
            "local-reply-headers 503 content-type=text/html <b>busy</b>",
        )
        .cluster("c")
        .send();
    assert_eq!(
        answered(&world, s).header("content-type"),
        Some("text/plain"),
        "the filter's content type described a body that is gone"
    );
    let s = world
        .request(0)
        .header(
            "x-fixture-request",
            "local-reply-headers 500 content-type=text/html <b>oops</b>",
        )
        .cluster("c")
        .send();
    assert_eq!(
        answered(&world, s).header("content-type"),
        Some("text/x-custom")
    );
}
