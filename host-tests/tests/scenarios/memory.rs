//! The worker's byte budget (`max_worker_buffer`, POLICY.md "Worker memory"), pushed from the
//! outside: a budget of 1 MiB and uploads of 340,000 bytes, so three copies fit and a fourth
//! does not.
//!
//! - A copy that would pass the budget is dropped whole; its request is forwarded untouched and,
//!   if it then fails, not retried (`retries_skipped_total{reason="memory"}`). The copies that
//!   fit are replayed byte for byte.
//! - Every byte comes back when its request ends, however it ends (answered, retried, the client
//!   gone before its answer, while its retry waits or while it flies): the next burst keeps
//!   exactly three again. Keeping exactly three (not four) also shows no byte is given back
//!   twice.
//! - A retry's response that does not fit what is left is not relayed: the client gets the held
//!   first response, the breaker hears nothing, `retry_responses_dropped_total` counts it.
//! - A retry call that comes back reset (no headers) after an attempt of its request was
//!   answered may be a response Envoy drained for its size: no outcome for the breaker, counted
//!   as dropped, and the client keeps the last real answer.
//! - The budget is per worker.

use std::time::Duration;

use breakwater_host_tests::{ms, Reply, Source, StreamId, UpstreamRequest, World};
use serde_json::{json, Value};

use crate::common::{
    assert_no_errors, count, response, retries_sent, skipped, state_gauge, world, CLUSTER,
};

/// The worker's budget: the smallest `max_worker_buffer` allowed.
const BUDGET: u64 = 1 << 20;
/// Three of these (with their headers) fit in [`BUDGET`]; a fourth does not.
const BODY: usize = 340_000;
/// `retry.max_request_body`: an upload of [`BODY`] bytes is well within it.
const MAX_BODY: usize = 400_000;
/// When an upload's first attempt fails.
const FIRST: Duration = Duration::from_millis(50);
/// `base_delay`, without jitter.
const DELAY: Duration = Duration::from_millis(100);

/// Two attempts 100 ms apart, no retry budget (only the byte budget limits retries here), the
/// worker budget [`BUDGET`]; `breaker` and the `retry` fields in `extra` on top.
fn memory_policy(breaker: Value, extra: Value) -> Value {
    let mut retry = json!({
        "max_attempts": 2, "base_delay": "100ms", "jitter": false, "budget": null,
        "max_request_body": MAX_BODY, "per_try_timeout": "1s"
    });
    if let (Some(r), Some(e)) = (retry.as_object_mut(), extra.as_object()) {
        r.extend(e.clone());
    }
    json!({
        "max_worker_buffer": BUDGET,
        "default": { "circuit_breaker": breaker, "retry": retry }
    })
}

/// A breaker that opens on the first failure the breaker hears.
fn touchy_breaker() -> Value {
    json!({ "failure_threshold": 1, "timeout": "30s" })
}

/// The bytes of upload `tag`: a pattern that differs from every other upload's.
fn payload(tag: u32, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| ((i as u32).wrapping_mul(31).wrapping_add(tag * 7) % 251) as u8)
        .collect()
}

/// An upstream whose first attempts fail with a 503 after [`FIRST`] and whose retries answer
/// 200, `retry_after` later, saying how many bytes they read.
fn fails_then_answers(retry_after: Duration) -> impl FnMut(&UpstreamRequest) -> Reply {
    move |request| {
        if request.header("x-breakwater-attempt").is_some() {
            Reply::ok()
                .body(format!("{} bytes", request.body.len()))
                .after(retry_after)
        } else {
            Reply::status(503).after(FIRST)
        }
    }
}

/// Sends upload `tag` ([`BODY`] bytes, with the headers) on `worker`.
fn upload(w: &mut World, worker: usize, tag: u32) -> StreamId {
    w.request(worker)
        .method("PUT")
        .path(&format!("/upload/{tag}"))
        .header("x-upload", &tag.to_string())
        .body(payload(tag, BODY))
        .cluster(CLUSTER)
        .send()
}

