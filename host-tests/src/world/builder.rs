//! [`WorldBuilder`]: which module, how many workers, the plugin's names and configuration.

use crate::abi;
use crate::contexts::lifecycle;
use crate::events::Events;
use crate::interleave::Interleaving;
use crate::metrics::Metrics;
use crate::module;
use crate::observe::{LogLevel, VmId};
use crate::plugins::Plugin;
use crate::shared::{Queues, SharedData};
use crate::state::{FuelLedger, Settings, State};
use crate::upstream::{Attempts, UpstreamScript};
use crate::vm::Core;
use crate::world::World;
use crate::HarnessError;
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;
use wasmtime::Linker;

/// Envoy's default route timeout.
pub const DEFAULT_ROUTE_TIMEOUT: Duration = Duration::from_secs(15);

/// Configures and builds a [`World`]. Defaults: 1 worker, Envoy's main-thread VM and
/// configuration canary on, plugin name and root id `breakwater`, empty VM id and
/// configuration, seed 0, log level info, route timeout 15 s, FIFO interleaving.
pub struct WorldBuilder {
    /// The primary plugin: its module, names and configuration.
    plugin: Plugin,
    workers: usize,
    main_thread_vm: bool,
    canary: bool,
    seed: u64,
    log_level: LogLevel,
    properties: BTreeMap<Vec<String>, Vec<u8>>,
    route_timeout: Option<Duration>,
    idle_limit: Duration,
    interleaving: Interleaving,
    upstreams: Vec<(String, Box<dyn UpstreamScript>)>,
    local_reply_hook: Option<crate::local_reply::LocalReplyHook>,
}

impl Default for WorldBuilder {
    fn default() -> Self {
        WorldBuilder {
            plugin: Plugin::default(),
            workers: 1,
            main_thread_vm: true,
            canary: true,
            seed: 0,
            log_level: LogLevel::Info,
            properties: BTreeMap::new(),
            route_timeout: Some(DEFAULT_ROUTE_TIMEOUT),
            idle_limit: Duration::from_secs(600),
            interleaving: Interleaving::fifo(),
            upstreams: Vec::new(),
            local_reply_hook: None,
        }
    }
}

impl WorldBuilder {
    /// Runs the module at `path` (see [`WorldBuilder::package`] to build it first).
    pub fn module(mut self, path: impl Into<PathBuf>) -> Self {
        self.plugin = self.plugin.with_path(path);
        self
    }

    /// Runs the current module of workspace crate `package`, built (or rebuilt) by cargo first,
    /// once per process (`breakwater_wasm::build`): a stale `.wasm` is never run.
    pub fn package(mut self, package: &str) -> Self {
        self.plugin = self.plugin.with_package(package);
        self
    }

    /// Runs the current `breakwater.wasm`.
    pub fn breakwater(self) -> Self {
        self.package("breakwater")
    }

    /// Runs the harness's own test filter, `breakwater-fixture`.
    pub fn fixture(self) -> Self {
        self.package("breakwater-fixture")
    }

