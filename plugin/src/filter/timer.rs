//! A root context's timer, which serves two things on the worker: the root's waiting retries
//! and the worker's flush of batched counts when it runs on this root (see
//! [`super::worker`]). Its period points at the nearer of the two, and is 0 while neither waits.
//!
//! A context can set only its own root's timer (proxy-wasm-cpp-host sets the timer of the
//! calling context's root), so the `root` each function here takes is the calling context's.

use std::time::Duration;

use proxy_wasm::hostcalls;

use crate::core::Millis;

use super::host::Clock;
use super::worker::{FlushTimer, Worker, FLUSH_AFTER};

/// A request under `root` was counted for the worker's flush: sets the flush timer on `root`
/// unless it runs there already (reading the clock once per flush).
pub fn flush_later(w: &mut Worker, root: u32, clock: &mut Clock) {
    if w.flush_timer.is_some_and(|t| t.root == root) {
        return;
    }
    let now = clock.now();
    w.flush_timer = Some(FlushTimer {
        root,
        due: now.saturating_add(FLUSH_AFTER),
    });
    arm(w, root, now);
}

/// Points the timer of `root` (which must be the calling context's root) at the earliest retry
/// due for it or the worker's flush if it runs on `root`, whichever is nearer, or turns it off.
pub fn arm(w: &mut Worker, root: u32, now: Millis) {
    let flush = w.flush_timer.filter(|t| t.root == root).map(|t| t.due);
    let period = match w.retries.next_due(root).into_iter().chain(flush).min() {
        Some(due) => due.saturating_sub(now).max(1),
        None => 0,
    };
    let _ = hostcalls::set_tick_period(Duration::from_millis(period));
}