/// The retries that reached the upstream for upload `tag`.
fn retries_of(w: &World, tag: u32) -> Vec<UpstreamRequest> {
    let tag = tag.to_string();
    retries_sent(w, CLUSTER)
        .into_iter()
        .map(|a| a.request)
        .filter(|r| r.header("x-upload") == Some(tag.as_str()))
        .collect()
}

/// Checks a burst of uploads once they are over: those in `kept` were retried once with exactly
/// their client's bytes and got the retry's 200; the others got their 503, untouched and
/// unretried. Every upload was forwarded whole.
#[track_caller]
fn assert_burst(w: &World, burst: &[(u32, StreamId)], kept: &[u32]) {
    for &(tag, s) in burst {
        let r = response(w, s);
        let retries = retries_of(w, tag);
        if kept.contains(&tag) {
            assert_eq!(retries.len(), 1, "upload {tag} was kept, so retried once");
            assert!(
                retries[0].body == payload(tag, BODY),
                "the retry of upload {tag} carries exactly its client's {BODY} bytes, not {}",
                retries[0].body.len()
            );
            assert!(retries[0].complete);
            assert_eq!(retries[0].header("x-breakwater-attempt"), Some("2"));
            assert_eq!((r.status, r.body_text()), (200, format!("{BODY} bytes")));
            assert_eq!(r.header("x-breakwater-attempts"), Some("2"));
        } else {
            assert!(retries.is_empty(), "upload {tag} was not kept: no retry");
            assert_eq!(r.status, 503, "upload {tag}: the first answer, as it came");
            assert_eq!(r.source, Source::Upstream);
            assert_eq!(r.header("x-breakwater-attempts"), None);
        }
    }
    let first_attempts: Vec<_> = w
        .upstream_attempts(CLUSTER)
        .into_iter()
        .filter(|a| a.request.header("x-breakwater-attempt").is_none())
        .collect();
    for &(tag, _) in burst {
        let forwarded = first_attempts
            .iter()
            .rfind(|a| a.request.header("x-upload") == Some(tag.to_string().as_str()))
            .expect("every upload reached the upstream");
        assert!(
            forwarded.request.body == payload(tag, BODY) && forwarded.request.complete,
            "upload {tag} was forwarded whole, kept or not"
        );
    }
}

/// Sends `tags` as uploads on `worker` at the same instant, then lets them all finish.
fn burst(w: &mut World, worker: usize, tags: std::ops::Range<u32>) -> Vec<(u32, StreamId)> {
    let streams = tags.map(|tag| (tag, upload(w, worker, tag))).collect();
    w.advance(ms(1_000));
    streams
}

#[test]
fn uploads_past_the_workers_byte_budget_are_forwarded_but_not_retried_and_counted_as_memory() {
    let mut w = world(2, &memory_policy(Value::Null, json!({})));
    w.upstream(CLUSTER, fails_then_answers(ms(10)));
    let first = burst(&mut w, 0, 0..6);
    assert_burst(&w, &first, &[0, 1, 2]);
    assert_eq!(
        skipped(&w, "memory"),
        3,
        "each upload not kept skipped its retry"
    );
    assert_eq!(count(&w, "retries_total"), 3);
    assert_eq!(
        skipped(&w, "not_eligible"),
        0,
        "within max_request_body: memory, not eligibility, stopped them"
    );

    // Everything came back when those requests ended: three fit again, and still not four.
    let second = burst(&mut w, 0, 10..14);
    assert_burst(&w, &second, &[10, 11, 12]);
    assert_eq!(skipped(&w, "memory"), 4);
    assert_eq!(count(&w, "retries_total"), 6);
    assert_no_errors(&w);
}

