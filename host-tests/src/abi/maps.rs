//! Header and trailer maps (`proxy_*_header_map_*`).
//!
//! # Which map is there when
//! Envoy's context holds a pointer to each map only while the filter is handling it
//! (`Context::decodeHeaders` and friends): the request headers from `on_http_request_headers`
//! until the filter continues (returns `Continue` or calls `continue_stream`), and so on for the
//! other maps. Outside that window a read is `BadArgument` (`NotFound` during `on_log`, which
//! reads the final maps) and a write is `BadArgument`, which the Rust SDK turns into a panic.
//! The dispatched-call maps exist only during `on_http_call_response`, and are read-only.

use super::{allowed, copy_out, ok_if, read, status, text, Ctx};
use crate::pairs;
use crate::state::State;
use crate::vm::{CallResponse, Ctx as Context, HostState};
use crate::HeaderMap;
use wasmtime::Linker;

const REQUEST_HEADERS: u32 = 0;
const REQUEST_TRAILERS: u32 = 1;
const RESPONSE_HEADERS: u32 = 2;
const RESPONSE_TRAILERS: u32 = 3;
const CALL_RESPONSE_HEADERS: u32 = 6;
const CALL_RESPONSE_TRAILERS: u32 = 7;
const MAX_MAP_TYPE: u32 = 7;

pub(super) fn add(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap("env", "proxy_get_header_map_value", get_value)?;
    linker.func_wrap("env", "proxy_get_header_map_pairs", get_pairs)?;
    linker.func_wrap("env", "proxy_set_header_map_pairs", set_pairs)?;
    linker.func_wrap(
        "env",
        "proxy_add_header_map_value",
        |caller: Ctx<'_>, map: u32, k: u32, kl: u32, v: u32, vl: u32| {
            allowed(&caller, "proxy_add_header_map_value")?;
            wasmtime::Result::Ok(modify(&caller, map, k, kl, Some((v, vl)), |m, k, v| {
                m.add_bytes(k, v)
            }))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_replace_header_map_value",
        |caller: Ctx<'_>, map: u32, k: u32, kl: u32, v: u32, vl: u32| {
            allowed(&caller, "proxy_replace_header_map_value")?;
            wasmtime::Result::Ok(modify(&caller, map, k, kl, Some((v, vl)), |m, k, v| {
                m.replace_bytes(k, v)
            }))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_remove_header_map_value",
        |caller: Ctx<'_>, map: u32, k: u32, kl: u32| {
            allowed(&caller, "proxy_remove_header_map_value")?;
            wasmtime::Result::Ok(modify(&caller, map, k, kl, None, |m, k, _| {
                m.remove(k);
            }))
        },
    )?;
    Ok(())
}

/// What a read finds (Envoy's `getConstMap`).
enum Found<'a> {
    Map(&'a HeaderMap),
    /// No map now; the status says whether that is an error.
    Absent {
        status: u32,
    },
}

fn const_map<'a>(host: &'a HostState, state: &'a State, map: u32) -> Found<'a> {
    let context = host.context_id();
    if map == CALL_RESPONSE_HEADERS || map == CALL_RESPONSE_TRAILERS {
        let response = host
            .root_of(context)
            .and_then(|root| match host.contexts.get(&root) {
                Some(Context::Root(root)) => root.call_response.as_ref(),
                _ => None,
            });
        return match response {
            Some(CallResponse::Answered(message)) if map == CALL_RESPONSE_HEADERS => {
                Found::Map(&message.headers)
            }
            Some(CallResponse::Answered(message)) if !message.trailers.is_empty() => {
                Found::Map(&message.trailers)
            }
            _ => Found::Absent {
                status: status::BAD_ARGUMENT,
            },
        };
    }
    let Some(stream) = host.stream_of(context).map(|id| &state.streams[id.0]) else {
        return Found::Absent {
            status: status::BAD_ARGUMENT,
        };
    };
    let p = &stream.ptr;
    let absent = Found::Absent {
        status: if p.log_phase {
            status::NOT_FOUND
        } else {
            status::BAD_ARGUMENT
        },
    };
    let response = stream.response.as_ref();
    let found = match map {
        REQUEST_HEADERS if p.log_phase || p.req_headers => Some(&stream.request.headers),
        REQUEST_TRAILERS if !p.log_phase && p.req_trailers => Some(&stream.request.trailers),
        RESPONSE_HEADERS if p.log_phase || p.resp_headers => response.map(|r| &r.headers),
        RESPONSE_TRAILERS if p.log_phase || p.resp_trailers => response.map(|r| &r.trailers),
        _ => None,
    };
    found.map_or(absent, Found::Map)
}

