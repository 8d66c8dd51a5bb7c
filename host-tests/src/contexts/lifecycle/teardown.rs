//! A plugin going away: its roots shut down, its VMs destroyed, and its VM id's shared data and
//! queues deleted with the last VM that held the VM id (see the [`crate::plugins`] docs for the Envoy
//! and proxy-wasm-cpp-host sources).

use super::{delete_root, put, take};
use crate::contexts::drain;
use crate::error::Failure;
use crate::observe::Callback;
use crate::vm::{Core, Ctx, Vm};

/// Envoy drops the plugin's configuration: every root of every VM of the plugin gets `on_done`
/// and, if done, `on_delete`; VMs left without a root are destroyed.
pub(crate) fn remove_plugin(core: &Core, plugin: usize) -> Result<(), Failure> {
    let vm_id = {
        let mut state = core.state.borrow_mut();
        state.plugins[plugin].installed = false;
        state.trace(|| format!("plugin {plugin} removed"));
        state.plugins[plugin].vm_id.clone()
    };
    for slot in live_slots(core, plugin) {
        let mut vm = take(core, slot)?;
        let outcome = shut_down(core, &mut vm);
        put(core, slot, vm);
        outcome?;
    }
    release_vm_id(core, &vm_id);
    Ok(())
}

/// A plugin whose start failed (its canary or a VM rejected the configuration): Envoy keeps
/// nothing of it. Its VMs go without further calls into them.
pub(crate) fn discard_plugin(core: &Core, plugin: usize) {
    let vm_id = {
        let mut state = core.state.borrow_mut();
        state.plugins[plugin].installed = false;
        state.plugins[plugin].vm_id.clone()
    };
    for slot in live_slots(core, plugin) {
        kill(core, slot);
    }
    release_vm_id(core, &vm_id);
}

fn live_slots(core: &Core, plugin: usize) -> Vec<usize> {
    core.slots
        .borrow()
        .iter()
        .enumerate()
        .filter(|(_, s)| s.alive && s.plugin == plugin)
        .map(|(i, _)| i)
        .collect()
}

/// cpp-host `WasmBase::startShutdown`: `on_done` for each root; `on_delete` for those done, the
/// others wait for `proxy_done`.
fn shut_down(core: &Core, vm: &mut Vm) -> Result<(), Failure> {
    let roots: Vec<u32> = vm
        .store
        .data()
        .contexts
        .iter()
        .filter_map(|(id, ctx)| match ctx {
            Ctx::Root(root) if !root.pending_done => Some(*id),
            _ => None,
        })
        .collect();
    for root in roots {
        let finished = match vm.ex.done.clone() {
            Some(f) => vm.call(core, Callback::Done, root, f, root)? != 0,
            None => true,
        };
        drain(core, vm)?;
        if finished {
            delete_root(core, vm, root)?;
        } else if let Some(r) = vm.store.data_mut().root_mut(root) {
            r.pending_done = true;
        }
    }
    retire_if_done(core, vm);
    Ok(())
}

/// Destroys a VM of a removed plugin once it has no root context left.
pub(crate) fn retire_if_done(core: &Core, vm: &Vm) {
    let host = vm.store.data();
    let installed = core.state.borrow().plugins[host.plugin].installed;
    let has_root = host.contexts.values().any(|c| matches!(c, Ctx::Root(_)));
    if installed || has_root {
        return;
    }
    let vm_id = core.state.borrow().plugins[host.plugin].vm_id.clone();
    kill(core, host.slot);
    release_vm_id(core, &vm_id);
}

/// The VM in `slot` is gone: nothing of it runs again.
fn kill(core: &Core, slot: usize) {
    core.slots.borrow_mut()[slot].alive = false;
    core.state.borrow_mut().events.drop_slot(slot);
}

/// Deletes `vm_id`'s shared data and queues if nothing holds the VM id any more: no installed
/// plugin with it (its base VM) and no live VM with it (cpp-host `VmIdHandle`).
fn release_vm_id(core: &Core, vm_id: &str) {
    let slots = core.slots.borrow();
    let mut state = core.state.borrow_mut();
    let held_by_plugin = state
        .plugins
        .iter()
        .any(|p| p.installed && p.vm_id == vm_id);
    let held_by_vm = slots
        .iter()
        .any(|s| s.alive && state.plugins[s.plugin].vm_id == vm_id);
    if held_by_plugin || held_by_vm {
        return;
    }
    state.shared.delete_vm_id(vm_id);
    state.queues.delete_vm_id(vm_id);
    state.trace(|| {
        format!("the last VM of VM id `{vm_id}` is gone, and its shared data and queues with it")
    });
}
