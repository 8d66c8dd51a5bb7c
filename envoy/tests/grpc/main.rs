//! gRPC through the real Envoy 1.40 with Breakwater: a real tonic server behind an h2c cluster
//! (`http2_protocol_options`) and a real tonic client speaking HTTP/2 to Envoy's listener. What
//! the tests show is what a gRPC application sees (the status code, message and metadata tonic
//! reports, and the messages intact) and what Breakwater counts (its metrics).
//!
//! # Measured with Envoy 1.40.0 and tonic 0.14 (pinned by these tests)
//! - An upstream error before any message is trailers-only through Envoy; tonic reports the
//!   server's code and message.
//! - A status after a message comes in the trailers; tonic reports the answer for a stream and
//!   the status for both a stream and a unary call.
//! - Envoy's route timeout on a gRPC call: tonic gets `Unavailable` "upstream request timeout"
//!   (Envoy's trailers-only reply; details `response_timeout`, flag `UT`).
//! - A failed connection: tonic gets `Unavailable` with Envoy's "upstream connect error …"
//!   message (details `…{remote_connection_failure…}`, flag `UF`).
//! - The client's own deadline (`grpc-timeout`) passing first: tonic reports `Cancelled`
//!   "Timeout expired" and resets the stream; Envoy logs `DR` (`http2.remote_reset`). tonic's
//!   server honours the same deadline, and sometimes its own CANCELLED reply wins the race.
//! - The fallback: tonic reports `Unavailable` (or the configured code) with the message
//!   "breakwater: circuit breaker open" and the metadata `x-breakwater-breaker: open`,
//!   `retry-after` and `grpc-retry-pushback-ms`; `content-type` is `application/grpc`.

mod common;

mod breaker;
mod delegation;
mod envoy_replies;
mod retries;
mod streams;
