//! An upstream that sends the head and part of the body, then resets the connection.
//!
//! # What the client sees (measured on Envoy 1.40)
//! - A 2xx flows to the client as it arrives: Breakwater judged it a success at its headers and
//!   let it pass, so Envoy has already sent the head downstream. When the upstream resets, Envoy
//!   can only cut the client's connection: the client holds a head that promised 2048 bytes and
//!   the 1024 that came. Nothing can retry a response that is already with the client.
//! - A failed response that Breakwater holds for a retry has not reached the client. When the
//!   upstream resets under it, Envoy's router gives up the stream and answers with its own
//!   `502` (`upstream_reset_after_response_started{protocol_error}`, flags `UPE`); the held
//!   503 and its waiting retry are dropped.
//! - A retry's response is buffered whole by Envoy before Breakwater sees it, so a retry cut
//!   mid-body is a failed attempt like a reset: retried, or answered with a complete response of
//!   Breakwater's own. A client never gets a cut-off body out of a retry.

use breakwater_envoy::upstream::{MID_BODY_DECLARED, MID_BODY_SENT};
use breakwater_envoy::{Reply, Request};
use serde_json::json;

use crate::common::{
    assert_no_wasm_errors, assert_nothing_in_flight, envoy_with, raw_get, retries,
    session_per_worker, upstream, wasm_health, Ended, Metrics, WORKERS,
};

/// The access log's one entry: `status`, flag `UPE` and the late reset's details (what Envoy 1.40
/// writes for an upstream that reset after its head).
#[track_caller]
fn assert_logged_late_protocol_error(envoy: &breakwater_envoy::Envoy, status: u16) {
    let log = envoy.wait_for_access_log(1).expect("access log");
    assert_eq!(log[0].response_code, status);
    assert_eq!(log[0].response_flags, "UPE");
    assert_eq!(
        log[0].response_code_details.as_deref(),
        Some("upstream_reset_after_response_started{protocol_error}")
    );
}

#[test]
fn a_2xx_cut_mid_body_reaches_the_client_cut_short_and_is_not_retried() {
    let upstream = upstream("a");
    let envoy = envoy_with(&upstream, "a", &retries(3, "10ms", "2s"));
    let health = wasm_health(&envoy);
    upstream.script([Reply::ResetMidBody(200)]);

    let response = raw_get(envoy.listener(), "/cut").expect("the head reached the client");
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.content_length, Some(MID_BODY_DECLARED));
    assert_eq!(
        response.body.len(),
        MID_BODY_SENT,
        "every byte the upstream sent was forwarded"
    );
    assert_ne!(
        response.ended,
        Ended::Complete,
        "Envoy ended the connection short of the announced length: the client can tell"
    );
    assert_eq!(response.header("x-breakwater-attempts"), None);
    assert_eq!(
        upstream.count("GET", "/cut"),
        1,
        "a response already flowing to the client is never retried"
    );
    assert_logged_late_protocol_error(&envoy, 200);

    let metrics = Metrics::read(&envoy, "a");
    assert_eq!(metrics.get("retries_total"), 0);
    assert_eq!(
        metrics.get("failures_total"),
        0,
        "judged at its headers, it counted as a success: the breaker does not see a reset that \
         comes after the response started"
    );
    assert_eq!(
        envoy.get("/after").expect("a response").status,
        200,
        "Envoy serves on"
    );
    assert_nothing_in_flight(&envoy);
    assert_no_wasm_errors(&envoy, &health);
}

#[test]
fn a_held_503_cut_mid_body_gets_envoys_502_and_its_retry_is_dropped() {
    let upstream = upstream("a");
    let envoy = envoy_with(&upstream, "a", &retries(3, "10ms", "2s"));
    let health = wasm_health(&envoy);
    upstream.script([Reply::ResetMidBody(503)]);

    let response = raw_get(envoy.listener(), "/cut").expect("a response");
    assert_eq!(
        response.status, 502,
        "Envoy answers itself: the held 503 never reached the client: {response:?}"
    );
    assert_eq!(
        response.ended,
        Ended::Complete,
        "Envoy's own reply is whole"
    );
    assert_eq!(response.header("x-upstream"), None);
    assert_logged_late_protocol_error(&envoy, 502);

    // On each worker, a later request whose retry is due after the dropped one would have been.
    upstream.fail_first_per_path(1, Reply::Status(503));
    for (w, mut session) in session_per_worker(&envoy).into_iter().enumerate() {
        let later = session
            .send(&Request::get(&format!("/later/{w}")))
            .expect("a response");
        assert_eq!(
            later.header("x-breakwater-attempts"),
            Some("2"),
            "{later:?}"
        );
    }
    assert_eq!(
        upstream.count("GET", "/cut"),
        1,
        "the retry of the dropped stream was never sent"
    );
    assert_eq!(
        Metrics::read(&envoy, "a").get("retries_total"),
        WORKERS as u64,
        "only the later requests were retried"
    );
    assert_nothing_in_flight(&envoy);
    assert_no_wasm_errors(&envoy, &health);
}

