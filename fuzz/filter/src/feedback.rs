//! Coverage of the filter's own behaviour, fed to libFuzzer as extra counters.
//!
//! # Why
//! libFuzzer sees the coverage of native code only: the harness and wasmtime. The filter runs as
//! compiled wasm, whose branches it cannot see. So after each input this module turns what the
//! filter visibly did into features: which callbacks each stream went through and roughly how
//! much wasm work each took (fuel, a count of executed wasm instructions, in coarse logarithmic
//! buckets), the shape of every log line (numbers removed), which metrics moved, how each
//! request ended and with which Breakwater headers. A new feature makes libFuzzer keep the
//! input, so inputs that drive the filter down a new path survive even when the host code they
//! exercise is the same.
//!
//! # How
//! libFuzzer (LLVM's `FuzzerExtraCounters.cpp`) reads 8-bit counters from the linker section
//! `__libfuzzer_extra_counters`, clears them before each input and turns them into features
//! like its own edge counters. Each feature here is hashed into one counter.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU8, Ordering};

use breakwater_host_tests::{AttemptKind, StreamId, StreamState, UpstreamRequest, World};

const SLOTS: usize = 1 << 14;

#[used]
#[link_section = "__libfuzzer_extra_counters"]
static COUNTERS: [AtomicU8; SLOTS] = [const { AtomicU8::new(0) }; SLOTS];

/// Counts one occurrence of `feature`.
pub fn note(feature: impl Hash) {
    // `DefaultHasher::new()` has fixed keys: the same feature always lands in the same slot.
    let mut hasher = DefaultHasher::new();
    feature.hash(&mut hasher);
    let slot = (hasher.finish() % SLOTS as u64) as usize;
    let counter = &COUNTERS[slot];
    let _ = counter.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| {
        Some(c.saturating_add(1))
    });
}

/// A coarse size class: the position of the highest bit, and the next bit under it.
fn bucket(n: u64) -> (u32, bool) {
    let top = 63 - n.max(1).leading_zeros();
    let half = top > 0 && n & (1 << (top - 1)) != 0;
    (top, half)
}

/// A log line without its numbers and quoted values, so that one line of code is one feature.
fn shape(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut quoted = false;
    for c in message.chars().take(120) {
        match c {
            '\'' => {
                quoted = !quoted;
                out.push(c);
            }
            _ if quoted => {}
            '0'..='9' => {
                if !out.ends_with('#') {
                    out.push('#');
                }
            }
            _ => out.push(c),
        }
    }
    out
}

/// Notes what the filter did in `world` for the streams `sent` and the upstream requests `seen`.
pub fn observe(world: &World, sent: impl Iterator<Item = StreamId>, seen: &[UpstreamRequest]) {
    for id in sent {
        let callbacks = world.callbacks(id);
        note(("callbacks", &callbacks));
        note(("stream fuel", bucket(world.stream_fuel(id))));
        let state = match world.stream_state(id) {
            StreamState::Complete => "complete",
            StreamState::Reset { .. } => "reset",
            StreamState::Disconnected => "disconnected",
            _ => "open",
        };
        let response = world.response(id);
        note((
            "end",
            state,
            response.as_ref().map(|r| r.status),
            response.as_ref().map(|r| format!("{:?}", r.source)),
            response
                .as_ref()
                .and_then(|r| r.header("x-breakwater-attempts").map(str::to_owned)),
            response
                .as_ref()
                .and_then(|r| r.header("x-breakwater-breaker").map(str::to_owned)),
        ));
    }
    for (callback, fuel) in world.fuel().by_callback {
        note(("calls", callback, bucket(fuel.calls)));
        note((
            "fuel per call",
            callback,
            bucket(fuel.fuel / fuel.calls.max(1)),
        ));
    }
    for line in world.logs() {
        note(("log", line.level, shape(&line.message)));
    }
    for (kind, name, _) in world.metrics() {
        note(("metric", kind, name));
    }
    let retries = seen
        .iter()
        .filter(|r| matches!(r.kind, AttemptKind::Call { .. }))
        .count();
    note((
        "upstream",
        bucket(seen.len() as u64),
        bucket(retries as u64),
    ));
}
