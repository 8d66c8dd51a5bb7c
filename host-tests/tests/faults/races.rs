//! Clients leaving at the very instant another worker's retry response (or probe response)
//! arrives, in random interleavings that also preempt a worker between its shared-data read and
//! its compare-and-swap write. The refund of one and the withdrawal or report of the other touch
//! the same shared state; whatever the order, the budget stays balanced, no probe slot leaks, and
//! every client gets one answer or left.

use breakwater_host_tests::{ms, Interleaving, Reply, StreamId, UpstreamRequest, World};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};
use serde_json::{json, Value};

use crate::common::{builder, count, CLUSTER};
use crate::invariants::{held_probes, Invariants};
use crate::resilient;

const WORKERS: usize = 4;

/// What one worker's request meets: when it arrives, its retries' answers, when its client
/// leaves.
#[derive(Debug, Clone)]
struct Case {
    /// 0 or 40 ms: the two phases overlap, so one worker's backoff spans another's retries.
    arrival: u64,
    /// Whether the first and second retries succeed.
    retries_ok: [bool; 2],
    /// The instant (ms) the client leaves, if at all (and if it has arrived by then).
    leave: Option<u64>,
}

/// The instants where retries leave and come back: a request arriving at 0 fails at 10, retries
/// at 110 (answered at 150) and at 350 (answered at 390); one arriving at 40 fails at 50, retries
/// at 150 (answered at 190) and at 390 (answered at 430).
const INSTANTS: [u64; 6] = [110, 150, 190, 350, 390, 430];

fn case() -> impl Strategy<Value = Case> {
    (
        prop::sample::select(vec![0u64, 40]),
        any::<[bool; 2]>(),
        prop::option::of(prop::sample::select(INSTANTS.to_vec())),
    )
        .prop_map(|(arrival, retries_ok, leave)| Case {
            arrival,
            retries_ok,
            leave,
        })
}

/// Runs one request per worker as its case says, to the end.
fn run(policy: &Value, cases: &[Case], choices: Vec<u8>) -> (World, Vec<StreamId>) {
    let mut w = builder(WORKERS, policy)
        .canary(false)
        .main_thread_vm(false)
        .interleaving(Interleaving::from_choices(choices))
        .build()
        .expect("starts");
    let outcomes: Vec<[bool; 2]> = cases.iter().map(|c| c.retries_ok).collect();
    w.upstream(CLUSTER, move |request: &UpstreamRequest| {
        let worker: usize = request
            .header("x-worker")
            .and_then(|v| v.parse().ok())
            .unwrap_or_default();
        let ok = match request.header("x-breakwater-attempt") {
            Some("2") => outcomes[worker][0],
            Some(_) => outcomes[worker][1],
            None => false,
        };
        let latency = if request.header("x-breakwater-attempt").is_some() {
            40
        } else {
            10
        };
        let reply = if ok { Reply::ok() } else { Reply::status(503) };
        reply.after(ms(latency))
    });
    let streams = cases
        .iter()
        .enumerate()
        .map(|(worker, c)| {
            let mut b = w
                .request(worker)
                .cluster(CLUSTER)
                .header("x-worker", &worker.to_string())
                .at(ms(c.arrival));
            if let Some(leave) = c.leave.filter(|l| *l > c.arrival) {
                b = b.disconnect_after(ms(leave - c.arrival));
            }
            b.enqueue()
        })
        .collect();
    w.run_until_idle();
    (w, streams)
}

fn explore(name: &str, policy: &Value, cases: u32, seed: u64) {
    let mut runner = TestRunner::new(Config {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (
        prop::collection::vec(case(), WORKERS),
        prop::collection::vec(any::<u8>(), 0..64),
    );
    let preempted = std::cell::Cell::new(0u32);
    let result = runner.run(&strategy, |(cases, choices)| {
        let (mut w, streams) = run(policy, &cases, choices);
        if w.trace().iter().any(|t| t.contains(" preempted in ")) {
            preempted.set(preempted.get() + 1);
        }
        let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            Invariants {
                world: &mut w,
                policy,
                streams: &streams,
            }
            .hold()
        }));
        checked.map_err(|e| {
            let message = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            TestCaseError::fail(format!("{message}\ntrace:\n{}", w.trace().join("\n")))
        })
    });
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
    assert!(
        preempted.get() > cases / 10,
        "{name}: only {} of {cases} cases preempted a worker at shared state",
        preempted.get()
    );
}

#[test]
fn clients_leaving_as_other_workers_retries_come_back_keep_the_budget_balanced() {
    explore("budget", &resilient(100), 500, 0xfa17_0001);
}

/// Two probes on two workers; a client leaving as the other's probe answers.
fn probes(cases: &[(bool, Option<u64>)], choices: Vec<u8>) -> (World, Value, Vec<StreamId>) {
    let policy = crate::common::breaker_only(json!({
        "failure_threshold": 2, "timeout": "1s", "max_timeout": "1s",
        "half_open_attempts": 2, "probe_timeout": "30s"
    }));
    let mut w = builder(WORKERS, &policy)
        .canary(false)
        .main_thread_vm(false)
        .interleaving(Interleaving::from_choices(choices))
        .build()
        .expect("starts");
    w.upstream(CLUSTER, Reply::status(503));
    let mut streams = crate::common::fail_in_turn(&mut w, 2);
    assert_eq!(count(&w, "breaker_opened_total"), 1);
    w.advance(ms(1_100));
    let oks: Vec<bool> = cases.iter().map(|c| c.0).collect();
    w.upstream(CLUSTER, move |request: &UpstreamRequest| {
        let worker: usize = request
            .header("x-worker")
            .and_then(|v| v.parse().ok())
            .unwrap_or_default();
        let reply = if oks[worker] {
            Reply::ok()
        } else {
            Reply::status(503)
        };
        reply.after(ms(30))
    });
    for (worker, (_, leave)) in cases.iter().enumerate() {
        let mut b = w
            .request(worker)
            .cluster(CLUSTER)
            .header("x-worker", &worker.to_string());
        if let Some(leave) = leave {
            b = b.disconnect_after(ms(*leave));
        }
        streams.push(b.enqueue());
    }
    w.run_until_idle();
    (w, policy, streams)
}

#[test]
fn probes_leaving_as_other_probes_answer_never_leak_a_slot() {
    let mut runner = TestRunner::new(Config {
        cases: 500,
        rng_seed: RngSeed::Fixed(0xfa17_0002),
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (
        prop::collection::vec(
            (
                any::<bool>(),
                prop::option::of(prop::sample::select(vec![0u64, 30])),
            ),
            WORKERS,
        ),
        prop::collection::vec(any::<u8>(), 0..64),
    );
    let result = runner.run(&strategy, |(cases, choices)| {
        let (w, policy, streams) = probes(&cases, choices);
        prop_assert_eq!(
            held_probes(&w, &policy),
            0,
            "no probe slot outlives its request; trace:\n{}",
            w.trace().join("\n")
        );
        for s in &streams {
            prop_assert!(
                !matches!(
                    w.stream_state(*s),
                    breakwater_host_tests::StreamState::Open
                        | breakwater_host_tests::StreamState::Scheduled
                ),
                "{} ended",
                s
            );
        }
        prop_assert!(w.late_actions().is_empty());
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}
