//! The fault replies of the test upstream, seen on the wire without Envoy in between.

use std::io::Read;
use std::net::TcpStream;

use breakwater_envoy::upstream::{MID_BODY_DECLARED, MID_BODY_SENT};
use breakwater_envoy::Reply;

use crate::common::{raw_get, upstream, wait_until, Ended, DEADLINE};

#[test]
fn reset_mid_body_sends_the_head_and_half_the_body_then_a_reset() {
    let upstream = upstream("a");
    upstream.set_default(Reply::ResetMidBody(503));
    let response = raw_get(upstream.addr(), "/cut").expect("the head arrives");
    assert_eq!(response.status, 503);
    assert_eq!(response.content_length, Some(MID_BODY_DECLARED));
    assert_eq!(response.header("x-upstream"), Some("a"));
    assert_eq!(response.body.len(), MID_BODY_SENT);
    assert!(response.body.starts_with(b"a 503\n"), "{response:?}");
    assert_eq!(response.ended, Ended::Reset, "a reset, not a close");
    assert_eq!(upstream.count("GET", "/cut"), 1);
}

#[test]
fn never_reads_the_request_and_sends_nothing_until_the_upstream_stops() {
    use std::io::Write;

    let upstream = upstream("a");
    upstream.set_default(Reply::Never);
    let mut client = TcpStream::connect(upstream.addr()).expect("connects");
    client.set_read_timeout(Some(DEADLINE)).expect("timeout");
    client
        .write_all(b"GET /silent HTTP/1.1\r\nhost: a\r\n\r\n")
        .expect("sends");
    wait_until("the request to be read", || upstream.total() == 1);
    upstream.stop_listening();
    let mut received = Vec::new();
    let ended = client.read_to_end(&mut received);
    assert!(
        received.is_empty(),
        "not a byte of a response: {:?}",
        String::from_utf8_lossy(&received)
    );
    assert!(
        ended.is_ok() || ended.is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
        "the connection ended when the upstream stopped"
    );
}
