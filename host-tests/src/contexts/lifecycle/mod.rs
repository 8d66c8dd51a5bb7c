//! The plugin lifecycle as Envoy runs it (proxy-wasm-cpp-host `src/wasm.cc`, `src/context.cc`;
//! Envoy `source/extensions/common/wasm/wasm.cc`).
//!
//! # Start
//! Each VM is instantiated and `_initialize` runs (only logging, clocks, randomness and the
//! environment are allowed then). A root context is created (`proxy_on_context_create(root, 0)`,
//! the plugin configuration readable), then `proxy_on_vm_start(root, vm_config_size)`, then
//! `proxy_on_configure(root, plugin_config_size)`. Envoy first does this on a *configuration
//! canary*, a VM it kills right after, and rejects the configuration if the canary's
//! `on_configure` returns false; then on the main thread's VM and each worker's.
//!
//! # Reconfiguration
//! A new configuration gets a new canary, then a new root context in each running VM (same VM,
//! same shared data, fresh context id, `on_vm_start` and `on_configure` again). New streams use
//! the new root; the old root keeps ticking until its last stream ends, then gets
//! `proxy_on_done` and `proxy_on_delete` (or waits for `proxy_done` if `on_done` said false).
//!
//! A reconfiguration with the same bytes as the configuration in effect changes nothing: no
//! canary, no new root context, no `on_configure`. Envoy skips an ECDS update whose typed
//! config hashes like the last accepted one (`FilterConfigSubscription::onConfigUpdate` in
//! `source/common/filter/config_discovery_impl.cc`: "Skip update if hash matches"); an LDS
//! update that repeats a listener is no update either (`ListenerManagerImpl::addOrUpdateListener`:
//! "duplicate/locked listener ... no add/update"); and a plugin built again from the same
//! configuration would find its thread-local plugin by VM key, root id and configuration
//! (`getOrCreateThreadLocalPlugin` in proxy-wasm-cpp-host `src/wasm.cc`) and keep its root
//! context. A configuration that was rejected is not in effect: sending it again runs the
//! canary again.
//!
//! # Ticks
//! A root's timer fires `proxy_on_tick(root)` every period, re-armed after each tick; a new
//! period re-arms it from now, 0 stops it (Envoy's `Wasm::setTimerPeriod`, `tickHandler`).

mod teardown;

pub(crate) use teardown::{discard_plugin, remove_plugin};

use crate::contexts::drain;
use crate::error::Failure;
use crate::events::EventKind;
use crate::observe::{Callback, VmId};
use crate::vm::{Core, Ctx, HostState, Root, Slot, Vm};
use crate::HarnessError;
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::rc::Rc;
use wasmtime::Linker;

/// Instantiates a VM of plugin `plugin`, runs `_initialize`, and gives it a slot.
pub(crate) fn create_vm(
    core: &Rc<Core>,
    linker: &Linker<HostState>,
    plugin: usize,
    id: VmId,
) -> Result<usize, HarnessError> {
    let slot = core.slots.borrow().len();
    let (module, seed) = {
        let state = core.state.borrow();
        (state.plugins[plugin].module.clone(), state.settings.seed)
    };
    let rng =
        StdRng::seed_from_u64(seed ^ (0x9e37_79b9_7f4a_7c15_u64.wrapping_mul(slot as u64 + 1)));
    let mut vm = Vm::new(core, slot, (id, plugin), &module, linker, rng)?;
    vm.store.data_mut().initializing = true;
    let initialized = match (vm.ex.initialize.clone(), vm.ex.start.clone()) {
        (Some(f), _) | (None, Some(f)) => vm.call(core, Callback::Initialize, 0, f, ()),
        (None, None) => Ok(()),
    };
    vm.store.data_mut().initializing = false;
    initialized?;
    core.slots.borrow_mut().push(Slot {
        id,
        plugin,
        vm: Some(vm),
        alive: true,
    });
    Ok(slot)
}

/// Creates a VM of plugin `plugin` and starts the plugin in it; answers its slot.
pub(crate) fn start_vm(
    core: &Rc<Core>,
    linker: &Linker<HostState>,
    plugin: usize,
    id: VmId,
    configuration: &[u8],
) -> Result<usize, HarnessError> {
    let slot = create_vm(core, linker, plugin, id)?;
    let mut vm = take(core, slot)?;
    let root = start_plugin(core, &mut vm, configuration.to_vec());
    if let Ok(root) = root {
        vm.store.data_mut().active_root = root;
    }
    put(core, slot, vm);
    root.map(|_| slot)
}

