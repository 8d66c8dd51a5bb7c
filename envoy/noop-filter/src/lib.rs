//! A proxy-wasm HTTP filter that does nothing but read what Breakwater reads.
//!
//! # Why
//! The overhead benchmark compares Envoy with no wasm filter, Envoy with this filter, and Envoy
//! with Breakwater. Crossing the wasm boundary is a large cost of its own; this filter pays exactly
//! the crossings every proxy-wasm filter pays (one VM call per request and response headers, the
//! `xds.cluster_name` property, the `:status` header), so the gap between it and Breakwater is what
//! Breakwater itself costs.
//!
//! # Configuration
//! Empty (what the benchmark uses), or a JSON object. Only `count_as` is read:
//! `{"count_as": "<stat name>"}` makes the filter define that counter and add one per request (the
//! Envoy tests watch tag extraction and ECDS updates through it). Other fields are ignored, so the
//! module can stand in for `breakwater.wasm` under any Breakwater policy, the operator configs'
//! included. Text that is not a JSON object, or a `count_as` that is not a string, is logged and
//! refused (`on_configure` returns false); the filter never panics on it.

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, MapType, MetricType};
use serde::Deserialize;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(NoopRoot::default()) });
}}

/// The plugin configuration; fields other than `count_as` are ignored on purpose (see above).
#[derive(Debug, Default, Deserialize)]
struct Config {
    /// A counter to define and increment once per request.
    count_as: Option<String>,
}

/// Reads a non-empty configuration: a JSON object whose `count_as`, if present, is a string.
fn parse(bytes: &[u8]) -> Result<Config, String> {
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    if !value.is_object() {
        return Err(format!("expected a JSON object, got {value}"));
    }
    serde_json::from_value(value).map_err(|e| e.to_string())
}

/// Reads the configuration and hands each request the counter to bump, if any.
#[derive(Default)]
struct NoopRoot {
    /// The id of the `count_as` counter in this VM.
    counter: Option<u32>,
}

impl Context for NoopRoot {}

impl RootContext for NoopRoot {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let bytes = self.get_plugin_configuration().unwrap_or_default();
        let config = if bytes.iter().all(u8::is_ascii_whitespace) {
            Config::default()
        } else {
            match parse(&bytes) {
                Ok(config) => config,
                Err(e) => {
                    log::error!("breakwater-noop: invalid configuration, refused: {e}");
                    return false;
                }
            }
        };
        self.counter = match config.count_as {
            None => None,
            Some(name) => match hostcalls::define_metric(MetricType::Counter, &name) {
                Ok(id) => Some(id),
                Err(status) => {
                    log::error!("breakwater-noop: cannot define counter {name:?}: {status:?}");
                    return false;
                }
            },
        };
        true
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Noop {
            counter: self.counter,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// One request: reads the routed cluster and the response status, and bumps the counter.
struct Noop {
    counter: Option<u32>,
}

impl Context for Noop {}

impl HttpContext for Noop {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        // Read and dropped: the point is the cost of the host call, not the value.
        let _cluster = hostcalls::get_property(vec!["xds", "cluster_name"]);
        if let Some(id) = self.counter {
            if let Err(status) = hostcalls::increment_metric(id, 1) {
                log::warn!("breakwater-noop: cannot increment counter {id}: {status:?}");
            }
        }
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let _status = hostcalls::get_map_value_bytes(MapType::HttpResponseHeaders, ":status");
        Action::Continue
    }
}
