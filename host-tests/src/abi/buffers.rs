//! Buffers (`proxy_get_buffer_bytes`, `proxy_set_buffer_bytes`): request and response bodies,
//! the dispatched call's response body, the VM and plugin configurations.
//!
//! # Rules (Envoy's `Context::getBuffer` and `Buffer::copyFrom`)
//! - A body is there while the filter handles it (from its body callback until it continues);
//!   outside that window it reads as empty and a write is `BadArgument`.
//! - The call response body exists only during `on_http_call_response`; the plugin
//!   configuration only during `on_context_create` of a root and `on_configure`. Otherwise they
//!   are `NotFound`. Both, and the VM configuration, are read-only.
//! - A write at `start == 0` drops the first `length` bytes and prepends the data; a write at
//!   `start >= len` appends; anything else is `BadArgument`.

use super::{allowed, copy_out, ok_if, read, status, write_u32, Ctx};
use crate::vm::{CallResponse, Ctx as Context, HostState};
use wasmtime::Linker;

const REQUEST_BODY: u32 = 0;
const RESPONSE_BODY: u32 = 1;
const CALL_RESPONSE_BODY: u32 = 4;
const VM_CONFIGURATION: u32 = 6;
const PLUGIN_CONFIGURATION: u32 = 7;
const MAX_BUFFER_TYPE: u32 = 8;

pub(super) fn add(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap("env", "proxy_get_buffer_bytes", get_bytes)?;
    linker.func_wrap("env", "proxy_set_buffer_bytes", set_bytes)?;
    Ok(())
}

/// The buffer's bytes, `None` when Envoy has no buffer (`NotFound`).
fn buffer(host: &HostState, kind: u32) -> Option<Vec<u8>> {
    let context = host.context_id();
    let core = host.core();
    let state = core.state.borrow();
    let stream = host.stream_of(context).map(|id| &state.streams[id.0]);
    let root = host
        .root_of(context)
        .and_then(|id| match host.contexts.get(&id) {
            Some(Context::Root(root)) => Some(root),
            _ => None,
        });
    match kind {
        REQUEST_BODY => Some(
            stream
                .filter(|s| s.ptr.req_body)
                .map(|s| s.request.body.clone())
                .unwrap_or_default(),
        ),
        RESPONSE_BODY => Some(
            stream
                .filter(|s| s.ptr.resp_body)
                .and_then(|s| s.response.as_ref().map(|r| r.body.clone()))
                .unwrap_or_default(),
        ),
        CALL_RESPONSE_BODY => match root?.call_response.as_ref()? {
            CallResponse::Answered(message) => Some(message.body.clone()),
            CallResponse::Reset => None,
        },
        VM_CONFIGURATION => Some(state.plugins[host.plugin].vm_configuration.clone()),
        PLUGIN_CONFIGURATION => root
            .filter(|r| r.configuring)
            .map(|r| r.configuration.clone()),
        _ => Some(Vec::new()),
    }
}

fn get_bytes(
    mut caller: Ctx<'_>,
    kind: u32,
    start: u32,
    length: u32,
    ptr_ptr: u32,
    size_ptr: u32,
) -> wasmtime::Result<u32> {
    allowed(&caller, "proxy_get_buffer_bytes")?;
    if kind > MAX_BUFFER_TYPE {
        return Ok(status::BAD_ARGUMENT);
    }
    let Some(bytes) = buffer(caller.data(), kind) else {
        return Ok(status::NOT_FOUND);
    };
    let Some(end) = start.checked_add(length) else {
        return Ok(status::BAD_ARGUMENT);
    };
    let (start, end) = (start as usize, end as usize);
    let slice = bytes
        .get(start.min(bytes.len())..end.min(bytes.len()))
        .unwrap_or_default();
    if slice.is_empty() {
        return Ok(ok_if(
            write_u32(&mut caller, ptr_ptr, 0) && write_u32(&mut caller, size_ptr, 0),
        ));
    }
    Ok(ok_if(copy_out(&mut caller, slice, ptr_ptr, size_ptr)?))
}

fn set_bytes(
    caller: Ctx<'_>,
    kind: u32,
    start: u32,
    length: u32,
    ptr: u32,
    len: u32,
) -> wasmtime::Result<u32> {
    allowed(&caller, "proxy_set_buffer_bytes")?;
    if kind > MAX_BUFFER_TYPE {
        return Ok(status::BAD_ARGUMENT);
    }
    let Some(data) = read(&caller, ptr, len) else {
        return Ok(status::INVALID_MEMORY_ACCESS);
    };
    let host = caller.data();
    if buffer(host, kind).is_none() {
        return Ok(status::NOT_FOUND);
    }
    let Some(stream) = host.stream_of(host.context_id()) else {
        return Ok(status::BAD_ARGUMENT);
    };
    let core = host.core();
    let mut state = core.state.borrow_mut();
    let stream = &mut state.streams[stream.0];
    let body = match kind {
        REQUEST_BODY if stream.ptr.req_body => &mut stream.request.body,
        RESPONSE_BODY if stream.ptr.resp_body => match stream.response.as_mut() {
            Some(response) => &mut response.body,
            None => return Ok(status::BAD_ARGUMENT),
        },
        _ => return Ok(status::BAD_ARGUMENT),
    };
    Ok(splice(body, start as usize, length as usize, &data))
}

/// Envoy's `Buffer::copyFrom` on a mutable body.
fn splice(body: &mut Vec<u8>, start: usize, length: usize, data: &[u8]) -> u32 {
    if start == 0 {
        body.drain(..length.min(body.len()));
        body.splice(0..0, data.iter().copied());
        status::OK
    } else if start >= body.len() {
        body.extend_from_slice(data);
        status::OK
    } else {
        status::BAD_ARGUMENT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splicing_at_zero_replaces_the_prefix_and_past_the_end_appends() {
        let mut body = b"hello world".to_vec();
        assert_eq!(splice(&mut body, 0, 5, b"HELLO"), status::OK);
        assert_eq!(body, b"HELLO world");
        assert_eq!(
            splice(&mut body, 0, 100, b"all"),
            status::OK,
            "length is clamped"
        );
        assert_eq!(body, b"all");
        assert_eq!(splice(&mut body, 3, 0, b"!"), status::OK);
        assert_eq!(body, b"all!");
        assert_eq!(
            splice(&mut body, 1, 1, b"x"),
            status::BAD_ARGUMENT,
            "no mid-body edits"
        );
    }
}
