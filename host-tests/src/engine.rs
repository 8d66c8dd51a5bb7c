//! The event loop: runs due events in virtual-time order, one VM at a time, and lets the
//! [`Interleaving`](crate::Interleaving) pick among simultaneous ones and preempt at shared
//! state.

use crate::contexts::stream;
use crate::contexts::{calls, lifecycle};
use crate::error::Failure;
use crate::events::{EventKey, EventKind};
use crate::observe::StreamState;
use crate::vm::{Core, Vm};
use std::time::Duration;

/// Runs one scheduled event on its VM.
fn run_event(core: &Core, key: EventKey) -> Result<(), Failure> {
    let Some(event) = core.state.borrow_mut().events.take(key) else {
        return Ok(());
    };
    if !core.slots.borrow()[event.slot].alive {
        return Ok(());
    }
    let mut vm = lifecycle::take(core, event.slot)?;
    let vm_id = vm.id();
    core.state
        .borrow_mut()
        .trace(|| format!("{vm_id}: {:?}", event.kind));
    let result = dispatch(core, &mut vm, event.kind);
    lifecycle::put(core, event.slot, vm);
    result
}

fn dispatch(core: &Core, vm: &mut Vm, kind: EventKind) -> Result<(), Failure> {
    match kind {
        EventKind::Arrive(s) => stream::arrive(core, vm, s),
        EventKind::RequestChunk { stream, index } => stream::request_chunk(core, vm, stream, index),
        EventKind::Upstream { stream, attempt } => {
            stream::upstream_answer(core, vm, stream, attempt)
        }
        EventKind::UpstreamCut { stream } => stream::upstream_cut(core, vm, stream),
        EventKind::RouteTimeout { stream, attempt } => {
            stream::route_timeout(core, vm, stream, attempt)
        }
        EventKind::Disconnect(s) => stream::disconnect(core, vm, s),
        EventKind::Tick { root, generation } => lifecycle::tick(core, vm, root, generation),
        EventKind::CallDone { token } => calls::complete(core, vm, token),
        EventKind::QueueReady { root, token } => lifecycle::queue_ready(core, vm, root, token),
    }
}

/// An earlier failure poisons the world: every later operation reports it.
pub(crate) fn check(core: &Core) -> Result<(), Failure> {
    match &core.state.borrow().failure {
        Some(failure) => Err(failure.clone()),
        None => Ok(()),
    }
}

/// Runs every event due at or before `until` in order, then sets the clock to `until`.
pub(crate) fn run_until(core: &Core, until: Duration) -> Result<(), Failure> {
    loop {
        check(core)?;
        let key = {
            let mut state = core.state.borrow_mut();
            let Some(at) = state.events.next_time().filter(|at| *at <= until) else {
                break;
            };
            state.now = state.now.max(at);
            let heads = {
                let slots = core.slots.borrow();
                state.events.heads_at(at, |slot| slots[slot].alive)
            };
            if heads.is_empty() {
                // Only events of dead VMs are due: drop them.
                let dead: Vec<usize> = core
                    .slots
                    .borrow()
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| !s.alive)
                    .map(|(i, _)| i)
                    .collect();
                for slot in dead {
                    state.events.drop_slot(slot);
                }
                continue;
            }
            let choice = state.interleaving.pick(heads.len());
            heads[choice]
        };
        run_event(core, key)?;
    }
    let mut state = core.state.borrow_mut();
    state.now = state.now.max(until);
    Ok(())
}

/// Called by a VM just before it touches process-wide state: the interleaving may first run
/// one due event of another idle VM (which may itself be preempted, one VM deeper).
pub(crate) fn preemption_point(core: &Core, running: usize, call: &str) -> Result<(), Failure> {
    let key = {
        let mut state = core.state.borrow_mut();
        let now = state.now;
        let heads = {
            let slots = core.slots.borrow();
            state.events.heads_at(now, |slot| {
                slot != running && slots[slot].alive && slots[slot].vm.is_some()
            })
        };
        let Some(choice) = state.interleaving.preempt(heads.len()) else {
            return Ok(());
        };
        let running_id = core.slots.borrow()[running].id;
        state.trace(|| format!("{running_id} preempted in {call}"));
        heads[choice]
    };
    run_event(core, key)
}

/// Runs until no stream is open and nothing but ticks is scheduled; a world still busy after
/// `limit` of virtual time is stuck, and the error says where each open stream waits.
pub(crate) fn run_until_idle(core: &Core, limit: Duration) -> Result<Duration, Failure> {
    let start = core.state.borrow().now;
    loop {
        check(core)?;
        let (busy, next) = {
            let state = core.state.borrow();
            let open = state.streams.iter().any(|s| !s.finished());
            (open || state.events.has_work(), state.events.next_time())
        };
        if !busy {
            break;
        }
        match next {
            Some(at) if at <= start + limit => run_until(core, at)?,
            _ => return Err(stuck(core, limit)),
        }
    }
    let now = core.state.borrow().now;
    Ok(now - start)
}

fn stuck(core: &Core, limit: Duration) -> Failure {
    let state = core.state.borrow();
    let mut waiting = Vec::new();
    for s in state.streams.iter().filter(|s| !s.finished()) {
        let where_ = if s.state == StreamState::Scheduled {
            "scheduled, not arrived".to_string()
        } else if s.resp.paused {
            format!("response paused by the filter before {:?}", s.resp.next)
        } else if s.req.paused {
            format!(
                "request paused by the filter in its {:?} callback",
                s.req.held
            )
        } else if s.upstream.is_some() {
            "waiting for an upstream that never answers (no route timeout)".to_string()
        } else if !s.feed.ended {
            "waiting for the rest of the request body".to_string()
        } else {
            "waiting".to_string()
        };
        waiting.push(format!("{} on worker {}: {where_}", s.id, s.worker));
    }
    let message = format!(
        "the world did not become idle within {limit:?} of virtual time; open streams: [{}]",
        waiting.join("; ")
    );
    Failure::stuck(message, state.logs.clone(), state.trace_lines())
}
