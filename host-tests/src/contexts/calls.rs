//! Dispatched HTTP calls (`proxy_http_call`), from the request to `proxy_on_http_call_response`.
//!
//! # Envoy's rules (`Context::httpCall`, `onHttpCallSuccess`, `onHttpCallFailure`)
//! - The call belongs to the root context of whoever dispatched it, and its response is
//!   delivered to that root (the Rust SDK then routes it to the dispatching context).
//! - Refused at once with `BadArgument`: an unknown cluster (unscripted, or absent: see
//!   [`crate::clusters`]), a missing `:method`, `:path` or `:authority`, a negative timeout. Otherwise the token is fresh (4, 8, 12, ... per VM).
//! - A body gets a `content-length` header. A timeout of 0 means no timeout.
//! - A reply no earlier than the timeout is replaced by a synthesized 504 at the timeout.
//! - A reset after the response started is delivered as 0 headers, 0 body, 0 trailers, with
//!   `get_status` answering 11 (`BrokenConnection`) and `reset` during the callback; Envoy keeps
//!   the code afterwards and clears only the message. The response is buffered whole, so a
//!   [`Reply::reset_after_headers`](crate::Reply::reset_after_headers) or
//!   [`Reply::reset_mid_body`](crate::Reply::reset_mid_body) is such a reset, delivered when the
//!   upstream resets (and a 504 if that is no earlier than the call's timeout); what the stream
//!   path does with a held head does not apply to a call.
//! - If the root is gone by then, Envoy has cancelled the call: nothing is delivered.
//! - A dispatch that `AsyncClient::send` fails inline is refused with `InternalFailure` and
//!   never delivered: a cluster without a healthy host ([`crate::clusters`]), or a refusal a
//!   test injects ([`crate::faults`]).

use crate::clusters::Unavailable;
use crate::error::Failure;
use crate::events::EventKind;
use crate::faults::{CallRefusal, RefusedCall};
use crate::observe::Callback;
use crate::state::State;
use crate::status;
use crate::upstream::{self, AttemptKind, Cut, ReplyKind, UpstreamFailure, UpstreamRequest};
use crate::vm::{CallOutcome, CallResponse, Core, HostState, PendingCall, Vm};
use crate::HeaderMap;
use std::time::Duration;

pub(crate) struct CallRequest {
    pub cluster: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub trailers: HeaderMap,
    pub timeout_ms: u32,
}

/// Starts a call; `Err` carries the status the guest gets instead of a token. Every refusal is
/// recorded (see [`crate::faults`]).
pub(crate) fn dispatch(host: &mut HostState, call: CallRequest) -> Result<u32, u32> {
    let cluster = call.cluster.clone();
    let result = start(host, call);
    if let Err((status, injected)) = result {
        let core = host.core();
        let mut state = core.state.borrow_mut();
        let refused = RefusedCall {
            at: state.now,
            vm: host.vm,
            cluster,
            status,
            injected,
        };
        record_refusal(&mut state, refused);
    }
    result.map_err(|(status, _)| status)
}

/// Records a refused dispatch.
fn record_refusal(state: &mut State, refused: RefusedCall) {
    let line = format!(
        "{}: proxy_http_call to '{}' refused with status {}",
        refused.vm, refused.cluster, refused.status
    );
    state.trace(|| line);
    state.faults.record_refused(refused);
}

