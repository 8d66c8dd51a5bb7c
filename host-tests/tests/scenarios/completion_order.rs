//! The breaker against a reference model, step by step, with many requests in flight.
//!
//! Real traffic is not sequential: requests on several workers overlap, and they finish in any
//! order. The breaker must count outcomes in the order they are recorded (completion order,
//! across all workers), whatever the state was when each request was admitted: a success resets
//! the consecutive count whenever it is non-zero, an outcome from before a transition (another
//! epoch) counts for nothing, half-open lets through exactly the free probe slots, and a client
//! that leaves before its response gives a probe slot back and reports nothing.
//!
//! Each case draws requests (worker, start, latency, outcome, whether the client leaves first),
//! runs them through the real filter on three workers, and after every event (an admission, a
//! response, a client leaving) compares the shared breaker with [`Model`], a few lines of
//! arithmetic that say what the breaker must be. Cases share one world: each uses its own
//! cluster, reset to a fresh breaker first.

use std::cell::RefCell;
use std::time::Duration;

use breakwater::core::breaker::Breaker;
use breakwater::core::Millis;
use breakwater_host_tests::{ms, Reply, StreamId, StreamState, UpstreamRequest, World};
use proptest::prelude::*;
use serde_json::json;

use crate::common::{builder, is_fallback, module_now, stat, PLUGIN};

const WORKERS: usize = 3;
/// The (failure_threshold, half_open_attempts) of the clusters the cases use.
const SHAPES: [(u32, u32); 6] = [(2, 1), (3, 1), (3, 2), (4, 3), (5, 1), (5, 2)];
const TIMEOUT_MS: u64 = 300;
const MAX_TIMEOUT_MS: u64 = 1_200;

fn cluster(shape: usize) -> String {
    let (threshold, probes) = SHAPES[shape];
    format!("t{threshold}h{probes}")
}

fn shared_world() -> World {
    let clusters: serde_json::Map<String, serde_json::Value> = (0..SHAPES.len())
        .map(|i| {
            let (threshold, probes) = SHAPES[i];
            let breaker = json!({
                "failure_threshold": threshold,
                "half_open_attempts": probes,
                "timeout": format!("{TIMEOUT_MS}ms"),
                "max_timeout": format!("{MAX_TIMEOUT_MS}ms"),
                "probe_timeout": "60s",
            });
            (cluster(i), json!({ "circuit_breaker": breaker }))
        })
        .collect();
    let policy = json!({ "default": { "retry": null }, "clusters": clusters });
    let mut w = builder(WORKERS, &policy)
        .build()
        .unwrap_or_else(|e| panic!("the world must build: {e}"));
    for i in 0..SHAPES.len() {
        // Each request says how its upstream answers: `x-answer: <status> <latency in µs>`.
        w.upstream(&cluster(i), |req: &UpstreamRequest| {
            let answer = req.header("x-answer").unwrap_or("200 1000");
            let (status, micros) = answer.split_once(' ').unwrap_or(("200", "1000"));
            let status = status.parse().unwrap_or(200);
            let micros = micros.parse().unwrap_or(1000);
            Reply::status(status).after(Duration::from_micros(micros))
        });
    }
    w
}

thread_local! {
    static WORLD: RefCell<Option<World>> = const { RefCell::new(None) };
}

/// One drawn request.
#[derive(Debug, Clone)]
struct Drawn {
    worker: usize,
    /// Gap after the previous request's start, in ms.
    gap: u64,
    /// Upstream latency, in ms.
    latency: u64,
    failed: bool,
    /// The client leaves this many ms after it started, before its response.
    leaves: Option<u64>,
}

fn drawn() -> impl Strategy<Value = Drawn> {
    (
        0..WORKERS,
        1u64..40,
        1u64..250,
        prop::bool::weighted(0.35),
        prop::option::weighted(0.1, 0u64..250),
    )
        .prop_map(|(worker, gap, latency, failed, leaves)| Drawn {
            worker,
            gap,
            latency,
            failed,
            leaves: leaves.filter(|l| *l < latency),
        })
}

/// What a request holds from its admission, in the model.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Ticket {
    Rejected,
    Counted { epoch: u64 },
    Probe { epoch: u64 },
}

