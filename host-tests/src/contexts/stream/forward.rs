//! The upstream leg of a stream's request: what Envoy's router sends the cluster, and when the
//! scripted upstream answers.
//!
//! # Rules (`source/common/router/router.cc`)
//! - The router sends the request headers upstream as soon as they pass the filter
//!   (`Filter::decodeHeaders`, `UpstreamRequest::acceptHeadersFromRouter`) and each body chunk
//!   as it passes (`Filter::decodeData`), so the upstream may see a request begin long before it
//!   ends. The cluster's script is asked once the headers got through, with the body that passed
//!   by then (all of it for a request sent whole); the [`crate::Attempt`] then records every
//!   later byte, and [`crate::UpstreamRequest::complete`] once the end of stream passed.
//! - The route timeout starts when the whole request passed (`Filter::onRequestComplete`), and a
//!   normal reply's [`crate::Reply::after`] counts from there too: a server answers a request it
//!   has read. An [`crate::Reply::early`] reply (and a refused connection) counts from the
//!   headers instead, and may come while the body still streams.
//! - A response that comes before the request ended carries no `x-envoy-upstream-service-time`
//!   (`Filter::onUpstreamHeaders`: "not a premature response").
//! - When the upstream's response is complete before the request is, the router resets the
//!   upstream request (`Filter::onUpstreamComplete`: `!downstream_end_stream_`): the upstream
//!   gets no more of it, and the attempt stays incomplete. Envoy's filter manager then drops the
//!   rest of the request body (see [`super::feed`]). While a response is still open (its head
//!   came, its end did not), the router keeps sending the request body upstream.

use crate::error::Failure;
use crate::events::EventKind;
use crate::observe::StreamId;
use crate::state::State;
use crate::upstream::{AttemptKind, ReplyKind, UpstreamRequest};
use crate::vm::Core;
use crate::HeaderMap;

/// Sends on to the router everything of the request the filter was handed and let go: headers,
/// the body it saw (as it left it), the end of stream. The request maps are out of reach again.
pub(crate) fn pass_handed(state: &mut State, id: StreamId) {
    let s = &mut state.streams[id.0];
    s.ptr.req_headers = false;
    s.ptr.req_body = false;
    s.ptr.req_trailers = false;
    if !s.feed.handed_headers {
        return;
    }
    s.sent.headers = true;
    let body = std::mem::take(&mut s.request.body);
    let end = s.feed.handed_end && !s.sent.end;
    s.sent.body.extend_from_slice(&body);
    s.sent.end |= end;
    let (sending, trailers) = (s.sending, s.request.trailers.clone());
    if let Some(attempt) = sending {
        let request = &mut state.attempts[attempt].request;
        request.body.extend_from_slice(&body);
        if end {
            request.complete = true;
            request.trailers = trailers;
        }
    }
}

/// Lets the upstream act on what passed: asks its script once the headers got through, and
/// starts the reply's clock and the route timeout once the whole request did.
pub(crate) fn forward(core: &Core, id: StreamId) -> Result<(), Failure> {
    let mut state = core.state.borrow_mut();
    let s = &state.streams[id.0];
    if s.finished() || s.req.aborted || !s.sent.headers {
        return Ok(());
    }
    if !s.forwarded {
        ask(&mut state, id)?;
    }
    let s = &state.streams[id.0];
    if s.sent.end && s.sent.complete_at.is_none() {
        completed(&mut state, id);
    }
    Ok(())
}

/// The request headers reached the upstream: records the attempt and asks the script.
fn ask(state: &mut State, id: StreamId) -> Result<(), Failure> {
    let now = state.now;
    let s = &mut state.streams[id.0];
    s.forwarded = true;
    let (worker, slot) = (s.worker, s.slot);
    let cluster = s.info.cluster.clone();
    let mut request = UpstreamRequest {
        cluster: cluster.clone(),
        kind: AttemptKind::Stream { stream: id, worker },
        at: now,
        headers: s.request.headers.clone(),
        body: s.sent.body.clone(),
        trailers: if s.sent.end {
            s.request.trailers.clone()
        } else {
            HeaderMap::new()
        },
        complete: s.sent.end,
        number: 0,
    };
    request.number = state.attempts.next_number(&cluster);
    let Some(script) = state.upstreams.get_mut(&cluster) else {
        let message = format!(
            "{id} was routed to cluster `{cluster}`, which has no upstream: script it with \
             `world.upstream(\"{cluster}\", ...)`"
        );
        let failure = Failure::stuck(message, state.logs.clone(), state.trace_lines());
        state.failure = Some(failure.clone());
        return Err(failure);
    };
    let reply = script.reply(&request);
    let early = reply.early && reply.kind != ReplyKind::Timeout;
    let delay = reply.delay;
    let attempt = state.attempts.record(request, reply);
    let s = &mut state.streams[id.0];
    s.upstream = Some(attempt);
    s.sending = Some(attempt);
    if early {
        let key = state.events.push(
            now + delay,
            slot,
            EventKind::Upstream {
                stream: id,
                attempt,
            },
        );
        state.streams[id.0].early_answer = Some(key);
    }
    Ok(())
}

/// The whole request passed (`Filter::onRequestComplete`): the route timeout starts, and a
/// normal reply comes its delay later (unless the timeout comes first).
fn completed(state: &mut State, id: StreamId) {
    let now = state.now;
    let s = &mut state.streams[id.0];
    s.sent.complete_at = Some(now);
    s.sending = None;
    let Some(attempt) = s.upstream else {
        // Already answered (early) or given up.
        return;
    };
    let (slot, timeout, early) = (s.slot, s.route_timeout, s.early_answer);
    let timed_out = EventKind::RouteTimeout {
        stream: id,
        attempt,
    };
    if let Some(key) = early {
        // An early answer is on its way; the timeout beats it only if it is due first.
        if let Some(t) = timeout.filter(|t| key.0 >= now + *t) {
            state.events.take(key);
            state.streams[id.0].early_answer = None;
            state.events.push(now + t, slot, timed_out);
        }
        return;
    }
    let reply = &state.attempts[attempt].reply;
    let late = timeout.is_some_and(|t| reply.delay >= t);
    let event = match (&reply.kind, timeout) {
        (ReplyKind::Timeout, None) => None,
        (ReplyKind::Timeout, Some(t)) => Some((t, timed_out)),
        (_, Some(t)) if late => Some((t, timed_out)),
        _ => Some((
            reply.delay,
            EventKind::Upstream {
                stream: id,
                attempt,
            },
        )),
    };
    if let Some((after, kind)) = event {
        state.events.push(now + after, slot, kind);
    }
}
