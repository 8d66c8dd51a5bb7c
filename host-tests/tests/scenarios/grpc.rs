//! gRPC calls (POLICY.md "gRPC requests"): the outcome is the `grpc-status` of the reply, read
//! from trailers-only headers, from the trailers, or from how a stream without trailers ended;
//! while open, a gRPC call gets a gRPC fallback. A model-based property test holds the breaker's
//! consecutive count to the same rules over any sequence of replies.

use breakwater_host_tests::{ms, Reply, Response, StreamId, World};
use proptest::prelude::*;
use serde_json::json;

use crate::common::{assert_no_errors, breaker_only, count, response, world, CLUSTER};

const GRPC: &str = "application/grpc";

/// A breaker that opens after `threshold` failed calls and stays open 30 s.
fn grpc_world(threshold: u32) -> World {
    world(
        2,
        &breaker_only(json!({ "failure_threshold": threshold, "timeout": "30s" })),
    )
}

/// A unary gRPC call on `worker`, run until it has its response.
fn call(w: &mut World, worker: usize) -> StreamId {
    let s = w
        .request(worker)
        .method("POST")
        .path("/pkg.Service/Method")
        .header("content-type", GRPC)
        .header("te", "trailers")
        .body(b"\0\0\0\0\x02\x08\x01".to_vec())
        .cluster(CLUSTER)
        .send();
    w.advance(ms(10));
    s
}

/// An error before any message: the status in the headers, which end the stream.
fn trailers_only(code: &str) -> Reply {
    Reply::status(200)
        .header("content-type", GRPC)
        .header("grpc-status", code)
        .header("grpc-message", "from the server")
}

/// One message, then the status in the trailers.
fn in_trailers(code: &str) -> Reply {
    Reply::status(200)
        .header("content-type", GRPC)
        .body(b"\0\0\0\0\x02\x08\x07".to_vec())
        .trailer("grpc-status", code)
}

/// One message, then the end of the stream without trailers.
fn without_trailers() -> Reply {
    Reply::status(200)
        .header("content-type", GRPC)
        .body(b"\0\0\0\0\x02\x08\x07".to_vec())
}

#[track_caller]
fn assert_grpc_fallback(r: &Response, code: &str) {
    assert_eq!(r.status, 200, "a gRPC reply is HTTP 200: {r:?}");
    assert_eq!(r.header("content-type"), Some(GRPC), "{r:?}");
    assert_eq!(r.header("grpc-status"), Some(code), "{r:?}");
    assert_eq!(
        r.header("grpc-message"),
        Some("breakwater: circuit breaker open"),
        "{r:?}"
    );
    assert_eq!(r.header("x-breakwater-breaker"), Some("open"));
    assert!(r.header("retry-after").is_some());
    let pushback: u64 = r
        .header("grpc-retry-pushback-ms")
        .and_then(|ms| ms.parse().ok())
        .unwrap_or_else(|| panic!("gRFC A6 pushback: {r:?}"));
    assert!(
        (26_000..=33_000).contains(&pushback),
        "the open time left, in ms (30 s ± 10%): {pushback}"
    );
    assert!(r.body.is_empty(), "trailers-only: no body");
}

#[test]
fn trailers_only_failures_open_the_breaker_and_the_fallback_is_a_grpc_reply() {
    let mut w = grpc_world(3);
    w.upstream(CLUSTER, trailers_only("14"));
    for i in 0..3 {
        let s = call(&mut w, i % 2);
        assert_eq!(response(&w, s).header("grpc-status"), Some("14"));
    }
    assert_eq!(
        count(&w, "failures_total"),
        3,
        "UNAVAILABLE counts by default"
    );
    assert_eq!(count(&w, "breaker_opened_total"), 1);
    let s = call(&mut w, 1);
    assert_grpc_fallback(&response(&w, s), "14");
    assert_eq!(w.upstream_attempts(CLUSTER).len(), 3, "the upstream rests");
    assert_no_errors(&w);
}

#[test]
fn a_status_in_the_trailers_is_read_there_and_ok_resets_the_count() {
    let mut w = grpc_world(3);
    w.upstream(
        CLUSTER,
        Reply::sequence([
            in_trailers("13"),
            in_trailers("13"),
            in_trailers("0"),
            in_trailers("13"),
            in_trailers("13"),
        ]),
    );
    for i in 0..5 {
        let s = call(&mut w, i % 2);
        let r = response(&w, s);
        assert_eq!(r.body, b"\0\0\0\0\x02\x08\x07", "the message passes intact");
        assert!(r.trailers.get("grpc-status").is_some(), "and its trailers");
    }
    assert_eq!(
        count(&w, "failures_total"),
        4,
        "INTERNAL in the trailers counts"
    );
    assert_eq!(
        count(&w, "breaker_opened_total"),
        0,
        "the OK in between reset the count: 2, 0, 2 never reach 3"
    );
    w.upstream(CLUSTER, in_trailers("13"));
    call(&mut w, 0);
    assert_eq!(
        count(&w, "breaker_opened_total"),
        1,
        "the third in a row opens"
    );
}

