//! How a retried request's final response reaches its client: the held response is resumed as
//! it is, or with another response written into its place, and its body and trailers are then
//! replaced as they pass the stream's callbacks.
//!
//! It acts on the worker's state (the relays it keeps, the retries still pending, a breaker read
//! for the fallback), so it sits above [`Worker`]; what it writes is built in [`super::reply`].

use proxy_wasm::hostcalls;
use proxy_wasm::types::MapType;

use crate::core::breaker::Admission;
use crate::core::outcome::Cause;
use crate::core::pairs::Pairs;
use crate::core::Millis;
use crate::policy::BreakerMode;

use super::exchange::Exchange;
use super::host;
use super::memory::Lease;
use super::metrics::Counter;
use super::outbound;
use super::queue::{Job, Last};
use super::reply::{fallback, Relay, Relays, Reply, ATTEMPTS_HEADER};
use super::worker::{read_breaker, Worker};

/// The headers of a reply: `headers`, plus `x-breakwater-attempts` after a retry.
fn with_attempts<'a>(
    headers: impl Iterator<Item = (&'a [u8], &'a [u8])>,
    attempts: &'a str,
    retried: bool,
) -> Pairs {
    let extra = retried.then_some((ATTEMPTS_HEADER.as_bytes(), attempts.as_bytes()));
    Pairs::collect(headers.chain(extra))
}

/// Hands a finished job's response to its stream; nothing if the stream is gone. When the
/// retries stopped because the breaker opened, an enforcing breaker serves its fallback instead.
///
/// The held response is Envoy's, paused in the filter's response-headers callback (Envoy buffers
/// its body and trailers meanwhile, without calling the filter). It is resumed as it is, or with
/// another response written into its place ([`relay`]), so that the client's final response
/// takes the same way through Envoy as any upstream response: every encoder filter before
/// Breakwater in the chain sees it, and `local_reply_config` does not rewrite it.
pub fn deliver(w: &mut Worker, root_id: u32, id: u32, job: Job, breaker_stop: bool, now: Millis) {
    if hostcalls::set_effective_context(id).is_err() {
        return;
    }
    let exchange = &job.exchange;
    let place = held_place(&job);
    if breaker_stop {
        if let Some((status, headers, body)) = fallback_due(w, exchange, now) {
            relay(
                &mut w.relays,
                id,
                place,
                status,
                &headers,
                body,
                Pairs::default(),
                None,
            );
            let _ = hostcalls::set_effective_context(root_id);
            return;
        }
    }
    let attempts = exchange.attempts.to_string();
    let retried = exchange.attempts > 1;
    match job.last {
        Last::Held => {
            if retried {
                let _ = outbound::replace_header(
                    MapType::HttpResponseHeaders,
                    ATTEMPTS_HEADER,
                    attempts.as_bytes(),
                );
            }
            let _ = hostcalls::resume_http_response();
        }
        Last::Reply(reply) => {
            let Reply {
                status,
                headers,
                body,
                trailers,
                held,
            } = reply;
            let headers = with_attempts(headers.iter(), &attempts, retried);
            relay(
                &mut w.relays,
                id,
                place,
                status,
                &headers,
                body,
                trailers,
                Some(held),
            );
        }
        Last::Failed => {
            // What Envoy's router answers when an attempt gets no response.
            let (status, body) = match job.outcome.cause {
                Cause::Timeout => (504, "upstream request timeout"),
                Cause::ConnectFailure => (503, "upstream connect error: connection failure"),
                _ => (503, "upstream reset before response"),
            };
            let content_type = (&b"content-type"[..], &b"text/plain"[..]);
            let headers = with_attempts(std::iter::once(content_type), &attempts, retried);
            let body = body.as_bytes().to_vec();
            relay(
                &mut w.relays,
                id,
                place,
                status,
                &headers,
                body,
                Pairs::default(),
                None,
            );
        }
    }
    let _ = hostcalls::set_effective_context(root_id);
}

/// What is left of the held response to write another response into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// Its head ended it: Envoy will pass the head on with the end of the stream, and call the
    /// filter for nothing more.
    Head,
    /// It has a body or trailers, and all of it has arrived: Envoy will pass it through the
    /// filter's body and trailer callbacks once it is resumed.
    Whole,
    /// Its upstream is still sending it: the client would wait for the rest, and an upstream
    /// that then failed would cut the client's response.
    Arriving,
}