#[test]
fn clients_that_leave_before_their_answer_while_their_retry_waits_or_flies_give_their_bytes_back() {
    let mut w = world(2, &memory_policy(Value::Null, json!({})));
    // Retries answer 300 ms after they go out, at 150 ms.
    w.upstream(CLUSTER, fails_then_answers(ms(300)));
    let before_answer = upload(&mut w, 0, 0);
    let while_waiting = upload(&mut w, 0, 1);
    let while_flying = upload(&mut w, 0, 2);
    w.disconnect_after(before_answer, ms(20));
    w.disconnect_after(while_waiting, FIRST + DELAY / 2);
    w.disconnect_after(while_flying, FIRST + DELAY + ms(100));
    w.advance(ms(1_000));
    assert_eq!(retries_of(&w, 0).len(), 0, "gone before its first answer");
    assert_eq!(retries_of(&w, 1).len(), 0, "gone while its retry waited");
    assert_eq!(retries_of(&w, 2).len(), 1, "gone while its retry flew");
    assert!(w.late_actions().is_empty(), "{:?}", w.late_actions());

    w.upstream(CLUSTER, fails_then_answers(ms(10)));
    let next = burst(&mut w, 0, 10..14);
    assert_burst(&w, &next, &[10, 11, 12]);
    assert_eq!(skipped(&w, "memory"), 1, "the fourth of the burst only");
    assert_no_errors(&w);
}

#[test]
fn a_streamed_copy_that_outgrows_the_budget_is_dropped_whole_and_gives_its_bytes_back_at_once() {
    let mut w = world(2, &memory_policy(Value::Null, json!({})));
    // Uploads 0 and 1 hold 680,000 bytes for two seconds, then succeed.
    w.upstream(CLUSTER, |request: &UpstreamRequest| {
        match request.header("x-upload") {
            Some("0" | "1") => Reply::ok().after(ms(2_000)),
            _ if request.header("x-breakwater-attempt").is_some() => Reply::ok(),
            _ => Reply::status(503).after(FIRST),
        }
    });
    upload(&mut w, 0, 0);
    upload(&mut w, 0, 1);
    // 4 chunks of 100,000 bytes, 10 ms apart: three fit beside the other two copies, the fourth
    // takes the copy past the budget (400,000 bytes, within max_request_body).
    let chunks: Vec<Vec<u8>> = payload(5, 400_000)
        .chunks(100_000)
        .map(<[u8]>::to_vec)
        .collect();
    let streamed = w
        .request(0)
        .method("PUT")
        .header("x-upload", "5")
        .stream_body(chunks, ms(10))
        .cluster(CLUSTER)
        .send();
    // Right after the fourth chunk, an upload that fits only if the streamed copy's 300,000
    // bytes came back when it was dropped.
    w.advance(ms(45));
    let after = upload(&mut w, 0, 6);
    w.advance(ms(1_000));

    let r = response(&w, streamed);
    assert_eq!(r.status, 503, "not kept, so not retried");
    assert!(retries_of(&w, 5).is_empty());
    let forwarded = &w.upstream_attempts(CLUSTER)[2].request;
    assert!(
        forwarded.body == payload(5, 400_000) && forwarded.complete,
        "dropping the copy changed nothing of what was forwarded"
    );
    assert_eq!(skipped(&w, "memory"), 1);
    assert_eq!(skipped(&w, "not_eligible"), 0);
    assert_eq!(
        response(&w, after).status,
        200,
        "upload 6 was kept and retried: the dropped copy's bytes came back at once"
    );
    assert!(retries_of(&w, 6)[0].body == payload(6, BODY));
    assert_no_errors(&w);
}

