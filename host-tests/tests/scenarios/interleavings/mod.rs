//! Randomized races: 4 workers, random requests, upstream outcomes and client disconnects, and
//! random interleavings that preempt workers between their shared-data reads and their
//! compare-and-swap writes. Whatever happens, the filter keeps its promises:
//! - never more half-open probes in flight than `half_open_attempts` (plus slots given back);
//! - no retry of a request that may not be retried, and none while the breaker is not closed;
//! - never more than `max_attempts` attempts, and `x-breakwater-attempts` tells how many;
//! - every client request gets exactly one response (or its client left, or its stream reset).
//!
//! # Reading the breaker's history from the outside
//! Every time here is chosen so that the breaker can only change at known instants: requests
//! arrive at even milliseconds (admissions, which may turn an open breaker half-open), while
//! every outcome (upstream latencies, the route timeout, `per_try_timeout`, the retry delay plus
//! a latency) and every disconnect lands on an odd millisecond. The filter's transition log
//! lines then split the timeline exactly: an upstream attempt at an even instant belongs to the
//! phase the last transition before it started.

mod cases;
mod timeline;

use breakwater_host_tests::{ms, AttemptKind, StreamId, StreamState, World};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};
use serde_json::{json, Value};

use crate::common::is_fallback;

use cases::{policy, req, run, Kind, Out, Req, C, MAX_ATTEMPTS};
use timeline::{timeline, within};

fn check(
    w: &World,
    reqs: &[Req],
    streams: &[StreamId],
    half_open: usize,
) -> Result<(), TestCaseError> {
    let attempts = w.upstream_attempts(C);
    let id_of = |i: usize| format!("r{i}");
    let t = timeline(w);
    prop_assert!(
        w.logs_containing("reclaimed").is_empty(),
        "no lease outlives probe_timeout here"
    );

    for (i, (r, s)) in reqs.iter().zip(streams).enumerate() {
        let mine: Vec<_> = attempts
            .iter()
            .filter(|a| a.request.header("x-request-id") == Some(id_of(i).as_str()))
            .collect();
        let retries = mine
            .iter()
            .filter(|a| matches!(a.request.kind, AttemptKind::Call { .. }))
            .count();
        prop_assert!(mine.len() <= MAX_ATTEMPTS, "r{i}: {} attempts", mine.len());
        if matches!(r.kind, Kind::Post | Kind::BigPut) {
            prop_assert_eq!(retries, 0, "r{} ({:?}) may not be retried", i, r.kind);
        }
        for a in mine
            .iter()
            .filter(|a| matches!(a.request.kind, AttemptKind::Call { .. }))
        {
            let open = t
                .not_closed
                .iter()
                .find(|span| within(a.request.at, **span));
            prop_assert!(
                open.is_none(),
                "r{i}: a retry at {:?} while not closed {open:?}",
                a.request.at
            );
        }
        match w.stream_state(*s) {
            StreamState::Complete => {
                let resp = w.response(*s).expect("a complete stream has its response");
                let header = resp.header("x-breakwater-attempts");
                if !is_fallback(&resp) {
                    let expected = (mine.len() > 1).then(|| mine.len().to_string());
                    prop_assert_eq!(header, expected.as_deref(), "r{}: attempts header", i);
                }
            }
            StreamState::Disconnected => prop_assert!(r.leave.is_some(), "r{i} was not left"),
            StreamState::Reset { .. } => prop_assert!(
                r.outs[0].0 == Out::ResetAfterHeaders && mine.len() == 1,
                "r{i}: only a reset upstream stream resets the client"
            ),
            other => prop_assert!(false, "r{i} never finished: {other:?}"),
        }
    }

    for epoch in &t.half_open {
        let probes: Vec<usize> = (0..reqs.len())
            .filter(|i| {
                attempts.iter().any(|a| {
                    matches!(a.request.kind, AttemptKind::Stream { .. })
                        && a.request.header("x-request-id") == Some(id_of(*i).as_str())
                        && within(a.request.at, *epoch)
                })
            })
            .collect();
        let released = probes
            .iter()
            .filter(|i| {
                let left = reqs[**i].leave.map(|l| ms(2 * reqs[**i].slot + l));
                w.stream_state(streams[**i]) == StreamState::Disconnected
                    && left.is_some_and(|d| epoch.1.is_none_or(|e| d < e))
            })
            .count();
        prop_assert!(
            probes.len() <= half_open + released,
            "half-open epoch {:?}: {} probes {:?}, {} slots, {} given back",
            epoch,
            probes.len(),
            probes,
            half_open,
            released
        );
    }
    Ok(())
}

/// Runs `cases` random cases of `policy` and asserts that some of them really raced.
fn explore(name: &str, breaker: Value, half_open: usize, cases: u32, seed: u64) {
    let policy = policy(breaker);
    let mut runner = TestRunner::new(Config {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        ..Config::default()
    });
    let preempted = std::cell::Cell::new(0u32);
    let strategy = (
        prop::collection::vec(req(), 1..16),
        prop::collection::vec(any::<u8>(), 0..48),
    );
    let result = runner.run(&strategy, |(reqs, choices)| {
        let (w, streams) = run(&policy, &reqs, choices);
        if w.trace().iter().any(|t| t.contains(" preempted in ")) {
            preempted.set(preempted.get() + 1);
        }
        check(&w, &reqs, &streams, half_open)
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
fn random_races_keep_every_promise_when_the_breaker_sees_one_outcome_per_request() {
    explore(
        "count_retries false",
        json!({ "failure_threshold": 2, "half_open_attempts": 2 }),
        2,
        1000,
        0x5eed_0001,
    );
}

#[test]
fn random_races_keep_every_promise_when_every_attempt_counts() {
    explore(
        "count_retries true",
        json!({ "failure_threshold": 3, "half_open_attempts": 1, "count_retries": true }),
        1,
        1000,
        0x5eed_0002,
    );
}
