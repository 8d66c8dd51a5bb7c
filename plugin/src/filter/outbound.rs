//! What the filter sends through the host: dispatched retries, the retried response written into
//! the held response's place, and its own replies.
//!
//! The SDK's `send_http_response` takes `&str` names and values and panics on a host status it
//! does not expect, which would trap the VM; [`reply`] calls the ABI (0.2.1) directly with a map
//! serialized in the host's layout ([`Pairs`]), so a relayed response keeps header bytes that are
//! not UTF-8, and every status comes back as a value.
//!
//! A dispatch must go through the SDK's `dispatch_http_call`: the SDK routes a call's response to
//! the context that dispatched it by a token table that only its own dispatch fills, and panics
//! on a token it does not know. Its `&str` pairs mean a request is only replayed when its header
//! names and values are UTF-8 (checked when the copy is made, see [`super::copy`]).

use std::time::Duration;

use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, MapType, Status};

use crate::core::pairs::Pairs;

#[link(wasm_import_module = "env")]
extern "C" {
    // The ABI's declarations, as the SDK makes them.
    fn proxy_send_local_response(
        status_code: u32,
        status_code_details_data: *const u8,
        status_code_details_size: usize,
        body_data: *const u8,
        body_size: usize,
        headers_data: *const u8,
        headers_size: usize,
        grpc_status: i32,
    ) -> Status;
    fn proxy_set_header_map_pairs(
        map_type: MapType,
        map_data: *const u8,
        map_size: usize,
    ) -> Status;
    fn proxy_replace_header_map_value(
        map_type: MapType,
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> Status;
    fn proxy_set_buffer_bytes(
        buffer_type: BufferType,
        start: usize,
        size: usize,
        buffer_data: *const u8,
        buffer_size: usize,
    ) -> Status;
}

/// Replaces every entry of the current stream's `map` with `pairs` (bytes as they are).
pub fn set_map(map: MapType, pairs: &Pairs) -> Result<(), Status> {
    let bytes = pairs.as_bytes();
    // SAFETY: the pointer and size describe a live slice for the duration of the call; the host
    // copies the map before returning.
    match unsafe { proxy_set_header_map_pairs(map, bytes.as_ptr(), bytes.len()) } {
        Status::Ok => Ok(()),
        other => Err(other),
    }
}

/// Sets header `name` of the current stream's `map` to `value` (the SDK's `set_map_value`
/// panics on a status it does not expect).
pub fn replace_header(map: MapType, name: &str, value: &[u8]) -> Result<(), Status> {
    // SAFETY: as in `set_map`.
    let result = unsafe {
        proxy_replace_header_map_value(map, name.as_ptr(), name.len(), value.as_ptr(), value.len())
    };
    match result {
        Status::Ok => Ok(()),
        other => Err(other),
    }
}

/// Replaces the `size` bytes of the response body the current callback was handed with `body`.
/// (The SDK's `set_buffer` panics on a status it does not expect.)
pub fn set_response_body(size: usize, body: &[u8]) -> Result<(), Status> {
    // SAFETY: as in `set_map`.
    let result = unsafe {
        proxy_set_buffer_bytes(
            BufferType::HttpResponseBody,
            0,
            size,
            body.as_ptr(),
            body.len(),
        )
    };
    match result {
        Status::Ok => Ok(()),
        other => Err(other),
    }
}

/// Dispatches a call to `cluster`; the token its response will come back with. Pairs that are
/// not UTF-8 are left out (a copy never holds any, see [`super::copy`]).
pub fn dispatch(
    cluster: &str,
    headers: &Pairs,
    body: &[u8],
    trailers: &Pairs,
    timeout: Duration,
) -> Result<u32, Status> {
    hostcalls::dispatch_http_call(
        cluster,
        headers.iter_str().collect(),
        (!body.is_empty()).then_some(body),
        trailers.iter_str().collect(),
        timeout,
    )
}

/// Replies to the current stream with Envoy's local-reply path (no gRPC status of our own).
pub fn reply(status: u16, headers: &Pairs, body: &[u8]) -> Result<(), Status> {
    local_reply(status, headers, body, -1)
}

/// Replies to the current gRPC request with gRPC status `grpc_status`: Envoy sends a
/// trailers-only gRPC reply with it, `body` as its `grpc-message` and `headers` added (see
/// `super::grpc`).
pub fn reply_grpc(
    status: u16,
    headers: &Pairs,
    message: &[u8],
    grpc_status: u8,
) -> Result<(), Status> {
    local_reply(status, headers, message, i32::from(grpc_status))
}

/// `proxy_send_local_response`; a `grpc_status` of -1 sets none (Envoy maps it from `status`
/// for a gRPC request).
fn local_reply(status: u16, headers: &Pairs, body: &[u8], grpc_status: i32) -> Result<(), Status> {
    // SAFETY: every pointer and size pair describes a live slice for the duration of the call;
    // the host copies what it needs before returning.
    let result = unsafe {
        proxy_send_local_response(
            u32::from(status),
            std::ptr::null(),
            0,
            body.as_ptr(),
            body.len(),
            headers.as_bytes().as_ptr(),
            headers.as_bytes().len(),
            grpc_status,
        )
    };
    match result {
        Status::Ok => Ok(()),
        other => Err(other),
    }
}
