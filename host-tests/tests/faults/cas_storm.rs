//! Compare-and-swap storms: another worker wins the filter's shared-data writes, again and again.
//! The filter retries a lost write on what the other worker wrote, gives up after
//! `MAX_ATTEMPTS` = 16 writes (never spins), counts `state_contention_total`, and never blocks a
//! request: what it cannot write it does without (fail open).

use breakwater_host_tests::{ms, Contention, Interleaving, Reply, StreamId, World};
use serde_json::{json, Value};

use breakwater::core::breaker::Breaker;
use breakwater::core::budget::Budget;

use crate::common::{
    breaker_key, breaker_only, budget_key, builder, count, fail_in_turn, get, is_fallback,
    response, retries_sent, retry_only, skipped, world, CLUSTER,
};
use crate::invariants::{budget, host_now, Invariants};
use crate::resilient;

/// Writes of one update before the filter gives up (`plugin/src/filter/shared.rs`).
const MAX_ATTEMPTS: usize = 16;

/// Every contended write belongs to an update that either landed within the bound or was given
/// up and counted: contended writes ≤ 16 × (updates), and exactly 16 × give-ups when nothing
/// ever lands.
#[track_caller]
fn gave_up_after_the_bound(w: &World, give_ups: u64) {
    assert_eq!(
        count(w, "state_contention_total"),
        give_ups,
        "each update given up is counted once"
    );
    assert_eq!(
        w.contended_writes().len(),
        MAX_ATTEMPTS * give_ups as usize,
        "each given-up update made exactly {MAX_ATTEMPTS} writes, no more"
    );
    let warned = w.logs_containing("gave up updating shared data");
    assert!(
        !warned.is_empty() && warned.len() as u64 <= give_ups,
        "logged, at most once per worker and cluster every 10 s: {} lines for {give_ups}",
        warned.len()
    );
}

/// Writes fresh (empty) states under the breaker and budget keys, as the filter would: a storm
/// then contends existing keys (on an absent key the other worker would insert the filter's own
/// change first, which counts it twice).
fn plant_fresh_states(w: &mut World) {
    let mut bytes = Vec::new();
    Breaker::new().encode(&mut bytes);
    w.set_shared_data(breaker_key(CLUSTER), &bytes);
    bytes.clear();
    Budget::default().encode(&mut bytes);
    w.set_shared_data(budget_key(CLUSTER), &bytes);
}

#[test]
fn a_storm_on_the_breaker_key_is_given_up_after_sixteen_writes_and_every_request_still_passes() {
    let policy = breaker_only(json!({ "failure_threshold": 3 }));
    let mut w = world(2, &policy);
    plant_fresh_states(&mut w);
    let mut streams = Vec::new();
    w.contend(Contention::rewrite().on_key(breaker_key(CLUSTER)));
    w.upstream(CLUSTER, Reply::status(503).body("down"));
    streams.extend(fail_in_turn(&mut w, 6));
    w.run_until_idle();
    for s in &streams {
        let r = response(&w, *s);
        assert_eq!(
            (r.status, r.body_text().as_str()),
            (503, "down"),
            "the upstream's own answer: the breaker never blocked"
        );
    }
    gave_up_after_the_bound(&w, 6);
    assert_eq!(
        count(&w, "breaker_opened_total"),
        0,
        "outcomes the filter could not write are lost: it fails open, never closed"
    );

    w.clear_faults();
    streams.extend(fail_in_turn(&mut w, 3));
    assert_eq!(
        count(&w, "breaker_opened_total"),
        1,
        "once the storm passes the breaker counts again from the state the storm left"
    );
    let s = get(&mut w, 1);
    streams.push(s);
    assert!(is_fallback(&response(&w, s)));
    Invariants {
        world: &mut w,
        policy: &policy,
        streams: &streams,
    }
    .hold();
}

