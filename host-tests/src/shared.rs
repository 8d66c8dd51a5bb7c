//! Process-wide shared data and shared queues, with proxy-wasm-cpp-host's rules
//! (`src/shared_data.cc`, `src/shared_queue.cc`).
//!
//! # One namespace per VM id
//! Shared data and queue names belong to the `vm_id` of the VM that uses them: two plugins with
//! different VM ids never see each other's keys, two with the same one (Istio sets none, so
//! every Istio plugin has the empty id) share them. When the last VM of a VM id goes away, its
//! namespace goes too: every `WasmBase` holds a handle on its VM id (`getVmIdHandle`, cpp-host
//! `src/vm_id_handle.cc`), and the last handle's destructor calls back `deleteByVmId` of the
//! shared data and of the queues. A reconfiguration keeps the VMs (see [`crate::lifecycle`]),
//! so it keeps the data; removing every plugin of a VM id ([`crate::World::remove_plugin`])
//! deletes it. The cas counter is one for the whole process, across VM ids.
//!
//! # Compare-and-swap
//! - Every successful write takes a fresh cas from one counter that starts at 1 and skips 0.
//! - `cas == 0` writes unconditionally.
//! - A non-zero cas must equal the key's current cas, or the write fails with `CasMismatch`.
//! - A non-zero cas on a key that does not exist inserts it (there is nothing to mismatch).
//! - There is no delete in ABI 0.2.1: a key, once written, stays.
//!
//! # Queues
//! A queue is named per VM id; registering a name again (another worker, a new root context)
//! keeps the token and the queued items but moves delivery to the new registrant, whose root
//! context gets `proxy_on_queue_ready` after each enqueue.

use std::collections::{BTreeMap, VecDeque};

/// One VM id's keys, each with its value and cas.
type Space = BTreeMap<Vec<u8>, (Vec<u8>, u32)>;

/// Keys and values are bytes: the ABI passes them as such. One map per VM id.
#[derive(Debug, Default)]
pub(crate) struct SharedData {
    spaces: BTreeMap<String, Space>,
    next_cas: u32,
}

/// A write that lost a compare-and-swap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CasMismatch;

impl SharedData {
    pub fn new() -> Self {
        SharedData {
            spaces: BTreeMap::new(),
            next_cas: 1,
        }
    }

    pub fn get(&self, vm_id: &str, key: &[u8]) -> Option<(&[u8], u32)> {
        let (value, cas) = self.spaces.get(vm_id)?.get(key)?;
        Some((value.as_slice(), *cas))
    }

    /// Writes `value` under the cas rules above; answers the new cas.
    pub fn set(
        &mut self,
        vm_id: &str,
        key: &[u8],
        value: &[u8],
        cas: u32,
    ) -> Result<u32, CasMismatch> {
        let current = self.get(vm_id, key).map(|(_, current)| current);
        if current.is_some_and(|current| cas != 0 && cas != current) {
            return Err(CasMismatch);
        }
        let fresh = self.fresh_cas();
        self.spaces
            .entry(vm_id.to_string())
            .or_default()
            .insert(key.to_vec(), (value.to_vec(), fresh));
        Ok(fresh)
    }

    pub fn keys(&self, vm_id: &str) -> impl Iterator<Item = &[u8]> {
        self.spaces
            .get(vm_id)
            .into_iter()
            .flat_map(|space| space.keys().map(Vec::as_slice))
    }

    /// The last VM of `vm_id` went away (cpp-host `SharedData::deleteByVmId`).
    pub fn delete_vm_id(&mut self, vm_id: &str) {
        self.spaces.remove(vm_id);
    }

    fn fresh_cas(&mut self) -> u32 {
        let cas = self.next_cas;
        self.next_cas = self.next_cas.wrapping_add(1);
        if self.next_cas == 0 {
            self.next_cas = 1;
        }
        cas
    }
}

/// Who hears about a queue: a VM slot and the root context that registered it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct QueueOwner {
    pub slot: usize,
    pub root: u32,
}

#[derive(Debug)]
struct Queue {
    owner: QueueOwner,
    items: VecDeque<Vec<u8>>,
}

/// Queues by `(vm_id, name)`; tokens come from one counter for the process.
#[derive(Debug, Default)]
pub(crate) struct Queues {
    tokens: BTreeMap<(String, Vec<u8>), u32>,
    queues: BTreeMap<u32, Queue>,
    next_token: u32,
}

/// The queue token does not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NoSuchQueue;

impl Queues {
    pub fn register(&mut self, vm_id: &str, name: &[u8], owner: QueueOwner) -> u32 {
        let key = (vm_id.to_string(), name.to_vec());
        let token = match self.tokens.get(&key) {
            Some(token) => *token,
            None => {
                self.next_token += 1;
                let token = self.next_token;
                self.tokens.insert(key, token);
                token
            }
        };
        self.queues
            .entry(token)
            .and_modify(|q| q.owner = owner)
            .or_insert_with(|| Queue {
                owner,
                items: VecDeque::new(),
            });
        token
    }

