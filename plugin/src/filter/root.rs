//! The root context: one per plugin configuration in each worker VM.
//!
//! `on_configure` parses and validates the policy completely; an invalid policy logs one line per
//! problem and returns false, so Envoy refuses the configuration (an ECDS update is refused and
//! the previous policy keeps serving). Breaker and budget state live in shared data under the
//! state scope ([`scope`]), so a new configuration finds them as the old one left them, even
//! when Istio renames the plugin.

use std::rc::Rc;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{BufferType, ContextType};

use crate::policy::Policy;

use super::config::Config;
use super::host;
use super::http::Stream;
use super::retries;
use super::shared::Keys;
use super::timer;
use super::worker;

/// The name breaker and budget state is kept under: the policy's `state_scope`, else the root
/// id (Istio's `pluginName`, unchanged across istiod upgrades), else the plugin name (which
/// Istio derives from the resource and renamed in 1.30). See `shared` for the keys.
fn scope<'a>(state_scope: Option<&'a str>, root_id: &'a str, plugin_name: &'a str) -> &'a str {
    match state_scope {
        Some(scope) => scope,
        None if !root_id.is_empty() => root_id,
        None => plugin_name,
    }
}

/// The root context.
pub struct Root {
    id: u32,
    config: Option<Rc<Config>>,
}

impl Root {
    pub fn new(id: u32) -> Root {
        Root { id, config: None }
    }
}

impl Context for Root {
    fn on_http_call_response(
        &mut self,
        token: u32,
        num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        let now = host::now();
        let id = self.id;
        worker::with(|w| {
            retries::call_response(w, id, token, num_headers, body_size, now);
            timer::arm(w, id, now);
        });
    }
}

impl RootContext for Root {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let bytes = hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX)
            .ok()
            .flatten()
            .unwrap_or_default();
        let json: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &bytes
        };
        let parsed = match Policy::parse(json) {
            Ok(parsed) => parsed,
            Err(errors) => {
                for problem in &errors.0 {
                    log::error!("breakwater: invalid policy: {problem}");
                }
                log::error!(
                    "breakwater: policy rejected with {} problem(s); configuration refused",
                    errors.0.len()
                );
                return false;
            }
        };
        for warning in &parsed.warnings {
            log::warn!("breakwater: policy warning: {warning}");
        }
        let plugin_name = host::property_str(host::path::PLUGIN_NAME).unwrap_or_default();
        let root_id = host::property_str(host::path::PLUGIN_ROOT_ID).unwrap_or_default();
        let scope = scope(parsed.policy.state_scope(), &root_id, &plugin_name).to_owned();
        self.config = Some(Rc::new(Config::new(parsed.policy, Keys::new(&scope))));
        // Retries queued under an earlier configuration are served by their own (older) root,
        // which keeps ticking until its last stream ends.
        log::info!("breakwater: policy loaded for plugin '{plugin_name}', state scope '{scope}'");
        #[cfg(feature = "test-trap")]
        super::trap::announce();
        true
    }

    fn on_tick(&mut self) {
        let now = host::now();
        let id = self.id;
        let config = self.config.as_deref();
        worker::with(|w| retries::tick(w, id, now, config));
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        // Never None: the SDK panics on it. Without a valid configuration a stream passes through.
        Some(Box::new(Stream::new(
            context_id,
            self.id,
            self.config.clone(),
        )))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
