//! Logging, time, ticks, properties, status, the effective context, and the calls the harness
//! does not model (gRPC, foreign functions).

use super::{allowed, copy_out, core, ok_if, read, status, text, write_u32, write_u64, Ctx};
use crate::clock;
use crate::events::EventKind;
use crate::observe::{LogLevel, LogLine};
use crate::props;
use crate::vm::{Deferred, HostState};
use std::time::Duration;
use wasmtime::Linker;

pub(super) fn add(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap("env", "proxy_log", log)?;
    linker.func_wrap("env", "proxy_get_log_level", get_log_level)?;
    linker.func_wrap(
        "env",
        "proxy_get_current_time_nanoseconds",
        |mut caller: Ctx<'_>, ptr: u32| -> wasmtime::Result<u32> {
            allowed(&caller, "proxy_get_current_time_nanoseconds")?;
            let nanos = {
                let core = core(&caller);
                let state = core.state.borrow();
                clock::unix_nanos(state.now, state.wall_step)
            };
            Ok(ok_if(write_u64(&mut caller, ptr, nanos)))
        },
    )?;
    linker.func_wrap("env", "proxy_set_tick_period_milliseconds", set_tick_period)?;
    linker.func_wrap("env", "proxy_get_property", get_property)?;
    linker.func_wrap("env", "proxy_set_property", set_property)?;
    linker.func_wrap("env", "proxy_get_status", get_status)?;
    linker.func_wrap("env", "proxy_set_effective_context", set_effective_context)?;
    linker.func_wrap("env", "proxy_done", done)?;
    linker.func_wrap(
        "env",
        "proxy_call_foreign_function",
        |caller: Ctx<'_>, name: u32, name_len: u32, args: u32, args_len: u32, _: u32, _: u32| {
            allowed(&caller, "proxy_call_foreign_function")?;
            // No foreign function is registered: cpp-host answers NotFound for unknown names.
            if read(&caller, name, name_len).is_none() || read(&caller, args, args_len).is_none() {
                return Ok(status::INVALID_MEMORY_ACCESS);
            }
            wasmtime::Result::Ok(status::NOT_FOUND)
        },
    )?;
    add_grpc(linker)
}

/// gRPC is imported by every Rust SDK filter but not modeled: calling it traps by name.
fn add_grpc(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    fn unmodeled(name: &str) -> wasmtime::Error {
        wasmtime::Error::msg(format!("{name}: the harness does not model gRPC"))
    }
    linker.func_wrap(
        "env",
        "proxy_grpc_call",
        |_: Ctx<'_>,
         _: u32,
         _: u32,
         _: u32,
         _: u32,
         _: u32,
         _: u32,
         _: u32,
         _: u32,
         _: u32,
         _: u32,
         _: u32,
         _: u32|
         -> wasmtime::Result<u32> { Err(unmodeled("proxy_grpc_call")) },
    )?;
    linker.func_wrap(
        "env",
        "proxy_grpc_stream",
        |_: Ctx<'_>,
         _: u32,
         _: u32,
         _: u32,
         _: u32,
         _: u32,
         _: u32,
         _: u32,
         _: u32,
         _: u32|
         -> wasmtime::Result<u32> { Err(unmodeled("proxy_grpc_stream")) },
    )?;
    linker.func_wrap(
        "env",
        "proxy_grpc_send",
        |_: Ctx<'_>, _: u32, _: u32, _: u32, _: u32| -> wasmtime::Result<u32> {
            Err(unmodeled("proxy_grpc_send"))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_grpc_cancel",
        |_: Ctx<'_>, _: u32| -> wasmtime::Result<u32> { Err(unmodeled("proxy_grpc_cancel")) },
    )?;
    linker.func_wrap(
        "env",
        "proxy_grpc_close",
        |_: Ctx<'_>, _: u32| -> wasmtime::Result<u32> { Err(unmodeled("proxy_grpc_close")) },
    )?;
    Ok(())
}

/// `proxy_log`: levels above critical are `BadArgument`; lines below the world's log level are
/// dropped, as Envoy's logger drops them.
fn log(caller: Ctx<'_>, level: u32, ptr: u32, len: u32) -> wasmtime::Result<u32> {
    let Some(level) = LogLevel::from_u32(level) else {
        return Ok(status::BAD_ARGUMENT);
    };
    let Some(message) = read(&caller, ptr, len) else {
        return Ok(status::INVALID_MEMORY_ACCESS);
    };
    push_log(&caller, level, text(&message));
    Ok(status::OK)
}

/// Records a log line if the world's level lets it through.
pub(super) fn push_log(caller: &Ctx<'_>, level: LogLevel, message: String) {
    let host = caller.data();
    let core = host.core();
    let mut state = core.state.borrow_mut();
    if level < state.settings.log_level {
        return;
    }
    let line = LogLine {
        at: state.now,
        vm: host.vm,
        plugin: crate::PluginId(host.plugin),
        context: host.context_id(),
        level,
        message,
    };
    state.logs.push(line);
}

