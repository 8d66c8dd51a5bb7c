//! How a stream ends: the upstream's answer or failure, local replies, and the end of the
//! stream (the request's way to the upstream is in [`super::forward`]).

use super::pump_response;
use crate::contexts::drain;
use crate::error::Failure;
use crate::events::EventKind;
use crate::flags;
use crate::local_reply::{self as local, Given};
use crate::observe::{Callback, Response, Source, StreamId, StreamState};
use crate::state::Flow;
use crate::upstream::{self, ReplyKind, UpstreamFailure};
use crate::vm::{Core, Vm};

/// A reply Envoy sends instead of the upstream's (the filter's, or its own), as given to
/// `sendLocalReply`; [`crate::local_reply`] makes the response of it.
pub(crate) struct LocalReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The filter's `grpc_status`, when it gave a known one (0..=16).
    pub grpc_status: Option<u32>,
    pub details: String,
    pub source: Source,
    pub flags: u64,
}

impl LocalReply {
    fn envoy(failure: UpstreamFailure) -> Self {
        LocalReply {
            status: failure.status(),
            headers: Vec::new(),
            body: failure.body().as_bytes().to_vec(),
            grpc_status: None,
            details: failure.details().to_string(),
            source: Source::Envoy,
            flags: failure.flag(),
        }
    }
}

/// How a stream ends.
pub(crate) enum End {
    Complete,
    Reset(String),
    Disconnected,
}

/// The upstream's answer (or refusal, or reset) for the stream's attempt reaches Envoy.
pub(crate) fn upstream_answer(
    core: &Core,
    vm: &mut Vm,
    id: StreamId,
    attempt: usize,
) -> Result<(), Failure> {
    let (kind, service_time) = {
        let mut state = core.state.borrow_mut();
        let now = state.now;
        let s = &mut state.streams[id.0];
        if s.finished() || s.upstream != Some(attempt) {
            return Ok(());
        }
        s.early_answer = None;
        // The router's service time counts from the complete request; none before it.
        let service_time = s.sent.complete_at.map(|complete| now - complete);
        let answered = &mut state.attempts[attempt];
        answered.delivered = true;
        (answered.reply.kind.clone(), service_time)
    };
    let (status, headers, mut body, mut trailers, cut) = match kind {
        ReplyKind::Respond {
            status,
            headers,
            body,
            trailers,
            cut,
        } => (status, headers, body, trailers, cut),
        ReplyKind::Refuse => return envoy_failure(core, vm, id, UpstreamFailure::Refused),
        ReplyKind::Reset => return envoy_failure(core, vm, id, UpstreamFailure::Reset),
        ReplyKind::Timeout => return envoy_failure(core, vm, id, UpstreamFailure::Timeout),
    };
    if let Some(cut) = cut {
        body = cut.announced(body);
        trailers.clear();
    }
    {
        let mut state = core.state.borrow_mut();
        let s = &mut state.streams[id.0];
        s.upstream = None;
        s.info.code = Some(status);
        s.info.details = Some("via_upstream".into());
        let mut message =
            upstream::upstream_message(status, &headers, &body, &trailers, service_time);
        if let Some(cut) = cut {
            // The head announced the whole body; only the part before the reset came.
            message.body.truncate(cut.sent(body.len()));
            s.cut = Some(cut.failure());
        } else {
            // The whole response reached Envoy: the router stops sending the request upstream
            // (`onUpstreamComplete`), the filter manager drops what still comes of it.
            s.response_ended = true;
            s.sending = None;
        }
        s.response = Some(message);
        s.response_started = true;
        s.resp = Flow::start();
        s.source = Source::Upstream;
    }
    pump_response(core, vm, id)?;
    let Some(cut) = cut else {
        return Ok(());
    };
    let after = cut.after();
    if after.is_zero() {
        return upstream_cut(core, vm, id);
    }
    let mut state = core.state.borrow_mut();
    let (at, slot) = (state.now + after, state.streams[id.0].slot);
    state
        .events
        .push(at, slot, EventKind::UpstreamCut { stream: id });
    Ok(())
}

/// The upstream resets a response it cut short ([`crate::Reply::reset_after_headers`],
/// [`crate::Reply::reset_mid_body`]): Envoy's router answers with its own reply
/// (`Filter::onUpstreamReset`, then `onUpstreamAbort`: 503 UR for a remote reset, 502 UPE for a
/// protocol error), which `sendLocalReply` turns into a reset if the head went to the client,
/// or else writes straight to the client past the filter (`sendDirectLocalReply`).
/// Nothing happens if the stream already ended (the client left, the filter replied).
pub(crate) fn upstream_cut(core: &Core, vm: &mut Vm, id: StreamId) -> Result<(), Failure> {
    let failure = {
        let state = core.state.borrow();
        let s = &state.streams[id.0];
        match s.cut {
            Some(failure) if !s.finished() => failure,
            _ => return Ok(()),
        }
    };
    local_reply(core, vm, id, LocalReply::envoy(failure))
}

/// The route timeout of the attempt fired before its answer.
pub(crate) fn route_timeout(
    core: &Core,
    vm: &mut Vm,
    id: StreamId,
    attempt: usize,
) -> Result<(), Failure> {
    {
        let state = core.state.borrow();
        let s = &state.streams[id.0];
        if s.finished() || s.upstream != Some(attempt) || s.response_started {
            return Ok(());
        }
    }
    envoy_failure(core, vm, id, UpstreamFailure::Timeout)
}

