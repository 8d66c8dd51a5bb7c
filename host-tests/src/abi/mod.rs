//! The host side of proxy-wasm ABI 0.2.1 and the WASI calls Envoy provides, all registered by
//! one `add_to_linker`.
//!
//! Semantics follow proxy-wasm-cpp-host (`src/exports.cc`, `src/context.cc`) and Envoy
//! (`source/extensions/common/wasm/context.cc`): each function says where it deviates.
//!
//! # Guest memory
//! Every pointer is bounds-checked. A bad pointer is answered as Envoy answers it, with status
//! `InvalidMemoryAccess` (6) for proxy-wasm calls and `EFAULT` (21) for WASI calls; the SDKs
//! turn that into a panic, which traps the VM and fails the test. The host itself never panics
//! on guest input.
//!
//! # Calls Envoy restricts
//! While `_initialize` runs Envoy only lets logging, WASI clocks, randomness, the environment
//! and stdout/stderr through; any other proxy-wasm call then traps with its name.

mod buffers;
mod general;
mod http;
mod maps;
mod shared;
mod wasi;

use crate::vm::HostState;
use std::rc::Rc;
use wasmtime::{Caller, Linker};

pub(crate) use crate::status;

/// Registers every import the harness provides.
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    general::add(linker)?;
    buffers::add(linker)?;
    maps::add(linker)?;
    http::add(linker)?;
    shared::add(linker)?;
    wasi::add(linker)?;
    Ok(())
}

type Ctx<'a> = Caller<'a, HostState>;

/// The world of the VM being called.
fn core(caller: &Ctx<'_>) -> Rc<crate::vm::Core> {
    caller.data().core()
}

/// Traps if Envoy would refuse `name` during `_initialize`.
fn allowed(caller: &Ctx<'_>, name: &str) -> wasmtime::Result<()> {
    if caller.data().initializing {
        return Err(wasmtime::Error::msg(format!(
            "{name} called during _initialize: Envoy allows only logging, clocks, randomness \
             and the environment there"
        )));
    }
    Ok(())
}

/// Guest bytes at `ptr..ptr+len`, or `None` out of bounds.
fn read(caller: &Ctx<'_>, ptr: u32, len: u32) -> Option<Vec<u8>> {
    let memory = caller.data().memory?;
    let start = usize::try_from(ptr).ok()?;
    let end = start.checked_add(usize::try_from(len).ok()?)?;
    memory.data(caller).get(start..end).map(<[u8]>::to_vec)
}

/// Writes `bytes` at `ptr`; false out of bounds.
fn write(caller: &mut Ctx<'_>, ptr: u32, bytes: &[u8]) -> bool {
    let Some(memory) = caller.data().memory else {
        return false;
    };
    let Ok(start) = usize::try_from(ptr) else {
        return false;
    };
    let Some(end) = start.checked_add(bytes.len()) else {
        return false;
    };
    match memory.data_mut(caller).get_mut(start..end) {
        Some(target) => {
            target.copy_from_slice(bytes);
            true
        }
        None => false,
    }
}

fn write_u32(caller: &mut Ctx<'_>, ptr: u32, value: u32) -> bool {
    write(caller, ptr, &value.to_le_bytes())
}

fn write_u64(caller: &mut Ctx<'_>, ptr: u32, value: u64) -> bool {
    write(caller, ptr, &value.to_le_bytes())
}

/// Copies `bytes` into memory the guest allocates, then writes the address and length at
/// `ptr_ptr` and `size_ptr` (cpp-host's `copyToPointerSize`: nothing is allocated for empty
/// bytes, and the address written is 0). `Ok(false)` means a bad pointer.
fn copy_out(
    caller: &mut Ctx<'_>,
    bytes: &[u8],
    ptr_ptr: u32,
    size_ptr: u32,
) -> wasmtime::Result<bool> {
    let len = u32::try_from(bytes.len())
        .map_err(|_| wasmtime::Error::msg("a host value larger than 4 GiB"))?;
    let mut address = 0;
    if !bytes.is_empty() {
        let alloc = caller
            .data()
            .alloc
            .clone()
            .ok_or_else(|| wasmtime::Error::msg("the module exports no allocator"))?;
        address = alloc.call(&mut *caller, len)?;
        if address == 0 || !write(caller, address, bytes) {
            return Ok(false);
        }
    }
    Ok(write_u32(caller, ptr_ptr, address) && write_u32(caller, size_ptr, len))
}

/// `Ok` or `InvalidMemoryAccess`.
fn ok_if(written: bool) -> u32 {
    if written {
        status::OK
    } else {
        status::INVALID_MEMORY_ACCESS
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