/// The reference breaker: what the shared one must be after every event.
#[derive(Debug, Clone, PartialEq)]
enum Phase {
    Closed { failures: u32 },
    Open { until: Millis },
    HalfOpen { held: u32, successes: u32 },
}

#[derive(Debug)]
struct Model {
    threshold: u32,
    probes: u32,
    epoch: u64,
    phase: Phase,
}

impl Model {
    fn admit(&mut self, now: Millis) -> Ticket {
        if let Phase::Open { until } = self.phase {
            if now >= until {
                self.epoch += 1;
                self.phase = Phase::HalfOpen {
                    held: 0,
                    successes: 0,
                };
            }
        }
        match &mut self.phase {
            Phase::Closed { .. } => Ticket::Counted { epoch: self.epoch },
            Phase::Open { .. } => Ticket::Rejected,
            Phase::HalfOpen { held, successes } => {
                if *held + *successes < self.probes {
                    *held += 1;
                    Ticket::Probe { epoch: self.epoch }
                } else {
                    Ticket::Rejected
                }
            }
        }
    }

    /// Records an outcome; `Some(())` when the breaker must open now (the caller adopts the
    /// jittered open time the filter drew).
    fn record(&mut self, ticket: Ticket, failed: bool) -> bool {
        match (ticket, &mut self.phase) {
            (Ticket::Counted { epoch }, Phase::Closed { failures }) if epoch == self.epoch => {
                if !failed {
                    *failures = 0;
                    return false;
                }
                *failures += 1;
                *failures >= self.threshold
            }
            (Ticket::Probe { epoch }, Phase::HalfOpen { held, successes })
                if epoch == self.epoch =>
            {
                *held -= 1;
                if failed {
                    return true;
                }
                *successes += 1;
                if *successes >= self.probes {
                    self.epoch += 1;
                    self.phase = Phase::Closed { failures: 0 };
                }
                false
            }
            _ => false,
        }
    }

    fn release(&mut self, ticket: Ticket) {
        if let (Ticket::Probe { epoch }, Phase::HalfOpen { held, .. }) = (ticket, &mut self.phase) {
            if epoch == self.epoch {
                *held -= 1;
            }
        }
    }

    fn open(&mut self, until: Millis) {
        self.epoch += 1;
        self.phase = Phase::Open { until };
    }
}

/// The shared breaker as the model's phase.
fn observed(w: &World, cluster: &str) -> Phase {
    let key = format!("breakwater/{PLUGIN}/v2/breaker/{cluster}");
    let breaker = w
        .shared_data(&key)
        .map(|stored| Breaker::decode(&stored.bytes).expect("the breaker decodes"))
        .unwrap_or_default();
    if let Some(failures) = breaker.consecutive_failures() {
        return Phase::Closed { failures };
    }
    if let Some(until) = breaker.open_until() {
        return Phase::Open { until };
    }
    let (held, successes) = breaker.probes().expect("half-open");
    Phase::HalfOpen { held, successes }
}

#[derive(Debug, Clone, Copy)]
enum Event {
    Admit(usize),
    Respond(usize),
    Leave(usize),
}

