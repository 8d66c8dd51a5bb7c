//! What a test can look at: VMs, log lines, responses, stream states, callbacks.

use crate::HeaderMap;
use std::fmt;
use std::time::Duration;

/// One of the world's VMs, named as Envoy would run it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum VmId {
    /// The n-th configuration canary: a VM Envoy starts and configures to validate a
    /// configuration, then kills.
    Canary(u32),
    /// The VM on Envoy's main thread: a root context, ticks, no streams.
    Main,
    /// The VM of worker thread n: a root context and the worker's streams.
    Worker(usize),
}

impl fmt::Display for VmId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VmId::Canary(n) => write!(f, "canary {n}"),
            VmId::Main => write!(f, "main"),
            VmId::Worker(n) => write!(f, "worker {n}"),
        }
    }
}

impl From<usize> for VmId {
    fn from(worker: usize) -> Self {
        VmId::Worker(worker)
    }
}

/// One of the world's plugins: [`PluginId::PRIMARY`], the one streams go through, or one
/// started with [`crate::World::add_plugin`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PluginId(pub(crate) usize);

impl PluginId {
    /// The plugin the world was built with.
    pub const PRIMARY: PluginId = PluginId(0);
}

impl fmt::Display for PluginId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0 => write!(f, "the primary plugin"),
            n => write!(f, "plugin {n}"),
        }
    }
}

/// Envoy's log levels, as `proxy_log` numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    Trace = 0,
    Debug = 1,
    Info = 2,
    Warn = 3,
    Error = 4,
    Critical = 5,
}

impl LogLevel {
    pub(crate) fn from_u32(level: u32) -> Option<Self> {
        Some(match level {
            0 => LogLevel::Trace,
            1 => LogLevel::Debug,
            2 => LogLevel::Info,
            3 => LogLevel::Warn,
            4 => LogLevel::Error,
            5 => LogLevel::Critical,
            _ => return None,
        })
    }
}

/// One line the module logged (`proxy_log`, or stdout/stderr through WASI `fd_write`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// Virtual time since the world started.
    pub at: Duration,
    pub vm: VmId,
    /// The plugin whose VM logged it.
    pub plugin: PluginId,
    /// The context the line was logged in (the effective one, as Envoy's log prefix uses).
    pub context: u32,
    pub level: LogLevel,
    pub message: String,
}

impl fmt::Display for LogLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plugin = match self.plugin {
            PluginId::PRIMARY => String::new(),
            other => format!(" of {other}"),
        };
        write!(
            f,
            "[{:>9.3}s {}{plugin} ctx {} {:?}] {}",
            self.at.as_secs_f64(),
            self.vm,
            self.context,
            self.level,
            self.message
        )
    }
}

/// A downstream request the world is running; see [`crate::World::request`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId(pub(crate) usize);

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "stream {}", self.0)
    }
}

/// Who produced the response the client got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The upstream answered (`response.code_details` is `via_upstream`).
    Upstream,
    /// The filter called `proxy_send_local_response`.
    Filter,
    /// Envoy answered for a failed upstream (refused, reset, timed out).
    Envoy,
}

/// The response the downstream client received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// The headers as they left the filter chain, `:status` included.
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub trailers: HeaderMap,
    pub source: Source,
    /// Envoy's `response.code_details` for this response.
    pub details: String,
    /// Envoy's `response.flags` bits (see [`crate::flags`]).
    pub flags: u64,
    /// Virtual time the response completed.
    pub at: Duration,
}

impl Response {
    /// The first value of a response header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }

    /// Every value of a response header.
    pub fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers.get_all(name)
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Where a stream is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamState {
    /// Scheduled to arrive later.
    Scheduled,
    /// Arrived, not finished: in the filter, paused, or waiting for the upstream.
    Open,
    /// The client received a whole response.
    Complete,
    /// The stream was reset before a whole response reached the client.
    Reset { details: String },
    /// The client went away first.
    Disconnected,
}

/// A proxy-wasm callback the harness calls, for fuel accounting and failure reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Callback {
    Initialize,
    ContextCreate,
    VmStart,
    Configure,
    Tick,
    QueueReady,
    HttpCallResponse,
    RequestHeaders,
    RequestBody,
    RequestTrailers,
    ResponseHeaders,
    ResponseBody,
    ResponseTrailers,
    Log,
    Done,
    Delete,
    Allocate,
}

impl Callback {
    /// The export Envoy calls.
    pub fn export_name(self) -> &'static str {
        match self {
            Callback::Initialize => "_initialize",
            Callback::ContextCreate => "proxy_on_context_create",
            Callback::VmStart => "proxy_on_vm_start",
            Callback::Configure => "proxy_on_configure",
            Callback::Tick => "proxy_on_tick",
            Callback::QueueReady => "proxy_on_queue_ready",
            Callback::HttpCallResponse => "proxy_on_http_call_response",
            Callback::RequestHeaders => "proxy_on_request_headers",
            Callback::RequestBody => "proxy_on_request_body",
            Callback::RequestTrailers => "proxy_on_request_trailers",
            Callback::ResponseHeaders => "proxy_on_response_headers",
            Callback::ResponseBody => "proxy_on_response_body",
            Callback::ResponseTrailers => "proxy_on_response_trailers",
            Callback::Log => "proxy_on_log",
            Callback::Done => "proxy_on_done",
            Callback::Delete => "proxy_on_delete",
            Callback::Allocate => "proxy_on_memory_allocate",
        }
    }
}

/// Envoy's `response.flags` bits (`CoreResponseFlag` positions in
/// `envoy/stream_info/stream_info.h`; the property is `1 << position` per flag).
pub mod flags {
    /// UH: `NoHealthyUpstream` (position 1).
    pub const NO_HEALTHY_UPSTREAM: u64 = 1 << 1;
    /// UT: `UpstreamRequestTimeout` (position 2).
    pub const UPSTREAM_REQUEST_TIMEOUT: u64 = 1 << 2;
    /// UR: `UpstreamRemoteReset` (position 4).
    pub const UPSTREAM_REMOTE_RESET: u64 = 1 << 4;
    /// UF: `UpstreamConnectionFailure` (position 5).
    pub const UPSTREAM_CONNECTION_FAILURE: u64 = 1 << 5;
    /// DC: `DownstreamConnectionTermination` (position 14).
    pub const DOWNSTREAM_CONNECTION_TERMINATION: u64 = 1 << 14;
    /// UPE: `UpstreamProtocolError` (position 23).
    pub const UPSTREAM_PROTOCOL_ERROR: u64 = 1 << 23;
    /// NC: `NoClusterFound` (position 24).
    pub const NO_CLUSTER_FOUND: u64 = 1 << 24;
}
