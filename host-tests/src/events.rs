//! The world's timeline: events due at virtual instants, each bound to one VM.
//!
//! Events of one VM run in the order they were scheduled (one worker, one event loop). Among
//! events of different VMs due at the same instant, the [`Interleaving`](crate::Interleaving)
//! chooses.

use crate::observe::StreamId;
use std::collections::BTreeMap;
use std::time::Duration;

/// Something a VM's event loop will do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EventKind {
    /// A downstream request arrives: its headers, and the body chunks due with them.
    Arrive(StreamId),
    /// A later piece of a streamed request body (its `index` in the stream's arrivals) reaches
    /// Envoy.
    RequestChunk { stream: StreamId, index: usize },
    /// The upstream's answer (or failure) for the stream's attempt reaches Envoy.
    Upstream { stream: StreamId, attempt: usize },
    /// The upstream resets a response it cut mid-body ([`crate::Reply::reset_mid_body_after`]).
    UpstreamCut { stream: StreamId },
    /// The route timeout of the stream's attempt fires.
    RouteTimeout { stream: StreamId, attempt: usize },
    /// The downstream client disconnects.
    Disconnect(StreamId),
    /// A root context's tick timer fires; stale generations are ignored.
    Tick { root: u32, generation: u64 },
    /// A dispatched call completes (answer, synthesized failure or reset).
    CallDone { token: u32 },
    /// Items were queued on a queue this VM's root registered.
    QueueReady { root: u32, token: u32 },
}

#[derive(Debug, Clone)]
pub(crate) struct Event {
    pub slot: usize,
    pub kind: EventKind,
}

/// Key of a scheduled event: due time, then scheduling order.
pub(crate) type EventKey = (Duration, u64);

#[derive(Debug, Default)]
pub(crate) struct Events {
    queue: BTreeMap<EventKey, Event>,
    seq: u64,
}

impl Events {
    pub fn push(&mut self, at: Duration, slot: usize, kind: EventKind) -> EventKey {
        self.seq += 1;
        let key = (at, self.seq);
        self.queue.insert(key, Event { slot, kind });
        key
    }

    /// When the next event is due.
    pub fn next_time(&self) -> Option<Duration> {
        self.queue.keys().next().map(|(at, _)| *at)
    }

    /// The oldest event of each VM due at `at` whose VM `runnable` accepts, oldest first.
    pub fn heads_at(&self, at: Duration, runnable: impl Fn(usize) -> bool) -> Vec<EventKey> {
        let mut seen: Vec<usize> = Vec::new();
        let mut heads = Vec::new();
        for (key, event) in self.queue.range((at, 0)..=(at, u64::MAX)) {
            if seen.contains(&event.slot) {
                continue;
            }
            seen.push(event.slot);
            if runnable(event.slot) {
                heads.push(*key);
            }
        }
        heads
    }

    pub fn take(&mut self, key: EventKey) -> Option<Event> {
        self.queue.remove(&key)
    }

    /// Whether anything but ticks is still scheduled.
    pub fn has_work(&self) -> bool {
        self.queue
            .values()
            .any(|e| !matches!(e.kind, EventKind::Tick { .. }))
    }

    /// Drops every event of a VM that no longer exists.
    pub fn drop_slot(&mut self, slot: usize) {
        self.queue.retain(|_, e| e.slot != slot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_are_the_oldest_event_of_each_vm_at_that_instant() {
        let mut events = Events::default();
        let t = Duration::from_millis(5);
        events.push(t, 0, EventKind::CallDone { token: 1 });
        events.push(t, 1, EventKind::CallDone { token: 2 });
        events.push(t, 0, EventKind::CallDone { token: 3 });
        events.push(
            Duration::from_millis(6),
            2,
            EventKind::CallDone { token: 4 },
        );
        let heads = events.heads_at(t, |_| true);
        let tokens: Vec<EventKind> = heads.iter().map(|k| events.queue[k].kind.clone()).collect();
        assert_eq!(
            tokens,
            vec![
                EventKind::CallDone { token: 1 },
                EventKind::CallDone { token: 2 }
            ],
            "one head per VM, later events of VM 0 wait their turn"
        );
        let busy = events.heads_at(t, |slot| slot != 0);
        assert_eq!(
            busy.len(),
            1,
            "a busy VM offers nothing, and its later events do not jump"
        );
    }
}
