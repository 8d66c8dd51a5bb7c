//! What a test can observe of a [`World`]: responses, stream states, upstream attempts, logs,
//! metrics, shared data, tick periods, fuel and host calls.

use crate::metrics::{MetricKind, MetricValue};
use crate::observe::{Callback, LogLine, Response, StreamId, StreamState, VmId};
use crate::state::FuelReport;
use crate::upstream::Attempt;
use crate::world::World;
use std::time::Duration;

/// A value in shared data and its compare-and-swap token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedValue {
    pub bytes: Vec<u8>,
    pub cas: u32,
}

impl SharedValue {
    /// The value as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}

impl World {
    /// The response the client received, once it has one.
    pub fn response(&self, stream: StreamId) -> Option<Response> {
        self.core().state.borrow().streams[stream.0].result.clone()
    }

    /// Where `stream` is.
    pub fn stream_state(&self, stream: StreamId) -> StreamState {
        self.core().state.borrow().streams[stream.0].state.clone()
    }

    /// The filter's context id for `stream`, once it arrived.
    pub fn context_id(&self, stream: StreamId) -> Option<u32> {
        Some(self.core().state.borrow().streams[stream.0].ctx).filter(|c| *c != 0)
    }

    /// The callbacks run in `stream`'s context so far, in order.
    pub fn callbacks(&self, stream: StreamId) -> Vec<Callback> {
        self.core().state.borrow().streams[stream.0]
            .callbacks
            .clone()
    }

    /// The fuel `stream`'s own callbacks used.
    pub fn stream_fuel(&self, stream: StreamId) -> u64 {
        self.core().state.borrow().streams[stream.0].fuel
    }

    /// Every request that reached `cluster`'s upstream, in order.
    pub fn upstream_attempts(&self, cluster: &str) -> Vec<Attempt> {
        self.core()
            .state
            .borrow()
            .attempts
            .all()
            .iter()
            .filter(|a| a.request.cluster == cluster)
            .cloned()
            .collect()
    }

    /// Every request that reached any upstream, in order.
    pub fn attempts(&self) -> Vec<Attempt> {
        self.core().state.borrow().attempts.all().to_vec()
    }

    /// Everything logged so far.
    pub fn logs(&self) -> Vec<LogLine> {
        self.core().state.borrow().logs.clone()
    }

    /// The log lines whose message contains `needle`.
    pub fn logs_containing(&self, needle: &str) -> Vec<LogLine> {
        self.core()
            .state
            .borrow()
            .logs
            .iter()
            .filter(|l| l.message.contains(needle))
            .cloned()
            .collect()
    }

    /// A counter's or gauge's value (the counter if both exist).
    pub fn metric(&self, name: &str) -> Option<u64> {
        self.counter(name).or_else(|| self.gauge(name))
    }

    pub fn counter(&self, name: &str) -> Option<u64> {
        match self
            .core()
            .state
            .borrow()
            .metrics
            .get(MetricKind::Counter, name)
        {
            Some(MetricValue::Counter(v)) => Some(*v),
            _ => None,
        }
    }

    pub fn gauge(&self, name: &str) -> Option<u64> {
        match self
            .core()
            .state
            .borrow()
            .metrics
            .get(MetricKind::Gauge, name)
        {
            Some(MetricValue::Gauge(v)) => Some(*v),
            _ => None,
        }
    }

    /// Every value recorded in a histogram, in order.
    pub fn histogram(&self, name: &str) -> Option<Vec<u64>> {
        match self
            .core()
            .state
            .borrow()
            .metrics
            .get(MetricKind::Histogram, name)
        {
            Some(MetricValue::Histogram(v)) => Some(v.clone()),
            _ => None,
        }
    }

    /// Every metric defined so far.
    pub fn metrics(&self) -> Vec<(MetricKind, String, MetricValue)> {
        self.core()
            .state
            .borrow()
            .metrics
            .all()
            .iter()
            .map(|((kind, name), value)| (*kind, name.clone(), value.clone()))
            .collect()
    }

