//! The final response of a retried request reaches the client the way an upstream response does:
//! the held response is resumed with the retry's head, body and trailers written into its place,
//! so it passes every encoder filter before Breakwater and `local_reply_config` leaves it alone.
//! The one exception: a held response that ended with its head (no body, no trailers) has no
//! place for a body, so a retried response with one goes out as Envoy's local reply.

use std::cell::Cell;
use std::rc::Rc;

use breakwater_host_tests::{Reply, Source, World};
use serde_json::json;

use crate::common::{assert_no_errors, builder, count, response, retry_only, CLUSTER};

/// A world that retries (two attempts, 50 ms apart) and whose `local_reply_config` stamps every
/// local reply; the cell counts the local replies it saw.
fn world() -> (World, Rc<Cell<u32>>) {
    let seen = Rc::new(Cell::new(0));
    let count = Rc::clone(&seen);
    let policy =
        retry_only(json!({ "max_attempts": 2, "base_delay": "50ms", "max_delay": "50ms" }));
    let w = builder(1, &policy)
        .local_reply_config(move |edit| {
            count.set(count.get() + 1);
            edit.headers.add("x-mapped", "yes");
            edit.content_type = "application/json".into();
        })
        .build()
        .expect("starts");
    (w, seen)
}

#[test]
fn a_retried_response_takes_the_upstream_path_with_its_headers_body_and_trailers() {
    let (mut w, local_replies) = world();
    w.upstream(
        CLUSTER,
        Reply::sequence([
            Reply::status(503).body("busy, try again"),
            Reply::ok()
                .header("x-upstream", "second")
                .body("done")
                .trailer("x-checksum", "abc"),
        ]),
    );
    let s = w.request(0).path("/orders/9").cluster(CLUSTER).send();
    w.run_until_idle();

    let r = response(&w, s);
    assert_eq!(r.status, 200);
    assert_eq!(r.body_text(), "done");
    assert_eq!(r.header("x-upstream"), Some("second"));
    assert_eq!(
        r.header("content-length"),
        None,
        "Envoy frames the body it is given (chunks, or the end of an HTTP/2 stream)"
    );
    assert_eq!(r.header("x-breakwater-attempts"), Some("2"));
    assert_eq!(
        r.trailers.get("x-checksum"),
        Some("abc"),
        "the retry's trailers"
    );
    assert_eq!(r.header("x-mapped"), None, "no local reply mapper ran");
    assert_eq!(
        r.header("content-type"),
        None,
        "no local reply content type"
    );
    assert_eq!(local_replies.get(), 0);
    assert_eq!(
        r.source,
        Source::Upstream,
        "the held upstream response, rewritten"
    );
    assert_eq!(count(&w, "retry_successes_total"), 1);
    assert_no_errors(&w);
}

#[test]
fn the_held_responses_trailers_give_way_to_the_retrys_none() {
    let (mut w, _) = world();
    w.upstream(
        CLUSTER,
        Reply::sequence([
            Reply::status(503)
                .body("busy")
                .trailer("x-reason", "overloaded"),
            Reply::ok().body("done"),
        ]),
    );
    let s = w.request(0).cluster(CLUSTER).send();
    w.run_until_idle();

    let r = response(&w, s);
    assert_eq!((r.status, r.body_text().as_str()), (200, "done"));
    assert_eq!(
        r.trailers.get("x-reason"),
        None,
        "the failed attempt's trailer"
    );
    assert_eq!(r.source, Source::Upstream);
    assert_no_errors(&w);
}

#[test]
fn a_held_response_without_a_body_takes_an_empty_retried_response_in_place() {
    let (mut w, local_replies) = world();
    w.upstream(
        CLUSTER,
        Reply::sequence([
            Reply::status(503),
            Reply::status(204).header("x-upstream", "2"),
        ]),
    );
    let s = w.request(0).cluster(CLUSTER).send();
    w.run_until_idle();

    let r = response(&w, s);
    assert_eq!(r.status, 204);
    assert_eq!(r.header("x-upstream"), Some("2"));
    assert_eq!(r.header("content-length"), None, "a 204 has no length");
    assert_eq!(r.source, Source::Upstream);
    assert_eq!(local_replies.get(), 0);
    assert_no_errors(&w);
}

#[test]
fn a_held_response_without_a_body_has_no_place_for_one_so_the_retry_is_a_local_reply() {
    let (mut w, local_replies) = world();
    w.upstream(
        CLUSTER,
        Reply::sequence([Reply::status(503), Reply::ok().body("done")]),
    );
    let s = w.request(0).cluster(CLUSTER).send();
    w.run_until_idle();

    let r = response(&w, s);
    assert_eq!((r.status, r.body_text().as_str()), (200, "done"));
    assert_eq!(r.source, Source::Filter, "Envoy's local reply");
    assert_eq!(local_replies.get(), 1, "local_reply_config sees it");
    assert_no_errors(&w);
}

#[test]
fn a_retry_without_a_response_is_answered_in_the_held_responses_place() {
    let (mut w, local_replies) = world();
    w.upstream(CLUSTER, Reply::sequence([Reply::refuse(), Reply::refuse()]));
    let s = w.request(0).cluster(CLUSTER).send();
    w.run_until_idle();

    let r = response(&w, s);
    assert_eq!(r.status, 503);
    assert_eq!(r.header("x-breakwater-attempts"), Some("2"));
    assert_eq!(
        r.source,
        Source::Envoy,
        "Envoy's reply to the first attempt, rewritten"
    );
    assert_eq!(
        local_replies.get(),
        1,
        "only Envoy's own reply to the first attempt"
    );
    assert_no_errors(&w);
}
