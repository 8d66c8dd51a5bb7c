//! The breaker against a reference model, step by step, with many requests in flight.
//!
//! Real traffic is not sequential: requests on several workers overlap, and they finish in any
//! order. The breaker must count outcomes in the order they are recorded (completion order,
//! across all workers), whatever the state was when each request was admitted: a success resets
//! the consecutive count whenever it is non-zero, the rate window counts each outcome in the
//! bucket of the instant it is recorded, an outcome from before a transition (another epoch)
//! counts for nothing, half-open lets through exactly the free probe slots, and a client that
//! leaves before its response gives a probe slot back and reports nothing.
//!
//! Each case draws requests (worker, start, each attempt's latency and outcome, whether the
//! client leaves first, whether the body streams), runs them through the real filter on three
//! workers, and after every event compares the shared breaker, rate window included, with
//! [`model::Model`], a few lines of arithmetic that say what the breaker must be. Cases share one
//! world: each uses one cluster (see [`setup::SHAPES`]), reset to a fresh breaker first.
//!
//! Each worker holds the successes that only feed a rate window back until its flush; the
//! runner fires every worker's timer after each event, so the flush runs at once and the
//! window is compared with the model's at every step (the lag itself is specified in
//! `flush.rs`).
//!
//! # Events
//! - An admission: the filter admits, admits as a probe, or rejects, as the model does.
//! - A first answer: the outcome is recorded at the response, not at the request's end. Some
//!   bodies stream to an upstream that answers from the headers on, so the response may come
//!   before the body ends (Envoy then drops the rest of the body: the filter must neither wait
//!   for it nor record again); others end before the response.
//! - A retry's answer: with `count_retries: false` a retried request reports one outcome, its
//!   final one, when its last attempt is answered. A failure is retried while the breaker is
//!   closed, attempts are left and the body was whole when the answer came.
//! - A body's end, a client leaving: nothing is recorded (a probe's slot goes back).
//!
//! # Instants
//! Starts, body chunks and body ends fall on whole milliseconds; each request's answers and its
//! client's departure come `1 + index` µs after theirs, so no two requests' outcomes share an
//! instant and the order the filter sees is the order below. Retries are dispatched by the
//! filter's timer after a jittered delay: while one waits, time moves a millisecond at a time, so
//! its dispatch is seen (the upstream logs it) before its answer, which takes at least 2 ms.

mod case;
mod model;
mod setup;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::time::Duration;

use breakwater::core::breaker::Breaker;
use breakwater_host_tests::{ms, StreamState};
use proptest::prelude::*;

use crate::common::{breaker_key, is_fallback, stat};
use case::{Case, Event};
use model::{Model, Ticket};
use setup::{cluster, drawn, observed, shared_world, Drawn, Shared, SHAPES, WORKERS};

thread_local! {
    static SHARED: RefCell<Option<Shared>> = const { RefCell::new(None) };
}