/// The router answers while it decodes the request headers: the route's cluster is missing or
/// has no healthy host ([`crate::clusters`]).
pub(crate) fn router_reply(
    core: &Core,
    vm: &mut Vm,
    id: StreamId,
    failure: UpstreamFailure,
) -> Result<(), Failure> {
    local_reply(core, vm, id, LocalReply::envoy(failure))
}

fn envoy_failure(
    core: &Core,
    vm: &mut Vm,
    id: StreamId,
    failure: UpstreamFailure,
) -> Result<(), Failure> {
    core.state.borrow_mut().streams[id.0].upstream = None;
    local_reply(core, vm, id, LocalReply::envoy(failure))
}

/// Envoy's `sendLocalReply`; see the module docs of [`crate::stream`] for the three cases, and
/// [`crate::local_reply`] for the response it makes.
pub(crate) fn local_reply(
    core: &Core,
    vm: &mut Vm,
    id: StreamId,
    reply: LocalReply,
) -> Result<(), Failure> {
    let through_filter = {
        let mut state = core.state.borrow_mut();
        let s = &mut state.streams[id.0];
        if s.finished() {
            return Ok(());
        }
        s.info.flags |= reply.flags;
        s.info.details = Some(reply.details.clone());
        // An upstream request still being sent is reset with the reply.
        s.sending = None;
        s.early_answer = None;
        if s.headers_sent {
            None
        } else {
            let through_filter = !s.response_started;
            let (request, kind, flags) = (s.request.headers.clone(), s.kind, s.info.flags);
            let given = Given {
                status: reply.status,
                headers: &reply.headers,
                body: &reply.body,
                grpc_status: reply.grpc_status,
                details: &reply.details,
                flags,
            };
            let hook = state.local_reply_hook.as_mut();
            let (message, code) = local::prepare(&given, &request, kind, hook);
            let s = &mut state.streams[id.0];
            s.info.code = Some(code);
            s.response = Some(message);
            s.source = reply.source;
            s.upstream = None;
            s.req.aborted = true;
            s.response_started = true;
            s.response_ended = true;
            s.resp = Flow::start();
            Some(through_filter)
        }
    };
    match through_filter {
        Some(true) => pump_response(core, vm, id),
        Some(false) => finish(core, vm, id, End::Complete),
        None => finish(core, vm, id, End::Reset(reply.details)),
    }
}

/// The client disconnects: Envoy marks DC and destroys the stream.
pub(crate) fn disconnect(core: &Core, vm: &mut Vm, id: StreamId) -> Result<(), Failure> {
    {
        let mut state = core.state.borrow_mut();
        let s = &mut state.streams[id.0];
        if s.finished() {
            return Ok(());
        }
        s.info.flags |= flags::DOWNSTREAM_CONNECTION_TERMINATION;
    }
    finish(core, vm, id, End::Disconnected)
}

/// Ends the stream: records what the client got, then runs `on_log`, `on_done`, `on_delete`.
pub(crate) fn finish(core: &Core, vm: &mut Vm, id: StreamId, end: End) -> Result<(), Failure> {
    let (ctx, root) = {
        let mut state = core.state.borrow_mut();
        let now = state.now;
        let s = &mut state.streams[id.0];
        if s.finished() {
            return Ok(());
        }
        s.info.end = Some(now);
        s.upstream = None;
        s.sending = None;
        s.state = match end {
            End::Complete => {
                let message = s.response.clone().unwrap_or_default();
                s.result = Some(Response {
                    status: message
                        .headers
                        .get(":status")
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0),
                    headers: message.headers,
                    body: message.body,
                    trailers: message.trailers,
                    source: s.source.clone(),
                    details: s.info.details.clone().unwrap_or_default(),
                    flags: s.info.flags,
                    at: now,
                });
                StreamState::Complete
            }
            End::Reset(details) => StreamState::Reset { details },
            End::Disconnected => StreamState::Disconnected,
        };
        let line = format!("{id} ended: {:?}", s.state);
        let (ctx, root) = (s.ctx, s.root);
        state.trace(|| line);
        (ctx, root)
    };
    if ctx == 0 {
        return Ok(());
    }
    core.state.borrow_mut().streams[id.0].ptr.log_phase = true;
    let (log, done, delete) = (vm.ex.log.clone(), vm.ex.done.clone(), vm.ex.delete.clone());
    let logged = match log {
        Some(f) => vm.call(core, Callback::Log, ctx, f, ctx),
        None => Ok(()),
    };
    core.state.borrow_mut().streams[id.0].ptr.log_phase = false;
    logged?;
    drain(core, vm)?;
    if let Some(f) = done {
        vm.call(core, Callback::Done, ctx, f, ctx)?;
        drain(core, vm)?;
    }
    if let Some(f) = delete {
        vm.call(core, Callback::Delete, ctx, f, ctx)?;
        drain(core, vm)?;
    }
    vm.store.data_mut().contexts.remove(&ctx);
    crate::contexts::lifecycle::release_root(core, vm, root)
}
