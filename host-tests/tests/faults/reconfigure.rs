//! Reconfigurations while retries wait and fly on several workers. A valid policy gets a new
//! root context in every VM; each old root keeps serving the retries of its own streams under
//! the policy they started with, and is torn down (`on_done`, `on_delete`, its calls cancelled)
//! when its last stream ends. An invalid policy changes nothing. Either way every client is
//! answered and the counters and shared state stay consistent.

use breakwater_host_tests::{ms, Callback, Reply, StreamId, UpstreamRequest, World};
use serde_json::{json, Value};

use crate::common::{assert_no_errors, builder, policy, response, retries_sent, CLUSTER};
use crate::invariants::Invariants;

const WORKERS: usize = 4;

/// Retries 100 ms apart, `max_attempts` in all, a budget over 60 s; `marker` tells policies
/// apart in the fallback body.
fn attempts(max_attempts: u32, marker: &str) -> Value {
    policy(
        json!({ "failure_threshold": 100, "fallback": { "status": 503, "body": marker } }),
        json!({
            "max_attempts": max_attempts, "base_delay": "100ms", "max_delay": "100ms",
            "jitter": false,
            "budget": { "ratio": 0.2, "min_per_second": 2, "window": "60s" }
        }),
    )
}

/// First attempts fail at once; retries fail 50 ms after they leave.
fn failing_upstream(w: &mut World) {
    w.upstream(CLUSTER, |request: &UpstreamRequest| {
        if request.header("x-breakwater-attempt").is_some() {
            Reply::status(503).after(ms(50))
        } else {
            Reply::status(503)
        }
    });
}

fn roots_deleted(w: &World, streams: usize) -> u64 {
    let deletes = w
        .fuel()
        .by_callback
        .get(&Callback::Delete)
        .map_or(0, |c| c.calls);
    deletes - streams as u64
}

/// At 120 ms: workers 2 and 3 have a retry in flight (left at 100 ms, answered at 150 ms);
/// workers 0 and 1 have one waiting (due at 200 ms).
fn retries_waiting_and_flying(w: &mut World) -> Vec<StreamId> {
    failing_upstream(w);
    let mut streams: Vec<StreamId> = (2..WORKERS)
        .map(|worker| w.request(worker).cluster(CLUSTER).enqueue())
        .collect();
    streams.extend((0..2).map(|worker| w.request(worker).cluster(CLUSTER).at(ms(100)).enqueue()));
    w.advance(ms(120));
    assert_eq!(retries_sent(w, CLUSTER).len(), 2, "two retries in flight");
    assert!(
        w.tick_period(0).is_some() && w.tick_period(1).is_some(),
        "two retries waiting"
    );
    streams
}

fn attempts_header(w: &World, s: StreamId) -> String {
    response(w, s)
        .header("x-breakwater-attempts")
        .unwrap_or("1")
        .to_string()
}

#[test]
fn a_valid_policy_while_retries_wait_and_fly_on_four_workers_leaves_each_on_its_own_policy() {
    let old = attempts(3, "old");
    let new = attempts(2, "new");
    let mut w = builder(WORKERS, &old).build().expect("starts");
    let mut streams = retries_waiting_and_flying(&mut w);
    assert!(w.reconfigure(new.to_string()), "a valid policy is accepted");
    let later: Vec<StreamId> = (0..WORKERS)
        .map(|worker| w.request(worker).cluster(CLUSTER).send())
        .collect();
    w.run_until_idle();

    for s in &streams {
        assert_eq!(
            attempts_header(&w, *s),
            "3",
            "{s} started under the old policy and its old root served all 3 attempts"
        );
    }
    for s in &later {
        assert_eq!(
            attempts_header(&w, *s),
            "2",
            "{s} runs under the new policy"
        );
    }
    streams.extend(later);
    assert_eq!(
        roots_deleted(&w, streams.len()),
        WORKERS as u64 + 1,
        "the old root of each worker (and of the main thread's VM) was torn down"
    );
    Invariants {
        world: &mut w,
        policy: &new,
        streams: &streams,
    }
    .hold();
    assert_no_errors(&w);
}