fn run_case(shared: &mut Shared, shape: usize, requests: &[Drawn]) -> Result<(), TestCaseError> {
    let w = &mut shared.world;
    let s = SHAPES[shape];
    let cluster = cluster(shape);
    // A case that failed (while shrinking) left requests in flight: they end first. (Only then:
    // running until idle looks at every stream the world ever had.)
    if shared.unfinished {
        w.run_until_idle();
    }
    shared.unfinished = true;
    // What the workers still hold from the case before goes to its breaker, not to this one's.
    for worker in 0..WORKERS {
        w.fire_timer(worker);
    }
    let mut fresh = Vec::new();
    Breaker::new().encode(&mut fresh);
    w.set_shared_data(breaker_key(&cluster), &fresh);
    shared.dispatched.borrow_mut().clear();
    let opened_before = w
        .counter(&stat(&cluster, "breaker_opened_total"))
        .unwrap_or(0);

    let base = w.now() + ms(10);
    let n = requests.len();
    let mut case = Case {
        w,
        cluster,
        attempts: s.attempts as usize,
        requests,
        model: Model::new(s.threshold, s.probes, s.rate),
        streams: vec![None; n],
        tickets: vec![Ticket::Rejected; n],
        waiting: vec![0; n],
        events: BTreeMap::new(),
        added: 0,
    };
    let mut start = base;
    for (i, r) in requests.iter().enumerate() {
        start += ms(r.gap);
        case.push(start, Event::Admit(i));
        let tag = Duration::from_micros(1 + i as u64);
        match r.leaves {
            Some(after) => case.push(start + ms(after) + tag, Event::Leave(i)),
            None => case.push(start + ms(r.answered()) + tag, Event::Answer(i)),
        }
        if let Some(body) = &r.body {
            case.push(start + ms(body.end()), Event::BodyEnds(i));
        }
    }

    loop {
        let next = case.events.first_key_value().map(|((at, _), _)| *at);
        let step = case.w.now() + ms(1);
        if case.waiting.iter().any(|&n| n != 0) && next.is_none_or(|at| at > step) {
            case.w.advance_to(step);
            case.dispatches(&shared.dispatched)?;
            continue;
        }
        let Some(((at, _), event)) = case.events.pop_first() else {
            break;
        };
        case.w.advance_to(at);
        case.dispatches(&shared.dispatched)?;
        case.handle(event)?;
        // Each worker holds its successes back for the rate window until its flush (see
        // `flush.rs` for that lag): the flush runs now, so the window can be compared with the
        // model's at every step.
        for worker in 0..WORKERS {
            case.w.fire_timer(worker);
        }
        prop_assert_eq!(
            observed(case.w, &case.cluster),
            case.model.phase.clone(),
            "after {:?} at {:?}",
            event,
            at - base
        );
    }
    // Every answer, departure and body end has come: each request is over, nothing held.
    for (i, s) in case.streams.iter().enumerate() {
        let state = case.w.stream_state(s.expect("sent"));
        let expected = if requests[i].leaves.is_some() && case.tickets[i] != Ticket::Rejected {
            StreamState::Disconnected
        } else {
            StreamState::Complete
        };
        prop_assert_eq!(state, expected, "request {} ends", i);
    }
    let opened = case
        .w
        .counter(&stat(&case.cluster, "breaker_opened_total"))
        .unwrap_or(0)
        - opened_before;
    prop_assert!(opened <= n as u64);
    shared.unfinished = false;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 3000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_breaker_follows_its_model_whatever_order_requests_finish_in(
        shape in 0..SHAPES.len(),
        requests in prop::collection::vec(drawn(), 5..40),
    ) {
        SHARED.with(|cell| {
            let mut slot = cell.borrow_mut();
            let shared = slot.get_or_insert_with(shared_world);
            run_case(shared, shape, &requests)
        })?;
    }
}

#[test]
fn successes_that_finish_between_failures_reset_the_count_wherever_they_were_admitted() {
    // The defect the model test guards, in one story: many requests admitted while the count is
    // 0, failures finishing in between their successes. Four failures never come in a row in
    // completion order, so a threshold of 3 must never trip.
    let mut w = shared_world().world;
    let cluster = cluster(1);
    assert_eq!((SHAPES[1].threshold, SHAPES[1].attempts), (3, 1));
    let mut streams = Vec::new();
    for i in 0..40u64 {
        let status = if i % 3 == 0 { 503 } else { 200 };
        // Start together; finish one by one, every third a failure.
        let nanos = (50_000 + i * 1000) * 1000;
        streams.push(
            w.request((i % 3) as usize)
                .cluster(&cluster)
                .header("x-answer", &format!("{status} {nanos}"))
                .send(),
        );
    }
    w.run_until_idle();
    assert_eq!(
        w.counter(&stat(&cluster, "breaker_opened_total"))
            .unwrap_or(0),
        0,
        "the longest run of failures in completion order is 1: the breaker stays closed"
    );
    assert!(streams
        .iter()
        .all(|s| w.response(*s).is_some_and(|r| !is_fallback(&r))));
}
