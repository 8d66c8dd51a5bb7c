//! Garbage in shared data while retries are under way: planted under the budget key while a retry
//! waits or flies, or written by another worker between the filter's read and its
//! compare-and-swap write. The filter replaces it with a fresh state, reports it once per
//! encounter, and keeps serving: no trap, every client answered, the state decodes afterwards.

use breakwater_host_tests::{ms, Contention, Reply, StreamId, World};

use crate::common::{breaker_key, budget_key, count, get, response, retries_sent, world, CLUSTER};
use crate::invariants::{budget, budgeted_retries, Invariants};
use crate::resilient;

const GARBAGE: &[u8] = b"\x00not a budget\xff";

/// Two requests on worker 0 whose first attempts fail at once and whose retries leave at 100 ms
/// (answered 50 ms later: `retry`).
fn two_waiting(retry: Reply) -> (World, Vec<StreamId>) {
    let mut w = world(1, &resilient(10));
    w.upstream(
        CLUSTER,
        Reply::sequence([Reply::status(503), Reply::status(503), retry.after(ms(50))]),
    );
    let streams = vec![get(&mut w, 0), get(&mut w, 0)];
    (w, streams)
}

#[test]
fn garbage_planted_while_retries_wait_is_replaced_when_a_leaving_client_refunds() {
    let (mut w, streams) = two_waiting(Reply::ok());
    w.advance(ms(50));
    w.set_shared_data(budget_key(CLUSTER), GARBAGE);
    w.disconnect(streams[0]);
    assert_eq!(
        count(&w, "state_errors_total"),
        1,
        "the refund met the garbage and replaced it"
    );
    w.run_until_idle();
    assert_eq!(
        response(&w, streams[1]).status,
        200,
        "the other retry still ran"
    );
    assert_eq!(
        budgeted_retries(&w, &resilient(10)),
        0,
        "the fresh state knows neither withdrawal: the refund found nothing to give back"
    );
    assert!(budget(&w).is_some(), "the budget decodes again");
    Invariants {
        world: &mut w,
        policy: &resilient(10),
        streams: &streams,
    }
    .every_client_answered_once();
}

#[test]
fn garbage_planted_while_a_retry_flies_is_replaced_by_the_next_withdrawal() {
    let (mut w, streams) = two_waiting(Reply::status(503));
    w.advance(ms(120));
    assert_eq!(retries_sent(&w, CLUSTER).len(), 2, "both retries in flight");
    w.set_shared_data(budget_key(CLUSTER), GARBAGE);
    w.upstream(CLUSTER, Reply::ok());
    w.run_until_idle();
    for s in &streams {
        assert_eq!(response(&w, *s).status, 200, "each got its third attempt");
    }
    assert_eq!(
        count(&w, "state_errors_total"),
        1,
        "replaced once, then read back cleanly"
    );
    assert_eq!(
        budgeted_retries(&w, &resilient(10)),
        2,
        "the fresh budget holds the two retries granted after it"
    );
    Invariants {
        world: &mut w,
        policy: &resilient(10),
        streams: &streams,
    }
    .every_client_answered_once();
}

#[test]
fn garbage_another_worker_writes_between_the_filters_read_and_write_is_met_on_the_retry() {
    let policy = resilient(10);
    let mut w = world(2, &policy);
    w.upstream(CLUSTER, Reply::sequence([Reply::status(503), Reply::ok()]));
    let warm = get(&mut w, 0);
    w.run_until_idle();

    w.contend(
        Contention::write(GARBAGE)
            .on_key(budget_key(CLUSTER))
            .times(1),
    );
    w.upstream(CLUSTER, Reply::sequence([Reply::status(503), Reply::ok()]));
    let s = get(&mut w, 1);
    w.run_until_idle();
    assert_eq!(w.contended_writes().len(), 1);
    assert_eq!(
        response(&w, s).status,
        200,
        "the withdrawal landed on a fresh state"
    );
    assert_eq!(count(&w, "state_errors_total"), 1);
    assert_eq!(
        count(&w, "state_contention_total"),
        0,
        "one lost write is no storm"
    );
    assert_eq!(
        budgeted_retries(&w, &policy),
        1,
        "the garbage wiped the first retry; the fresh state holds the second"
    );
    Invariants {
        world: &mut w,
        policy: &policy,
        streams: &[warm, s],
    }
    .every_client_answered_once();
}

#[test]
fn garbage_under_the_breaker_key_while_a_retry_waits_reads_as_a_closed_breaker() {
    let policy = resilient(10);
    let mut w = world(1, &policy);
    w.upstream(CLUSTER, Reply::sequence([Reply::status(503), Reply::ok()]));
    let s = get(&mut w, 0);
    w.advance(ms(50));
    w.set_shared_data(breaker_key(CLUSTER), GARBAGE);
    w.run_until_idle();
    assert_eq!(
        response(&w, s).status,
        200,
        "the retry ran against a fresh, closed breaker"
    );
    assert!(count(&w, "state_errors_total") >= 1);
    Invariants {
        world: &mut w,
        policy: &policy,
        streams: &[s],
    }
    .hold();
}
