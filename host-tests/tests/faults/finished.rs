//! Callbacks for clients that are gone: a retry's response for a client that left at the same
//! instant (either order, as a worker's event loop would run them), and the retry timer of a root
//! whose waiting streams all left.

use breakwater_host_tests::{ms, Reply, StreamState, World};

use crate::common::{get, retries_sent, world, CLUSTER};
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
            world: &w,
            policy: &resilient(10),
            streams: &[s],
        }
        .hold();
    }
}
