//! The world's data: what every VM shares (clock, shared data, metrics, upstreams, streams,
//! faults, the log), as plain data with no behaviour of its own.
//!
//! It sits at the bottom of the crate: every behaviour module reads and writes it, and it
//! imports none of them, only other data. The VMs are not here: they live in their slots beside
//! it ([`crate::vm`]). [`State`] is borrowed only briefly, never across a call into wasm.

mod feed;
mod stream;

pub(crate) use feed::{arrivals, Feed, Part};
pub(crate) use stream::{Flow, Info, Stream};

use crate::clock::WallStep;
use crate::clusters::Unavailable;
use crate::error::Failure;
use crate::events::Events;
use crate::faults::Faults;
use crate::host_calls::HostCallLedger;
use crate::interleave::Interleaving;
use crate::local_reply::LocalReplyHook;
use crate::metrics::Metrics;
use crate::observe::{Callback, LogLevel, LogLine};
use crate::shared::{Queues, SharedData};
use crate::upstream::{Attempts, UpstreamScript};
use rand::rngs::StdRng;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use wasmtime::Module;

/// One plugin: its module, names and configuration (see [`crate::plugins`]).
pub(crate) struct PluginSettings {
    pub module: Arc<Module>,
    pub plugin_name: String,
    pub root_id: String,
    pub vm_id: String,
    /// The configuration in effect.
    pub configuration: Vec<u8>,
    pub vm_configuration: Vec<u8>,
    pub env: Vec<(String, String)>,
    /// Envoy still has the plugin's configuration: its base VM holds the VM id.
    pub installed: bool,
}

/// How the world was configured.
pub(crate) struct Settings {
    pub log_level: LogLevel,
    pub properties: BTreeMap<Vec<String>, Vec<u8>>,
    pub route_timeout: Option<Duration>,
    pub idle_limit: Duration,
    pub seed: u64,
    pub canary: bool,
}

/// The shared, borrowable part of the world.
pub(crate) struct State {
    pub settings: Settings,
    /// Every plugin ever started, the primary first ([`crate::plugins`]).
    pub plugins: Vec<PluginSettings>,
    /// Virtual time since the world started: the monotonic clock, and every timer.
    pub now: Duration,
    /// How far the test stepped the wall clock (see [`crate::clock`]).
    pub wall_step: WallStep,
    pub events: Events,
    pub shared: SharedData,
    pub queues: Queues,
    pub metrics: Metrics,
    pub logs: Vec<LogLine>,
    pub upstreams: BTreeMap<String, Box<dyn UpstreamScript>>,
    /// Clusters the router cannot send to ([`crate::clusters`]); every other one is ready.
    pub unavailable: BTreeMap<String, Unavailable>,
    pub attempts: Attempts,
    pub streams: Vec<Stream>,
    pub interleaving: Interleaving,
    pub failure: Option<Failure>,
    pub fuel: FuelLedger,
    pub host_calls: HostCallLedger,
    pub trace: VecDeque<String>,
    pub rng: StdRng,
    pub canaries: u32,
    pub faults: Faults,
    /// The connection manager's `local_reply_config` ([`crate::local_reply`]).
    pub local_reply_hook: Option<LocalReplyHook>,
}

/// How many scheduling steps the trace keeps.
const TRACE_KEPT: usize = 200;

impl State {
    /// Records a scheduling step for failure reports.
    pub fn trace(&mut self, step: impl FnOnce() -> String) {
        if self.trace.len() == TRACE_KEPT {
            self.trace.pop_front();
        }
        let at = self.now;
        self.trace
            .push_back(format!("{:>9.3}s {}", at.as_secs_f64(), step()));
    }

    pub fn trace_lines(&self) -> Vec<String> {
        self.trace.iter().cloned().collect()
    }
}

/// Fuel spent, by callback.
#[derive(Debug, Default, Clone)]
pub(crate) struct FuelLedger {
    pub total: u64,
    pub by_callback: BTreeMap<Callback, CallbackFuel>,
}

/// Calls to one callback and the fuel they used.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CallbackFuel {
    pub calls: u64,
    pub fuel: u64,
}

impl FuelLedger {
    pub fn charge(&mut self, callback: Callback, fuel: u64) {
        self.total += fuel;
        let entry = self.by_callback.entry(callback).or_default();
        entry.calls += 1;
        entry.fuel += fuel;
    }
}

/// Wasm work done so far: fuel is wasmtime's count of executed wasm instructions (roughly one
/// unit per instruction), so it measures the filter's own work independent of the host's speed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FuelReport {
    /// All fuel used by every VM.
    pub total: u64,
    /// Per callback.
    pub by_callback: BTreeMap<Callback, CallbackFuel>,
    /// Streams that have finished (complete, reset or disconnected).
    pub finished_streams: usize,
}

impl FuelReport {
    /// Total fuel divided by finished streams: the filter's wasm work per request, ticks and
    /// dispatched calls included.
    pub fn per_request(&self) -> Option<u64> {
        u64::try_from(self.finished_streams)
            .ok()
            .filter(|n| *n > 0)
            .map(|n| self.total / n)
    }
}
