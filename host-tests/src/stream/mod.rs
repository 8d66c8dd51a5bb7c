//! A downstream HTTP stream as Envoy's HTTP connection manager runs it through one wasm filter.
//!
//! # Callback order (Envoy's `FilterManager` and wasm `Context`)
//! 1. `proxy_on_context_create(ctx, root)` when the request arrives.
//! 2. `on_request_headers`, then `on_request_body` for each body chunk as it arrives (one, for
//!    a body sent whole), then `on_request_trailers` (if there are trailers); see [`feed`] for
//!    a body that streams. A callback that returns `Pause` (or sends a local reply) stops the
//!    request there until `continue_stream(Request)`; the parts not yet seen are then delivered
//!    to the filter, starting with the next one.
//! 3. What passes the filter goes on to the cluster's scripted upstream, the headers first
//!    ([`forward`]); the upstream answers once the whole request came, or at once for an
//!    early reply.
//! 4. `on_response_headers`, `on_response_body`, `on_response_trailers`, likewise for the
//!    response (from the upstream, or a local reply).
//! 5. When the response is complete, or the stream is reset, or the client disconnects:
//!    `on_log` (the access-log phase, reading the final maps), `on_done`, `on_delete`. From
//!    then on the context is gone and `set_effective_context` to it is `BadArgument`.
//!
//! # Local replies (`DownstreamFilterManager::sendLocalReply`, `source/common/http/filter_manager.cc`)
//! - Before any response reached the filter, the reply runs through the filter chain
//!   (`sendLocalReplyViaFilterChain`, encoding from the first encoder filter): the filter's own
//!   `on_response_headers` and `on_response_body` see it, even when the filter itself sent it.
//!   The request stops where it was; an upstream request in flight is dropped.
//! - Once a response reached the filter but was not yet passed to the client (the filter paused
//!   in `on_response_headers`: the response headers are set but `non_100_response_headers_encoded_`
//!   is not), the reply goes straight to the codec (`sendDirectLocalReply`), past the filter and
//!   every encoder filter after it: the filter sees only the stream's end.
//! - Once response headers went to the client, Envoy can only reset the stream.
//! - Either way the response is built as [`crate::local_reply`] says: not a relay of what was given (gRPC
//!   requests get a trailers-only reply, `HEAD` requests no body, `local_reply_config` rewrites
//!   it).
//! - Once the stream has ended, a local reply, resume or reset the filter asks for is ignored
//!   (and recorded, see [`crate::faults`]).
//!
//! Envoy's router answers an upstream that resets after its head (right after it, or mid-body)
//! the same way, with its own 503 or 502 (see [`crate::upstream`]): a reset if the head went to
//! the client, else a direct reply.

pub mod feed;
mod flow;
pub mod forward;
mod reply;

pub(crate) use feed::request_chunk;
pub(crate) use flow::{pump_request, pump_response};
pub(crate) use reply::{disconnect, route_timeout, upstream_answer, upstream_cut, LocalReply};

use crate::error::Failure;
use crate::faults::LateAction;
use crate::local_reply::RequestKind;
use crate::observe::{Callback, Source, StreamId, StreamState};
use crate::state::State;
pub(crate) use crate::state::{Flow, Part, Stream};
use crate::vm::Core;
use crate::vm::Vm;
use crate::vm::{Ctx, Deferred, Direction};

/// The request arrives on its worker: the filter's context is created and the request runs.
pub(crate) fn arrive(core: &Core, vm: &mut Vm, id: StreamId) -> Result<(), Failure> {
    let host = vm.store.data_mut();
    let root = host.active_root;
    let ctx = {
        let mut state = core.state.borrow_mut();
        let now = state.now;
        let start_unix = crate::clock::unix_nanos(now, state.wall_step);
        let missing = matches!(
            state.unavailable.get(&state.streams[id.0].info.cluster),
            Some(crate::clusters::Unavailable::Absent)
        );
        let stream = &mut state.streams[id.0];
        if stream.finished() {
            return Ok(());
        }
        stream.info.start_unix = start_unix;
        stream.info.cluster_missing = missing;
        stream.kind = RequestKind::of(&stream.request.headers);
        let ctx = host.alloc_context_id();
        stream.ctx = ctx;
        stream.root = root;
        stream.state = StreamState::Open;
        stream.info.start = now;
        ctx
    };
    host.contexts.insert(ctx, Ctx::Http { root, stream: id });
    if let Some(f) = vm.ex.context_create.clone() {
        vm.call(core, Callback::ContextCreate, ctx, f, (ctx, root))?;
        drain(core, vm)?;
    }
    feed::with_headers(core, vm, id)?;
    pump_request(core, vm, id)
}

/// Runs the actions the last VM call deferred, in order (each may call the VM again, whose own
/// deferred actions join the same queue, as in cpp-host's `doAfterVmCallActions`).
pub(crate) fn drain(core: &Core, vm: &mut Vm) -> Result<(), Failure> {
    while let Some(action) = vm.store.data_mut().deferred.pop_front() {
        match action {
            Deferred::Continue {
                stream,
                direction,
                was_paused,
            } => {
                let resumed = {
                    let mut state = core.state.borrow_mut();
                    if state.streams[stream.0].finished() {
                        record_late(&mut state, stream, "continue");
                        continue;
                    }
                    let s = &mut state.streams[stream.0];
                    let paused = match direction {
                        Direction::Request => s.req.paused,
                        Direction::Response => s.resp.paused,
                    };
                    let resume = was_paused && paused;
                    if resume {
                        match direction {
                            Direction::Request => {
                                s.req.paused = false;
                                s.req.held = None;
                                forward::pass_handed(&mut state, stream);
                            }
                            // A response can only pause once its headers reached the filter,
                            // so continuing it sends them to the client.
                            Direction::Response => {
                                s.resp.paused = false;
                                s.headers_sent = true;
                            }
                        }
                    }
                    resume
                };
                match (resumed, direction) {
                    (true, Direction::Request) => pump_request(core, vm, stream)?,
                    (true, Direction::Response) => pump_response(core, vm, stream)?,
                    (false, _) => {}
                }
            }
            Deferred::LocalReply {
                stream,
                status,
                body,
                headers,
                grpc_status,
                details,
            } => {
                if late(core, stream, "local reply") {
                    continue;
                }
                let reply = LocalReply {
                    status,
                    headers,
                    body,
                    grpc_status,
                    details,
                    source: Source::Filter,
                    flags: 0,
                };
                reply::local_reply(core, vm, stream, reply)?;
            }
            Deferred::Close { stream } if late(core, stream, "close") => {}
            Deferred::Close { stream } => reply::finish(
                core,
                vm,
                stream,
                reply::End::Reset("wasm_close_stream".into()),
            )?,
            Deferred::RootDone { root } => crate::lifecycle::delete_root(core, vm, root)?,
        }
    }
    Ok(())
}

/// Whether `stream` has ended, in which case the action is recorded as late and ignored.
fn late(core: &Core, stream: StreamId, action: &'static str) -> bool {
    let mut state = core.state.borrow_mut();
    let finished = state.streams[stream.0].finished();
    if finished {
        record_late(&mut state, stream, action);
    }
    finished
}

/// Records an action on a finished stream ([`crate::faults`]).
fn record_late(state: &mut State, stream: StreamId, action: &'static str) {
    let at = state.now;
    state.trace(|| format!("{stream} had ended: its {action} was ignored"));
    state.faults.record_late(LateAction { at, stream, action });
}
