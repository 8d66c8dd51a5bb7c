//! Recovery: after `timeout`, a bounded number of probes across all workers; successes close,
//! a failure re-opens for longer, and a probe that never reports gives its slot back after
//! `probe_timeout`.

use std::time::Duration;

use breakwater_host_tests::{ms, Interleaving, Reply, StreamId, World};
use serde_json::{json, Value};

use crate::common::{
    answer_now, assert_no_errors, breaker_only, builder, count, fail_in_turn, get, is_fallback,
    log_text, open_instants, open_times, response, state_gauge, CLUSTER,
};

fn recovering_policy(half_open_attempts: u32) -> Value {
    breaker_only(json!({
        "failure_threshold": 3,
        "timeout": "10s",
        "max_timeout": "40s",
        "half_open_attempts": half_open_attempts,
        "probe_timeout": "5s"
    }))
}

/// A world whose breaker has just opened (3 failures); answers when it turns half-open.
fn opened(w: &mut World) -> Duration {
    w.upstream(CLUSTER, Reply::status(503));
    fail_in_turn(w, 3);
    let n = open_times(w, CLUSTER).len();
    assert!(n >= 1, "the breaker opened:\n{}", log_text(w));
    open_instants(w, CLUSTER)[n - 1] + open_times(w, CLUSTER)[n - 1]
}

fn world(workers: usize, half_open_attempts: u32, interleaving: Interleaving) -> World {
    builder(workers, &recovering_policy(half_open_attempts))
        .interleaving(interleaving)
        .build()
        .expect("starts")
}

#[test]
fn after_the_timeout_exactly_half_open_attempts_probes_are_admitted_across_four_workers() {
    for seed in 0..6 {
        let mut w = world(4, 2, Interleaving::seeded(seed));
        let half_open_at = opened(&mut w);
        w.advance_to(half_open_at - ms(1));
        assert!(
            is_fallback(&answer_now(&mut w, 0)),
            "seed {seed}: still open 1 ms before the open time is up"
        );

        w.advance_to(half_open_at);
        w.upstream(CLUSTER, Reply::ok().after(ms(200)));
        let before = w.upstream_attempts(CLUSTER).len();
        let streams: Vec<StreamId> = (0..8)
            .map(|i| w.request(i % 4).cluster(CLUSTER).enqueue())
            .collect();
        w.settle();
        assert_eq!(
            w.upstream_attempts(CLUSTER).len() - before,
            2,
            "seed {seed}: 8 simultaneous requests on 4 workers, exactly 2 probes go through"
        );
        let rejected: Vec<_> = streams.iter().filter_map(|s| w.response(*s)).collect();
        assert_eq!(
            rejected.len(),
            6,
            "seed {seed}: the others are answered at once"
        );
        for r in &rejected {
            assert_eq!(r.header("x-breakwater-breaker"), Some("half-open"));
            assert_eq!(
                r.header("retry-after"),
                Some("5"),
                "until the earliest probe lease expires (probe_timeout)"
            );
        }
        assert_eq!(count(&w, "breaker_half_opened_total"), 1);
        assert_eq!(
            state_gauge(&w, CLUSTER),
            Some(2),
            "the gauge says half-open"
        );

        w.advance(ms(200));
        assert_eq!(
            count(&w, "breaker_closed_total"),
            1,
            "seed {seed}: 2 successes close"
        );
        assert_eq!(state_gauge(&w, CLUSTER), Some(0));
        let s = get(&mut w, 3);
        w.advance(ms(200));
        assert_eq!(response(&w, s).status, 200, "closed: requests flow again");
        assert_no_errors(&w);
    }
}

#[test]
fn one_probe_success_of_two_keeps_the_breaker_half_open_until_the_second() {
    let mut w = world(2, 2, Interleaving::fifo());
    let half_open_at = opened(&mut w);
    w.advance_to(half_open_at);
    w.upstream(
        CLUSTER,
        Reply::sequence([Reply::ok().after(ms(100)), Reply::ok().after(ms(300))]),
    );
    let probes = [get(&mut w, 0), get(&mut w, 1)];
    w.advance(ms(100));
    assert_eq!(response(&w, probes[0]).status, 200);
    let r = answer_now(&mut w, 0);
    assert_eq!(
        r.header("x-breakwater-breaker"),
        Some("half-open"),
        "a success frees no slot: in flight + successes never exceed half_open_attempts"
    );
    assert_eq!(count(&w, "breaker_closed_total"), 0);
    w.advance(ms(200));
    assert_eq!(response(&w, probes[1]).status, 200);
    assert_eq!(count(&w, "breaker_closed_total"), 1);
}

