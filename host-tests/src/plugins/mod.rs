//! More than one plugin in one Envoy, and what ties them together: the VM id.
//!
//! A world runs one primary plugin, the one its streams go through (the filter under test).
//! [`World::add_plugin`] starts another one beside it, as a second `WasmPlugin` or another
//! listener's filter would: its own canary, main-thread VM and worker VMs, its own names and
//! configuration. It serves no streams here, but it ticks, dispatches calls, and reads and
//! writes shared data and queues, which is what it shares with the primary, or not.
//!
//! # The VM id decides what is shared
//! Shared data and queues live in the namespace of the VM id ([`crate::shared`]): a plugin with
//! another `vm_id` sees none of the primary's keys; one with the same `vm_id` (Istio gives every
//! plugin the empty one) sees all of them.
//!
//! # Removing a plugin
//! [`World::remove_plugin`] is Envoy dropping the plugin's configuration: every root context of
//! each of its VMs gets `proxy_on_done`, then `proxy_on_delete` (cpp-host
//! `WasmBase::startShutdown`); a root that answers false waits for `proxy_done`, and its VM
//! lives until then. When a VM has no root left it is destroyed, and when no VM of its VM id is
//! left (and no installed plugin still holds that id through its base VM) the VM id's shared
//! data and queues are deleted (`VmIdHandle`'s destructor, `deleteByVmId`).
//!
//! # Not modeled
//! In Envoy, plugins whose VM key matches (same VM id, code and VM configuration) share one VM
//! per thread, each with its own root context (cpp-host `getOrCreateThreadLocalWasm`), so they
//! also share that VM's memory. Here every plugin has VMs of its own.

mod teardown;

pub(crate) use teardown::{discard_plugin, remove_plugin, retire_if_done};

use crate::engine;
use crate::lifecycle;
use crate::observe::PluginId;
use crate::state::PluginSettings;
use crate::world::World;
use crate::{HarnessError, SharedValue};
use std::path::PathBuf;

/// Where a plugin's module comes from.
#[derive(Debug, Clone)]
enum ModuleSource {
    Path(PathBuf),
    Package(String),
}

/// A plugin's module, names and configuration: the primary one given to
/// [`World::builder`](crate::World::builder), or another one for [`World::add_plugin`].
/// Defaults: plugin name and root id `breakwater`, empty VM id and configurations.
#[derive(Debug, Clone)]
pub struct Plugin {
    module: Option<ModuleSource>,
    plugin_name: String,
    root_id: Option<String>,
    vm_id: String,
    configuration: Vec<u8>,
    vm_configuration: Vec<u8>,
    env: Vec<(String, String)>,
}

impl Default for Plugin {
    fn default() -> Self {
        Plugin {
            module: None,
            plugin_name: "breakwater".into(),
            root_id: None,
            vm_id: String::new(),
            configuration: Vec::new(),
            vm_configuration: Vec::new(),
            env: Vec::new(),
        }
    }
}

impl Plugin {
    /// A plugin running the current `breakwater.wasm`.
    pub fn breakwater() -> Self {
        Plugin::default().with_package("breakwater")
    }

    /// A plugin running the harness's test filter, `breakwater-fixture`.
    pub fn fixture() -> Self {
        Plugin::default().with_package("breakwater-fixture")
    }

    /// A plugin running the current module of workspace crate `package` (built first).
    pub fn package(package: &str) -> Self {
        Plugin::default().with_package(package)
    }

    /// A plugin running the module at `path`.
    pub fn module(path: impl Into<PathBuf>) -> Self {
        Plugin::default().with_path(path)
    }

    pub(crate) fn with_package(mut self, package: &str) -> Self {
        self.module = Some(ModuleSource::Package(package.into()));
        self
    }

