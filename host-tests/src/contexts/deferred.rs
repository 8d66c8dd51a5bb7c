//! The actions a VM call deferred, run when it returns.
//!
//! As in Envoy, `proxy_continue_stream`, `proxy_send_local_response`, `proxy_close_stream` and
//! `proxy_done` do not act inside the host call: they queue an action that runs once the VM call
//! returns (`wasm()->addAfterVmCallAction` in Envoy's `context.cc`, cpp-host's
//! `doAfterVmCallActions`). Running one may call the VM again, whose own deferred actions join
//! the same queue. This is where streams and root contexts meet: an action may move a stream
//! (and a stream's end may shut its root down), or delete a root (see [`super`]).

use super::lifecycle;
use super::stream::{finish, forward, local_reply, pump_request, pump_response, End, LocalReply};
use crate::error::Failure;
use crate::faults::LateAction;
use crate::observe::{Source, StreamId};
use crate::state::State;
use crate::vm::{Core, Deferred, Direction, Vm};

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
                local_reply(core, vm, stream, reply)?;
            }
            Deferred::Close { stream } if late(core, stream, "close") => {}
            Deferred::Close { stream } => {
                finish(core, vm, stream, End::Reset("wasm_close_stream".into()))?
            }
            Deferred::RootDone { root } => lifecycle::delete_root(core, vm, root)?,
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
