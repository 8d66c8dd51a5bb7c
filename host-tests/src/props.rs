//! `proxy_get_property` as Envoy answers it (`Context::getProperty`, `Context::findValue` and
//! the CEL wrappers in `source/extensions/filters/common/expr/context.cc`).
//!
//! # Paths and encodings
//! A path's segments are separated by NUL bytes (`xds\0cluster_name`). Strings come back raw;
//! integers (`response.code`, `response.flags`, sizes) and timestamps (`request.time`, ns since
//! the Unix epoch) as 8 little-endian bytes; maps (`request.headers`) in the header-pairs format.
//!
//! # Supported
//! - `plugin_name`, `plugin_root_id`, `plugin_vm_id`.
//! - `xds.cluster_name`, `xds.route_name`: the cluster and route the request was routed to;
//!   no cluster name if that cluster did not exist when the request arrived
//!   ([`crate::clusters`]).
//! - `request.{path,url_path,host,scheme,method,referer,useragent,id,query,headers[.name],
//!   total_size}`: read from the request headers, so, as in Envoy, only while the filter may
//!   see them (during `on_http_request_headers` until it continues, and in `on_log`).
//! - `request.{time,duration,protocol,size}`: from the stream, any time.
//! - `response.{code,code_details,flags,size}`: once set; `response.{headers[.name],trailers}`
//!   while the filter may see them or in `on_log`.
//! - `response.backend_latency`: once the upstream's last response byte has arrived (Envoy's
//!   `lastUpstreamRxByteReceived`), so never for Envoy's own reply nor for a response the
//!   upstream cut short. An upstream response arrives whole here, so its value is a nominal 1 ms.
//! - A single-segment name the filter stored with `proxy_set_property` on this stream.
//! - Anything given to [`crate::WorldBuilder::property`] (for example `node.id`).
//!
//! Everything else is `NotFound`.

use crate::observe::Source;
use crate::pairs;
use crate::state::{State, Stream};
use crate::HeaderMap;

/// Splits a NUL-separated property path.
pub(crate) fn split(path: &[u8]) -> Vec<String> {
    path.split(|b| *b == 0)
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

/// The property at `path` for a VM of plugin `plugin`, in `stream`'s context if any.
pub(crate) fn lookup(
    path: &[String],
    state: &State,
    plugin: usize,
    stream: Option<&Stream>,
) -> Option<Vec<u8>> {
    let parts: Vec<&str> = path.iter().map(String::as_str).collect();
    if let Some(value) = state.settings.properties.get(path) {
        return Some(value.clone());
    }
    let settings = &state.plugins[plugin];
    match parts.as_slice() {
        ["plugin_name"] => return Some(settings.plugin_name.clone().into_bytes()),
        ["plugin_root_id"] => return Some(settings.root_id.clone().into_bytes()),
        ["plugin_vm_id"] => return Some(settings.vm_id.clone().into_bytes()),
        _ => {}
    }
    let stream = stream?;
    match parts.as_slice() {
        ["xds", "cluster_name"] if stream.info.cluster_missing => None,
        ["xds", "cluster_name"] => Some(stream.info.cluster.clone().into_bytes()),
        ["xds", "route_name"] => Some(stream.info.route.clone().into_bytes()),
        ["request", rest @ ..] => request(rest, stream),
        ["response", rest @ ..] => response(rest, stream),
        [name] => stream.info.filter_state.get(*name).cloned(),
        _ => None,
    }
}

fn int(value: u64) -> Option<Vec<u8>> {
    Some(value.to_le_bytes().to_vec())
}

fn len(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

fn request(rest: &[&str], stream: &Stream) -> Option<Vec<u8>> {
    let info = &stream.info;
    match rest {
        ["time"] => return int(info.start_unix),
        ["duration"] => {
            let end = info.end?;
            return int(u64::try_from(end.saturating_sub(info.start).as_nanos()).ok()?);
        }
        ["protocol"] => return Some(b"HTTP/1.1".to_vec()),
        _ => {}
    }
    let visible = stream.ptr.req_headers || stream.ptr.log_phase;
    let headers = &stream.request.headers;
    if rest == ["size"] {
        let declared = headers
            .get("content-length")
            .filter(|_| visible)
            .and_then(|v| v.parse().ok());
        return int(declared.unwrap_or(len(stream.request.body.len())));
    }
    if !visible {
        return None;
    }
    let header = |name: &str| headers.get(name).map(|v| v.as_bytes().to_vec());
    let path = headers.get(":path").unwrap_or_default();
    match rest {
        ["path"] => header(":path"),
        ["url_path"] => Some(
            path.split('?')
                .next()
                .unwrap_or_default()
                .as_bytes()
                .to_vec(),
        ),
        ["query"] => Some(
            path.split_once('?')
                .map_or("", |(_, q)| q)
                .as_bytes()
                .to_vec(),
        ),
        ["host"] => header(":authority"),
        ["scheme"] => header(":scheme"),
        ["method"] => header(":method"),
        ["referer"] => header("referer"),
        ["useragent"] => header("user-agent"),
        ["id"] => header("x-request-id"),
        ["total_size"] => int(len(stream.request.body.len() + headers.byte_size())),
        ["headers"] => Some(map(headers)),
        ["headers", name] => header(name),
        _ => None,
    }
}

fn response(rest: &[&str], stream: &Stream) -> Option<Vec<u8>> {
    let info = &stream.info;
    match rest {
        ["code"] => return int(u64::from(info.code?)),
        ["code_details"] => return info.details.clone().map(String::into_bytes),
        ["flags"] => return int(info.flags),
        ["size"] => return int(len(stream.response.as_ref().map_or(0, |r| r.body.len()))),
        ["backend_latency"] => {
            let whole = stream.source == Source::Upstream
                && stream.cut.is_none()
                && stream.response.is_some();
            return whole.then(|| 1_000_000u64.to_le_bytes().to_vec());
        }
        _ => {}
    }
    let response = stream.response.as_ref()?;
    let p = &stream.ptr;
    match rest {
        ["headers"] if p.resp_headers || p.log_phase => Some(map(&response.headers)),
        ["headers", name] if p.resp_headers || p.log_phase => {
            response.headers.get(name).map(|v| v.as_bytes().to_vec())
        }
        ["trailers"] if p.resp_trailers || p.log_phase => Some(map(&response.trailers)),
        _ => None,
    }
}

fn map(headers: &HeaderMap) -> Vec<u8> {
    pairs::encode(headers.pairs())
}