    pub(crate) fn with_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.module = Some(ModuleSource::Path(path.into()));
        self
    }

    /// The plugin's name (property `plugin_name`).
    pub fn plugin_name(mut self, name: &str) -> Self {
        self.plugin_name = name.into();
        self
    }

    /// The root id (property `plugin_root_id`); defaults to the plugin name, as Istio sets it.
    pub fn root_id(mut self, root_id: &str) -> Self {
        self.root_id = Some(root_id.into());
        self
    }

    /// The VM id (property `plugin_vm_id`, and the shared-data namespace); Istio sets none.
    pub fn vm_id(mut self, vm_id: &str) -> Self {
        self.vm_id = vm_id.into();
        self
    }

    /// The plugin configuration.
    pub fn configuration(mut self, configuration: impl Into<Vec<u8>>) -> Self {
        self.configuration = configuration.into();
        self
    }

    /// The VM configuration.
    pub fn vm_configuration(mut self, configuration: impl Into<Vec<u8>>) -> Self {
        self.vm_configuration = configuration.into();
        self
    }

    /// An environment variable the plugin's VMs see (`vm_config.environment_variables`).
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// Builds the module if asked and compiles it (once per process).
    pub(crate) fn settings(self) -> Result<PluginSettings, HarnessError> {
        let path =
            match self.module {
                Some(ModuleSource::Path(path)) => path,
                Some(ModuleSource::Package(package)) => breakwater_wasm::build(&package)?,
                None => return Err(HarnessError::Invalid(
                    "no module: call .module(path), .package(name), .breakwater() or .fixture()"
                        .into(),
                )),
            };
        Ok(PluginSettings {
            module: crate::module::load(&path)?,
            root_id: self.root_id.unwrap_or_else(|| self.plugin_name.clone()),
            plugin_name: self.plugin_name,
            vm_id: self.vm_id,
            configuration: self.configuration,
            vm_configuration: self.vm_configuration,
            env: self.env,
            installed: true,
        })
    }
}

impl World {
    /// Starts another plugin beside the primary one, as Envoy would for a second filter
    /// configuration: its canary (if the world runs canaries), then a main-thread VM (if the
    /// world has one) and one VM per worker, each through `_initialize`, `on_vm_start` and
    /// `on_configure`. It serves no streams; see the [`crate::plugins`] docs. A configuration
    /// that its canary (or a VM) rejects is an error, and nothing of the plugin stays.
    pub fn add_plugin(&mut self, plugin: Plugin) -> Result<PluginId, HarnessError> {
        engine::check(self.core())?;
        let settings = plugin.settings()?;
        let configuration = settings.configuration.clone();
        let index = {
            let mut state = self.core().state.borrow_mut();
            state.plugins.push(settings);
            state.plugins.len() - 1
        };
        let started = self.start_plugin_vms(index, &configuration);
        if let Err(error) = started {
            discard_plugin(self.core(), index);
            return Err(error);
        }
        Ok(PluginId(index))
    }

    fn start_plugin_vms(&mut self, index: usize, configuration: &[u8]) -> Result<(), HarnessError> {
        let (core, linker) = self.core_and_linker();
        if core.state.borrow().settings.canary {
            lifecycle::canary(core, linker, index, configuration)?;
        }
        let threads = self.main_slot().is_some().then_some(crate::VmId::Main);
        let workers = (0..self.workers()).map(crate::VmId::Worker);
        for id in threads.into_iter().chain(workers) {
            lifecycle::start_vm(core, linker, index, id, configuration)?;
        }
        Ok(())
    }

    /// Removes a plugin added with [`World::add_plugin`], as Envoy does when its configuration
    /// goes away: `on_done` and `on_delete` for each root, the VMs destroyed, and, once no VM of
    /// its VM id is left, that VM id's shared data and queues deleted. The primary plugin serves
    /// the streams and cannot be removed.
    pub fn remove_plugin(&mut self, plugin: PluginId) -> Result<(), HarnessError> {
        engine::check(self.core())?;
        let installed = self
            .core()
            .state
            .borrow()
            .plugins
            .get(plugin.0)
            .map(|p| p.installed);
        match installed {
            _ if plugin == PluginId::PRIMARY => Err(HarnessError::Invalid(
                "the primary plugin serves the streams: it cannot be removed".into(),
            )),
            None | Some(false) => Err(HarnessError::Invalid(format!("{plugin} is not installed"))),
            Some(true) => Ok(remove_plugin(self.core(), plugin.0)?),
        }
    }

    /// A shared-data value of VM id `vm_id` and its cas (see [`World::shared_data`] for the
    /// primary plugin's).
    pub fn shared_data_in(&self, vm_id: &str, key: impl AsRef<[u8]>) -> Option<SharedValue> {
        self.core()
            .state
            .borrow()
            .shared
            .get(vm_id, key.as_ref())
            .map(|(bytes, cas)| SharedValue {
                bytes: bytes.to_vec(),
                cas,
            })
    }

    /// Every shared-data key of VM id `vm_id`, in byte order.
    pub fn shared_data_keys_in(&self, vm_id: &str) -> Vec<Vec<u8>> {
        self.core()
            .state
            .borrow()
            .shared
            .keys(vm_id)
            .map(<[u8]>::to_vec)
            .collect()
    }
}
