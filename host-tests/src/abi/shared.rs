//! Process-wide state: shared data, shared queues, metrics. Rules in [`crate::shared`] and
//! [`crate::metrics`].
//!
//! Shared data and queue calls are where real workers race, so each is a preemption point: just
//! before it acts, the [`Interleaving`](crate::Interleaving) may run another VM's due event. A
//! compare-and-swap write may also be beaten by an injected other worker ([`crate::faults`]).

use super::{allowed, copy_out, ok_if, read, status, write_u32, write_u64, Ctx};
use crate::events::EventKind;
use crate::faults::ContendedWrite;
use crate::metrics::{MetricError, MetricKind};
use crate::observe::VmId;
use crate::shared::QueueOwner;
use crate::state::State;
use crate::vm::HostState;
use wasmtime::Linker;

pub(super) fn add(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap("env", "proxy_get_shared_data", get_shared_data)?;
    linker.func_wrap("env", "proxy_set_shared_data", set_shared_data)?;
    linker.func_wrap("env", "proxy_register_shared_queue", register_queue)?;
    linker.func_wrap("env", "proxy_resolve_shared_queue", resolve_queue)?;
    linker.func_wrap("env", "proxy_enqueue_shared_queue", enqueue)?;
    linker.func_wrap("env", "proxy_dequeue_shared_queue", dequeue)?;
    linker.func_wrap("env", "proxy_define_metric", define_metric)?;
    linker.func_wrap(
        "env",
        "proxy_increment_metric",
        |caller: Ctx<'_>, id: u32, offset: i64| {
            allowed(&caller, "proxy_increment_metric")?;
            metric_result(&caller, id, |host, m| {
                host.metric_ids.increment(id, offset, m)
            })
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_record_metric",
        |caller: Ctx<'_>, id: u32, value: u64| {
            allowed(&caller, "proxy_record_metric")?;
            metric_result(&caller, id, |host, m| host.metric_ids.record(id, value, m))
        },
    )?;
    linker.func_wrap("env", "proxy_get_metric", get_metric)?;
    Ok(())
}

/// Lets the interleaving run another VM first; a failure there fails this VM's call too.
fn preemption_point(caller: &Ctx<'_>, call: &str) -> wasmtime::Result<()> {
    let host = caller.data();
    crate::engine::preemption_point(&host.core(), host.slot, call).map_err(|_| {
        wasmtime::Error::msg(format!("another VM failed while this one was in {call}"))
    })
}

fn get_shared_data(
    mut caller: Ctx<'_>,
    key: u32,
    key_len: u32,
    ptr_ptr: u32,
    size_ptr: u32,
    cas_ptr: u32,
) -> wasmtime::Result<u32> {
    allowed(&caller, "proxy_get_shared_data")?;
    let Some(key) = read(&caller, key, key_len) else {
        return Ok(status::INVALID_MEMORY_ACCESS);
    };
    preemption_point(&caller, "proxy_get_shared_data")?;
    let found = {
        let host = caller.data();
        let core = host.core();
        let state = core.state.borrow();
        let vm_id = &state.plugins[host.plugin].vm_id;
        state
            .shared
            .get(vm_id, &key)
            .map(|(v, cas)| (v.to_vec(), cas))
    };
    let Some((value, cas)) = found else {
        return Ok(status::NOT_FOUND);
    };
    if !copy_out(&mut caller, &value, ptr_ptr, size_ptr)? {
        return Ok(status::INVALID_MEMORY_ACCESS);
    }
    Ok(ok_if(write_u32(&mut caller, cas_ptr, cas)))
}

fn set_shared_data(
    caller: Ctx<'_>,
    key: u32,
    key_len: u32,
    value: u32,
    value_len: u32,
    cas: u32,
) -> wasmtime::Result<u32> {
    allowed(&caller, "proxy_set_shared_data")?;
    let (Some(key), Some(value)) = (read(&caller, key, key_len), read(&caller, value, value_len))
    else {
        return Ok(status::INVALID_MEMORY_ACCESS);
    };
    preemption_point(&caller, "proxy_set_shared_data")?;
    let host = caller.data();
    let core = host.core();
    let mut state = core.state.borrow_mut();
    let vm_id = state.plugins[host.plugin].vm_id.clone();
    if cas != 0 {
        before_cas_write(&mut state, host.vm, &vm_id, &key, &value);
    }
    match state.shared.set(&vm_id, &key, &value, cas) {
        Ok(_) => Ok(status::OK),
        Err(_) => Ok(status::CAS_MISMATCH),
    }
}

/// Called just before a compare-and-swap write (cas ≠ 0) of `vm` lands: a matching contention
/// fault ([`crate::faults`]) writes the key first.
fn before_cas_write(state: &mut State, vm: VmId, vm_id: &str, key: &[u8], attempted: &[u8]) {
    let Some(write) = state.faults.interloper(key) else {
        return;
    };
    let current = state.shared.get(vm_id, key).map(|(v, _)| v.to_vec());
    let bytes = write(current.as_deref(), attempted);
    // cas 0 never fails: the interloper's write always lands.
    let _ = state.shared.set(vm_id, key, &bytes, 0);
    let at = state.now;
    state.faults.record_contended(ContendedWrite {
        at,
        vm,
        key: key.to_vec(),
    });
    state.trace(|| {
        format!(
            "another worker wrote '{}' before {vm}",
            String::from_utf8_lossy(key)
        )
    });
}