#[test]
fn a_stream_that_ends_without_a_status_is_unknown_and_a_reset_is_a_reset() {
    let mut w = grpc_world(50);
    w.upstream(CLUSTER, without_trailers());
    call(&mut w, 0);
    assert_eq!(
        count(&w, "failures_total"),
        1,
        "no status at all is UNKNOWN, a failure"
    );

    let mut only_reset = world(
        2,
        &breaker_only(json!({ "failure_threshold": 50, "failure_on": ["reset"] })),
    );
    only_reset.upstream(CLUSTER, in_trailers("0").reset_mid_body());
    call(&mut only_reset, 0);
    assert_eq!(
        count(&only_reset, "failures_total"),
        1,
        "the upstream cut the stream after its head: `reset`"
    );
    only_reset.upstream(CLUSTER, without_trailers());
    call(&mut only_reset, 1);
    assert_eq!(
        count(&only_reset, "failures_total"),
        1,
        "a clean end without a status is not a reset"
    );
}

#[test]
fn a_garbage_grpc_status_is_unknown_and_never_traps() {
    let mut w = grpc_world(50);
    for garbage in ["abc", "99", "", "-1", "1 4"] {
        w.upstream(CLUSTER, trailers_only(garbage));
        call(&mut w, 0);
        w.upstream(CLUSTER, in_trailers(garbage));
        call(&mut w, 1);
    }
    assert_eq!(count(&w, "failures_total"), 10, "every one read as UNKNOWN");
    assert_no_errors(&w);
}

#[test]
fn an_http_request_is_never_judged_by_a_grpc_status() {
    let mut w = grpc_world(2);
    w.upstream(CLUSTER, trailers_only("14"));
    for worker in [0, 1, 0] {
        w.request(worker).path("/plain").cluster(CLUSTER).send();
        w.advance(ms(10));
    }
    assert_eq!(count(&w, "failures_total"), 0, "a 200 to an HTTP request");
}

#[test]
fn the_fallback_code_is_the_policys_grpc_status_and_http_clients_keep_theirs() {
    let mut w = world(
        2,
        &breaker_only(json!({
            "failure_threshold": 1,
            "timeout": "30s",
            "fallback": { "grpc_status": 8, "headers": { "content-type": "application/json", "x-team": "pay" } }
        })),
    );
    w.upstream(CLUSTER, trailers_only("14"));
    call(&mut w, 0);
    let s = call(&mut w, 1);
    let r = response(&w, s);
    assert_grpc_fallback(&r, "8");
    assert_eq!(r.header("x-team"), Some("pay"), "the policy's headers stay");
    let s = w.request(0).path("/plain").cluster(CLUSTER).send();
    let http = response(&w, s);
    assert_eq!(
        http.status, 503,
        "an HTTP client still gets the HTTP fallback"
    );
    assert_eq!(http.header("content-type"), Some("application/json"));
    assert!(http.header("grpc-status").is_none());
}

/// What one upstream reply is, for the model.
#[derive(Debug, Clone, Copy)]
enum Shape {
    TrailersOnly(u8),
    Trailers(u8),
    NoTrailers,
    ResetMidBody,
}

impl Shape {
    fn reply(self) -> Reply {
        match self {
            Shape::TrailersOnly(code) => trailers_only(&code.to_string()),
            Shape::Trailers(code) => in_trailers(&code.to_string()),
            Shape::NoTrailers => without_trailers(),
            Shape::ResetMidBody => in_trailers("0").reset_mid_body(),
        }
    }

    /// Whether the default `failure_on` counts it: the codes UNKNOWN, DEADLINE_EXCEEDED,
    /// INTERNAL, UNAVAILABLE and DATA_LOSS, no status at all (UNKNOWN), and a reset.
    fn fails(self) -> bool {
        let counted = |code: u8| matches!(code, 2 | 4 | 13 | 14 | 15);
        match self {
            Shape::TrailersOnly(code) | Shape::Trailers(code) => counted(code),
            Shape::NoTrailers | Shape::ResetMidBody => true,
        }
    }
}

fn shape() -> impl Strategy<Value = Shape> {
    prop_oneof![
        (0u8..=16).prop_map(Shape::TrailersOnly),
        (0u8..=16).prop_map(Shape::Trailers),
        Just(Shape::NoTrailers),
        Just(Shape::ResetMidBody),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Calls one after another, alternating workers, each answered by the next reply: the
    /// breaker opens exactly when the model's consecutive count of failures reaches the
    /// threshold, and from then on every call gets the gRPC fallback and reaches no upstream.
    #[test]
    fn the_breaker_follows_the_model_of_grpc_outcomes(
        shapes in proptest::collection::vec(shape(), 1..10),
        threshold in 1u32..4,
    ) {
        let mut w = grpc_world(threshold);
        let mut run = 0u32;
        let mut open = false;
        let mut forwarded = 0usize;
        for (i, shape) in shapes.iter().enumerate() {
            w.upstream(CLUSTER, shape.reply());
            let s = call(&mut w, i % 2);
            if open {
                let r = response(&w, s);
                prop_assert_eq!(r.header("x-breakwater-breaker"), Some("open"));
                prop_assert_eq!(r.header("grpc-status"), Some("14"));
                continue;
            }
            forwarded += 1;
            match shape {
                // The client's stream is reset after the half body it got: no whole response.
                Shape::ResetMidBody => prop_assert!(w.response(s).is_none()),
                _ => prop_assert!(response(&w, s).header("x-breakwater-breaker").is_none()),
            }
            run = if shape.fails() { run + 1 } else { 0 };
            open = run >= threshold;
        }
        prop_assert_eq!(w.upstream_attempts(CLUSTER).len(), forwarded);
        prop_assert_eq!(count(&w, "breaker_opened_total"), u64::from(open));
        assert_no_errors(&w);
    }
}