#[test]
fn the_bound_is_exactly_sixteen_writes_an_update_that_lands_on_the_sixteenth_is_not_lost() {
    let policy = breaker_only(json!({ "failure_threshold": 3 }));
    let mut w = world(1, &policy);
    plant_fresh_states(&mut w);
    w.upstream(CLUSTER, Reply::status(503));
    w.contend(
        Contention::rewrite()
            .on_key(breaker_key(CLUSTER))
            .times(MAX_ATTEMPTS as u32 - 1),
    );
    fail_in_turn(&mut w, 1);
    assert_eq!(
        count(&w, "state_contention_total"),
        0,
        "15 lost writes, the 16th landed"
    );
    w.contend(
        Contention::rewrite()
            .on_key(breaker_key(CLUSTER))
            .times(MAX_ATTEMPTS as u32),
    );
    fail_in_turn(&mut w, 1);
    assert_eq!(
        count(&w, "state_contention_total"),
        1,
        "16 lost writes: given up"
    );
    fail_in_turn(&mut w, 1);
    assert_eq!(
        count(&w, "breaker_opened_total"),
        0,
        "two failures recorded, one lost"
    );
    fail_in_turn(&mut w, 1);
    assert_eq!(
        count(&w, "breaker_opened_total"),
        1,
        "the third recorded one opens"
    );
}

#[test]
fn a_storm_on_the_budget_key_skips_the_retries_it_cannot_grant_and_answers_every_client() {
    let policy = resilient(100);
    let mut w = world(2, &policy);
    w.upstream(CLUSTER, Reply::sequence([Reply::status(503), Reply::ok()]));
    let mut streams = vec![get(&mut w, 0)];
    w.run_until_idle();
    assert_eq!(
        retries_sent(&w, CLUSTER).len(),
        1,
        "the budget key exists now"
    );

    w.contend(Contention::rewrite().on_key(budget_key(CLUSTER)));
    w.upstream(CLUSTER, Reply::status(503).body("down"));
    for i in 0..5 {
        streams.push(get(&mut w, i % 2));
    }
    w.run_until_idle();
    for s in &streams[1..] {
        assert_eq!(
            response(&w, *s).body_text(),
            "down",
            "no retry could be granted: the client got its failure at once"
        );
    }
    assert_eq!(
        retries_sent(&w, CLUSTER).len(),
        1,
        "no retry without a grant"
    );
    assert_eq!(skipped(&w, "budget"), 5);
    gave_up_after_the_bound(&w, 5);
    Invariants {
        world: &mut w,
        policy: &policy,
        streams: &streams,
    }
    .hold();
}

#[test]
fn request_counts_a_storm_kept_from_the_budget_are_added_at_the_next_write() {
    // Half a retry per request, no floor: the budget grants retries only for counted requests.
    let policy = retry_only(json!({
        "max_attempts": 2, "base_delay": "100ms", "jitter": false,
        "budget": { "ratio": 0.5, "min_per_second": 0, "window": "60s" }
    }));
    let mut w = world(1, &policy);
    plant_fresh_states(&mut w);
    w.upstream(CLUSTER, Reply::ok());
    // The 32nd request flushes the worker's count; the storm makes that write give up.
    w.contend(
        Contention::rewrite()
            .on_key(budget_key(CLUSTER))
            .times(MAX_ATTEMPTS as u32),
    );
    let mut streams: Vec<StreamId> = (0..32).map(|_| get(&mut w, 0)).collect();
    w.run_until_idle();
    assert_eq!(
        count(&w, "state_contention_total"),
        1,
        "the flush was given up"
    );

    w.upstream(CLUSTER, Reply::sequence([Reply::status(503), Reply::ok()]));
    streams.push(get(&mut w, 0));
    w.run_until_idle();
    let mut b = budget(&w).expect("the withdrawal wrote the budget");
    let budget_policy = crate::invariants::effective(&policy)
        .retry
        .and_then(|r| r.budget)
        .expect("a budget");
    assert_eq!(
        b.usage(&budget_policy, host_now(&w)).requests,
        33,
        "the 32 requests whose flush was given up reached the budget with the next write"
    );
    assert_eq!(
        retries_sent(&w, CLUSTER).len(),
        1,
        "0.5 × 33 allows the retry"
    );
    Invariants {
        world: &mut w,
        policy: &policy,
        streams: &streams,
    }
    .hold();
}

