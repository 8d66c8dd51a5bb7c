//! A request body that streams in over time, and an upstream that answers before it ends
//! (Envoy's `FilterManager::decodeData` in `source/common/http/filter_manager.cc`, the router's
//! `decodeData`, `onRequestComplete`, `onUpstreamComplete` in `source/common/router/router.cc`).

use super::common::fixture;
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

fn body_callbacks(world: &World, s: breakwater_host_tests::StreamId) -> usize {
    world
        .callbacks(s)
        .iter()
        .filter(|c| **c == RequestBody)
        .count()
}

#[test]
fn each_chunk_reaches_the_filter_in_its_own_callback_and_the_upstream_as_it_passes() {
    let mut world = fixture().build().expect("starts");
    world.upstream("c", Reply::ok().after(ms(5)));
    let s = world
        .request(0)
        .method("PUT")
        .header("x-fixture-every-request-body", "chunk")
        .stream_body(["ab", "cd", "ef"], ms(10))
        .cluster("c")
        .send();
    let attempt = |w: &World| w.upstream_attempts("c")[0].request.clone();
    assert_eq!(world.callbacks(s), vec![ContextCreate, RequestHeaders]);
    assert_eq!(
        (
            attempt(&world).at,
            attempt(&world).body.len(),
            attempt(&world).complete
        ),
        (ms(0), 0, false),
        "the router sends the headers upstream at once, before any body"
    );
    world.advance(ms(10));
    assert_eq!(attempt(&world).body, b"ab");
    world.advance(ms(20));
    assert_eq!(
        (attempt(&world).body.as_slice(), attempt(&world).complete),
        (&b"abcdef"[..], true)
    );
    assert_eq!(
        chunks_seen(&world),
        vec!["size=2 eos=false", "size=2 eos=false", "size=2 eos=true"],
        "one on_http_request_body per chunk, end_of_stream on the last"
    );
    assert!(
        world.response(s).is_none(),
        "a normal reply waits for the end"
    );
    world.advance(ms(5));
    let response = world
        .response(s)
        .expect("answered 5 ms after the request ended");
    assert_eq!((response.status, response.at), (200, ms(35)));
    assert_eq!(
        response.header("x-envoy-upstream-service-time"),
        Some("5"),
        "the router's service time counts from the complete request"
    );
}

#[test]
fn an_end_of_stream_that_comes_alone_is_an_empty_body_callback_or_the_trailers() {
    let mut world = fixture().build().expect("starts");
    world.upstream("c", Reply::ok());
    let s = world
        .request(0)
        .header("x-fixture-every-request-body", "chunk")
        .body_chunk(ms(0), "ab")
        .end_stream_after(ms(40))
        .cluster("c")
        .send();
    assert_eq!(chunks_seen(&world), vec!["size=2 eos=false"]);
    world.advance(ms(40));
    assert_eq!(
        chunks_seen(&world),
        vec!["size=2 eos=false", "size=0 eos=true"]
    );
    assert_eq!(world.stream_state(s), StreamState::Complete);

    let mut world = fixture().build().expect("starts");
    world.upstream("c", Reply::ok());
    let s = world
        .request(0)
        .body_chunks([(ms(0), "ab"), (ms(10), "cd")])
        .trailer("x-digest", "d1")
        .end_stream_after(ms(40))
        .cluster("c")
        .send();
    world.advance(ms(39));
    assert!(!world.upstream_attempts("c")[0].request.complete);
    world.advance(ms(1));
    assert_eq!(
        &world.callbacks(s)[..5],
        [
            ContextCreate,
            RequestHeaders,
            RequestBody,
            RequestBody,
            RequestTrailers
        ]
    );
    let sent = &world.upstream_attempts("c")[0].request;
    assert_eq!((sent.body.as_slice(), sent.complete), (&b"abcd"[..], true));
    assert_eq!(sent.trailers.get("x-digest"), Some("d1"));
}

#[test]
fn a_filter_holding_the_headers_gets_what_arrived_meanwhile_in_one_body_callback() {
    let mut world = fixture().configuration("tick 100").build().expect("starts");
    world.upstream("c", Reply::ok());
    let s = world
        .request(0)
        .header("x-fixture-request", "resume-on-tick")
        .header("x-fixture-every-request-body", "chunk")
        .stream_body(["ab", "cd"], ms(10))
        .cluster("c")
        .send();
    world.advance(ms(50));
    assert_eq!(
        world.callbacks(s),
        vec![ContextCreate, RequestHeaders],
        "Envoy buffers the chunks while the filter stops all (handleDataIfStopAll)"
    );
    assert!(world.upstream_attempts("c").is_empty());
    world.advance(ms(50));
    assert_eq!(chunks_seen(&world), vec!["size=4 eos=true"]);
    assert_eq!(world.upstream_attempts("c")[0].request.body, b"abcd");
    assert_eq!(world.stream_state(s), StreamState::Complete);
}

