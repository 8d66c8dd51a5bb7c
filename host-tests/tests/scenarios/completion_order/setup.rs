//! The clusters the cases use, the world they share, the requests they draw, and the shared
//! breaker read back as the model's [`Phase`].

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use breakwater::core::breaker::codec::FORMAT;
use breakwater::core::breaker::Breaker;
use breakwater::core::Millis;
use breakwater_host_tests::{Reply, UpstreamRequest, World};
use proptest::prelude::*;
use serde_json::{json, Value};

use super::model::{Bucket, Phase, Rate};
use crate::common::{breaker_key, builder};

pub const WORKERS: usize = 3;
pub const TIMEOUT_MS: u64 = 300;
pub const MAX_TIMEOUT_MS: u64 = 1_200;
/// The most attempts any cluster makes (its `max_attempts`); every request draws this many
/// answers.
pub const MAX_ATTEMPTS: usize = 3;

/// One cluster's breaker and retries.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub threshold: u32,
    pub probes: u32,
    pub rate: Option<Rate>,
    /// `retry.max_attempts` (1: no retries), with `count_retries: false`.
    pub attempts: u32,
}

const fn shape(threshold: u32, probes: u32, rate: Option<Rate>, attempts: u32) -> Shape {
    Shape {
        threshold,
        probes,
        rate,
        attempts,
    }
}

const fn rate(threshold: f64, minimum: u32, window: Millis) -> Option<Rate> {
    Some(Rate {
        threshold,
        minimum,
        window,
    })
}

/// Consecutive failures alone, the rate alone (`failure_threshold: 0`), both, and each with
/// retries. Windows of 1 s and 2 s (buckets of 100 and 200 ms) expire within a case; thresholds
/// of 0.5 and 0.6 are met exactly by some fractions (2/4, 3/5), where "at or above" matters.
pub const SHAPES: [Shape; 14] = [
    shape(2, 1, None, 1),
    shape(3, 1, None, 1),
    shape(3, 2, None, 1),
    shape(4, 3, None, 1),
    shape(5, 1, None, 1),
    shape(5, 2, None, 1),
    shape(0, 1, rate(0.5, 4, 1_000), 1),
    shape(0, 2, rate(0.6, 5, 2_000), 1),
    shape(4, 1, rate(0.34, 6, 1_000), 1),
    shape(0, 1, rate(0.6, 10, 1_000), 1),
    shape(3, 1, None, 3),
    shape(2, 1, None, 3),
    shape(0, 1, rate(0.5, 5, 1_000), 3),
    shape(4, 2, rate(0.2, 5, 2_000), 2),
];

pub fn cluster(shape: usize) -> String {
    format!("shape{shape}")
}

fn cluster_policy(s: &Shape) -> Value {
    let mut breaker = json!({
        "failure_threshold": s.threshold,
        "half_open_attempts": s.probes,
        "timeout": format!("{TIMEOUT_MS}ms"),
        "max_timeout": format!("{MAX_TIMEOUT_MS}ms"),
        "probe_timeout": "60s",
        "count_retries": false,
    });
    if let Some(r) = s.rate {
        breaker["failure_rate"] = json!({
            "threshold": r.threshold,
            "minimum_requests": r.minimum,
            "window": format!("{}ms", r.window),
        });
    }
    // Short jittered delays, no budget (shared by the cases, it would make them depend on each
    // other), room enough that only the breaker and `max_attempts` end the retries.
    let retry = (s.attempts > 1).then(|| {
        json!({
            "max_attempts": s.attempts,
            "base_delay": "10ms",
            "max_delay": "40ms",
            "per_try_timeout": "1s",
            "deadline": "30s",
            "budget": null,
        })
    });
    json!({ "circuit_breaker": breaker, "retry": retry })
}

/// A retry that reached the upstream: the request's index in its case, its attempt number (2
/// for the first retry) and when its headers arrived.
#[derive(Debug, Clone, Copy)]
pub struct Dispatch {
    pub request: usize,
    pub attempt: usize,
    pub at: Duration,
}

/// The world the cases share, and the retries its upstreams saw, oldest first (the cases drain
/// it).
pub struct Shared {
    pub world: World,
    pub dispatched: Rc<RefCell<Vec<Dispatch>>>,
    /// The last case stopped (failed) with requests in flight.
    pub unfinished: bool,
}

/// Each request says how its upstream answers each attempt: `x-answer: <status> <latency in ns>`
/// per attempt, `x-early` for an answer counted from the request's headers rather than its end,
/// and `x-id` its index in the case.
pub fn shared_world() -> Shared {
    let clusters: serde_json::Map<String, Value> = SHAPES
        .iter()
        .enumerate()
        .map(|(i, s)| (cluster(i), cluster_policy(s)))
        .collect();
    let policy = json!({ "default": { "retry": null }, "clusters": clusters });
    let mut world = builder(WORKERS, &policy)
        .build()
        .unwrap_or_else(|e| panic!("the world must build: {e}"));
    let dispatched = Rc::new(RefCell::new(Vec::new()));
    for i in 0..SHAPES.len() {
        let log = Rc::clone(&dispatched);
        world.upstream(&cluster(i), move |req: &UpstreamRequest| {
            let attempt: usize = req
                .header("x-breakwater-attempt")
                .and_then(|a| a.parse().ok())
                .unwrap_or(1);
            if attempt > 1 {
                let request = req.header("x-id").and_then(|id| id.parse().ok());
                log.borrow_mut().push(Dispatch {
                    request: request.unwrap_or(usize::MAX),
                    attempt,
                    at: req.at,
                });
            }
            let answers: Vec<u64> = req
                .header("x-answer")
                .unwrap_or_default()
                .split(' ')
                .filter_map(|n| n.parse().ok())
                .collect();
            let at = 2 * (attempt - 1);
            let (status, nanos) = match answers.get(at..at + 2) {
                Some(&[status, nanos]) => (status, nanos),
                _ => (200, 1_000_000),
            };
            let reply = Reply::status(u16::try_from(status).unwrap_or(200))
                .after(Duration::from_nanos(nanos));
            if req.header("x-early").is_some() {
                reply.early()
            } else {
                reply
            }
        });
    }
    Shared {
        world,
        dispatched,
        unfinished: false,
    }
}