#[test]
fn a_refund_a_storm_kept_from_the_budget_is_given_back_at_the_next_write() {
    let policy = resilient(100);
    let mut w = world(1, &policy);
    w.upstream(CLUSTER, Reply::sequence([Reply::status(503), Reply::ok()]));
    let mut streams = vec![get(&mut w, 0)];
    w.run_until_idle();

    w.upstream(CLUSTER, Reply::status(503));
    let leaving = get(&mut w, 0);
    streams.push(leaving);
    w.advance(ms(50));
    w.contend(
        Contention::rewrite()
            .on_key(budget_key(CLUSTER))
            .times(MAX_ATTEMPTS as u32),
    );
    w.disconnect(leaving);
    assert_eq!(
        count(&w, "state_contention_total"),
        1,
        "the refund of the waiting retry was given up"
    );

    w.upstream(CLUSTER, Reply::ok());
    streams.push(get(&mut w, 0));
    w.run_until_idle();
    Invariants {
        world: &mut w,
        policy: &policy,
        streams: &streams,
    }
    .hold();
}

#[test]
fn a_storm_on_a_recovering_breaker_turns_requests_away_and_leaks_no_probe() {
    let policy = breaker_only(json!({ "failure_threshold": 3, "timeout": "1s",
                                       "half_open_attempts": 1, "probe_timeout": "30s" }));
    let mut w = world(3, &policy);
    w.upstream(CLUSTER, Reply::status(503));
    let mut streams = fail_in_turn(&mut w, 3);
    assert_eq!(count(&w, "breaker_opened_total"), 1);
    w.advance(ms(1_200));

    w.contend(Contention::rewrite().on_key(breaker_key(CLUSTER)));
    w.upstream(CLUSTER, Reply::ok().after(ms(20)));
    let upstream_before = w.upstream_attempts(CLUSTER).len();
    let during: Vec<StreamId> = (0..3).map(|worker| get(&mut w, worker)).collect();
    w.run_until_idle();
    for s in &during {
        let r = response(&w, *s);
        assert!(
            is_fallback(&r),
            "the breaker is not closed and no probe slot could be taken: the request is turned \
             away (it must not become an extra, unbounded probe), got {}",
            r.status
        );
    }
    assert_eq!(
        w.upstream_attempts(CLUSTER).len(),
        upstream_before,
        "the recovering upstream saw none of them"
    );
    assert_eq!(count(&w, "rejected_total"), 3, "each fallback is counted");
    assert_eq!(
        count(&w, "breaker_half_opened_total"),
        0,
        "no transition was written"
    );
    gave_up_after_the_bound(&w, 3);
    streams.extend(during);

    w.clear_faults();
    streams.push(get(&mut w, 0));
    w.run_until_idle();
    assert_eq!(count(&w, "breaker_half_opened_total"), 1);
    assert_eq!(count(&w, "breaker_closed_total"), 1, "the probe closed it");
    Invariants {
        world: &mut w,
        policy: &policy,
        streams: &streams,
    }
    .hold();
}

