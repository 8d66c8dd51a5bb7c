//! An upstream that answers 503 before it reads the request body, while a slow client is still
//! sending it; the retry (if any) is answered 200 after reading the whole body, and says what it
//! read.
//!
//! The promise: a retry replays exactly the client's request, every byte of its body, or there is
//! no retry and the client gets the 503. A retry that replays the part of the body that had
//! arrived when the 503 came would hand the upstream a different request (a truncated upload
//! stored as if whole) and the client a 200 for it.
//!
//! # What happens (measured on Envoy 1.40)
//! - The first piece (1,000 bytes) passes the filter and reaches the upstream with the head; the
//!   upstream answers 503 at once. The request being incomplete, Envoy's router resets the
//!   upstream connection (`resetting pool request`): the first attempt got 1,000 bytes, then the
//!   connection ended.
//! - The pieces that arrive after that are read by Envoy's codec but never passed to the filter
//!   (no `proxy_on_request_body` call), whatever the framing.
//! - Today Breakwater holds the 503 and retries 100 ms later with the 1,000 bytes it copied (a
//!   `content-length: 1000` request, or the same for the chunked upload); the upstream answers 200
//!   for it, and the client gets that 200 about 107 ms after its head, with `connection: close`,
//!   while 9,000 bytes of its body are still to be sent.

use breakwater_envoy::client::trickle::Framing;
use breakwater_envoy::{Reply, Upstream};

use super::{
    assert_replayed_whole_or_not_at_all, attempts, client_body, describe, send, slow_upload,
    summary,
};
use crate::common::{
    assert_no_wasm_errors, assert_nothing_in_flight, envoy_with, retries, upstream, wasm_health,
};

/// Envoy with retries (three attempts, 100 ms apart: the retry would run while the body is still
/// arriving) in front of an upstream whose first answer is an early 503 and whose later answers
/// echo the body they read.
fn early_503_then_echo() -> (Upstream, breakwater_envoy::Envoy) {
    let upstream = upstream("a");
    upstream.set_default(Reply::Echo(200));
    upstream.script([Reply::Early(503)]);
    let envoy = envoy_with(&upstream, "a", &retries(3, "100ms", "2s"));
    (upstream, envoy)
}

/// Sends the slow upload, then checks the promise.
fn check(method: &str, path: &str, framing: Framing, header: Option<(&str, &str)>) {
    let (upstream, envoy) = early_503_then_echo();
    let health = wasm_health(&envoy);
    let body = client_body();
    let mut upload = slow_upload(method, path, &body, framing);
    if let Some((name, value)) = header {
        upload = upload.header(name, value);
    }
    let uploaded = send(&envoy, &upload);
    let attempts = attempts(&upstream, path);
    eprintln!(
        "{method} {path} ({framing:?}): {}; attempts {:?}",
        summary(&uploaded),
        attempts.iter().map(describe).collect::<Vec<_>>()
    );
    assert_replayed_whole_or_not_at_all(&body, &attempts, &uploaded, 503);
    assert_nothing_in_flight(&envoy);
    assert_no_wasm_errors(&envoy, &health);
}

/// A `PUT` (idempotent, so retried) with `content-length`, its 10,000 bytes sent in ten pieces
/// 50 ms apart, answered 503 by the upstream before it read any of them.
#[test]
fn an_early_503_to_a_slow_put_is_replayed_with_the_whole_body_or_not_at_all() {
    check("PUT", "/upload/put", Framing::ContentLength, None);
}

/// The same with a `POST` that carries the policy's `idempotency_header` (`idempotency-key`),
/// which makes it retryable.
#[test]
fn an_early_503_to_a_slow_post_with_an_idempotency_key_is_replayed_whole_or_not_at_all() {
    check(
        "POST",
        "/upload/post",
        Framing::ContentLength,
        Some(("idempotency-key", "order-42")),
    );
}

/// The same `PUT` sent with `transfer-encoding: chunked`: no length announced up front, so the
/// body's end is known only from the last chunk.
#[test]
fn an_early_503_to_a_slow_chunked_put_is_replayed_whole_or_not_at_all() {
    check("PUT", "/upload/chunked", Framing::Chunked, None);
}