/// A streamed request body: `chunks` chunks one `every` ms apart (the first `every` after the
/// headers), its end `end_after` ms after the last one (or on it).
#[derive(Debug, Clone)]
pub struct Body {
    pub chunks: u64,
    pub every: u64,
    pub end_after: Option<u64>,
    /// The upstream answers from the headers on (`.early()`), so its answer may come before the
    /// body ends.
    pub early: bool,
}

impl Body {
    /// When the body ends, in ms after the headers.
    pub fn end(&self) -> u64 {
        self.chunks * self.every + self.end_after.unwrap_or(0)
    }
}

/// One drawn request.
#[derive(Debug, Clone)]
pub struct Drawn {
    pub worker: usize,
    /// Gap after the previous request's start, in ms.
    pub gap: u64,
    /// Each attempt's answer: failed, and its upstream latency in ms (the first attempt's counted
    /// from the request's end, or its headers if [`Body::early`]; a retry's from its dispatch).
    pub answers: [(bool, u64); MAX_ATTEMPTS],
    /// The client leaves this many ms after it started, before its first answer.
    pub leaves: Option<u64>,
    pub body: Option<Body>,
}

impl Drawn {
    pub fn failed(&self, attempt: usize) -> bool {
        self.answers[attempt - 1].0
    }

    /// When the first attempt is answered, in ms after the headers.
    pub fn answered(&self) -> u64 {
        let latency = self.answers[0].1;
        match &self.body {
            Some(b) if !b.early => b.end() + latency,
            _ => latency,
        }
    }

    /// Whether the body ended before the first answer (the filter then holds a complete copy and
    /// may retry). The end comes on a whole ms, the answer a few µs after its ms.
    pub fn complete_when_answered(&self) -> bool {
        self.body
            .as_ref()
            .is_none_or(|b| b.end() <= self.answered())
    }
}

fn body() -> impl Strategy<Value = Body> {
    (
        1u64..5,
        1u64..60,
        prop::option::weighted(0.3, 1u64..40),
        prop::bool::weighted(0.7),
    )
        .prop_map(|(chunks, every, end_after, early)| Body {
            chunks,
            every,
            end_after,
            early,
        })
}

pub fn drawn() -> impl Strategy<Value = Drawn> {
    let answer = || (prop::bool::weighted(0.35), 1u64..250);
    let retry = || (prop::bool::weighted(0.6), 2u64..120);
    // Mostly busy, with the odd quiet spell in which the window forgets and open times pass.
    let gap = prop_oneof![9 => 1u64..40, 1 => 40u64..700];
    (
        0..WORKERS,
        gap,
        [answer(), retry(), retry()],
        prop::option::weighted(0.1, 0u64..400),
        prop::option::weighted(0.3, body()),
    )
        .prop_map(|(worker, gap, answers, leaves, body)| {
            let mut r = Drawn {
                worker,
                gap,
                answers,
                leaves: None,
                body,
            };
            r.leaves = leaves.filter(|l| *l < r.answered());
            r
        })
}

/// The shared breaker of `cluster` as the model's phase. The window is read from the stored
/// bytes, by the layout the codec documents (`core::breaker::codec`: the bucket count at offset
/// 35, then per bucket start u64, total u32, failed u32, slow u32, little-endian): the bytes are
/// what every worker reads, and the core has no accessor for its window.
pub fn observed(w: &World, cluster: &str) -> Phase {
    let bytes = w
        .shared_data(breaker_key(cluster))
        .map(|stored| stored.bytes)
        .unwrap_or_default();
    let breaker = Breaker::decode(&bytes).expect("the breaker decodes");
    if let Some(failures) = breaker.consecutive_failures() {
        return Phase::Closed {
            failures,
            window: stored_window(&bytes),
        };
    }
    if let Some(until) = breaker.open_until() {
        return Phase::Open { until };
    }
    let (held, successes) = breaker.probes().expect("half-open");
    Phase::HalfOpen { held, successes }
}

fn stored_window(bytes: &[u8]) -> Vec<Bucket> {
    assert_eq!(bytes.first(), Some(&FORMAT), "the layout read here");
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
    (0..usize::from(bytes[35]))
        .map(|i| {
            let at = 36 + 20 * i;
            assert_eq!(u32_at(at + 16), 0, "no slow calls without slow_call");
            Bucket {
                start: u64_at(at),
                total: u32_at(at + 8),
                failed: u32_at(at + 12),
            }
        })
        .collect()
}
