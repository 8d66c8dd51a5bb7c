//! The WASI preview 1 calls Envoy provides to a proxy-wasm module (cpp-host's
//! `wasi_unstable_*` in `src/exports.cc`).
//!
//! - `fd_write` to stdout or stderr becomes a log line at info or error, one trailing newline
//!   removed; other descriptors are `EBADF`.
//! - `clock_time_get`: realtime answers the wall clock, monotonic the monotonic clock (see
//!   [`crate::clock`]); other clocks `ENOTSUP`.
//! - `random_get` draws from the VM's seeded generator; more than 64 KiB at once is `EINVAL`.
//! - `environ_*` expose the world's environment variables; `args_*` expose none.
//! - `proc_exit` fails the VM (Envoy logs an error and the module cannot go on): here it traps.

use super::general::push_log;
use super::{read, write, write_u32, write_u64, Ctx};
use crate::clock;
use crate::observe::LogLevel;
use crate::vm::HostState;
use rand::Rng;
use wasmtime::Linker;

const WASI: &str = "wasi_snapshot_preview1";
const SUCCESS: i32 = 0;
const EBADF: i32 = 8;
const EFAULT: i32 = 21;
const EINVAL: i32 = 28;
const ENOTSUP: i32 = 58;
/// cpp-host's `PROXY_WASM_HOST_WASI_RANDOM_GET_MAX_SIZE_BYTES`.
const RANDOM_MAX: u32 = 64 * 1024;

pub(super) fn add(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(WASI, "fd_write", fd_write)?;
    linker.func_wrap(WASI, "clock_time_get", clock_time_get)?;
    linker.func_wrap(WASI, "random_get", random_get)?;
    linker.func_wrap(WASI, "environ_sizes_get", environ_sizes_get)?;
    linker.func_wrap(WASI, "environ_get", environ_get)?;
    linker.func_wrap(
        WASI,
        "args_sizes_get",
        |mut caller: Ctx<'_>, count: u32, size: u32| {
            errno(write_u32(&mut caller, count, 0) && write_u32(&mut caller, size, 0))
        },
    )?;
    linker.func_wrap(WASI, "args_get", |_: Ctx<'_>, _: u32, _: u32| SUCCESS)?;
    linker.func_wrap(
        WASI,
        "proc_exit",
        |_: Ctx<'_>, code: i32| -> wasmtime::Result<()> {
            Err(wasmtime::Error::msg(format!(
                "proc_exit({code}): the module exited, which fails its VM in Envoy"
            )))
        },
    )?;
    Ok(())
}

fn errno(ok: bool) -> i32 {
    if ok {
        SUCCESS
    } else {
        EFAULT
    }
}

fn fd_write(mut caller: Ctx<'_>, fd: i32, iovs: u32, iovs_len: u32, written_ptr: u32) -> i32 {
    let level = match fd {
        1 => LogLevel::Info,
        2 => LogLevel::Error,
        _ => return EBADF,
    };
    let mut text = Vec::new();
    for i in 0..iovs_len {
        let Some(iov) = i.checked_mul(8).and_then(|o| iovs.checked_add(o)) else {
            return EFAULT;
        };
        let Some(entry) = read(&caller, iov, 8) else {
            return EFAULT;
        };
        let ptr = u32::from_le_bytes([entry[0], entry[1], entry[2], entry[3]]);
        let len = u32::from_le_bytes([entry[4], entry[5], entry[6], entry[7]]);
        match read(&caller, ptr, len) {
            Some(bytes) => text.extend_from_slice(&bytes),
            None => return EFAULT,
        }
    }
    let written = u32::try_from(text.len()).unwrap_or(u32::MAX);
    if text.last() == Some(&b'\n') {
        text.pop();
    }
    if !text.is_empty() {
        push_log(&caller, level, String::from_utf8_lossy(&text).into_owned());
    }
    errno(write_u32(&mut caller, written_ptr, written))
}

fn clock_time_get(mut caller: Ctx<'_>, clock_id: i32, _precision: i64, time_ptr: u32) -> i32 {
    let (now, wall_step) = {
        let core = caller.data().core();
        let state = core.state.borrow();
        (state.now, state.wall_step)
    };
    let nanos = match clock_id {
        0 => clock::unix_nanos(now, wall_step),
        1 => clock::monotonic_nanos(now),
        _ => return ENOTSUP,
    };
    errno(write_u64(&mut caller, time_ptr, nanos))
}

fn random_get(mut caller: Ctx<'_>, buf: u32, len: u32) -> i32 {
    if len > RANDOM_MAX {
        return EINVAL;
    }
    let mut bytes = vec![0u8; len as usize];
    caller.data_mut().rng.fill_bytes(&mut bytes);
    errno(write(&mut caller, buf, &bytes))
}

fn environment(caller: &Ctx<'_>) -> Vec<Vec<u8>> {
    let core = caller.data().core();
    let state = core.state.borrow();
    state.plugins[caller.data().plugin]
        .env
        .iter()
        .map(|(k, v)| format!("{k}={v}\0").into_bytes())
        .collect()
}

fn environ_sizes_get(mut caller: Ctx<'_>, count_ptr: u32, size_ptr: u32) -> i32 {
    let env = environment(&caller);
    let size: usize = env.iter().map(Vec::len).sum();
    let count = u32::try_from(env.len()).unwrap_or(u32::MAX);
    let size = u32::try_from(size).unwrap_or(u32::MAX);
    errno(write_u32(&mut caller, count_ptr, count) && write_u32(&mut caller, size_ptr, size))
}

fn environ_get(mut caller: Ctx<'_>, array_ptr: u32, buf_ptr: u32) -> i32 {
    let mut slot = array_ptr;
    let mut at = buf_ptr;
    for entry in environment(&caller) {
        if !write_u32(&mut caller, slot, at) || !write(&mut caller, at, &entry) {
            return EFAULT;
        }
        slot = slot.wrapping_add(4);
        at = at.wrapping_add(u32::try_from(entry.len()).unwrap_or(u32::MAX));
    }
    SUCCESS
}