#[test]
fn a_retry_answer_kept_while_the_next_retry_waits_counts_until_its_client_leaves() {
    let mut w = world(2, &memory_policy(Value::Null, json!({ "max_attempts": 3 })));
    // `GET /relay`: a 503, then a 503 of 720,000 bytes (kept for the client while the third
    // attempt waits and flies), then an answer that takes a second.
    w.upstream(CLUSTER, |request: &UpstreamRequest| {
        match (
            request.header("x-upload"),
            request.header("x-breakwater-attempt"),
        ) {
            (Some(_), None) => Reply::status(503).after(FIRST),
            (Some(_), Some(_)) => Reply::ok(),
            (None, None) => Reply::status(503).after(FIRST),
            (None, Some("2")) => Reply::status(503).body(vec![b'r'; 720_000]),
            (None, Some(_)) => Reply::ok().after(ms(1_000)),
        }
    });
    let relay = w.request(0).path("/relay").cluster(CLUSTER).send();
    w.advance(ms(200));
    let squeezed = upload(&mut w, 0, 1);
    w.advance(ms(100));
    w.disconnect(relay);
    let after = upload(&mut w, 0, 2);
    w.advance(ms(2_000));
    assert_eq!(
        response(&w, squeezed).status,
        503,
        "720,000 kept bytes left no room for upload 1"
    );
    assert!(retries_of(&w, 1).is_empty());
    assert_eq!(skipped(&w, "memory"), 1);
    assert_eq!(
        response(&w, after).status,
        200,
        "the kept answer went with its client: upload 2 was kept and retried"
    );
    assert!(retries_of(&w, 2)[0].body == payload(2, BODY));
    assert!(w.late_actions().is_empty(), "{:?}", w.late_actions());
    assert_no_errors(&w);
}

/// Three uploads on `worker` that hold 1,020,000 bytes there until they succeed, two seconds
/// after they arrive.
fn hold_the_budget(w: &mut World, worker: usize, tags: std::ops::Range<u32>) {
    for tag in tags {
        upload(w, worker, tag);
    }
}

#[test]
fn the_budget_is_per_worker() {
    let mut w = world(2, &memory_policy(Value::Null, json!({})));
    w.upstream(CLUSTER, fails_then_answers(ms(10)));
    // Worker 0's budget is full; worker 1's is untouched by it.
    let on_0: Vec<_> = (0..4).map(|tag| (tag, upload(&mut w, 0, tag))).collect();
    let on_1: Vec<_> = (10..14).map(|tag| (tag, upload(&mut w, 1, tag))).collect();
    w.advance(ms(1_000));
    assert_burst(&w, &on_0, &[0, 1, 2]);
    assert_burst(&w, &on_1, &[10, 11, 12]);
    assert_eq!(count(&w, "retries_total"), 6);
    assert_eq!(skipped(&w, "memory"), 2, "one per worker");
    assert_no_errors(&w);
}

/// The big answer of a retry, past what the budget has left while three uploads are held.
const BIG: usize = 100_000;

/// An upstream where uploads succeed after two seconds (holding their copies meanwhile), and
/// `GET /big` fails with a 503, its retry answering 200 with [`BIG`] bytes.
fn big_retry_answers(w: &mut World) {
    w.upstream(CLUSTER, |request: &UpstreamRequest| {
        if request.header("x-upload").is_some() {
            Reply::ok().after(ms(2_000))
        } else if request.header("x-breakwater-attempt").is_some() {
            Reply::ok().body(vec![b'b'; BIG]).after(ms(10))
        } else {
            Reply::status(503).body("first 503").after(FIRST)
        }
    });
}

fn get_big(w: &mut World, worker: usize) -> StreamId {
    w.request(worker).path("/big").cluster(CLUSTER).send()
}