    pub fn resolve(&self, vm_id: &str, name: &[u8]) -> Option<u32> {
        self.tokens
            .get(&(vm_id.to_string(), name.to_vec()))
            .copied()
    }

    /// The last VM of `vm_id` went away: its queues and their items are gone (cpp-host
    /// `SharedQueue::deleteByVmId`).
    pub fn delete_vm_id(&mut self, vm_id: &str) {
        let queues = &mut self.queues;
        self.tokens.retain(|(owner, _), token| {
            let keep = owner != vm_id;
            if !keep {
                queues.remove(token);
            }
            keep
        });
    }

    /// Queues `item`; answers who must be told.
    pub fn enqueue(&mut self, token: u32, item: &[u8]) -> Result<QueueOwner, NoSuchQueue> {
        let queue = self.queues.get_mut(&token).ok_or(NoSuchQueue)?;
        queue.items.push_back(item.to_vec());
        Ok(queue.owner)
    }

    /// The oldest item, `Ok(None)` when the queue is empty.
    pub fn dequeue(&mut self, token: u32) -> Result<Option<Vec<u8>>, NoSuchQueue> {
        let queue = self.queues.get_mut(&token).ok_or(NoSuchQueue)?;
        Ok(queue.items.pop_front())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cas_zero_overwrites_and_every_write_takes_a_fresh_cas() {
        let mut data = SharedData::new();
        let first = data.set("", b"k", b"1", 0).unwrap();
        let second = data.set("", b"k", b"2", 0).unwrap();
        assert_eq!((first, second), (1, 2), "one counter, starting at 1");
        assert_eq!(data.get("", b"k"), Some((&b"2"[..], 2)));
    }

    #[test]
    fn a_stale_cas_is_a_mismatch_and_changes_nothing() {
        let mut data = SharedData::new();
        let cas = data.set("", b"k", b"1", 0).unwrap();
        data.set("", b"k", b"2", cas).unwrap();
        assert_eq!(data.set("", b"k", b"3", cas), Err(CasMismatch));
        assert_eq!(data.get("", b"k").map(|(v, _)| v), Some(&b"2"[..]));
    }

    #[test]
    fn a_cas_on_an_absent_key_inserts_it() {
        let mut data = SharedData::new();
        assert_eq!(data.set("", b"new", b"v", 77), Ok(1));
    }

    #[test]
    fn the_cas_counter_skips_zero_when_it_wraps() {
        let mut data = SharedData::new();
        data.next_cas = u32::MAX;
        assert_eq!(data.set("", b"a", b"", 0), Ok(u32::MAX));
        assert_eq!(data.set("", b"a", b"", 0), Ok(1), "0 is never a cas");
    }

    #[test]
    fn registering_a_queue_again_keeps_items_and_moves_delivery() {
        let mut queues = Queues::default();
        let a = QueueOwner { slot: 0, root: 1 };
        let b = QueueOwner { slot: 1, root: 1 };
        let token = queues.register("", b"q", a);
        assert_eq!(queues.enqueue(token, b"x"), Ok(a));
        assert_eq!(queues.register("", b"q", b), token, "same name, same token");
        assert_eq!(
            queues.enqueue(token, b"y"),
            Ok(b),
            "the last registrant hears"
        );
        assert_eq!(queues.dequeue(token), Ok(Some(b"x".to_vec())));
        assert_eq!(queues.dequeue(99), Err(NoSuchQueue));
    }

    #[test]
    fn each_vm_id_has_its_own_keys_and_one_cas_counter_serves_them_all() {
        let mut data = SharedData::new();
        assert_eq!(data.set("a", b"k", b"from a", 0), Ok(1));
        assert_eq!(data.set("b", b"k", b"from b", 0), Ok(2), "one counter");
        assert_eq!(data.get("a", b"k").map(|(v, _)| v), Some(&b"from a"[..]));
        data.delete_vm_id("a");
        assert_eq!(data.get("a", b"k"), None);
        assert_eq!(data.keys("b").count(), 1, "the other namespace stays");
    }

    #[test]
    fn queues_are_named_per_vm_id_and_go_with_it() {
        let mut queues = Queues::default();
        let owner = QueueOwner { slot: 0, root: 1 };
        let a = queues.register("a", b"q", owner);
        let b = queues.register("b", b"q", owner);
        assert_ne!(a, b, "same name, other VM id: another queue");
        assert_eq!(queues.resolve("b", b"q"), Some(b));
        queues.delete_vm_id("a");
        assert_eq!(queues.resolve("a", b"q"), None);
        assert_eq!(queues.enqueue(a, b"x"), Err(NoSuchQueue));
        assert_eq!(queues.enqueue(b, b"x"), Ok(owner));
    }
}
