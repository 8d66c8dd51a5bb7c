//! The world's side of [`crate::plugins`]: starting another plugin beside the primary one,
//! removing it, and reading the shared data of any VM id.

use super::World;
use crate::contexts::lifecycle::{self, discard_plugin, remove_plugin};
use crate::engine;
use crate::observe::PluginId;
use crate::plugins::Plugin;
use crate::{HarnessError, SharedValue};

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
