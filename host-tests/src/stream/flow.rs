//! Handing a direction's parts to the filter, one callback at a time, and reading its answers.
//!
//! # Statuses (cpp-host `convertVmCallResultTo*Status`)
//! 0 is `Continue`; anything else stops the direction (ABI 0.2 turns a headers
//! `StopIteration` into `StopAllIterationAndWatermark`, so the body waits too). A callback that
//! sent a local reply stops whatever it returned.
//!
//! # Maps and bodies (Envoy `Context::decodeHeaders` and friends)
//! A part's map or buffer becomes reachable when its callback starts and stays so until the
//! filter continues: right away if it returned `Continue`, else at `continue_stream`.

use super::{drain, reply, Part, Stream};
use crate::error::Failure;
use crate::host::Direction;
use crate::observe::{Callback, StreamId};
use crate::state::Core;
use crate::vm::Vm;

/// Runs the request through the filter until it pauses, ends, or goes upstream.
pub(crate) fn pump_request(core: &Core, vm: &mut Vm, id: StreamId) -> Result<(), Failure> {
    loop {
        let next = {
            let state = core.state.borrow();
            let s = &state.streams[id.0];
            if s.req.paused || s.req.aborted || s.finished() {
                return Ok(());
            }
            s.req.next
        };
        match next {
            Part::Done => return reply::forward(core, id),
            part => deliver(core, vm, id, Direction::Request, part)?,
        }
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
    // A response cut short has no end of stream.
    let open_ended = direction == Direction::Response && s.cut.is_some();
    let message = match direction {
        Direction::Request => &s.request,
        Direction::Response => s.response.as_ref()?,
    };
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
    let callback = match (direction, part) {
        (Direction::Request, Part::Headers) => {
            p.req_headers = true;
            Callback::RequestHeaders
        }
        (Direction::Request, Part::Body) => {
            p.req_body = true;
            Callback::RequestBody
        }
        (Direction::Request, _) => {
            p.req_trailers = true;
            Callback::RequestTrailers
        }
        (Direction::Response, Part::Headers) => {
            p.resp_headers = true;
            Callback::ResponseHeaders
        }
        (Direction::Response, Part::Body) => {
            p.resp_body = true;
            Callback::ResponseBody
        }
        (Direction::Response, _) => {
            p.resp_trailers = true;
            Callback::ResponseTrailers
        }
    };
    if part != Part::Trailers {
        p.end_of_stream = end_of_stream;
    }
    match direction {
        Direction::Request => s.req.next = next,
        Direction::Response => s.resp.next = next,
    }
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
        let s = &mut state.streams[id.0];
        if stop {
            match direction {
                Direction::Request => s.req.paused = true,
                Direction::Response => s.resp.paused = true,
            }
        } else {
            let p = &mut s.ptr;
            match callback {
                Callback::RequestHeaders => p.req_headers = false,
                Callback::RequestBody => p.req_body = false,
                Callback::RequestTrailers => p.req_trailers = false,
                Callback::ResponseHeaders => {
                    p.resp_headers = false;
                    s.headers_sent = true;
                }
                Callback::ResponseBody => p.resp_body = false,
                _ => p.resp_trailers = false,
            }
        }
    }
    drain(core, vm)
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