/// The queue's deliveries go to the root of the registering context.
fn register_queue(
    mut caller: Ctx<'_>,
    name: u32,
    name_len: u32,
    token_ptr: u32,
) -> wasmtime::Result<u32> {
    allowed(&caller, "proxy_register_shared_queue")?;
    let Some(name) = read(&caller, name, name_len) else {
        return Ok(status::INVALID_MEMORY_ACCESS);
    };
    preemption_point(&caller, "proxy_register_shared_queue")?;
    let host = caller.data();
    let Some(root) = host.root_of(host.context_id()) else {
        return Ok(status::NOT_FOUND);
    };
    let owner = QueueOwner {
        slot: host.slot,
        root,
    };
    let core = host.core();
    let mut state = core.state.borrow_mut();
    let vm_id = state.plugins[host.plugin].vm_id.clone();
    let token = state.queues.register(&vm_id, &name, owner);
    drop(state);
    Ok(ok_if(write_u32(&mut caller, token_ptr, token)))
}

/// An empty VM id means the caller's own; any other names that VM id's namespace (cpp-host
/// `ContextBase::lookupSharedQueue`), so a plugin can reach another VM id's queue.
fn resolve_queue(
    mut caller: Ctx<'_>,
    vm_id: u32,
    vm_id_len: u32,
    name: u32,
    name_len: u32,
    token_ptr: u32,
) -> wasmtime::Result<u32> {
    allowed(&caller, "proxy_resolve_shared_queue")?;
    let (Some(vm_id), Some(name)) = (
        read(&caller, vm_id, vm_id_len),
        read(&caller, name, name_len),
    ) else {
        return Ok(status::INVALID_MEMORY_ACCESS);
    };
    let token = {
        let host = caller.data();
        let core = host.core();
        let state = core.state.borrow();
        let target = if vm_id.is_empty() {
            state.plugins[host.plugin].vm_id.clone()
        } else {
            String::from_utf8_lossy(&vm_id).into_owned()
        };
        state.queues.resolve(&target, &name)
    };
    match token {
        Some(token) => Ok(ok_if(write_u32(&mut caller, token_ptr, token))),
        None => Ok(status::NOT_FOUND),
    }
}

/// Queues the item and tells the registrant's root, as a later event on its VM.
fn enqueue(caller: Ctx<'_>, token: u32, ptr: u32, len: u32) -> wasmtime::Result<u32> {
    allowed(&caller, "proxy_enqueue_shared_queue")?;
    let Some(item) = read(&caller, ptr, len) else {
        return Ok(status::INVALID_MEMORY_ACCESS);
    };
    preemption_point(&caller, "proxy_enqueue_shared_queue")?;
    let core = caller.data().core();
    let mut state = core.state.borrow_mut();
    match state.queues.enqueue(token, &item) {
        Ok(owner) => {
            let now = state.now;
            state.events.push(
                now,
                owner.slot,
                EventKind::QueueReady {
                    root: owner.root,
                    token,
                },
            );
            Ok(status::OK)
        }
        Err(_) => Ok(status::NOT_FOUND),
    }
}

fn dequeue(mut caller: Ctx<'_>, token: u32, ptr_ptr: u32, size_ptr: u32) -> wasmtime::Result<u32> {
    allowed(&caller, "proxy_dequeue_shared_queue")?;
    preemption_point(&caller, "proxy_dequeue_shared_queue")?;
    let item = caller
        .data()
        .core()
        .state
        .borrow_mut()
        .queues
        .dequeue(token);
    match item {
        Err(_) => Ok(status::NOT_FOUND),
        Ok(None) => Ok(status::EMPTY),
        Ok(Some(item)) => Ok(ok_if(copy_out(&mut caller, &item, ptr_ptr, size_ptr)?)),
    }
}

fn define_metric(
    mut caller: Ctx<'_>,
    kind: u32,
    name: u32,
    name_len: u32,
    id_ptr: u32,
) -> wasmtime::Result<u32> {
    allowed(&caller, "proxy_define_metric")?;
    let Some(kind) = MetricKind::from_u32(kind) else {
        return Ok(status::BAD_ARGUMENT);
    };
    let Some(name) = read(&caller, name, name_len) else {
        return Ok(status::INVALID_MEMORY_ACCESS);
    };
    let name = String::from_utf8_lossy(&name).into_owned();
    let core = caller.data().core();
    let id = {
        let mut state = core.state.borrow_mut();
        caller
            .data_mut()
            .metric_ids
            .define(kind, &name, &mut state.metrics)
    };
    Ok(ok_if(write_u32(&mut caller, id_ptr, id)))
}

fn metric_result(
    caller: &Ctx<'_>,
    id: u32,
    op: impl FnOnce(&HostState, &mut crate::metrics::Metrics) -> Result<(), MetricError>,
) -> wasmtime::Result<u32> {
    let host = caller.data();
    let core = host.core();
    let mut state = core.state.borrow_mut();
    match op(host, &mut state.metrics) {
        Ok(()) => Ok(status::OK),
        Err(MetricError::NotFound) => Ok(status::NOT_FOUND),
        Err(MetricError::BadArgument) => Ok(status::BAD_ARGUMENT),
        Err(MetricError::Underflow) => Err(wasmtime::Error::msg(format!(
            "gauge `{}` decremented below zero (Envoy asserts a gauge never goes negative)",
            host.metric_ids.name(id).unwrap_or("?")
        ))),
    }
}

fn get_metric(mut caller: Ctx<'_>, id: u32, value_ptr: u32) -> wasmtime::Result<u32> {
    allowed(&caller, "proxy_get_metric")?;
    let value = {
        let host = caller.data();
        let core = host.core();
        let mut state = core.state.borrow_mut();
        host.metric_ids.get(id, &mut state.metrics)
    };
    match value {
        Ok(value) => Ok(ok_if(write_u64(&mut caller, value_ptr, value))),
        Err(MetricError::BadArgument) => Ok(status::BAD_ARGUMENT),
        Err(_) => Ok(status::NOT_FOUND),
    }
}