#[test]
fn a_retry_answer_larger_than_what_the_budget_has_left_gives_the_held_503_and_no_breaker_outcome() {
    let mut w = world(2, &memory_policy(touchy_breaker(), json!({})));
    big_retry_answers(&mut w);
    hold_the_budget(&mut w, 0, 0..3);
    // 1,020,000 bytes and three sets of headers are held: 100,000 more do not fit. Several such
    // requests in a row, under a breaker that opens on the first failure it hears.
    for i in 1..=3 {
        let s = get_big(&mut w, 0);
        w.advance(ms(300));
        let r = response(&w, s);
        assert_eq!(
            (r.status, r.body_text().as_str(), &r.source),
            (503, "first 503", &Source::Upstream),
            "request {i}: the held first answer"
        );
        assert_eq!(r.header("x-breakwater-attempts"), Some("2"));
        assert_eq!(count(&w, "retry_responses_dropped_total"), i);
        assert_eq!(count(&w, "failures_total"), 0, "request {i}: no failure");
        assert_eq!(state_gauge(&w, CLUSTER).unwrap_or(0), 0, "still closed");
    }
    assert_eq!(count(&w, "breaker_opened_total"), 0);
    assert_eq!(retries_sent(&w, CLUSTER).len(), 3, "each was retried once");

    // On worker 1, or once the uploads are over, the same answer fits and is relayed.
    let s = get_big(&mut w, 1);
    w.advance(ms(300));
    let r = response(&w, s);
    assert_eq!((r.status, r.body.len()), (200, BIG), "worker 1 has room");
    w.advance(ms(2_000));
    let s = get_big(&mut w, 0);
    w.advance(ms(300));
    assert_eq!(response(&w, s).body.len(), BIG, "worker 0 has room again");
    assert_eq!(count(&w, "retry_responses_dropped_total"), 3);
    assert_no_errors(&w);
}

#[test]
fn the_same_breaker_opens_on_a_retry_whose_small_503_fits() {
    // The control for the test above: its breaker is not deaf.
    let mut w = world(2, &memory_policy(touchy_breaker(), json!({})));
    w.upstream(CLUSTER, Reply::status(503));
    let s = get_big(&mut w, 0);
    w.advance(ms(300));
    assert_eq!(response(&w, s).header("x-breakwater-attempts"), Some("2"));
    assert_eq!(count(&w, "failures_total"), 1);
    assert_eq!(count(&w, "breaker_opened_total"), 1);
    assert_eq!(count(&w, "retry_responses_dropped_total"), 0);
}

/// One `GET` against `replies` (a sequence), run to its end; the client's response.
fn one_get(w: &mut World, replies: Vec<Reply>) -> breakwater_host_tests::Response {
    w.upstream(CLUSTER, Reply::sequence(replies));
    let s = w.request(0).path("/").cluster(CLUSTER).send();
    w.advance(ms(2_000));
    response(w, s)
}

#[test]
fn a_retry_reset_after_an_answered_attempt_is_inconclusive_and_the_client_gets_envoys_503() {
    let mut w = world(2, &memory_policy(touchy_breaker(), json!({})));
    for i in 1..=3 {
        let r = one_get(
            &mut w,
            vec![Reply::status(503), Reply::ok().reset_after_headers()],
        );
        assert_eq!(
            (r.status, &r.source),
            (503, &Source::Upstream),
            "request {i}: the held first answer, the last real one"
        );
        assert_eq!(r.header("x-breakwater-attempts"), Some("2"));
        assert_eq!(count(&w, "retry_responses_dropped_total"), i);
        assert_eq!(count(&w, "failures_total"), 0, "request {i}: no failure");
    }
    assert_eq!(count(&w, "breaker_opened_total"), 0);
    assert_eq!(state_gauge(&w, CLUSTER).unwrap_or(0), 0);
    assert_no_errors(&w);
}

#[test]
fn a_retry_reset_after_a_first_attempt_that_was_never_answered_is_a_failure() {
    let mut w = world(2, &memory_policy(touchy_breaker(), json!({})));
    let r = one_get(
        &mut w,
        vec![Reply::reset(), Reply::ok().reset_after_headers()],
    );
    assert_eq!(r.status, 503);
    assert_eq!(count(&w, "failures_total"), 1, "two resets: evidence");
    assert_eq!(count(&w, "retry_responses_dropped_total"), 0);
    assert_eq!(count(&w, "breaker_opened_total"), 1);
}

