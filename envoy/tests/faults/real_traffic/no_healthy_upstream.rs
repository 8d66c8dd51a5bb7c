//! Envoy's own 503 `no healthy upstream` (flag `UH`), given while the client's body is still
//! arriving.
//!
//! # What happens (measured on Envoy 1.40, trace logs of `http` and `wasm`)
//! - The router finds no healthy host while it decodes the request headers and sends its local
//!   reply right there, before any body byte: the filter's `on_http_response_headers` sees
//!   `:status` 503 with response flag `UH` and details `no_healthy_upstream` (without a retry the
//!   client gets exactly that, with `connection: close`, about 10 ms after its head).
//! - From then on the filter never sees the request body: Envoy's codec goes on reading the
//!   pieces off the client's connection as they come (`body size=1000` in its log; 3 or 4 pieces
//!   until the stream ends at the retry), but not one `proxy_on_request_body` call follows, not
//!   even for the piece that came with the head. (The same holds after an upstream's early
//!   answer: once the router has its response, later pieces stop at the codec; see
//!   `early_reply`.) A copy of the body kept from `on_http_request_body` is therefore whatever
//!   had passed the filter before the reply: here nothing. The test checks this fact on every run.
//! - When the filter then answers itself (`send_http_response`) with the request still
//!   incomplete, Envoy sends the reply with `connection: close` and resets the stream
//!   (`doEndStream() resetting stream`); the client may go on writing its body meanwhile (no
//!   write error: Envoy reads and drops it until it closes).
//! - Today Breakwater holds the 503, retries 300 ms later with an empty body (the endpoint was
//!   healthy again by then), and the client gets the upstream's 200 for a 0-byte `PUT`, at about
//!   300 ms.

use std::time::Duration;

use breakwater_envoy::client::trickle::Framing;
use breakwater_envoy::{Envoy, EnvoyConfig, HealthCheck, Reply, Upstream};

use super::{
    assert_replayed_whole_or_not_at_all, attempts, client_body, describe, send, slow_upload,
};
use crate::common::{
    assert_no_wasm_errors, assert_nothing_in_flight, breakwater, retries, start, stat, upstream,
    wait_until, wasm_health,
};

/// How long a client may wait for its answer: the body takes about 900 ms to send, a retry is
/// due 300 ms after the first answer; an answer that waits for neither comes in milliseconds.
const PROMPT: Duration = Duration::from_secs(3);

/// Envoy with retries (300 ms apart) in front of a health-checked cluster whose only endpoint
/// fails its checks, with trace logs of `http` and `wasm` for the measurement.
fn envoy_without_healthy_host(upstream: &Upstream) -> Envoy {
    upstream.set_default(Reply::Echo(200));
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
            .component_log_level("http:trace,wasm:trace")
            .filter(breakwater(&retries(3, "300ms", "2s"))),
    );
    wait_until("the only endpoint to be unhealthy", || {
        upstream.health_checks() > 0 && stat(&envoy, "cluster.a.membership_healthy") == 0
    });
    envoy
}

/// What Envoy's trace log shows after the router's local reply to the client's stream.
#[derive(Debug)]
struct AfterLocalReply {
    /// Body pieces Envoy's codec read off the client's connection after the reply.
    pieces_read: usize,
    /// `proxy_on_request_body` calls after the reply.
    body_callbacks: usize,
}

impl AfterLocalReply {
    /// Reads the log; `None` if there was no local reply on a client connection.
    fn measure(log: &str) -> Option<AfterLocalReply> {
        let mut lines = log.lines();
        let connection = lines.by_ref().find_map(|line| {
            let tags = line.strip_suffix("Executing sending local reply.")?;
            let id = tags
                .split("\"ConnectionId\":\"")
                .nth(1)?
                .split('"')
                .next()?;
            // Connection 0 is Envoy's async client (the filter's dispatched calls).
            (id != "0").then(|| id.to_string())
        })?;
        let piece = format!("\"ConnectionId\":\"{connection}\"] body size=");
        let (mut pieces_read, mut body_callbacks) = (0, 0);
        for line in lines {
            pieces_read += usize::from(line.contains(&piece));
            body_callbacks += usize::from(line.contains("proxy_on_request_body("));
        }
        Some(AfterLocalReply {
            pieces_read,
            body_callbacks,
        })
    }
}

/// A slow `PUT` meets Envoy's own 503 (`UH`) before its body is in. The retry, if any, must carry
/// the whole body (the endpoint turns healthy right after the 503, so a retry reaches it and
/// shows what it carried); otherwise the client gets the 503. Either way the client's answer
/// comes promptly: the filter must not wait for body pieces that, after a local reply, never
/// reach it.
#[test]
fn envoys_own_503_while_the_body_arrives_is_replayed_whole_or_answered_promptly() {
    let upstream = upstream("a");
    let envoy = envoy_without_healthy_host(&upstream);
    let health = wasm_health(&envoy);
    let body = client_body();
    let upload = slow_upload("PUT", "/no-host", &body, Framing::ContentLength)
        .trickle(10, Duration::from_millis(100));

    let uploaded = std::thread::scope(|s| {
        let client = s.spawn(|| send(&envoy, &upload));
        wait_until("Envoy's own 503 for want of a healthy host", || {
            stat(&envoy, "cluster.a.upstream_cx_none_healthy") > 0
        });
        // From now on a retry reaches the upstream, which records the body it carried.
        upstream.set_healthy(true);
        client
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e))
    });
    let attempts = attempts(&upstream, "/no-host");
    let measured = AfterLocalReply::measure(&envoy.log());
    let measured = measured.expect("Envoy's trace log shows its local reply to the client");
    eprintln!(
        "no healthy upstream: client answered after {:?} (body sent after {:?}, {} bytes, \
         write error {:?}); after the local reply Envoy read {} body pieces and called the \
         filter's on_http_request_body {} times; attempts {:?}",
        uploaded.head_after,
        uploaded.body_done_after,
        uploaded.body_sent,
        uploaded.write_error,
        measured.pieces_read,
        measured.body_callbacks,
        attempts.iter().map(describe).collect::<Vec<_>>()
    );
    assert_eq!(
        measured.body_callbacks, 0,
        "Envoy 1.40 passes no request body to the filters after the router's local reply (the \
         fact this file's docs rely on)"
    );

    let answered_after = uploaded
        .head_after
        .unwrap_or_else(|| panic!("the client got no answer: {uploaded:?}"));
    assert!(
        answered_after < PROMPT,
        "the client waited {answered_after:?} for its answer"
    );
    assert!(
        attempts.iter().all(|a| a.attempt().is_some()),
        "the first attempt never left Envoy: {attempts:?}"
    );
    assert_replayed_whole_or_not_at_all(&body, &attempts, &uploaded, 503);
    assert_nothing_in_flight(&envoy);
    assert_no_wasm_errors(&envoy, &health);
}