/// `Err((status, injected))` when the call does not start.
fn start(host: &mut HostState, mut call: CallRequest) -> Result<u32, (u32, bool)> {
    let refused = |status| (status, false);
    if i32::try_from(call.timeout_ms).is_err() {
        return Err(refused(status::BAD_ARGUMENT));
    }
    let root = host
        .root_of(host.context_id())
        .ok_or(refused(status::BAD_ARGUMENT))?;
    let core = host.core();
    let mut state = core.state.borrow_mut();
    let unavailable = state.unavailable.get(&call.cluster).copied();
    if unavailable == Some(Unavailable::Absent) || !state.upstreams.contains_key(&call.cluster) {
        return Err(refused(status::BAD_ARGUMENT));
    }
    let required = [":method", ":path", ":authority"];
    if required.iter().any(|h| call.headers.get_bytes(h).is_none()) {
        return Err(refused(status::BAD_ARGUMENT));
    }
    if unavailable == Some(Unavailable::NoHealthyHost) {
        // The router's local reply completes the call inside `send`, which then returns no
        // request: the token is spent, nothing is delivered (see `crate::clusters`).
        host.alloc_call_token();
        return Err(refused(status::INTERNAL_FAILURE));
    }
    match state.faults.refusal_for(&call.cluster) {
        Some(CallRefusal::BadArgument) => return Err((status::BAD_ARGUMENT, true)),
        Some(CallRefusal::InternalFailure) => {
            // Envoy takes the token before `send` fails inline.
            host.alloc_call_token();
            return Err((status::INTERNAL_FAILURE, true));
        }
        None => {}
    }
    if !call.body.is_empty() {
        call.headers
            .replace("content-length", &call.body.len().to_string());
    }
    let token = host.alloc_call_token();
    let timeout = Some(Duration::from_millis(u64::from(call.timeout_ms))).filter(|t| !t.is_zero());
    let number = state.attempts.next_number(&call.cluster);
    let request = UpstreamRequest {
        cluster: call.cluster.clone(),
        kind: AttemptKind::Call {
            vm: host.vm,
            token,
            timeout,
        },
        at: state.now,
        headers: call.headers,
        body: call.body,
        trailers: call.trailers,
        complete: true,
        number,
    };
    let reply = match state.upstreams.get_mut(&call.cluster) {
        Some(script) => script.reply(&request),
        None => return Err(refused(status::BAD_ARGUMENT)),
    };
    let now = state.now;
    // The `AsyncClient` buffers the whole response: a call is done when its upstream finishes
    // or resets, and its timeout covers all of it.
    let done_after = match &reply.kind {
        ReplyKind::Respond {
            cut: Some(Cut::MidBody { after }),
            ..
        } => reply.delay + *after,
        _ => reply.delay,
    };
    let outcome = match &reply.kind {
        _ if timeout.is_some_and(|t| done_after >= t) => timed_out(timeout),
        ReplyKind::Timeout => timed_out(timeout),
        ReplyKind::Respond { cut: Some(_), .. } => Some((done_after, CallOutcome::Reset)),
        ReplyKind::Respond {
            status,
            headers,
            body,
            trailers,
            cut: None,
        } => Some((
            reply.delay,
            CallOutcome::Answered(upstream::upstream_message(
                *status,
                headers,
                body,
                trailers,
                Some(reply.delay),
            )),
        )),
        ReplyKind::Refuse => Some((reply.delay, synthesized(UpstreamFailure::Refused))),
        ReplyKind::Reset => Some((reply.delay, synthesized(UpstreamFailure::Reset))),
    };
    let attempt = state.attempts.record(request, reply);
    if let Some((delay, outcome)) = outcome {
        state
            .events
            .push(now + delay, host.slot, EventKind::CallDone { token });
        host.calls.insert(
            token,
            PendingCall {
                root,
                attempt,
                outcome,
            },
        );
    }
    Ok(token)
}

fn timed_out(timeout: Option<Duration>) -> Option<(Duration, CallOutcome)> {
    timeout.map(|t| (t, synthesized(UpstreamFailure::Timeout)))
}

fn synthesized(failure: UpstreamFailure) -> CallOutcome {
    CallOutcome::Answered(crate::local_reply::plain(
        failure.status(),
        failure.body().as_bytes(),
    ))
}

/// Delivers a completed call to its root.
pub(crate) fn complete(core: &Core, vm: &mut Vm, token: u32) -> Result<(), Failure> {
    let host = vm.store.data_mut();
    let Some(pending) = host.calls.remove(&token) else {
        return Ok(());
    };
    let Some(root) = host.root_mut(pending.root) else {
        return Ok(());
    };
    let (headers, body, trailers, response) = match pending.outcome {
        CallOutcome::Answered(message) => (
            count(message.headers.len()),
            count(message.body.len()),
            count(message.trailers.len()),
            CallResponse::Answered(message),
        ),
        CallOutcome::Reset => {
            root.status = (status::BROKEN_CONNECTION, "reset".to_string());
            (0, 0, 0, CallResponse::Reset)
        }
    };
    root.call_response = Some(response);
    core.state.borrow_mut().attempts[pending.attempt].delivered = true;
    let result = match vm.ex.http_call_response.clone() {
        Some(f) => vm
            .call(
                core,
                Callback::HttpCallResponse,
                pending.root,
                f,
                (pending.root, token, headers, body, trailers),
            )
            .map(|_| ()),
        None => Ok(()),
    };
    if let Some(root) = vm.store.data_mut().root_mut(pending.root) {
        root.call_response = None;
        root.status.1.clear();
    }
    result?;
    crate::contexts::drain(core, vm)
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}