#[test]
fn an_inconclusive_reset_is_still_retried_and_a_later_answer_is_the_requests_outcome() {
    let retry = json!({ "max_attempts": 3 });
    let mut w = world(2, &memory_policy(touchy_breaker(), retry.clone()));
    let r = one_get(
        &mut w,
        vec![
            Reply::status(503),
            Reply::ok().reset_after_headers(),
            Reply::ok().body("third"),
        ],
    );
    assert_eq!((r.status, r.body_text().as_str()), (200, "third"));
    assert_eq!(r.header("x-breakwater-attempts"), Some("3"));
    assert_eq!(count(&w, "retry_responses_dropped_total"), 0);
    assert_eq!(count(&w, "failures_total"), 0);

    // A final real 503 after the inconclusive reset is a failure.
    let mut w = world(2, &memory_policy(touchy_breaker(), retry));
    let r = one_get(
        &mut w,
        vec![
            Reply::status(503),
            Reply::ok().reset_after_headers(),
            Reply::status(503).body("third"),
        ],
    );
    assert_eq!((r.status, r.body_text().as_str()), (503, "third"));
    assert_eq!(count(&w, "retry_responses_dropped_total"), 0);
    assert_eq!(count(&w, "failures_total"), 1);
    assert_eq!(count(&w, "breaker_opened_total"), 1);
}

#[test]
fn with_count_retries_an_inconclusive_reset_is_not_counted_but_the_answered_503_is() {
    let breaker = json!({ "failure_threshold": 2, "count_retries": true, "timeout": "30s" });
    let mut w = world(2, &memory_policy(breaker, json!({})));
    let r = one_get(
        &mut w,
        vec![Reply::status(503), Reply::ok().reset_after_headers()],
    );
    assert_eq!(r.status, 503);
    assert_eq!(count(&w, "failures_total"), 1, "the 503 only");
    assert_eq!(count(&w, "retry_responses_dropped_total"), 1);
    assert_eq!(count(&w, "breaker_opened_total"), 0);
}

