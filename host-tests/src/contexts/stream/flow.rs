//! Handing a direction's parts to the filter, one callback at a time, and reading its answers.
//!
//! # Statuses (cpp-host `convertVmCallResultTo*Status`)
//! 0 is `Continue`; anything else stops the direction (ABI 0.2 turns a headers
//! `StopIteration` into `StopAllIterationAndWatermark`, so the body waits too; a body `Pause` is
//! `StopIterationAndBuffer`, so later request chunks still reach the filter, see
//! [`super::feed`]). A callback that sent a local reply stops whatever it returned.
//!
//! # Maps and bodies (Envoy `Context::decodeHeaders` and friends)
//! A part's map or buffer becomes reachable when its callback starts and stays so until the
//! filter continues: right away if it returned `Continue`, else at `continue_stream`.
//!
//! The request comes over time ([`super::feed`]): each pump hands the filter what has arrived,
//! then lets the router send on what passed ([`super::forward`]). The response comes whole.

use super::{forward, reply};
use crate::contexts::drain;
use crate::error::Failure;
use crate::observe::{Callback, StreamId};
use crate::state::{Part, State, Stream};
use crate::vm::{Core, Direction, Vm};

/// Runs the request through the filter as far as it has arrived, then sends on what passed.
pub(crate) fn pump_request(core: &Core, vm: &mut Vm, id: StreamId) -> Result<(), Failure> {
    hand_request(core, vm, id)?;
    forward::forward(core, id)
}

/// Hands the filter every request part that has arrived, until it pauses or nothing more is
/// there. A filter that paused in its body callback is still handed later chunks and the
/// trailers (Envoy's `StopIterationAndBuffer`); one that paused in its headers is not.
///
/// Once the headers passed the filter, the router looks the cluster up before the filter sees
/// any body ([`crate::clusters`]): a cluster it cannot send to is answered right there.
pub(crate) fn hand_request(core: &Core, vm: &mut Vm, id: StreamId) -> Result<(), Failure> {
    loop {
        let next = {
            let mut state = core.state.borrow_mut();
            let s = &state.streams[id.0];
            if s.req.aborted || s.finished() || (s.req.paused && s.req.held != Some(Part::Body)) {
                return Ok(());
            }
            if s.sent.headers && !s.routed {
                let unavailable = state.unavailable.get(&s.info.cluster).copied();
                state.streams[id.0].routed = true;
                if let Some(why) = unavailable {
                    drop(state);
                    return reply::router_reply(core, vm, id, why.failure());
                }
            }
            let s = &state.streams[id.0];
            match s.feed.next_part() {
                Some(part) => part,
                None => return Ok(()),
            }
        };
        deliver(core, vm, id, Direction::Request, next)?;
    }
}

/// Runs the response through the filter until it pauses, ends, or reaches the client.
pub(crate) fn pump_response(core: &Core, vm: &mut Vm, id: StreamId) -> Result<(), Failure> {
    loop {
        let (next, cut) = {
            let state = core.state.borrow();
            let s = &state.streams[id.0];
            if s.resp.paused || s.resp.aborted || s.finished() || !s.response_started {
                return Ok(());
            }
            (s.resp.next, s.cut.is_some())
        };
        match next {
            // A response cut short never completes: its reset ends the stream.
            Part::Done if cut => return Ok(()),
            Part::Done => return reply::finish(core, vm, id, reply::End::Complete),
            part => deliver(core, vm, id, Direction::Response, part)?,
        }
    }
}

/// What the filter is called with for one part.
struct Delivery {
    callback: Callback,
    ctx: u32,
    /// Headers or trailers count, or body length.
    size: u32,
    end_of_stream: bool,
}

/// Prepares the part's pointers and the direction's next part; `None` if there is no message.
fn prepare(s: &mut Stream, direction: Direction, part: Part) -> Option<Delivery> {
    match direction {
        Direction::Request => Some(prepare_request(s, part)),
        Direction::Response => prepare_response(s, part),
    }
}

/// Hands the filter the next request part: the headers, what body arrived (added to the body it
/// holds, if it paused in its body callback), or the trailers.
fn prepare_request(s: &mut Stream, part: Part) -> Delivery {
    let (feed, p) = (&mut s.feed, &mut s.ptr);
    let (callback, size, end_of_stream) = match part {
        Part::Headers => {
            feed.handed_headers = true;
            let eos = feed.headers_only();
            feed.handed_end |= eos;
            p.req_headers = true;
            (Callback::RequestHeaders, s.request.headers.len(), eos)
        }
        Part::Body => {
            let arrived = std::mem::take(&mut feed.waiting);
            s.request.body.extend_from_slice(&arrived);
            let eos = feed.body_ends();
            feed.handed_end |= eos;
            p.req_body = true;
            (Callback::RequestBody, s.request.body.len(), eos)
        }
        Part::Trailers | Part::Done => {
            feed.handed_trailers = true;
            feed.handed_end = true;
            p.req_trailers = true;
            (Callback::RequestTrailers, s.request.trailers.len(), true)
        }
    };
    if part != Part::Trailers {
        p.end_of_stream = end_of_stream;
    }
    Delivery {
        callback,
        ctx: s.ctx,
        size: u32::try_from(size).unwrap_or(u32::MAX),
        end_of_stream,
    }
}