/// Where the held response of `job` is (for one from the upstream, Envoy's
/// `response.backend_latency` exists once its last byte arrived; Envoy's own replies are whole
/// at once). Read in the stream's context.
fn held_place(job: &Job) -> Place {
    if !job.held_body {
        Place::Head
    } else if !job.held_from_upstream || host::property(host::path::BACKEND_LATENCY).is_some() {
        Place::Whole
    } else {
        Place::Arriving
    }
}

/// Writes a response into the place of the held one and resumes it: its head now (`:status`
/// and `headers`; Envoy frames the body itself), its body and trailers as the held response's
/// pass ([`write_body`], [`write_trailers`]). Where the held response has no room for them (it
/// ended with its head) or is still arriving, the response goes out as Envoy's local reply
/// instead, which ends the stream at once (and skips the encoder filters before Breakwater).
#[allow(clippy::too_many_arguments)]
fn relay(
    relays: &mut Relays,
    id: u32,
    place: Place,
    status: u16,
    headers: &Pairs,
    body: Vec<u8>,
    trailers: Pairs,
    lease: Option<Lease>,
) {
    let nothing_to_write = body.is_empty() && trailers.is_empty();
    let fits = match place {
        Place::Head => nothing_to_write,
        Place::Whole => true,
        Place::Arriving => false,
    };
    if !fits {
        let _ = outbound::reply(status, headers, &body);
        return;
    }
    let status_text = status.to_string();
    let head = Pairs::collect(
        std::iter::once((&b":status"[..], status_text.as_bytes())).chain(headers.iter()),
    );
    if outbound::set_map(MapType::HttpResponseHeaders, &head).is_err() {
        let _ = outbound::reply(status, headers, &body);
        return;
    }
    if place == Place::Whole {
        relays.insert(id, Relay::new(body, trailers, lease));
    }
    let _ = hostcalls::resume_http_response();
}

/// The held response's body passes the filter (`size` bytes, the last part if
/// `end_of_stream`). After a relay, the relayed body replaces the first part, later parts are
/// emptied, and the relayed trailers are added at the end. Returns whether to keep holding the
/// part: the retries are still running (Envoy calls the filter with body parts of a response
/// whose head it holds only when configured with `allow_on_headers_stop_iteration`).
pub fn write_body(w: &mut Worker, id: u32, size: usize, end_of_stream: bool) -> bool {
    let Some(relay) = w.relays.get_mut(&id) else {
        return w.retries.pending(id);
    };
    if !relay.written {
        let _ = outbound::set_response_body(size, &relay.body);
        relay.written = true;
    } else if size > 0 {
        let _ = outbound::set_response_body(size, &[]);
    }
    if end_of_stream {
        if let Some(relay) = w.relays.remove(&id) {
            if !relay.trailers.is_empty() {
                // Envoy adds a trailer map to a response whose last body part is being handled.
                let _ = outbound::set_map(MapType::HttpResponseTrailers, &relay.trailers);
            }
        }
    }
    false
}

/// The held response's trailers pass the filter after a relay: the relayed trailers replace them
/// (no trailers: the map is emptied).
pub fn write_trailers(w: &mut Worker, id: u32) {
    if let Some(relay) = w.relays.remove(&id) {
        if !relay.written && !relay.body.is_empty() {
            // The held response had trailers and no body: Envoy calls the filter for no body
            // part, so the relayed body has nowhere to go (the head went without a length, so
            // the client sees an empty body, never a hung one). Rare: an HTTP/2 failure with
            // trailers and no data.
            log::warn!("breakwater: a relayed body was lost: the held response had no body");
        }
        let _ = outbound::set_map(MapType::HttpResponseTrailers, &relay.trailers);
    }
}

/// The stream `id` ended: a relay not yet written goes.
pub fn drop_relay(w: &mut Worker, id: u32) {
    w.relays.remove(&id);
}

/// The fallback due if the cluster's breaker enforces and would reject a request now.
fn fallback_due(w: &mut Worker, exchange: &Exchange, now: Millis) -> Option<(u16, Pairs, Vec<u8>)> {
    let policy = exchange.effective().breaker.as_ref()?;
    if policy.mode != BreakerMode::Enforce {
        return None;
    }
    // A dry run on a copy: what a new request would get, without taking a probe slot.
    let mut breaker = read_breaker(w, &exchange.cluster, &exchange.breaker_key);
    match breaker.admit(policy, now, &mut w.rng).value {
        Admission::Rejected(rejection) => {
            w.metrics.add(&exchange.cluster, Counter::Rejected, 1);
            Some(fallback(policy, rejection.phase, rejection.retry_after))
        }
        Admission::Admitted(_) => None,
    }
}