/// The map a write may change (Envoy's `getMap`), or `None` (`BadArgument`). As in Envoy, a
/// filter may add trailers during the last body callback of a direction that had none.
fn mutable_map<'a>(host: &HostState, state: &'a mut State, map: u32) -> Option<&'a mut HeaderMap> {
    let stream = &mut state.streams[host.stream_of(host.context_id())?.0];
    let p = &mut stream.ptr;
    match map {
        REQUEST_HEADERS if p.req_headers => Some(&mut stream.request.headers),
        REQUEST_TRAILERS if p.req_trailers => Some(&mut stream.request.trailers),
        REQUEST_TRAILERS if p.req_body && p.end_of_stream => {
            p.req_trailers = true;
            Some(&mut stream.request.trailers)
        }
        RESPONSE_HEADERS if p.resp_headers => stream.response.as_mut().map(|r| &mut r.headers),
        RESPONSE_TRAILERS if p.resp_trailers => stream.response.as_mut().map(|r| &mut r.trailers),
        RESPONSE_TRAILERS if p.resp_body && p.end_of_stream => {
            p.resp_trailers = true;
            stream.response.as_mut().map(|r| &mut r.trailers)
        }
        _ => None,
    }
}

fn get_value(
    mut caller: Ctx<'_>,
    map: u32,
    key: u32,
    key_len: u32,
    ret_ptr: u32,
    ret_len: u32,
) -> wasmtime::Result<u32> {
    allowed(&caller, "proxy_get_header_map_value")?;
    if map > MAX_MAP_TYPE {
        return Ok(status::BAD_ARGUMENT);
    }
    let Some(key) = read(&caller, key, key_len) else {
        return Ok(status::INVALID_MEMORY_ACCESS);
    };
    let value = {
        let host = caller.data();
        let core = host.core();
        let state = core.state.borrow();
        match const_map(host, &state, map) {
            Found::Map(m) => m
                .get_bytes(&text(&key))
                .map(<[u8]>::to_vec)
                .ok_or(status::NOT_FOUND),
            Found::Absent { status } => Err(status),
        }
    };
    match value {
        Ok(value) => Ok(ok_if(copy_out(&mut caller, &value, ret_ptr, ret_len)?)),
        Err(status) => Ok(status),
    }
}

/// A map that is not there serializes as no pairs (Envoy's `headerMapToPairs(nullptr)`).
fn get_pairs(mut caller: Ctx<'_>, map: u32, ret_ptr: u32, ret_len: u32) -> wasmtime::Result<u32> {
    allowed(&caller, "proxy_get_header_map_pairs")?;
    if map > MAX_MAP_TYPE {
        return Ok(status::BAD_ARGUMENT);
    }
    let bytes = {
        let host = caller.data();
        let core = host.core();
        let state = core.state.borrow();
        match const_map(host, &state, map) {
            Found::Map(m) if !m.is_empty() => pairs::encode(m.pairs()),
            _ => Vec::new(),
        }
    };
    Ok(ok_if(copy_out(&mut caller, &bytes, ret_ptr, ret_len)?))
}

/// Replaces the whole map (Envoy removes every name, then adds the pairs lower-cased).
fn set_pairs(caller: Ctx<'_>, map: u32, ptr: u32, len: u32) -> wasmtime::Result<u32> {
    allowed(&caller, "proxy_set_header_map_pairs")?;
    if map > MAX_MAP_TYPE {
        return Ok(status::BAD_ARGUMENT);
    }
    let Some(bytes) = read(&caller, ptr, len) else {
        return Ok(status::INVALID_MEMORY_ACCESS);
    };
    let host = caller.data();
    let core = host.core();
    let mut state = core.state.borrow_mut();
    match mutable_map(host, &mut state, map) {
        Some(target) => {
            *target = HeaderMap::from_byte_pairs(pairs::decode(&bytes));
            Ok(status::OK)
        }
        None => Ok(status::BAD_ARGUMENT),
    }
}

fn modify(
    caller: &Ctx<'_>,
    map: u32,
    key: u32,
    key_len: u32,
    value: Option<(u32, u32)>,
    change: impl FnOnce(&mut HeaderMap, &str, &[u8]),
) -> u32 {
    if map > MAX_MAP_TYPE {
        return status::BAD_ARGUMENT;
    }
    let Some(key) = read(caller, key, key_len) else {
        return status::INVALID_MEMORY_ACCESS;
    };
    let value = match value {
        Some((ptr, len)) => match read(caller, ptr, len) {
            Some(v) => v,
            None => return status::INVALID_MEMORY_ACCESS,
        },
        None => Vec::new(),
    };
    let host = caller.data();
    let core = host.core();
    let mut state = core.state.borrow_mut();
    match mutable_map(host, &mut state, map) {
        Some(target) => {
            change(target, &text(&key), &value);
            status::OK
        }
        None => status::BAD_ARGUMENT,
    }
}
