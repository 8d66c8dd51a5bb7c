//! More than one plugin in one Envoy, and what ties them together: the VM id.
//!
//! A world runs one primary plugin, the one its streams go through (the filter under test).
//! [`World::add_plugin`](crate::World::add_plugin) starts another one beside it, as a second `WasmPlugin` or another
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
//! [`World::remove_plugin`](crate::World::remove_plugin) is Envoy dropping the plugin's configuration: every root context of
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

use crate::state::PluginSettings;
use crate::HarnessError;
use std::path::PathBuf;

/// Where a plugin's module comes from.
#[derive(Debug, Clone)]
enum ModuleSource {
    Path(PathBuf),
    Package(String),
}

/// A plugin's module, names and configuration: the primary one given to
/// [`World::builder`](crate::World::builder), or another one for [`World::add_plugin`](crate::World::add_plugin).
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