/// Creates and starts a root context with `configuration`; answers its id and whether
/// `on_vm_start` accepted.
pub(crate) fn start_root(
    core: &Core,
    vm: &mut Vm,
    configuration: Vec<u8>,
) -> Result<(u32, bool), Failure> {
    let plugin = vm.store.data().plugin;
    let vm_config_len = u32::try_from(core.state.borrow().plugins[plugin].vm_configuration.len())
        .unwrap_or(u32::MAX);
    let host = vm.store.data_mut();
    let id = host.alloc_context_id();
    let mut root = Root::new(configuration);
    root.configuring = true;
    host.contexts.insert(id, Ctx::Root(root));
    if let Some(f) = vm.ex.context_create.clone() {
        let created = vm.call(core, Callback::ContextCreate, id, f, (id, 0));
        set_configuring(vm, id, false);
        created?;
        drain(core, vm)?;
    }
    set_configuring(vm, id, false);
    let started = match vm.ex.vm_start.clone() {
        Some(f) => vm.call(core, Callback::VmStart, id, f, (id, vm_config_len))? != 0,
        None => true,
    };
    drain(core, vm)?;
    Ok((id, started))
}

/// `proxy_on_configure` for a root; answers whether it accepted its configuration.
pub(crate) fn configure(core: &Core, vm: &mut Vm, root: u32) -> Result<bool, Failure> {
    let Some(f) = vm.ex.configure.clone() else {
        return Ok(true);
    };
    let len = match vm.store.data_mut().root_mut(root) {
        Some(r) => u32::try_from(r.configuration.len()).unwrap_or(u32::MAX),
        None => return Ok(false),
    };
    set_configuring(vm, root, true);
    let accepted = vm.call(core, Callback::Configure, root, f, (root, len));
    set_configuring(vm, root, false);
    let accepted = accepted? != 0;
    drain(core, vm)?;
    Ok(accepted)
}

fn set_configuring(vm: &mut Vm, root: u32, on: bool) {
    if let Some(r) = vm.store.data_mut().root_mut(root) {
        r.configuring = on;
    }
}

/// Starts and configures a root in a VM of the world; errors say which step refused.
pub(crate) fn start_plugin(
    core: &Core,
    vm: &mut Vm,
    configuration: Vec<u8>,
) -> Result<u32, HarnessError> {
    let id = vm.id();
    let (root, started) = start_root(core, vm, configuration)?;
    let logs = || core.state.borrow().logs.clone();
    if !started {
        return Err(HarnessError::StartFailed {
            vm: id,
            logs: logs(),
        });
    }
    if !configure(core, vm, root)? {
        return Err(HarnessError::ConfigureRejected {
            vm: id,
            logs: logs(),
        });
    }
    Ok(root)
}

/// Runs a configuration canary of plugin `plugin`: a fresh VM that starts and configures, then
/// is killed. A rejection is `Err(HarnessError::ConfigureRejected)`.
pub(crate) fn canary(
    core: &Rc<Core>,
    linker: &Linker<HostState>,
    plugin: usize,
    configuration: &[u8],
) -> Result<(), HarnessError> {
    let n = {
        let mut state = core.state.borrow_mut();
        state.canaries += 1;
        state.canaries - 1
    };
    let slot = create_vm(core, linker, plugin, VmId::Canary(n))?;
    let mut vm = take(core, slot)?;
    let outcome = start_plugin(core, &mut vm, configuration.to_vec());
    core.slots.borrow_mut()[slot].alive = false;
    core.state.borrow_mut().events.drop_slot(slot);
    drop(vm);
    outcome.map(|_| ())
}

/// Takes a VM out of its slot (it must be idle).
pub(crate) fn take(core: &Core, slot: usize) -> Result<Vm, Failure> {
    core.slots.borrow_mut()[slot].vm.take().ok_or_else(|| {
        Failure::stuck(
            format!("VM slot {slot} is busy: the harness was re-entered"),
            Vec::new(),
            Vec::new(),
        )
    })
}

/// Puts a VM back.
pub(crate) fn put(core: &Core, slot: usize, vm: Vm) {
    core.slots.borrow_mut()[slot].vm = Some(vm);
}

/// A root's timer fired.
pub(crate) fn tick(core: &Core, vm: &mut Vm, root: u32, generation: u64) -> Result<(), Failure> {
    let due = vm
        .store
        .data_mut()
        .root_mut(root)
        .is_some_and(|r| r.tick_generation == generation && !r.tick_period.is_zero());
    if !due {
        return Ok(());
    }
    if let Some(f) = vm.ex.tick.clone() {
        vm.call(core, Callback::Tick, root, f, root)?;
        drain(core, vm)?;
    }
    let slot = vm.store.data().slot;
    if let Some(r) = vm.store.data_mut().root_mut(root) {
        if !r.tick_period.is_zero() {
            r.tick_generation += 1;
            let (generation, period) = (r.tick_generation, r.tick_period);
            let mut state = core.state.borrow_mut();
            let at = state.now + period;
            state
                .events
                .push(at, slot, EventKind::Tick { root, generation });
        }
    }
    Ok(())
}