#[test]
fn a_probe_outcome_lost_to_a_storm_holds_its_slot_only_until_probe_timeout() {
    let policy = breaker_only(json!({ "failure_threshold": 3, "timeout": "1s",
                                       "half_open_attempts": 1, "probe_timeout": "5s" }));
    let mut w = world(2, &policy);
    w.upstream(CLUSTER, Reply::status(503));
    let mut streams = fail_in_turn(&mut w, 3);
    w.advance(ms(1_200));
    w.upstream(CLUSTER, Reply::ok().after(ms(20)));
    let probe = get(&mut w, 0);
    w.contend(
        Contention::rewrite()
            .on_key(breaker_key(CLUSTER))
            .times(MAX_ATTEMPTS as u32),
    );
    w.advance(ms(100));
    assert_eq!(
        response(&w, probe).status,
        200,
        "the probe itself was answered"
    );
    assert_eq!(
        count(&w, "state_contention_total"),
        1,
        "its success was not written"
    );
    let held = get(&mut w, 1);
    assert_eq!(
        response(&w, held).header("x-breakwater-breaker"),
        Some("half-open"),
        "the lost probe still holds the only slot"
    );
    w.advance(ms(5_000));
    let after = get(&mut w, 1);
    w.run_until_idle();
    assert_eq!(
        response(&w, after).status,
        200,
        "a new probe once the lease expired"
    );
    assert_eq!(count(&w, "probes_reclaimed_total"), 1);
    assert_eq!(count(&w, "breaker_closed_total"), 1);
    streams.extend([probe, held, after]);
    Invariants {
        world: &mut w,
        policy: &policy,
        streams: &streams,
    }
    .hold();
}

/// Four workers, failing and succeeding requests with retries, a storm on every key and random
/// preemption at shared state.
fn storm_everywhere(seed: u64) -> (World, Value, Vec<StreamId>) {
    let policy: Value = resilient(4);
    let mut w = builder(4, &policy)
        .interleaving(Interleaving::seeded(seed))
        .build()
        .expect("starts");
    w.upstream(
        CLUSTER,
        Reply::sequence([Reply::status(503), Reply::ok(), Reply::status(502)]),
    );
    let mut streams = Vec::new();
    for i in 0..4 {
        streams.push(get(&mut w, i));
    }
    w.run_until_idle();
    w.contend(Contention::rewrite());
    for round in 0..3u64 {
        for worker in 0..4 {
            streams.push(
                w.request(worker)
                    .cluster(CLUSTER)
                    .at(ms(10 * round))
                    .enqueue(),
            );
        }
    }
    w.run_until_idle();
    (w, policy, streams)
}

#[test]
fn a_storm_on_every_key_with_preemption_never_spins_and_answers_every_client() {
    for seed in 0..8 {
        let (mut w, policy, streams) = storm_everywhere(seed);
        let give_ups = count(&w, "state_contention_total");
        assert!(give_ups > 0, "seed {seed}: the storm struck");
        gave_up_after_the_bound(&w, give_ups);
        Invariants {
            world: &mut w,
            policy: &policy,
            streams: &streams,
        }
        .hold();
    }
}

#[test]
fn a_storm_logs_one_warning_per_worker_every_ten_seconds_and_then_says_how_many_it_held_back() {
    let policy = breaker_only(json!({ "failure_threshold": 3 }));
    let mut w = world(1, &policy);
    plant_fresh_states(&mut w);
    w.contend(Contention::rewrite().on_key(breaker_key(CLUSTER)));
    w.upstream(CLUSTER, Reply::status(503));
    let mut streams = fail_in_turn(&mut w, 5);
    w.run_until_idle();
    let warned = w.logs_containing("gave up updating shared data");
    assert_eq!(
        warned.len(),
        1,
        "five give-ups (the failures' writes; admitting through a closed breaker writes \
         nothing) within 10 s: one line"
    );
    assert_eq!(
        count(&w, "state_contention_total"),
        5,
        "the metric counts every one"
    );
    w.advance(ms(10_000));
    streams.extend(fail_in_turn(&mut w, 1));
    w.run_until_idle();
    let warned = w.logs_containing("gave up updating shared data");
    assert_eq!(warned.len(), 2, "10 s later, the next line");
    assert!(
        warned[1]
            .message
            .contains("(4 more since the last such line, not logged)"),
        "and it says what it held back: {}",
        warned[1].message
    );
    assert_eq!(streams.len(), 6);
}
