//! Stream control and dispatched calls: `proxy_continue_stream`, `proxy_close_stream`,
//! `proxy_send_local_response`, `proxy_http_call`.
//!
//! The first three act only after the VM call returns (see [`crate::vm`]) and only on an HTTP
//! context: from a root they silently do nothing unless the root first made a stream's context
//! effective (`proxy_set_effective_context`), as in Envoy.

use super::{allowed, read, status, text, write_u32, Ctx};
use crate::contexts::calls;
use crate::pairs;
use crate::vm::{Deferred, Direction, HostState};
use crate::HeaderMap;
use wasmtime::Linker;

const REQUEST: u32 = 0;
const RESPONSE: u32 = 1;
const DOWNSTREAM: u32 = 2;
const UPSTREAM: u32 = 3;

pub(super) fn add(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap("env", "proxy_continue_stream", continue_stream)?;
    linker.func_wrap("env", "proxy_close_stream", close_stream)?;
    linker.func_wrap("env", "proxy_send_local_response", send_local_response)?;
    linker.func_wrap("env", "proxy_http_call", http_call)?;
    Ok(())
}

/// Envoy's `Context::continueStream`: the continue is deferred, and (an Envoy quirk kept here)
/// continuing either direction forgets the request maps at once.
fn continue_stream(mut caller: Ctx<'_>, kind: u32) -> wasmtime::Result<u32> {
    allowed(&caller, "proxy_continue_stream")?;
    let direction = match kind {
        REQUEST => Direction::Request,
        RESPONSE => Direction::Response,
        DOWNSTREAM => return Ok(status::OK),
        UPSTREAM => return Ok(status::UNIMPLEMENTED),
        _ => return Ok(status::BAD_ARGUMENT),
    };
    let host = caller.data_mut();
    if let Some(stream) = host.stream_of(host.context_id()) {
        let core = host.core();
        let mut state = core.state.borrow_mut();
        let s = &mut state.streams[stream.0];
        let was_paused = match direction {
            Direction::Request => s.req.paused,
            Direction::Response => s.resp.paused,
        };
        s.ptr.req_headers = false;
        s.ptr.req_body = false;
        s.ptr.req_trailers = false;
        host.deferred.push_back(Deferred::Continue {
            stream,
            direction,
            was_paused,
        });
    }
    Ok(status::OK)
}

/// Envoy resets the stream (after the call returns).
fn close_stream(mut caller: Ctx<'_>, kind: u32) -> wasmtime::Result<u32> {
    allowed(&caller, "proxy_close_stream")?;
    if kind > UPSTREAM {
        return Ok(status::BAD_ARGUMENT);
    }
    let host = caller.data_mut();
    if kind <= RESPONSE {
        if let Some(stream) = host.stream_of(host.context_id()) {
            host.deferred.push_back(Deferred::Close { stream });
        }
    }
    Ok(status::OK)
}

/// The reply is sent after the call returns; the callback's status becomes "stop" whatever it
/// returned. Details have their whitespace replaced by `_`, as Envoy does.
#[allow(clippy::too_many_arguments)]
fn send_local_response(
    mut caller: Ctx<'_>,
    status_code: u32,
    details_ptr: u32,
    details_len: u32,
    body_ptr: u32,
    body_len: u32,
    headers_ptr: u32,
    headers_len: u32,
    grpc_status: i32,
) -> wasmtime::Result<u32> {
    allowed(&caller, "proxy_send_local_response")?;
    let (Some(details), Some(body), Some(headers)) = (
        read(&caller, details_ptr, details_len),
        read(&caller, body_ptr, body_len),
        read(&caller, headers_ptr, headers_len),
    ) else {
        return Ok(status::INVALID_MEMORY_ACCESS);
    };
    let host = caller.data_mut();
    host.call.stop_iteration = true;
    if let Some(stream) = host.stream_of(host.context_id()) {
        let details: String = text(&details)
            .chars()
            .map(|c| if c.is_whitespace() { '_' } else { c })
            .collect();
        host.deferred.push_back(Deferred::LocalReply {
            stream,
            status: u16::try_from(status_code).unwrap_or(u16::MAX),
            body,
            headers: pairs::decode_strings(&headers)
                .into_iter()
                .map(|(n, v)| (n.to_ascii_lowercase(), v))
                .collect(),
            // Envoy keeps only a known status; the SDKs pass -1 for "none".
            grpc_status: u32::try_from(grpc_status).ok().filter(|s| *s <= 16),
            details,
        });
    }
    Ok(status::OK)
}

/// Refuses an unknown cluster, a missing `:method`, `:path` or `:authority`, or a negative
/// timeout with `BadArgument`; otherwise answers a fresh token and lets the scripted upstream
/// answer later (never inside this call). The call belongs to the acting context's root.
#[allow(clippy::too_many_arguments)]
fn http_call(
    mut caller: Ctx<'_>,
    uri_ptr: u32,
    uri_len: u32,
    headers_ptr: u32,
    headers_len: u32,
    body_ptr: u32,
    body_len: u32,
    trailers_ptr: u32,
    trailers_len: u32,
    timeout_ms: u32,
    token_ptr: u32,
) -> wasmtime::Result<u32> {
    allowed(&caller, "proxy_http_call")?;
    let (Some(uri), Some(headers), Some(body), Some(trailers)) = (
        read(&caller, uri_ptr, uri_len),
        read(&caller, headers_ptr, headers_len),
        read(&caller, body_ptr, body_len),
        read(&caller, trailers_ptr, trailers_len),
    ) else {
        return Ok(status::INVALID_MEMORY_ACCESS);
    };
    // Envoy writes a zero token first, to check the pointer before starting anything.
    if !write_u32(&mut caller, token_ptr, 0) {
        return Ok(status::INVALID_MEMORY_ACCESS);
    }
    let request = calls::CallRequest {
        cluster: text(&uri),
        headers: HeaderMap::from_byte_pairs(pairs::decode(&headers)),
        body,
        trailers: HeaderMap::from_byte_pairs(pairs::decode(&trailers)),
        timeout_ms,
    };
    match calls::dispatch(caller.data_mut(), request) {
        Ok(token) => {
            write_u32(&mut caller, token_ptr, token);
            Ok(status::OK)
        }
        Err(status) => Ok(status),
    }
}