fn get_log_level(mut caller: Ctx<'_>, ptr: u32) -> wasmtime::Result<u32> {
    allowed(&caller, "proxy_get_log_level")?;
    let level = core(&caller).state.borrow().settings.log_level as u32;
    Ok(ok_if(write_u32(&mut caller, ptr, level)))
}

/// The period belongs to the root of the acting context; a new period re-arms the timer from
/// now and 0 stops it (Envoy's `Wasm::setTimerPeriod`).
fn set_tick_period(mut caller: Ctx<'_>, period_ms: u32) -> wasmtime::Result<u32> {
    allowed(&caller, "proxy_set_tick_period_milliseconds")?;
    let core = core(&caller);
    let host = caller.data_mut();
    let slot = host.slot;
    let Some(root_id) = host.root_of(host.context_id()) else {
        return Ok(status::NOT_FOUND);
    };
    let Some(root) = host.root_mut(root_id) else {
        return Ok(status::NOT_FOUND);
    };
    let period = Duration::from_millis(u64::from(period_ms));
    root.tick_period = period;
    root.tick_generation += 1;
    if !period.is_zero() {
        let generation = root.tick_generation;
        let mut state = core.state.borrow_mut();
        let at = state.now + period;
        state.events.push(
            at,
            slot,
            EventKind::Tick {
                root: root_id,
                generation,
            },
        );
    }
    Ok(status::OK)
}

fn get_property(
    mut caller: Ctx<'_>,
    ptr: u32,
    len: u32,
    ret_ptr: u32,
    ret_len: u32,
) -> wasmtime::Result<u32> {
    allowed(&caller, "proxy_get_property")?;
    let Some(path) = read(&caller, ptr, len) else {
        return Ok(status::INVALID_MEMORY_ACCESS);
    };
    let value = {
        let host = caller.data();
        let core = host.core();
        let state = core.state.borrow();
        let stream = host
            .stream_of(host.context_id())
            .map(|id| &state.streams[id.0]);
        props::lookup(&props::split(&path), &state, host.plugin, stream)
    };
    match value {
        Some(value) => Ok(ok_if(copy_out(&mut caller, &value, ret_ptr, ret_len)?)),
        None => Ok(status::NOT_FOUND),
    }
}

/// Envoy keeps set properties in the stream's filter state (`wasm.<path>`); without a stream
/// there is nowhere to keep them (`NotFound`).
fn set_property(
    caller: Ctx<'_>,
    ptr: u32,
    len: u32,
    value_ptr: u32,
    value_len: u32,
) -> wasmtime::Result<u32> {
    allowed(&caller, "proxy_set_property")?;
    let (Some(path), Some(value)) = (read(&caller, ptr, len), read(&caller, value_ptr, value_len))
    else {
        return Ok(status::INVALID_MEMORY_ACCESS);
    };
    let host = caller.data();
    let Some(stream) = host.stream_of(host.context_id()) else {
        return Ok(status::NOT_FOUND);
    };
    let core = host.core();
    let key = props::split(&path).join(".");
    core.state.borrow_mut().streams[stream.0]
        .info
        .filter_state
        .insert(key, value);
    Ok(status::OK)
}

/// The status of the acting context's root: what the last failed call left (Envoy keeps the
/// code after the callback, and clears only the message).
fn get_status(
    mut caller: Ctx<'_>,
    code_ptr: u32,
    ptr_ptr: u32,
    size_ptr: u32,
) -> wasmtime::Result<u32> {
    allowed(&caller, "proxy_get_status")?;
    let host = caller.data_mut();
    let Some(root) = host.root_of(host.context_id()) else {
        return Ok(status::NOT_FOUND);
    };
    let (code, message) = host
        .root_mut(root)
        .map(|r| r.status.clone())
        .unwrap_or_default();
    if !write_u32(&mut caller, code_ptr, code) {
        return Ok(status::INVALID_MEMORY_ACCESS);
    }
    Ok(ok_if(copy_out(
        &mut caller,
        message.as_bytes(),
        ptr_ptr,
        size_ptr,
    )?))
}

/// `BadArgument` for a context this VM does not have: never created, or already deleted.
fn set_effective_context(mut caller: Ctx<'_>, id: u32) -> wasmtime::Result<u32> {
    allowed(&caller, "proxy_set_effective_context")?;
    let host = caller.data_mut();
    if id != 0 && !host.contexts.contains_key(&id) {
        return Ok(status::BAD_ARGUMENT);
    }
    host.call.effective = id;
    Ok(status::OK)
}

/// A root whose `on_done` returned false finishes with `proxy_done`; anything else is
/// `NotFound` (cpp-host's `WasmBase::done`).
fn done(mut caller: Ctx<'_>) -> wasmtime::Result<u32> {
    allowed(&caller, "proxy_done")?;
    let host = caller.data_mut();
    let id = host.context_id();
    match host.root_mut(id) {
        Some(root) if root.pending_done => {
            host.deferred.push_back(Deferred::RootDone { root: id });
            Ok(status::OK)
        }
        _ => Ok(status::NOT_FOUND),
    }
}
