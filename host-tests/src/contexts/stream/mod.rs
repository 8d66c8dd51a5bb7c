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
pub(crate) use reply::{
    disconnect, finish, local_reply, route_timeout, upstream_answer, upstream_cut, End, LocalReply,
};

use crate::contexts::drain;
use crate::error::Failure;
use crate::local_reply::RequestKind;
use crate::observe::{Callback, StreamId, StreamState};
use crate::vm::{Core, Ctx, Vm};

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