#[test]
fn two_policies_in_a_row_while_retries_wait_under_both_older_ones() {
    let mut w = builder(2, &attempts(3, "a")).build().expect("starts");
    failing_upstream(&mut w);
    let mut streams = vec![w.request(0).cluster(CLUSTER).send()];
    w.advance(ms(30));
    assert!(w.reconfigure(attempts(2, "b").to_string()));
    streams.push(w.request(0).cluster(CLUSTER).send());
    w.advance(ms(30));
    assert!(w.reconfigure(attempts(4, "c").to_string()));
    streams.push(w.request(0).cluster(CLUSTER).send());
    w.run_until_idle();
    let got: Vec<String> = streams.iter().map(|s| attempts_header(&w, *s)).collect();
    assert_eq!(
        got,
        ["3", "2", "4"],
        "each stream kept the policy it arrived under"
    );
    assert_eq!(
        roots_deleted(&w, streams.len()),
        2 * 3,
        "two old roots on each of 3 VMs"
    );
    Invariants {
        world: &mut w,
        policy: &attempts(4, "c"),
        streams: &streams,
    }
    .hold();
}

#[test]
fn an_invalid_policy_while_retries_wait_and_fly_changes_nothing_with_or_without_the_canary() {
    for canary in [true, false] {
        let old = attempts(3, "old");
        let mut w = builder(WORKERS, &old)
            .canary(canary)
            .build()
            .expect("starts");
        let mut streams = retries_waiting_and_flying(&mut w);
        let invalid = json!({ "default": { "retry": { "max_attempts": 0 } } });
        assert!(
            !w.reconfigure(invalid.to_string()),
            "canary {canary}: refused"
        );
        streams.extend((0..WORKERS).map(|worker| w.request(worker).cluster(CLUSTER).send()));
        w.run_until_idle();
        for s in &streams {
            assert_eq!(
                attempts_header(&w, *s),
                "3",
                "canary {canary}: {s} runs under the old policy"
            );
        }
        let rejected_roots = if canary { 0 } else { WORKERS as u64 + 1 };
        assert_eq!(
            roots_deleted(&w, streams.len()),
            rejected_roots,
            "canary {canary}: only roots that refused the policy went away"
        );
        Invariants {
            world: &mut w,
            policy: &old,
            streams: &streams,
        }
        .hold();
    }
}

#[test]
fn an_old_root_torn_down_with_its_last_stream_cancels_its_call_and_the_new_root_serves_on() {
    let old = attempts(3, "old");
    let new = attempts(3, "new");
    let mut w = builder(2, &old).build().expect("starts");
    failing_upstream(&mut w);
    let leaving = w.request(0).cluster(CLUSTER).send();
    w.advance(ms(120));
    assert_eq!(retries_sent(&w, CLUSTER).len(), 1, "its retry is in flight");
    assert!(w.reconfigure(new.to_string()));
    let deleted_before = roots_deleted(&w, 0);
    w.disconnect(leaving);
    assert_eq!(
        roots_deleted(&w, 1) - deleted_before,
        1,
        "the old root went away with its last stream"
    );
    w.upstream(
        CLUSTER,
        Reply::sequence([Reply::status(503), Reply::ok().after(ms(20))]),
    );
    let staying = w.request(0).cluster(CLUSTER).send();
    w.run_until_idle();
    let sent = retries_sent(&w, CLUSTER);
    assert!(
        !sent[0].delivered,
        "Envoy cancelled the old root's call: its answer was never delivered"
    );
    assert_eq!(
        response(&w, staying).status,
        200,
        "the new root's retry was answered"
    );
    assert_eq!(attempts_header(&w, staying), "2");
    Invariants {
        world: &mut w,
        policy: &new,
        streams: &[leaving, staying],
    }
    .hold();
}