    /// The primary plugin's VM id (the shared-data namespace its VMs use).
    fn primary_vm_id(&self) -> String {
        self.core().state.borrow().plugins[0].vm_id.clone()
    }

    /// A shared-data value of the primary plugin's VM id, and its cas
    /// ([`World::shared_data_in`] reads another VM id's).
    pub fn shared_data(&self, key: impl AsRef<[u8]>) -> Option<SharedValue> {
        self.shared_data_in(&self.primary_vm_id(), key)
    }

    /// Every shared-data key of the primary plugin's VM id, in byte order.
    pub fn shared_data_keys(&self) -> Vec<Vec<u8>> {
        self.shared_data_keys_in(&self.primary_vm_id())
    }

    /// Writes shared data of the primary plugin's VM id as another plugin of that VM id or an
    /// operator could (to plant garbage, say): an unconditional write that takes a fresh cas,
    /// which it answers.
    pub fn set_shared_data(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> u32 {
        let vm_id = self.primary_vm_id();
        let mut state = self.core().state.borrow_mut();
        state
            .shared
            .set(&vm_id, key.as_ref(), value.as_ref(), 0)
            .unwrap_or_default()
    }

    /// The live VMs of the primary plugin, main first, then workers.
    pub fn vms(&self) -> Vec<VmId> {
        self.core()
            .slots
            .borrow()
            .iter()
            .filter(|s| s.alive && s.plugin == 0)
            .map(|s| s.id)
            .collect()
    }

    /// The live VMs of `plugin`, main first, then workers.
    pub fn plugin_vms(&self, plugin: crate::PluginId) -> Vec<VmId> {
        self.core()
            .slots
            .borrow()
            .iter()
            .filter(|s| s.alive && s.plugin == plugin.0)
            .map(|s| s.id)
            .collect()
    }

    pub(crate) fn slot_of(&self, vm: VmId) -> Option<usize> {
        match vm {
            VmId::Main => self.main_slot(),
            VmId::Worker(n) => self.worker_slot(n),
            VmId::Canary(_) => None,
        }
    }

    /// The size of `vm`'s wasm linear memory in bytes (it only grows: the most the module ever
    /// needed at once, plus what its allocator keeps); `None` for a VM the world does not have.
    pub fn memory_bytes(&self, vm: impl Into<VmId>) -> Option<u64> {
        let slot = self.slot_of(vm.into())?;
        let slots = self.core().slots.borrow();
        let vm = slots[slot].vm.as_ref()?;
        let memory = vm.store.data().memory?;
        u64::try_from(memory.data_size(&vm.store)).ok()
    }

    /// The root context new streams of `vm` attach to.
    pub fn root_context_id(&self, vm: impl Into<VmId>) -> Option<u32> {
        let slot = self.slot_of(vm.into())?;
        let slots = self.core().slots.borrow();
        slots[slot].vm.as_ref().map(|v| v.store.data().active_root)
    }

    /// The tick period of `vm`'s active root context, `None` when it has none.
    pub fn tick_period(&self, vm: impl Into<VmId>) -> Option<Duration> {
        let slot = self.slot_of(vm.into())?;
        let mut slots = self.core().slots.borrow_mut();
        let host = slots[slot].vm.as_mut()?.store.data_mut();
        let root = host.active_root;
        host.root_mut(root)
            .map(|r| r.tick_period)
            .filter(|p| !p.is_zero())
    }

    /// Host calls (imports the module called) so far, in all and per callback and import.
    pub fn host_calls(&self) -> crate::HostCallReport {
        self.core().state.borrow().host_calls.report()
    }

    /// Fuel (wasm instructions, roughly) used so far, in all and per callback.
    pub fn fuel(&self) -> FuelReport {
        let state = self.core().state.borrow();
        FuelReport {
            total: state.fuel.total,
            by_callback: state.fuel.by_callback.clone(),
            finished_streams: state.streams.iter().filter(|s| s.finished()).count(),
        }
    }
}