#[test]
fn a_probe_failure_reopens_with_a_doubled_timeout_up_to_max_timeout_and_a_close_resets_it() {
    let mut w = world(2, 1, Interleaving::fifo());
    let mut half_open_at = opened(&mut w);
    // Each failed probe doubles the 10 s open time: 20 s, 40 s, then the 40 s cap.
    for (round, nominal) in [20_000u64, 40_000, 40_000].into_iter().enumerate() {
        w.advance_to(half_open_at);
        let probe = get(&mut w, round % 2);
        w.settle();
        assert_eq!(
            response(&w, probe).status,
            503,
            "the probe reached the failing upstream"
        );
        let times = open_times(&w, CLUSTER);
        assert_eq!(
            times.len(),
            round + 2,
            "round {round}: the failed probe re-opened it"
        );
        let open_for = times[round + 1];
        let jitter = ms(nominal / 10);
        assert!(
            (ms(nominal) - jitter..=ms(nominal) + jitter).contains(&open_for),
            "round {round}: re-opened for {nominal} ms ±10%, got {open_for:?}"
        );
        assert!(
            w.logs_containing("OPEN after a half-open probe failed")
                .len()
                == round + 1,
            "the warning names the failed probe"
        );
        half_open_at = open_instants(&w, CLUSTER)[round + 1] + open_for;
    }

    w.advance_to(half_open_at);
    w.upstream(CLUSTER, Reply::ok());
    let probe = get(&mut w, 0);
    w.settle();
    assert_eq!(response(&w, probe).status, 200);
    assert_eq!(count(&w, "breaker_closed_total"), 1);

    let after_close = opened(&mut w);
    let open_for = *open_times(&w, CLUSTER).last().expect("opened again");
    assert!(
        (ms(9_000)..=ms(11_000)).contains(&open_for),
        "a close resets the doubling: {open_for:?} (half-open at {after_close:?})"
    );
}

#[test]
fn a_lost_probe_gives_its_slot_back_after_probe_timeout() {
    let mut w = world(2, 1, Interleaving::fifo());
    let half_open_at = opened(&mut w);
    w.advance_to(half_open_at);
    // The probe's upstream never answers and its route has no timeout: it never reports.
    w.upstream(CLUSTER, Reply::ok().after(Duration::from_secs(3600)));
    let lost = w.request(0).cluster(CLUSTER).no_timeout().send();
    assert_eq!(
        w.upstream_attempts(CLUSTER).len(),
        4,
        "the probe went through"
    );

    w.advance(ms(1_000));
    let r = answer_now(&mut w, 1);
    assert_eq!(r.header("x-breakwater-breaker"), Some("half-open"));
    assert_eq!(
        r.header("retry-after"),
        Some("4"),
        "4 s until the lease expires"
    );

    w.advance_to(half_open_at + ms(4_999));
    assert!(
        is_fallback(&answer_now(&mut w, 1)),
        "the slot is held until the lease expires"
    );

    w.upstream(CLUSTER, Reply::ok());
    w.advance_to(half_open_at + ms(5_000));
    let probe = get(&mut w, 1);
    w.settle();
    assert_eq!(
        response(&w, probe).status,
        200,
        "at probe_timeout the slot is reclaimed and a new probe goes through"
    );
    assert_eq!(count(&w, "probes_reclaimed_total"), 1);
    assert_eq!(
        w.logs_containing("reclaimed 1 probe slot(s) after probe_timeout")
            .len(),
        1
    );
    assert_eq!(
        count(&w, "breaker_closed_total"),
        1,
        "the new probe's success closes"
    );
    assert!(
        w.response(lost).is_none(),
        "the lost probe is still waiting"
    );
    w.disconnect(lost);
    assert_eq!(
        count(&w, "breaker_opened_total"),
        1,
        "its end changes nothing now"
    );
    assert_no_errors(&w);
}