/// Each request failed (a 503, then a reset mid-body): Envoy ends the held stream with its own
/// 502 past the filter chain, and the filter reads that outcome from the stream's info at its
/// end (`Outcome::of_ended_stream`) instead of taking it for a client that went away.
#[test]
fn held_503s_cut_mid_body_count_as_failures_and_open_the_breaker() {
    let upstream = upstream("a");
    let envoy = envoy_with(
        &upstream,
        "a",
        &json!({
            "default": {
                "circuit_breaker": { "failure_threshold": 3, "timeout": "30s" },
                "retry": { "max_attempts": 3, "base_delay": "10ms", "budget": null }
            }
        }),
    );
    upstream.set_default(Reply::ResetMidBody(503));

    for i in 0..3 {
        let response = raw_get(envoy.listener(), &format!("/cut/{i}")).expect("a response");
        assert_eq!(response.status, 502, "{response:?}");
    }
    let metrics = Metrics::read(&envoy, "a");
    assert_eq!(
        metrics.get("failures_total"),
        3,
        "each request failed (failure_on: 5xx and reset)"
    );
    let hits = upstream.total();
    let next = envoy.get("/next").expect("a response");
    assert_eq!(
        next.header("x-breakwater-breaker"),
        Some("open"),
        "three failures in a row open the breaker: {next:?}"
    );
    assert_eq!(upstream.total(), hits, "the upstream is spared");
}

#[test]
fn a_retry_cut_mid_body_is_a_failed_attempt_and_is_retried() {
    let upstream = upstream("a");
    let envoy = envoy_with(&upstream, "a", &retries(3, "10ms", "2s"));
    upstream.script([
        Reply::Status(503),
        Reply::ResetMidBody(200),
        Reply::Status(200),
    ]);

    let response = envoy.get("/retried").expect("a response");
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.text(), "a 200\n", "the third attempt's whole body");
    assert_eq!(response.header("x-breakwater-attempts"), Some("3"));
    let replies: Vec<_> = upstream.requests().iter().map(|r| r.reply).collect();
    assert_eq!(
        replies,
        vec![
            Reply::Status(503),
            Reply::ResetMidBody(200),
            Reply::Status(200)
        ]
    );
    let metrics = Metrics::read(&envoy, "a");
    assert_eq!(metrics.get("retries_total"), 2);
    assert_eq!(metrics.get("retry_successes_total"), 1);
}

#[test]
fn a_last_retry_cut_mid_body_is_answered_whole_by_breakwater_never_cut_short() {
    let upstream = upstream("a");
    let envoy = envoy_with(&upstream, "a", &retries(2, "10ms", "2s"));
    upstream.script([Reply::Status(503), Reply::ResetMidBody(200)]);

    let response = raw_get(envoy.listener(), "/last").expect("a response");
    assert_eq!(
        response.ended,
        Ended::Complete,
        "the client gets a whole response, never the retry's cut-off body: {response:?}"
    );
    // A dispatched retry cut mid-body comes back to the filter as a plain reset, which after an
    // answered attempt may be a response Envoy dropped for its size (POLICY.md "Worker memory"):
    // the client keeps the last real answer, the held 503, whole.
    assert_eq!(response.status, 503, "the last real answer: {response:?}");
    assert_eq!(String::from_utf8_lossy(&response.body), "a 503\n");
    assert_eq!(response.header("x-breakwater-attempts"), Some("2"));
    assert_eq!(upstream.count("GET", "/last"), 2);
    let metrics = Metrics::read(&envoy, "a");
    assert_eq!(metrics.get("retries_exhausted_total"), 1);
    assert_eq!(metrics.get("retry_responses_dropped_total"), 1);
    assert_eq!(
        metrics.get("failures_total"),
        0,
        "no evidence for the breaker"
    );
}

/// A 503 whose HTTP/1.1 upstream resets right after its head, held by Breakwater for a retry:
/// Envoy 1.40 answers 502 with `UPE` and `…{protocol_error}` (the promised body never came), the
/// same as a reset mid-body. (The harness's `reset_after_headers` reports a `remote_reset` 503
/// with `UR` instead, what the router's source gives an HTTP/2 upstream's stream reset; both are
/// a reset for the breaker.)
#[test]
fn a_held_503_reset_right_after_its_head_is_envoys_502_and_one_failure() {
    let upstream = upstream("a");
    let envoy = envoy_with(&upstream, "a", &retries(3, "10ms", "2s"));
    let health = wasm_health(&envoy);
    upstream.script([Reply::ResetAfterHead(503)]);

    let response = raw_get(envoy.listener(), "/cut").expect("a response");
    assert_eq!(response.status, 502, "{response:?}");
    assert_eq!(
        response.ended,
        Ended::Complete,
        "Envoy's own reply is whole"
    );
    assert_eq!(
        response.header("x-upstream"),
        None,
        "not the upstream's 503"
    );
    assert_logged_late_protocol_error(&envoy, 502);
    let metrics = Metrics::read(&envoy, "a");
    assert_eq!(metrics.get("failures_total"), 1, "one failed request");
    assert_eq!(metrics.get("retries_total"), 0, "its retry was dropped");
    assert_eq!(upstream.count("GET", "/cut"), 1);
    assert_nothing_in_flight(&envoy);
    assert_no_wasm_errors(&envoy, &health);
}
