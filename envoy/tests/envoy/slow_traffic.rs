//! The tools of the real-traffic tests, checked on their own: the trickling client against the
//! test upstream's early and echoing replies, and a health-checked cluster in Envoy.

use std::thread;
use std::time::{Duration, Instant};

use breakwater_envoy::client::trickle::{self, Framing, Upload};
use breakwater_envoy::upstream::{body_hash, BODY_BYTES_HEADER, BODY_HASH_HEADER};
use breakwater_envoy::{EnvoyConfig, HealthCheck, Reply};

use crate::common::{noop, start, upstream};

fn body() -> Vec<u8> {
    (0..5_000u32).map(|i| (i % 253) as u8).collect()
}

#[test]
fn an_early_reply_comes_before_the_body_is_sent_and_the_whole_body_is_recorded_after() {
    let upstream = upstream("a");
    upstream.set_default(Reply::Early(503));
    let body = body();
    let upload = Upload::new("PUT", "/early", body.clone()).trickle(5, Duration::from_millis(60));
    let uploaded = trickle::upload(upstream.addr(), &upload).expect("an exchange");
    let response = uploaded.response.as_ref().expect("a response");
    assert_eq!(response.status, 503);
    let head_after = uploaded.head_after.expect("a head");
    assert!(
        head_after < uploaded.body_done_after,
        "the answer came before the last piece went out: {uploaded:?}"
    );
    assert_eq!(uploaded.body_sent, body.len());
    let deadline = Instant::now() + Duration::from_secs(10);
    while upstream.total() == 0 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    let requests = upstream.requests();
    assert_eq!(requests.len(), 1, "recorded once its body was read");
    // Every byte arrives after the answer and is recorded. Whether hyper then ends the body
    // cleanly or with an error (it does not promise to keep a connection whose response is out;
    // about one run in three here ends with an error after the last byte) is hyper's business,
    // so `body_complete` is not asserted.
    assert!(
        requests[0].body == body,
        "the whole body, read after the answer: {} of {} bytes",
        requests[0].body.len(),
        body.len()
    );
}

#[test]
fn an_echo_reply_says_what_body_it_read_for_either_framing() {
    let upstream = upstream("a");
    upstream.set_default(Reply::Echo(201));
    let body = body();
    for framing in [Framing::ContentLength, Framing::Chunked] {
        let upload = Upload::new("POST", "/echo", body.clone())
            .trickle(4, Duration::from_millis(10))
            .framing(framing);
        let uploaded = trickle::upload(upstream.addr(), &upload).expect("an exchange");
        let response = uploaded.response.expect("a response");
        assert_eq!(response.status, 201, "{framing:?}");
        assert_eq!(response.header(BODY_BYTES_HEADER), Some("5000"));
        assert_eq!(
            response.header(BODY_HASH_HEADER),
            Some(body_hash(&body).as_str())
        );
    }
    assert!(upstream.requests().iter().all(|r| r.body == body));
}

#[test]
fn a_client_that_gives_up_leaves_without_an_answer() {
    let upstream = upstream("a");
    upstream.set_default(Reply::Never);
    let upload = Upload::new("GET", "/wait", Vec::new()).give_up_after(Duration::from_millis(100));
    let uploaded = trickle::upload(upstream.addr(), &upload).expect("an exchange");
    assert!(
        uploaded.gave_up && uploaded.response.is_none(),
        "{uploaded:?}"
    );
}

#[test]
fn a_health_checked_cluster_without_a_healthy_host_gets_envoys_503_uh_until_the_host_recovers() {
    let upstream = upstream("a");
    upstream.serve_health("/healthz", false);
    let envoy = start(
        &EnvoyConfig::new()
            .health_checked_cluster(
                "a",
                upstream.addr(),
                HealthCheck {
                    path: "/healthz".to_string(),
                    interval: Duration::from_millis(50),
                },
            )
            .filter(noop("")),
    );
    envoy
        .wait_for("the endpoint to fail its checks", || {
            let stats = envoy.stats()?;
            Ok(stats.number("cluster.a.membership_healthy") == Some(0))
        })
        .expect("Envoy's stats");
    let response = envoy.get("/no-host").expect("Envoy answers itself");
    assert_eq!(response.status, 503);
    assert_eq!(response.text(), "no healthy upstream");
    let log = envoy.wait_for_access_log(1).expect("access log");
    assert_eq!(log[0].response_flags, "UH");
    assert_eq!(
        log[0].response_code_details.as_deref(),
        Some("no_healthy_upstream")
    );
    assert_eq!(upstream.total(), 0, "health checks are not recorded");
    assert!(upstream.health_checks() > 0);

    upstream.set_healthy(true);
    envoy
        .wait_for("the endpoint to pass its checks", || {
            let stats = envoy.stats()?;
            Ok(stats.number("cluster.a.membership_healthy") == Some(1))
        })
        .expect("Envoy's stats");
    assert_eq!(envoy.get("/host").expect("a response").status, 200);
}