/// Prepares the next part of the (whole) response.
fn prepare_response(s: &mut Stream, part: Part) -> Option<Delivery> {
    // A response cut short has no end of stream.
    let open_ended = s.cut.is_some();
    let message = s.response.as_ref()?;
    let has_body = !message.body.is_empty();
    let has_trailers = !message.trailers.is_empty();
    let (size, end_of_stream, next) = match part {
        Part::Headers => (
            message.headers.len(),
            !open_ended && !has_body && !has_trailers,
            if has_body {
                Part::Body
            } else if has_trailers {
                Part::Trailers
            } else {
                Part::Done
            },
        ),
        Part::Body => (
            message.body.len(),
            !open_ended && !has_trailers,
            if has_trailers {
                Part::Trailers
            } else {
                Part::Done
            },
        ),
        Part::Trailers | Part::Done => (message.trailers.len(), true, Part::Done),
    };
    let p = &mut s.ptr;
    let callback = match part {
        Part::Headers => {
            p.resp_headers = true;
            Callback::ResponseHeaders
        }
        Part::Body => {
            p.resp_body = true;
            Callback::ResponseBody
        }
        _ => {
            p.resp_trailers = true;
            Callback::ResponseTrailers
        }
    };
    if part != Part::Trailers {
        p.end_of_stream = end_of_stream;
    }
    s.resp.next = next;
    Some(Delivery {
        callback,
        ctx: s.ctx,
        size: u32::try_from(size).unwrap_or(u32::MAX),
        end_of_stream,
    })
}

/// Calls the filter for one part and applies its answer.
pub(crate) fn deliver(
    core: &Core,
    vm: &mut Vm,
    id: StreamId,
    direction: Direction,
    part: Part,
) -> Result<(), Failure> {
    let delivery = {
        let mut state = core.state.borrow_mut();
        match prepare(&mut state.streams[id.0], direction, part) {
            Some(d) => d,
            None => return Ok(()),
        }
    };
    let Delivery {
        callback,
        ctx,
        size,
        end_of_stream,
    } = delivery;
    let eos = u32::from(end_of_stream);
    let ex = &vm.ex;
    let raw = match callback {
        Callback::RequestHeaders => call3(
            core,
            vm,
            callback,
            ctx,
            ex.request_headers.clone(),
            size,
            eos,
        )?,
        Callback::RequestBody => {
            call3(core, vm, callback, ctx, ex.request_body.clone(), size, eos)?
        }
        Callback::ResponseHeaders => call3(
            core,
            vm,
            callback,
            ctx,
            ex.response_headers.clone(),
            size,
            eos,
        )?,
        Callback::ResponseBody => {
            call3(core, vm, callback, ctx, ex.response_body.clone(), size, eos)?
        }
        Callback::RequestTrailers => {
            call2(core, vm, callback, ctx, ex.request_trailers.clone(), size)?
        }
        _ => call2(core, vm, callback, ctx, ex.response_trailers.clone(), size)?,
    };
    let stop = raw != 0 || vm.store.data().call.stop_iteration;
    {
        let mut state = core.state.borrow_mut();
        match direction {
            Direction::Request => after_request(&mut state, id, part, stop),
            Direction::Response => after_response(&mut state.streams[id.0], callback, stop),
        }
    }
    drain(core, vm)
}

/// A stop holds the request where it is (a filter already holding its body keeps holding it);
/// a continue sends on everything the filter was handed, and resumes a held request as
/// Envoy's `commonHandleAfterDataCallback` does.
fn after_request(state: &mut State, id: StreamId, part: Part, stop: bool) {
    let s = &mut state.streams[id.0];
    if stop {
        if !s.req.paused {
            s.req.paused = true;
            s.req.held = Some(part);
        }
        return;
    }
    s.req.paused = false;
    s.req.held = None;
    forward::pass_handed(state, id);
}

fn after_response(s: &mut Stream, callback: Callback, stop: bool) {
    if stop {
        s.resp.paused = true;
        return;
    }
    let p = &mut s.ptr;
    match callback {
        Callback::ResponseHeaders => {
            p.resp_headers = false;
            s.headers_sent = true;
        }
        Callback::ResponseBody => p.resp_body = false,
        _ => p.resp_trailers = false,
    }
}

type Headers3 = Option<wasmtime::TypedFunc<(u32, u32, u32), u32>>;
type Trailers2 = Option<wasmtime::TypedFunc<(u32, u32), u32>>;

fn call3(
    core: &Core,
    vm: &mut Vm,
    cb: Callback,
    ctx: u32,
    f: Headers3,
    size: u32,
    eos: u32,
) -> Result<u32, Failure> {
    match f {
        Some(f) => vm.call(core, cb, ctx, f, (ctx, size, eos)),
        None => Ok(0),
    }
}

fn call2(
    core: &Core,
    vm: &mut Vm,
    cb: Callback,
    ctx: u32,
    f: Trailers2,
    size: u32,
) -> Result<u32, Failure> {
    match f {
        Some(f) => vm.call(core, cb, ctx, f, (ctx, size)),
        None => Ok(0),
    }
}
