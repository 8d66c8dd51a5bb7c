//! Callbacks for clients that are gone: a retry's response for a client that left at the same
//! instant (either order, as a worker's event loop would run them), and the retry timer of a root
//! whose waiting streams all left.

use breakwater_host_tests::{ms, Reply, StreamState, World};

use crate::common::{get, response, retries_sent, world, CLUSTER};
use crate::invariants::Invariants;
use crate::resilient;

/// The first attempt fails; the retry leaves at 100 ms and its answer (`retry`) arrives at 150 ms.
fn retry_answered_at_150_ms(retry: Reply) -> World {
    let mut w = world(1, &resilient(10));
    w.upstream(
        CLUSTER,
        Reply::sequence([Reply::status(503), retry.after(ms(50)), Reply::ok()]),
    );
    w
}

#[test]
fn a_client_leaving_just_before_its_retrys_response_at_the_same_instant_gets_nothing_more() {
    for retry in [Reply::ok(), Reply::status(503)] {
        let mut w = retry_answered_at_150_ms(retry);
        let s = get(&mut w, 0);
        // Scheduled before the retry is dispatched: the worker runs the disconnect first.
        w.disconnect_after(s, ms(150));
        w.run_until_idle();
        assert_eq!(w.stream_state(s), StreamState::Disconnected);
        let sent = retries_sent(&w, CLUSTER);
        assert_eq!(
            sent.len(),
            1,
            "nothing was dispatched after the client left"
        );
        assert!(
            sent[0].delivered,
            "the response reached the root, which dropped it"
        );
        Invariants {
            world: &mut w,
            policy: &resilient(10),
            streams: &[s],
        }
        .hold();
    }
}

#[test]
fn a_retrys_response_just_before_its_client_leaves_at_the_same_instant_is_delivered_or_retried() {
    for (retry, answered) in [(Reply::ok(), true), (Reply::status(503), false)] {
        let mut w = retry_answered_at_150_ms(retry);
        let s = get(&mut w, 0);
        w.advance(ms(120));
        // Scheduled after the retry was dispatched: the worker runs the response first.
        w.disconnect_after(s, ms(30));
        w.run_until_idle();
        if answered {
            assert_eq!(
                response(&w, s).status,
                200,
                "the retry's answer won the race"
            );
        } else {
            assert_eq!(
                w.stream_state(s),
                StreamState::Disconnected,
                "a second retry was scheduled, then the client left during its backoff"
            );
            assert_eq!(retries_sent(&w, CLUSTER).len(), 1, "and it was never sent");
        }
        Invariants {
            world: &mut w,
            policy: &resilient(10),
            streams: &[s],
        }
        .hold();
    }
}

#[test]
fn when_the_only_waiting_client_leaves_its_roots_timer_turns_off_at_once() {
    let mut w = world(2, &resilient(10));
    w.upstream(CLUSTER, Reply::status(503));
    let leaving = get(&mut w, 0);
    let staying = w.request(0).cluster(CLUSTER).at(ms(30)).enqueue();
    w.advance(ms(30));
    assert_eq!(
        w.tick_period(0),
        Some(ms(70)),
        "armed for the first retry, due at 100 ms"
    );
    w.disconnect(leaving);
    assert_eq!(
        w.tick_period(0),
        Some(ms(100)),
        "re-armed for the other client's retry, due at 130 ms"
    );
    w.disconnect(staying);
    assert_eq!(
        w.tick_period(0),
        Some(ms(970)),
        "no retry waits any more: the tick is left to the flush of the worker's counts, due a \
         second after the first request"
    );
    w.run_until_idle();
    assert!(retries_sent(&w, CLUSTER).is_empty());
    Invariants {
        world: &mut w,
        policy: &resilient(10),
        streams: &[leaving, staying],
    }
    .hold();
}