fn run_case(w: &mut World, shape: usize, requests: &[Drawn]) -> Result<(), TestCaseError> {
    let cluster = cluster(shape);
    let (threshold, probes) = SHAPES[shape];
    let key = format!("breakwater/{PLUGIN}/v2/breaker/{cluster}");
    let mut fresh = Vec::new();
    Breaker::new().encode(&mut fresh);
    w.set_shared_data(&key, &fresh);
    let mut model = Model {
        threshold,
        probes,
        epoch: 0,
        phase: Phase::Closed { failures: 0 },
    };
    let opened_before = w
        .counter(&stat(&cluster, "breaker_opened_total"))
        .unwrap_or(0);

    // Every event at its own instant (starts on whole ms, responses and departures offset by
    // the request's index in µs), so the order the filter sees is the order below.
    let base = w.now() + ms(10);
    let mut start = base;
    let mut events: Vec<(Duration, Event)> = Vec::new();
    let mut starts = Vec::new();
    for (i, r) in requests.iter().enumerate() {
        start += ms(r.gap);
        starts.push(start);
        events.push((start, Event::Admit(i)));
        let tiebreak = Duration::from_micros(1 + i as u64);
        match r.leaves {
            Some(after) => events.push((start + ms(after) + tiebreak, Event::Leave(i))),
            None => events.push((start + ms(r.latency) + tiebreak, Event::Respond(i))),
        }
    }
    events.sort_by_key(|(at, _)| *at);

    let mut streams: Vec<Option<StreamId>> = vec![None; requests.len()];
    let mut tickets = vec![Ticket::Rejected; requests.len()];
    for (at, event) in events {
        w.advance_to(at);
        match event {
            Event::Admit(i) => {
                let r = &requests[i];
                let status = if r.failed { 503 } else { 200 };
                let micros = r.latency * 1000 + 1 + i as u64;
                let mut builder = w
                    .request(r.worker)
                    .cluster(&cluster)
                    .header("x-answer", &format!("{status} {micros}"));
                if let Some(after) = r.leaves {
                    builder =
                        builder.disconnect_after(ms(after) + Duration::from_micros(1 + i as u64));
                }
                let s = builder.send();
                streams[i] = Some(s);
                tickets[i] = model.admit(module_now(w));
                let fallback = w.response(s).is_some_and(|resp| is_fallback(&resp));
                prop_assert_eq!(
                    fallback,
                    tickets[i] == Ticket::Rejected,
                    "request {} at {:?}: the filter's admission differs from the model's ({:?})",
                    i,
                    at - base,
                    model.phase
                );
            }
            Event::Respond(i) => {
                if tickets[i] == Ticket::Rejected {
                    continue;
                }
                let s = streams[i].expect("sent");
                let response = w.response(s);
                prop_assert!(response.is_some(), "request {} was answered by now", i);
                if model.record(tickets[i], requests[i].failed) {
                    let Phase::Open { until } = observed(w, &cluster) else {
                        return Err(TestCaseError::fail(format!(
                            "request {i}: the model opens the breaker, the filter did not ({:?})",
                            observed(w, &cluster)
                        )));
                    };
                    let now = module_now(w);
                    prop_assert!(
                        until >= now + TIMEOUT_MS * 9 / 10
                            && until <= now + MAX_TIMEOUT_MS * 11 / 10,
                        "an open time within the policy's bounds: {} ms",
                        until.saturating_sub(now)
                    );
                    model.open(until);
                }
            }
            Event::Leave(i) => {
                let s = streams[i].expect("sent");
                if tickets[i] != Ticket::Rejected {
                    prop_assert_eq!(w.stream_state(s), StreamState::Disconnected);
                    model.release(tickets[i]);
                }
            }
        }
        prop_assert_eq!(
            observed(w, &cluster),
            model.phase.clone(),
            "after {:?} at {:?}",
            event,
            at - base
        );
    }
    w.run_until_idle();
    let opened = w
        .counter(&stat(&cluster, "breaker_opened_total"))
        .unwrap_or(0)
        - opened_before;
    prop_assert!(opened <= requests.len() as u64);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 1500,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_breaker_follows_its_model_whatever_order_requests_finish_in(
        shape in 0..SHAPES.len(),
        requests in prop::collection::vec(drawn(), 5..40),
    ) {
        WORLD.with(|cell| {
            let mut slot = cell.borrow_mut();
            let w = slot.get_or_insert_with(shared_world);
            run_case(w, shape, &requests)
        })?;
    }
}

#[test]
fn successes_that_finish_between_failures_reset_the_count_wherever_they_were_admitted() {
    // The defect the model test guards, in one story: many requests admitted while the count is
    // 0, failures finishing in between their successes. Four failures never come in a row in
    // completion order, so a threshold of 3 must never trip.
    let mut w = shared_world();
    let cluster = cluster(1);
    let mut streams = Vec::new();
    for i in 0..40u64 {
        let status = if i % 3 == 0 { 503 } else { 200 };
        // Start together; finish one by one, every third a failure.
        let micros = 50_000 + i * 1000;
        streams.push(
            w.request((i % 3) as usize)
                .cluster(&cluster)
                .header("x-answer", &format!("{status} {micros}"))
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
