//! Process-wide shared data and shared queues, with proxy-wasm-cpp-host's rules
//! (`src/shared_data.cc`, `src/shared_queue.cc`).
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

/// Keys and values are bytes: the ABI passes them as such.
#[derive(Debug, Default)]
pub(crate) struct SharedData {
    entries: BTreeMap<Vec<u8>, (Vec<u8>, u32)>,
    next_cas: u32,
}

/// A write that lost a compare-and-swap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CasMismatch;

impl SharedData {
    pub fn new() -> Self {
        SharedData {
            entries: BTreeMap::new(),
            next_cas: 1,
        }
    }

    pub fn get(&self, key: &[u8]) -> Option<(&[u8], u32)> {
        self.entries.get(key).map(|(v, cas)| (v.as_slice(), *cas))
    }

    /// Writes `value` under the cas rules above; answers the new cas.
    pub fn set(&mut self, key: &[u8], value: &[u8], cas: u32) -> Result<u32, CasMismatch> {
        if let Some((_, current)) = self.entries.get(key) {
            if cas != 0 && cas != *current {
                return Err(CasMismatch);
            }
        }
        let fresh = self.fresh_cas();
        self.entries.insert(key.to_vec(), (value.to_vec(), fresh));
        Ok(fresh)
    }

    pub fn keys(&self) -> impl Iterator<Item = &[u8]> {
        self.entries.keys().map(Vec::as_slice)
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

#[derive(Debug, Default)]
pub(crate) struct Queues {
    tokens: BTreeMap<Vec<u8>, u32>,
    queues: BTreeMap<u32, Queue>,
    next_token: u32,
}

/// The queue token does not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NoSuchQueue;

impl Queues {
    pub fn register(&mut self, name: &[u8], owner: QueueOwner) -> u32 {
        let token = match self.tokens.get(name) {
            Some(token) => *token,
            None => {
                self.next_token += 1;
                let token = self.next_token;
                self.tokens.insert(name.to_vec(), token);
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

    pub fn resolve(&self, name: &[u8]) -> Option<u32> {
        self.tokens.get(name).copied()
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
        let first = data.set(b"k", b"1", 0).unwrap();
        let second = data.set(b"k", b"2", 0).unwrap();
        assert_eq!((first, second), (1, 2), "one counter, starting at 1");
        assert_eq!(data.get(b"k"), Some((&b"2"[..], 2)));
    }

    #[test]
    fn a_stale_cas_is_a_mismatch_and_changes_nothing() {
        let mut data = SharedData::new();
        let cas = data.set(b"k", b"1", 0).unwrap();
        data.set(b"k", b"2", cas).unwrap();
        assert_eq!(data.set(b"k", b"3", cas), Err(CasMismatch));
        assert_eq!(data.get(b"k").map(|(v, _)| v), Some(&b"2"[..]));
    }

    #[test]
    fn a_cas_on_an_absent_key_inserts_it() {
        let mut data = SharedData::new();
        assert_eq!(data.set(b"new", b"v", 77), Ok(1));
    }

    #[test]
    fn the_cas_counter_skips_zero_when_it_wraps() {
        let mut data = SharedData::new();
        data.next_cas = u32::MAX;
        assert_eq!(data.set(b"a", b"", 0), Ok(u32::MAX));
        assert_eq!(data.set(b"a", b"", 0), Ok(1), "0 is never a cas");
    }

    #[test]
    fn registering_a_queue_again_keeps_items_and_moves_delivery() {
        let mut queues = Queues::default();
        let a = QueueOwner { slot: 0, root: 1 };
        let b = QueueOwner { slot: 1, root: 1 };
        let token = queues.register(b"q", a);
        assert_eq!(queues.enqueue(token, b"x"), Ok(a));
        assert_eq!(queues.register(b"q", b), token, "same name, same token");
        assert_eq!(
            queues.enqueue(token, b"y"),
            Ok(b),
            "the last registrant hears"
        );
        assert_eq!(queues.dequeue(token), Ok(Some(b"x".to_vec())));
        assert_eq!(queues.dequeue(99), Err(NoSuchQueue));
    }
}
