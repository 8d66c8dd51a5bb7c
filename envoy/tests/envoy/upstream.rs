//! The test upstream's controls, as Envoy sees them.

use std::time::Duration;

use breakwater_envoy::upstream::Plan;
use breakwater_envoy::{AccessLogEntry, Envoy, Reply};

use crate::common::{envoy_in_front_of, noop, upstream};

/// The one access log entry of the last request.
fn last_entry(envoy: &Envoy, n: usize) -> AccessLogEntry {
    let log = envoy.wait_for_access_log(n).expect("access log");
    log[n - 1].clone()
}

#[test]
fn a_fixed_status_and_retry_after_reach_the_client() {
    let upstream = upstream("a");
    let envoy = envoy_in_front_of(&upstream, noop(""));
    upstream.respond_with(503);
    upstream.set_retry_after(Some("7"));
    let response = envoy.get("/").expect("a response");
    assert_eq!(response.status, 503);
    assert_eq!(response.header("retry-after"), Some("7"));
    let entry = last_entry(&envoy, 1);
    assert_eq!(
        entry.response_flags, "-",
        "the upstream answered; Envoy added nothing"
    );
    assert_eq!(entry.response_code_details.as_deref(), Some("via_upstream"));

    upstream.respond_with(200);
    let ok = envoy.get("/").expect("a response");
    assert_eq!(ok.status, 200);
    assert_eq!(
        ok.header("retry-after"),
        None,
        "Retry-After comes with failures only"
    );
}

#[test]
fn scripted_replies_come_first_in_order() {
    let upstream = upstream("a");
    let envoy = envoy_in_front_of(&upstream, noop(""));
    upstream.script([Reply::Status(500), Reply::Status(429)]);
    let statuses: Vec<u16> = (0..3)
        .map(|_| envoy.get("/").expect("a response").status)
        .collect();
    assert_eq!(statuses, vec![500, 429, 200]);
}

#[test]
fn a_failure_ratio_fails_the_requests_its_seed_decides() {
    let upstream = upstream("a");
    let envoy = envoy_in_front_of(&upstream, noop(""));
    upstream.fail_ratio(0.5, Reply::Status(502), 11);
    let mut model = Plan::default();
    model.set_failures(0.5, Reply::Status(502), 11);
    let expected: Vec<u16> = (0..40)
        .map(|_| match model.decide().reply {
            Reply::Status(s) => s,
            other => panic!("the model only answers statuses, got {other:?}"),
        })
        .collect();
    let seen: Vec<u16> = (0..40)
        .map(|_| envoy.get("/").expect("a response").status)
        .collect();
    assert_eq!(
        seen, expected,
        "one request at a time, the seed fixes which fail"
    );
    let failed = seen.iter().filter(|s| **s == 502).count();
    assert!(
        (8..=32).contains(&failed),
        "about half fail: {failed} of 40"
    );
}

#[test]
fn a_delay_holds_the_response_at_least_that_long() {
    let upstream = upstream("a");
    let envoy = envoy_in_front_of(&upstream, noop(""));
    upstream.set_delay(Duration::from_millis(300));
    assert_eq!(envoy.get("/").expect("a response").status, 200);
    let entry = last_entry(&envoy, 1);
    let duration = entry.duration_ms.expect("Envoy logs the duration");
    assert!(
        duration >= 300,
        "Envoy waited for the delayed upstream: {duration} ms"
    );
}

#[test]
fn a_reset_reaches_the_client_as_a_503_with_flag_uc() {
    let upstream = upstream("a");
    let envoy = envoy_in_front_of(&upstream, noop(""));
    upstream.script([Reply::Reset]);
    let response = envoy.get("/").expect("Envoy answers itself");
    assert_eq!(response.status, 503);
    let entry = last_entry(&envoy, 1);
    assert_eq!(
        entry.response_flags, "UC",
        "an upstream reset is an upstream connection termination: {entry:?}"
    );
    assert_eq!(
        entry.response_code_details.as_deref(),
        Some("upstream_reset_before_response_started{connection_termination}"),
    );
    assert_eq!(
        upstream.total(),
        1,
        "the request reached the upstream before the reset"
    );
    assert_eq!(
        envoy.get("/").expect("a response").status,
        200,
        "the next request is fine"
    );
}

#[test]
fn a_close_without_an_answer_reaches_the_client_as_a_503_with_flag_uc() {
    let upstream = upstream("a");
    let envoy = envoy_in_front_of(&upstream, noop(""));
    upstream.script([Reply::Close]);
    assert_eq!(envoy.get("/").expect("Envoy answers itself").status, 503);
    let entry = last_entry(&envoy, 1);
    assert_eq!(entry.response_flags, "UC", "{entry:?}");
    assert_eq!(
        entry.response_code_details.as_deref(),
        Some("upstream_reset_before_response_started{connection_termination}"),
    );
}

