//! Real traffic: what real clients and real upstreams do that the
//! other tests smooth over, each against the real Envoy 1.40 with the current `breakwater.wasm`.
//!
//! - Bodies that are still arriving when the answer comes: an upstream that rejects a slow upload
//!   early ([`early_reply`]), Envoy's own `no healthy upstream` before the body is in
//!   ([`no_healthy_upstream`]). A replayed request must carry exactly the client's bytes, or not
//!   be replayed at all.
//! - Many requests in flight at once: a breaker that counts consecutive failures must count them
//!   in the order outcomes come back, not lose successes to concurrency ([`concurrency`]).
//! - Clients that leave while their retry waits: their failures are still failures
//!   ([`impatient_clients`]).
//! - Slow clients: the time a client takes to upload is not the upstream's slowness
//!   ([`slow_upload`]).
//!
//! Unlike the rest of this target, some tests here measure elapsed time: "the client gets an
//! answer promptly" is the promise under test. Their bounds are generous (seconds where the
//! expected figure is a fraction of one).

mod concurrency;
mod early_reply;
mod impatient_clients;
mod memory;
mod no_healthy_upstream;
mod slow_upload;

use std::time::Duration;

use breakwater_envoy::client::trickle::{self, Framing, Upload, Uploaded};
use breakwater_envoy::upstream::{body_hash, BODY_BYTES_HEADER, BODY_HASH_HEADER};
use breakwater_envoy::{Envoy, RecordedRequest, Reply, Upstream};

use crate::common::wait_until;

/// The client's body: 10,000 bytes in a pattern that does not repeat within a piece, so a replay
/// that lost, duplicated or reordered pieces has another hash.
pub fn client_body() -> Vec<u8> {
    (0..10_000u32).map(|i| (i * 31 % 251) as u8).collect()
}

/// Ten pieces, 50 ms apart: the body takes about 450 ms to arrive.
pub const PIECES: usize = 10;
pub const PAUSE: Duration = Duration::from_millis(50);

/// A slow upload of `body` to `path`.
pub fn slow_upload(method: &str, path: &str, body: &[u8], framing: Framing) -> Upload {
    Upload::new(method, path, body.to_vec())
        .trickle(PIECES, PAUSE)
        .framing(framing)
}

/// Sends `upload` to Envoy; fails the test if no response came at all.
pub fn send(envoy: &Envoy, upload: &Upload) -> Uploaded {
    trickle::upload(envoy.listener(), upload)
        .unwrap_or_else(|e| panic!("{} {}: {e}", upload.method, upload.path))
}

/// The attempts that reached `upstream` for `path`, once every reply that went out for it has
/// its record (an early reply is recorded only when its body has been read or cut).
pub fn attempts(upstream: &Upstream, path: &str) -> Vec<RecordedRequest> {
    wait_until("every attempt's body to be read by the upstream", || {
        let replied = upstream
            .completions()
            .iter()
            .filter(|c| c.path == path)
            .count();
        let recorded = upstream
            .requests()
            .iter()
            .filter(|r| r.path == path)
            .count();
        recorded >= replied
    });
    upstream
        .requests()
        .into_iter()
        .filter(|r| r.path == path)
        .collect()
}

/// One line about an attempt, for messages: its number, what it got and the body it carried.
pub fn describe(attempt: &RecordedRequest) -> String {
    format!(
        "attempt {} ({:?}): {} body bytes{}, hash {}",
        attempt.header("x-breakwater-attempt").unwrap_or("1"),
        attempt.reply,
        attempt.body.len(),
        if attempt.body_complete { "" } else { " (cut)" },
        body_hash(&attempt.body)
    )
}

/// A short account of what the client got, for messages.
pub fn summary(uploaded: &Uploaded) -> String {
    match &uploaded.response {
        Some(r) => format!(
            "the client got {} (x-breakwater-attempts {:?}, upstream read {:?} bytes) after {:?}",
            r.status,
            r.header("x-breakwater-attempts"),
            r.header(BODY_BYTES_HEADER),
            uploaded.head_after
        ),
        None => format!("the client got no response: {uploaded:?}"),
    }
}

/// A counter of Breakwater's for `cluster`, from `/stats/prometheus` (0 while the filter has not
/// defined it).
pub fn prometheus_counter(envoy: &Envoy, metric: &str, cluster: &str) -> u64 {
    if metric == "breakwater_requests_total" {
        // Counted in each worker, added to Envoy's stats at the worker's flush.
        breakwater_envoy::metrics::wait_for_flush();
    }
    let prometheus = envoy.prometheus().expect("/stats/prometheus answers");
    prometheus
        .value(metric, &[("breakwater_cluster", cluster)])
        .map_or(0, |v| v as u64)
}

/// The promise for a request whose body was still arriving when its first answer came: every
/// attempt that read its body got exactly the client's bytes, and the client got either the
/// first answer (no retry) or a retry's answer to the whole body.
#[track_caller]
pub fn assert_replayed_whole_or_not_at_all(
    body: &[u8],
    attempts: &[RecordedRequest],
    uploaded: &Uploaded,
    first_status: u16,
) {
    let seen: Vec<String> = attempts.iter().map(describe).collect();
    for attempt in attempts
        .iter()
        .filter(|a| !matches!(a.reply, Reply::Early(_)))
    {
        assert!(
            attempt.body == body,
            "a replayed request must carry exactly the client's {} bytes (hash {}), but {}; \
             all attempts: {seen:?}; {}",
            body.len(),
            body_hash(body),
            describe(attempt),
            summary(uploaded)
        );
    }
    let response = uploaded
        .response
        .as_ref()
        .unwrap_or_else(|| panic!("the client got no response: {uploaded:?}; attempts: {seen:?}"));
    let retried = attempts.iter().any(|a| a.attempt().is_some());
    if retried {
        assert_eq!(response.status, 200, "the retry's answer: {response:?}");
        assert_eq!(
            response.header(BODY_BYTES_HEADER),
            Some(body.len().to_string().as_str())
        );
        assert_eq!(
            response.header(BODY_HASH_HEADER),
            Some(body_hash(body).as_str())
        );
    } else {
        assert_eq!(
            response.status, first_status,
            "not retried: the client gets the first answer: {response:?}"
        );
    }
}