/// Items were queued on a queue this root registered.
pub(crate) fn queue_ready(core: &Core, vm: &mut Vm, root: u32, token: u32) -> Result<(), Failure> {
    if vm.store.data_mut().root_mut(root).is_none() {
        return Ok(());
    }
    if let Some(f) = vm.ex.queue_ready.clone() {
        vm.call(core, Callback::QueueReady, root, f, (root, token))?;
        drain(core, vm)?;
    }
    Ok(())
}

/// Shuts a superseded root down once no stream of this VM uses it any more.
pub(crate) fn release_root(core: &Core, vm: &mut Vm, root: u32) -> Result<(), Failure> {
    let host = vm.store.data_mut();
    if root == host.active_root || host.root_mut(root).is_none_or(|r| r.pending_done) {
        return Ok(());
    }
    let slot = host.slot;
    let in_use = core
        .state
        .borrow()
        .streams
        .iter()
        .any(|s| s.slot == slot && s.root == root && !s.finished() && s.ctx != 0);
    if in_use {
        return Ok(());
    }
    let finished = match vm.ex.done.clone() {
        Some(f) => vm.call(core, Callback::Done, root, f, root)? != 0,
        None => true,
    };
    drain(core, vm)?;
    if finished {
        delete_root(core, vm, root)
    } else {
        if let Some(r) = vm.store.data_mut().root_mut(root) {
            r.pending_done = true;
        }
        Ok(())
    }
}

/// `proxy_on_delete` for a root, then it is gone (its timer and calls die with it).
pub(crate) fn delete_root(core: &Core, vm: &mut Vm, root: u32) -> Result<(), Failure> {
    if vm.store.data_mut().root_mut(root).is_none() {
        return Ok(());
    }
    if let Some(f) = vm.ex.delete.clone() {
        vm.call(core, Callback::Delete, root, f, root)?;
    }
    vm.store.data_mut().contexts.remove(&root);
    drain(core, vm)?;
    teardown::retire_if_done(core, vm);
    Ok(())
}

/// Applies a new configuration of the primary plugin as Envoy does (see the module docs);
/// answers whether it was accepted. Without a canary each VM decides alone, and a VM that
/// rejects keeps its old root while the others switch.
///
/// `plugin_name`, when given, is the name of the new configuration (as an ECDS update that
/// renames the plugin: Istio 1.30 and later name it `<namespace>.<name>~istio-translated-wasmplugin`
/// where earlier releases wrote `<namespace>.<name>`); the new root contexts read it.
pub(crate) fn reconfigure(
    core: &Rc<Core>,
    linker: &Linker<HostState>,
    configuration: Vec<u8>,
    plugin_name: Option<String>,
) -> Result<bool, HarnessError> {
    const PRIMARY: usize = 0;
    {
        let mut state = core.state.borrow_mut();
        let renamed = plugin_name.is_some_and(|name| {
            let plugin = &mut state.plugins[PRIMARY];
            let renamed = plugin.plugin_name != name;
            plugin.plugin_name = name;
            renamed
        });
        if !renamed && state.plugins[PRIMARY].configuration == configuration {
            state.trace(|| "reconfiguration identical to the one in effect: skipped".into());
            return Ok(true);
        }
    }
    let use_canary = core.state.borrow().settings.canary;
    if use_canary {
        match canary(core, linker, PRIMARY, &configuration) {
            Ok(()) => {}
            Err(HarnessError::ConfigureRejected { .. }) => return Ok(false),
            Err(other) => return Err(other),
        }
    }
    core.state.borrow_mut().plugins[PRIMARY].configuration = configuration.clone();
    let slots: Vec<usize> = core
        .slots
        .borrow()
        .iter()
        .enumerate()
        .filter(|(_, s)| s.alive && s.plugin == PRIMARY && !matches!(s.id, VmId::Canary(_)))
        .map(|(i, _)| i)
        .collect();
    let mut accepted = true;
    for slot in slots {
        let mut vm = take(core, slot)?;
        let outcome = switch_root(core, &mut vm, configuration.clone());
        put(core, slot, vm);
        accepted &= outcome?;
    }
    Ok(accepted)
}

fn switch_root(core: &Core, vm: &mut Vm, configuration: Vec<u8>) -> Result<bool, Failure> {
    let (root, started) = start_root(core, vm, configuration)?;
    let accepted = started && configure(core, vm, root)?;
    if accepted {
        let old = std::mem::replace(&mut vm.store.data_mut().active_root, root);
        release_root(core, vm, old)?;
    } else {
        release_root(core, vm, root)?;
    }
    Ok(accepted)
}
