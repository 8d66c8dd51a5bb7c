//! The worker's retry queue: the jobs of client requests whose retries wait or are in flight,
//! each root's waiting retries by due time, and the dispatched calls by token.
//!
//! Plain data the [`super::worker::Worker`] owns: what a retry does when it is due, answered or
//! cancelled is `retries`'s. A job carries its request's [`Exchange`] and what its client gets
//! if the retries stop now ([`Last`]).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use hashbrown::HashMap;

use crate::core::outcome::Outcome;
use crate::core::Millis;

use super::exchange::Exchange;
use super::reply::Reply;

/// What the client gets if its retries stop now.
#[derive(Debug)]
pub enum Last {
    /// The first attempt's response, still paused in Envoy.
    Held,
    /// A retry's response.
    Reply(Reply),
    /// A retry that ended without a response (reset, refused, timed out).
    Failed,
}

/// Where a retry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Waiting { due: Millis },
    InFlight { token: u32 },
}

/// A client request with retries pending.
#[derive(Debug)]
pub struct Job {
    /// The root context of the client's stream: the one that ticks for it and dispatches it.
    pub root: u32,
    pub exchange: Box<Exchange>,
    pub stage: Stage,
    pub last: Last,
    /// The outcome of the latest attempt.
    pub outcome: Outcome,
    /// The held response has a body or trailers still to pass the filter (its head did not end
    /// it): what a relayed response's body and trailers are written into.
    pub held_body: bool,
    /// The held response came from the upstream (not Envoy's own reply): it may still be
    /// arriving when the retries end.
    pub held_from_upstream: bool,
}

/// Due times of one root's waiting retries; entries of jobs since cancelled or moved on are
/// skipped when popped.
type Queue = BinaryHeap<Reverse<(Millis, u32)>>;

/// The worker's pending retries.
#[derive(Debug, Default)]
pub struct Retries {
    /// By HTTP context id. A job taken out (due, answered, cancelled) leaves its entry in its
    /// root's queue, skipped when popped.
    pub jobs: HashMap<u32, Job>,
    /// By root context id; a root's entry goes when its queue empties.
    queues: HashMap<u32, Queue>,
    /// Dispatched calls: token → HTTP context id (a job in flight is in `jobs` too).
    pub calls: HashMap<u32, u32>,
}

impl Retries {
    /// Whether the stream `context_id` has retries waiting or in flight.
    pub fn pending(&self, context_id: u32) -> bool {
        self.jobs.contains_key(&context_id)
    }

    /// Queues `job`, which waits (see [`Stage::Waiting`]), for its root's tick.
    pub fn insert_waiting(&mut self, context_id: u32, job: Job) {
        if let Stage::Waiting { due } = job.stage {
            self.queues
                .entry(job.root)
                .or_default()
                .push(Reverse((due, context_id)));
        }
        self.jobs.insert(context_id, job);
    }

    /// The earliest due time of a retry waiting for `root`, after dropping stale queue entries.
    pub fn next_due(&mut self, root: u32) -> Option<Millis> {
        let queue = self.queues.get_mut(&root)?;
        while let Some(Reverse((due, id))) = queue.peek().copied() {
            if is_waiting(&self.jobs, id, due) {
                return Some(due);
            }
            queue.pop();
        }
        self.queues.remove(&root);
        None
    }

    /// Removes and returns the jobs of `root` due at `now`.
    pub fn take_due(&mut self, root: u32, now: Millis) -> Vec<(u32, Job)> {
        let mut due_jobs = Vec::new();
        let Some(queue) = self.queues.get_mut(&root) else {
            return due_jobs;
        };
        while let Some(Reverse((due, id))) = queue.peek().copied() {
            if due > now {
                break;
            }
            queue.pop();
            if is_waiting(&self.jobs, id, due) {
                if let Some(job) = self.jobs.remove(&id) {
                    due_jobs.push((id, job));
                }
            }
        }
        due_jobs
    }
}

fn is_waiting(jobs: &HashMap<u32, Job>, id: u32, due: Millis) -> bool {
    jobs.get(&id)
        .is_some_and(|job| job.stage == Stage::Waiting { due })
}