#[test]
fn a_filter_pausing_in_its_body_is_called_for_later_chunks_with_all_it_holds() {
    let mut world = fixture().build().expect("starts");
    world.upstream("c", Reply::ok());
    let s = world
        .request(0)
        .header("x-fixture-request-body", "pause")
        .header("x-fixture-every-request-body", "chunk")
        .stream_body(["ab", "cd", "ef"], ms(10))
        .cluster("c")
        .send();
    world.advance(ms(10));
    assert_eq!(world.upstream_attempts("c")[0].request.body, b"", "held");
    world.advance(ms(10));
    assert_eq!(
        world.upstream_attempts("c")[0].request.body,
        b"abcd",
        "the second callback saw the buffer with the new chunk and continued: both went on"
    );
    world.advance(ms(10));
    assert_eq!(
        chunks_seen(&world),
        vec!["size=2 eos=false", "size=4 eos=false", "size=2 eos=true"],
        "StopIterationAndBuffer: later chunks are added to the held body and the filter called"
    );
    let sent = &world.upstream_attempts("c")[0].request;
    assert_eq!(
        (sent.body.as_slice(), sent.complete),
        (&b"abcdef"[..], true)
    );
    assert_eq!(world.stream_state(s), StreamState::Complete);
}

#[test]
fn an_early_answer_ends_the_stream_and_envoy_drops_the_rest_of_the_body() {
    let mut world = fixture().build().expect("starts");
    world.upstream("c", Reply::status(503).early().after(ms(5)));
    let s = world
        .request(0)
        .method("POST")
        .stream_body(["ab", "cd"], ms(10))
        .cluster("c")
        .send();
    world.advance(ms(5));
    let response = world.response(s).expect("the early 503 reached the client");
    assert_eq!((response.status, response.at), (503, ms(5)));
    assert_eq!(
        response.header("x-envoy-upstream-service-time"),
        None,
        "a premature response gets no service time"
    );
    world.run_until_idle();
    assert_eq!(
        body_callbacks(&world, s),
        0,
        "no chunk came before the answer"
    );
    let sent = &world.upstream_attempts("c")[0].request;
    assert_eq!(
        (sent.body.len(), sent.complete),
        (0, false),
        "the upstream saw the headers only, and the request never completed"
    );
}

#[test]
fn a_held_complete_response_still_stops_the_body_from_reaching_the_filter() {
    let mut world = fixture().build().expect("starts");
    world.upstream("c", Reply::status(503).body("busy").early());
    let s = world
        .request(0)
        .method("POST")
        .header("x-fixture-response", "pause")
        .header("x-fixture-every-request-body", "chunk")
        .body_chunk(ms(0), "ab")
        .stream_body(["cd", "ef"], ms(10))
        .cluster("c")
        .send();
    assert_eq!(chunks_seen(&world), vec!["size=2 eos=false"]);
    world.advance(ms(100));
    assert_eq!(
        world.callbacks(s),
        vec![ContextCreate, RequestHeaders, RequestBody, ResponseHeaders],
        "the whole 503 reached Envoy (local_complete_), so decodeData drops the later chunks \
         although the filter holds that 503: it never sees the request's end"
    );
    let sent = &world.upstream_attempts("c")[0].request;
    assert_eq!(
        (sent.body.as_slice(), sent.complete),
        (&b"ab"[..], false),
        "the router reset the upstream request when its response completed first"
    );
    assert_eq!(
        world.stream_state(s),
        StreamState::Open,
        "the filter still holds the 503"
    );
}

#[test]
fn while_the_response_is_still_open_later_chunks_pass_the_filter_and_reach_the_upstream() {
    let mut world = fixture().build().expect("starts");
    world.upstream("c", Reply::status(503).early().reset_mid_body_after(ms(50)));
    let s = world
        .request(0)
        .method("POST")
        .header("x-fixture-response", "pause")
        .stream_body(["ab", "cd"], ms(10))
        .cluster("c")
        .send();
    world.advance(ms(20));
    assert_eq!(
        world.callbacks(s),
        vec![
            ContextCreate,
            RequestHeaders,
            ResponseHeaders,
            RequestBody,
            RequestBody
        ],
        "the head came and is held, its end did not: Envoy keeps decoding the request body"
    );
    let sent = &world.upstream_attempts("c")[0].request;
    assert_eq!(
        (sent.body.as_slice(), sent.complete),
        (&b"abcd"[..], true),
        "the router kept sending the body to the upstream that answered early"
    );
    world.advance(ms(30));
    let response = world.response(s).expect("Envoy answered the reset");
    assert_eq!(
        (response.status, response.source, response.flags),
        (502, Source::Envoy, flags::UPSTREAM_PROTOCOL_ERROR),
        "the reset under the held head is Envoy's 502, sent past the filter"
    );
    assert_eq!(
        &world.callbacks(s)[5..],
        [Log, Done, Delete],
        "nothing more reached the filter"
    );
}

#[test]
fn the_route_timeout_starts_when_the_request_has_ended() {
    let mut world = fixture().build().expect("starts");
    world.upstream("c", Reply::timeout());
    let s = world
        .request(0)
        .timeout(ms(100))
        .stream_body(["ab", "cd"], ms(25))
        .cluster("c")
        .send();
    world.advance(ms(149));
    assert!(world.response(s).is_none(), "100 ms from the end at 50 ms");
    world.advance(ms(1));
    assert_eq!(world.response(s).expect("timed out").status, 504);

    let mut world = fixture().build().expect("starts");
    world.upstream("c", Reply::ok().early().after(ms(500)));
    let s = world
        .request(0)
        .timeout(ms(100))
        .stream_body(["ab"], ms(20))
        .cluster("c")
        .send();
    world.run_until_idle();
    let response = world.response(s).expect("timed out");
    assert_eq!(
        (response.status, response.at),
        (504, ms(120)),
        "an early answer due after the timeout loses to it"
    );
    assert!(!world.upstream_attempts("c")[0].delivered);
}