#[test]
fn an_attempt_answered_before_the_body_ended_is_not_retried_and_its_bytes_come_back() {
    let mut w = world(2, &memory_policy(Value::Null, json!({})));
    w.upstream(CLUSTER, Reply::status(503).early().after(ms(5)));
    let chunks: Vec<Vec<u8>> = payload(1, BODY)
        .chunks(BODY / 4)
        .map(<[u8]>::to_vec)
        .collect();
    let s = w
        .request(0)
        .method("PUT")
        .stream_body(chunks, ms(10))
        .cluster(CLUSTER)
        .send();
    w.advance(ms(500));
    assert_eq!(response(&w, s).status, 503);
    assert!(retries_sent(&w, CLUSTER).is_empty());
    assert_eq!(skipped(&w, "incomplete_body"), 1);
    assert_eq!(skipped(&w, "memory"), 0);

    w.upstream(CLUSTER, fails_then_answers(ms(10)));
    let next = burst(&mut w, 0, 10..14);
    assert_burst(&w, &next, &[10, 11, 12]);
    assert_eq!(skipped(&w, "memory"), 1, "the fourth of the burst only");
    assert_no_errors(&w);
}
#[test]
fn a_reset_is_inconclusive_after_any_answered_attempt_not_only_the_one_just_before() {
    // The first attempt was answered (a 503); the second got no answer (Envoy's 504 at the
    // per-try timeout, its 503 for a refused connection or a reset before the head); the third
    // comes back reset. That reset may still be a response Envoy drained for its size.
    let retry = json!({
        "max_attempts": 3, "per_try_timeout": "200ms",
        "retry_on": ["5xx", "reset", "connect-failure", "timeout"]
    });
    let mut wrong = Vec::new();
    for (shape, second) in [
        ("timed out", Reply::ok().after(ms(500))),
        ("refused", Reply::refuse()),
        ("reset before its head", Reply::reset()),
    ] {
        let mut w = world(2, &memory_policy(touchy_breaker(), retry.clone()));
        let r = one_get(
            &mut w,
            vec![
                Reply::status(503),
                second,
                Reply::ok().reset_after_headers(),
            ],
        );
        assert_eq!(r.header("x-breakwater-attempts"), Some("3"), "{shape}");
        assert_eq!(
            r.source,
            Source::Filter,
            "{shape}: the last real answer, the filter's reply for the second attempt"
        );
        let got = (
            count(&w, "failures_total"),
            count(&w, "retry_responses_dropped_total"),
            count(&w, "breaker_opened_total"),
        );
        if got != (0, 1, 0) {
            wrong.push(format!(
                "second attempt {shape}: failures, dropped, opened = {got:?}"
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "a reset after an answered attempt is no evidence against the upstream (want failures \
         0, dropped 1, opened 0), but: {wrong:#?}"
    );
}

#[test]
fn an_announced_length_that_never_arrives_holds_nothing() {
    // Four uploads announce 340,000 bytes each and send ten; the upstream answers each early.
    // A copy's buffer grows as bytes arrive (never past the announced length), so announcing
    // costs nothing: all four are kept (and then not retried, answered before their body ended),
    // and no client can fill a worker's budget with headers alone.
    let mut w = world(1, &memory_policy(Value::Null, json!({})));
    w.upstream(CLUSTER, Reply::status(503).early().after(FIRST));
    let streams: Vec<StreamId> = (0..4)
        .map(|tag| {
            w.request(0)
                .method("PUT")
                .path(&format!("/upload/{tag}"))
                .header("content-length", &BODY.to_string())
                .stream_body([vec![7u8; 10]], ms(1))
                .end_stream_after(ms(10_000))
                .cluster(CLUSTER)
                .send()
        })
        .collect();
    w.advance(ms(500));
    for s in &streams {
        assert_eq!(response(&w, *s).status, 503, "answered early, not retried");
    }
    assert_eq!(skipped(&w, "memory"), 0, "nothing was allocated for them");
    assert_eq!(
        skipped(&w, "incomplete_body"),
        4,
        "all four were kept, and answered before their bodies ended"
    );
    assert!(retries_sent(&w, CLUSTER).is_empty());
}

#[test]
fn a_client_leaving_after_an_inconclusive_reset_reports_no_outcome_and_no_dropped_response() {
    // 503, then a retry reset (inconclusive: maybe a response too large for Envoy), then the
    // client leaves while the next retry waits: as if the request had ended on that reset (its
    // answer may have been healthy), so no outcome, and a departure is no dropped response.
    let policy = memory_policy(
        touchy_breaker(),
        json!({ "max_attempts": 3, "base_delay": "200ms" }),
    );
    let mut w = world(1, &policy);
    w.upstream(
        CLUSTER,
        Reply::sequence([
            Reply::status(503),
            Reply::ok().reset_after_headers(),
            Reply::ok(),
        ]),
    );
    let s = w
        .request(0)
        .cluster(CLUSTER)
        .disconnect_after(ms(350))
        .send();
    w.advance(ms(2_000));
    assert_eq!(
        retries_sent(&w, CLUSTER).len(),
        1,
        "the second retry never ran"
    );
    assert!(w.response(s).is_none());
    assert_eq!(
        count(&w, "failures_total"),
        0,
        "the same as ending on the reset, whenever the client leaves"
    );
    assert_eq!(
        count(&w, "retry_responses_dropped_total"),
        0,
        "a departure is no dropped response"
    );
    assert_no_errors(&w);
}

#[test]
fn a_retry_answer_replacing_a_kept_one_needs_room_only_for_itself() {
    // 503 with 700,000 bytes (kept while the next retry waits), then 200 with 700,000 bytes: the
    // first is given back as the second replaces it, so a 1 MiB budget relays the 200.
    let policy = memory_policy(Value::Null, json!({ "max_attempts": 3 }));
    let mut w = world(1, &policy);
    let big = "x".repeat(700_000);
    w.upstream(
        CLUSTER,
        Reply::sequence([
            Reply::status(503),
            Reply::status(503).body(big.clone()),
            Reply::ok().body(big),
        ]),
    );
    let s = w.request(0).cluster(CLUSTER).send();
    w.run_until_idle();
    let r = response(&w, s);
    assert_eq!((r.status, r.body.len()), (200, 700_000));
    assert_eq!(r.header("x-breakwater-attempts"), Some("3"));
    assert_eq!(count(&w, "retry_responses_dropped_total"), 0);
}