    /// How many worker threads (each with its own VM) Envoy runs.
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = workers;
        self
    }

    /// Whether to run Envoy's main-thread VM (a root context that ticks, no streams).
    pub fn main_thread_vm(mut self, on: bool) -> Self {
        self.main_thread_vm = on;
        self
    }

    /// Whether to run Envoy's configuration canary before each configuration.
    pub fn canary(mut self, on: bool) -> Self {
        self.canary = on;
        self
    }

    /// The plugin's name (property `plugin_name`).
    pub fn plugin_name(mut self, name: &str) -> Self {
        self.plugin = self.plugin.plugin_name(name);
        self
    }

    /// The plugin's root id (property `plugin_root_id`); defaults to the plugin name, as Istio
    /// sets it.
    pub fn root_id(mut self, root_id: &str) -> Self {
        self.plugin = self.plugin.root_id(root_id);
        self
    }

    /// The VM id (property `plugin_vm_id`, and the shared-data namespace: see
    /// [`crate::plugins`]); Istio sets none.
    pub fn vm_id(mut self, vm_id: &str) -> Self {
        self.plugin = self.plugin.vm_id(vm_id);
        self
    }

    /// The plugin configuration (the policy JSON).
    pub fn configuration(mut self, configuration: impl Into<Vec<u8>>) -> Self {
        self.plugin = self.plugin.configuration(configuration);
        self
    }

    /// The VM configuration.
    pub fn vm_configuration(mut self, configuration: impl Into<Vec<u8>>) -> Self {
        self.plugin = self.plugin.vm_configuration(configuration);
        self
    }

    /// An environment variable the VMs see (`vm_config.environment_variables`).
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.plugin = self.plugin.env(name, value);
        self
    }

    /// Seeds WASI `random_get` (one generator per VM) and request ids.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Envoy's log level: lines below it are dropped and `proxy_get_log_level` answers it.
    pub fn log_level(mut self, level: LogLevel) -> Self {
        self.log_level = level;
        self
    }

    /// A property the host answers, at a dotted path (`"node.id"`).
    pub fn property(mut self, path: &str, value: impl Into<Vec<u8>>) -> Self {
        let path = path.split('.').map(str::to_string).collect();
        self.properties.insert(path, value.into());
        self
    }

    /// The route timeout for requests that do not set one; `None` disables it.
    pub fn route_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.route_timeout = timeout;
        self
    }

    /// How much virtual time [`World::run_until_idle`] waits before calling the world stuck.
    pub fn idle_limit(mut self, limit: Duration) -> Self {
        self.idle_limit = limit;
        self
    }

    /// How simultaneous work of different workers is ordered.
    pub fn interleaving(mut self, interleaving: Interleaving) -> Self {
        self.interleaving = interleaving;
        self
    }

    /// Scripts a cluster before the plugin starts (see [`World::upstream`]).
    pub fn upstream(mut self, cluster: &str, script: impl UpstreamScript) -> Self {
        self.upstreams.push((cluster.into(), Box::new(script)));
        self
    }

    /// The connection manager's `local_reply_config`: `hook` sees every local reply (the
    /// filter's and Envoy's own) before it is sent and may change its status, headers, body and
    /// content type, as Envoy's response mappers and body format do (see
    /// [`crate::local_reply`]).
    pub fn local_reply_config(
        mut self,
        hook: impl FnMut(&mut crate::LocalReplyEdit<'_>) + 'static,
    ) -> Self {
        self.local_reply_hook = Some(Box::new(hook));
        self
    }

    /// Builds the module if asked, compiles it (once per process), starts the canary, the main
    /// VM and the workers, each through `_initialize`, `on_vm_start` and `on_configure`.
    pub fn build(self) -> Result<World, HarnessError> {
        if self.workers == 0 {
            return Err(HarnessError::Invalid(
                "a world needs at least one worker".into(),
            ));
        }
        let primary = self.plugin.settings()?;
        let mut linker = Linker::new(module::engine());
        abi::add_to_linker(&mut linker)
            .map_err(|e| HarnessError::Invalid(format!("registering host functions: {e:#}")))?;
        let settings = Settings {
            log_level: self.log_level,
            properties: self.properties,
            route_timeout: self.route_timeout,
            idle_limit: self.idle_limit,
            seed: self.seed,
            canary: self.canary,
        };
        let state = State {
            rng: StdRng::seed_from_u64(self.seed),
            settings,
            plugins: vec![primary],
            now: Duration::ZERO,
            wall_step: 0,
            events: Events::default(),
            shared: SharedData::new(),
            queues: Queues::default(),
            metrics: Metrics::default(),
            logs: Vec::new(),
            upstreams: self.upstreams.into_iter().collect(),
            unavailable: BTreeMap::new(),
            attempts: Attempts::default(),
            streams: Vec::new(),
            interleaving: self.interleaving,
            failure: None,
            fuel: FuelLedger::default(),
            host_calls: Default::default(),
            trace: VecDeque::new(),
            canaries: 0,
            faults: Default::default(),
            local_reply_hook: self.local_reply_hook,
        };
        let core = Rc::new(Core {
            state: RefCell::new(state),
            slots: RefCell::new(Vec::new()),
        });
        const PRIMARY: usize = 0;
        let configuration = core.state.borrow().plugins[PRIMARY].configuration.clone();
        if self.canary {
            lifecycle::canary(&core, &linker, PRIMARY, &configuration)?;
        }
        let start = |id| lifecycle::start_vm(&core, &linker, PRIMARY, id, &configuration);
        let main = if self.main_thread_vm {
            Some(start(VmId::Main)?)
        } else {
            None
        };
        let workers = (0..self.workers)
            .map(|i| start(VmId::Worker(i)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(World::new(core, linker, workers, main))
    }
}