#[test]
fn a_stopped_upstream_refuses_connections_until_it_listens_again() {
    let upstream = upstream("a");
    let envoy = envoy_in_front_of(&upstream, noop(""));
    assert_eq!(
        envoy.get("/").expect("a response").status,
        200,
        "a pooled connection exists"
    );
    upstream.stop_listening();
    assert!(!upstream.is_listening());
    let refused = envoy.get("/").expect("Envoy answers itself");
    assert_eq!(refused.status, 503);
    let entry = last_entry(&envoy, 2);
    assert_eq!(
        entry.response_flags, "UF",
        "connection refused is an upstream connection failure: {entry:?}"
    );
    assert!(
        entry.response_code_details.as_deref().is_some_and(|d| d
            .contains("remote_connection_failure")
            && d.contains("Connection_refused")),
        "{entry:?}"
    );
    assert_eq!(
        upstream.total(),
        1,
        "the refused request never reached the upstream"
    );

    upstream
        .start_listening()
        .expect("listens again on the same port");
    assert_eq!(
        envoy.get("/").expect("a response").status,
        200,
        "served again"
    );
    assert_eq!(upstream.total(), 2);
}

/// The I/O error kinds in `err`'s source chain.
fn io_kinds(err: &(dyn std::error::Error + 'static)) -> Vec<std::io::ErrorKind> {
    let mut kinds = Vec::new();
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            kinds.push(io.kind());
        }
        current = e.source();
    }
    kinds
}

#[test]
fn on_the_wire_a_reset_is_an_rst_a_close_a_fin_and_a_stopped_upstream_refuses() {
    use breakwater_envoy::client::{self, ClientError, Request};
    use std::io::ErrorKind;

    let upstream = upstream("a");
    upstream.script([Reply::Reset, Reply::Close]);
    let reset = client::send(upstream.addr(), &Request::get("/")).expect_err("no answer");
    assert!(
        io_kinds(&reset).contains(&ErrorKind::ConnectionReset),
        "Reply::Reset sends a TCP reset: {reset}"
    );
    let close = client::send(upstream.addr(), &Request::get("/")).expect_err("no answer");
    assert!(
        !io_kinds(&close).contains(&ErrorKind::ConnectionReset),
        "Reply::Close closes gracefully: {close}"
    );
    upstream.stop_listening();
    let refused = client::send(upstream.addr(), &Request::get("/")).expect_err("not listening");
    assert!(
        matches!(&refused, ClientError::Connect { source, .. } if source.kind() == ErrorKind::ConnectionRefused),
        "a stopped upstream refuses connections: {refused}"
    );
    upstream.start_listening().expect("listens again");
    let ok = client::send(upstream.addr(), &Request::get("/")).expect("served again");
    assert_eq!(ok.status, 200);
    assert_eq!(
        upstream.total(),
        3,
        "the reset and closed requests were recorded, the refused not"
    );
}

#[test]
fn held_replies_wait_for_the_release_and_requests_are_recorded_on_arrival() {
    let upstream = upstream("a");
    let envoy = envoy_in_front_of(&upstream, noop(""));
    upstream.hold();
    std::thread::scope(|s| {
        let client = s.spawn(|| envoy.get("/held").expect("a response"));
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while upstream.total() == 0 {
            assert!(std::time::Instant::now() < deadline, "the request arrives");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(upstream.count("GET", "/held"), 1, "recorded while held");
        assert!(!client.is_finished(), "no reply while held");
        upstream.release();
        assert_eq!(client.join().expect("the client").status, 200);
    });
    assert_eq!(
        envoy.get("/after").expect("a response").status,
        200,
        "released: replies flow"
    );
}

#[test]
fn per_path_failures_fail_each_paths_first_requests() {
    let upstream = upstream("a");
    let envoy = envoy_in_front_of(&upstream, noop(""));
    upstream.fail_first_per_path(2, Reply::Status(502));
    let statuses: Vec<u16> = ["/x", "/y", "/x", "/x", "/y", "/y"]
        .iter()
        .map(|p| envoy.get(p).expect("a response").status)
        .collect();
    assert_eq!(statuses, vec![502, 502, 502, 200, 502, 200]);
    upstream.no_path_failures();
    assert_eq!(envoy.get("/z").expect("a response").status, 200);
}
