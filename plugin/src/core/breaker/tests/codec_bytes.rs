//! The shared-data encoding, pinned byte by byte.

use super::*;
use crate::core::breaker::closed::Counts;
use crate::core::breaker::probes::{Lease, Probes};
use crate::core::breaker::state::State;
use crate::core::breaker::window::{Bucket, Window};
use crate::core::breaker::OpenReason;

#[rustfmt::skip]
pub(super) const FRESH: [u8; 38] = [
    0xb1,                                           // format 1
    0x00,                                           // phase: closed
    0x00,                                           // escalation
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // epoch 0
    0x00, 0x00, 0x00, 0x00,                         // consecutive failures 0
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // open until
    0x00, 0x00, 0x00, 0x00,                         // probe successes
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // next probe id
    0x00,                                           // no buckets
    0x00, 0x00,                                     // no leases
];

#[rustfmt::skip]
pub(super) const CLOSED: [u8; 78] = [
    0xb1, 0x00, 0x00,
    0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // epoch 3
    0x02, 0x00, 0x00, 0x00,                         // 2 consecutive failures
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x02,                                           // 2 buckets
    0x00, 0x68, 0xe5, 0xcf, 0x8b, 0x01, 0x00, 0x00, //   start T0
    0x05, 0x00, 0x00, 0x00,                         //   5 calls
    0x02, 0x00, 0x00, 0x00,                         //   2 failed
    0x01, 0x00, 0x00, 0x00,                         //   1 slow
    0xe8, 0x6b, 0xe5, 0xcf, 0x8b, 0x01, 0x00, 0x00, //   start T0 + 1s
    0x01, 0x00, 0x00, 0x00,                         //   1 call
    0x01, 0x00, 0x00, 0x00,                         //   1 failed
    0x00, 0x00, 0x00, 0x00,                         //   0 slow
    0x00, 0x00,                                     // no leases
];

#[rustfmt::skip]
pub(super) const OPEN: [u8; 38] = [
    0xb1, 0x01,                                     // phase: open
    0x02,                                           // escalation 2
    0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // epoch 1
    0x00, 0x00, 0x00, 0x00,
    0x60, 0x52, 0xe6, 0xcf, 0x8b, 0x01, 0x00, 0x00, // open until T0 + 60s
    0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00,
    0x00, 0x00,
];

#[rustfmt::skip]
pub(super) const HALF_OPEN: [u8; 70] = [
    0xb1, 0x02,                                     // phase: half-open
    0x01,                                           // escalation 1
    0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // epoch 2
    0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00,                         // 1 probe success
    0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // next probe id 3
    0x00,                                           // no buckets
    0x02, 0x00,                                     // 2 leases
    0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //   id 1
    0x30, 0xdd, 0xe5, 0xcf, 0x8b, 0x01, 0x00, 0x00, //   expires T0 + 30s
    0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //   id 2
    0x18, 0xe1, 0xe5, 0xcf, 0x8b, 0x01, 0x00, 0x00, //   expires T0 + 31s
];

fn closed_state() -> Breaker {
    let mut window = Window::default();
    assert!(window.push(Bucket {
        start: T0,
        total: 5,
        failed: 2,
        slow: 1
    }));
    assert!(window.push(Bucket {
        start: T0 + 1000,
        total: 1,
        failed: 1,
        slow: 0
    }));
    Breaker {
        epoch: 3,
        state: State::Closed(Counts {
            failures: 2,
            window,
        }),
    }
}

fn open_state() -> Breaker {
    Breaker {
        epoch: 1,
        state: State::Open {
            until: T0 + 60_000,
            escalation: 2,
        },
    }
}

fn half_open_state() -> Breaker {
    let leases = vec![
        Lease {
            id: 1,
            expires: T0 + 30_000,
        },
        Lease {
            id: 2,
            expires: T0 + 31_000,
        },
    ];
    let probes = Probes {
        escalation: 1,
        successes: 1,
        next_id: 3,
        leases,
    };
    Breaker {
        epoch: 2,
        state: State::HalfOpen(probes),
    }
}

fn fixtures() -> [(&'static str, Breaker, &'static [u8]); 4] {
    [
        ("fresh", Breaker::new(), &FRESH),
        ("closed", closed_state(), &CLOSED),
        ("open", open_state(), &OPEN),
        ("half-open", half_open_state(), &HALF_OPEN),
    ]
}

#[test]
fn each_phase_encodes_to_its_pinned_bytes() {
    for (name, state, bytes) in fixtures() {
        let mut out = Vec::new();
        state.encode(&mut out);
        assert_eq!(
            out, bytes,
            "the {name} layout changed: bump FORMAT and update the docs"
        );
    }
}

#[test]
fn each_pinned_byte_string_decodes_to_its_phase() {
    for (name, state, bytes) in fixtures() {
        assert_eq!(Breaker::decode(bytes), Ok(state), "{name} must decode");
    }
}

#[test]
fn encode_appends_to_what_is_in_the_buffer() {
    let mut out = vec![0xAA];
    Breaker::new().encode(&mut out);
    assert_eq!(
        out[0], 0xAA,
        "the glue's key prefix or earlier bytes are kept"
    );
    assert_eq!(&out[1..], FRESH);
}

#[test]
fn a_state_survives_a_policy_change_between_write_and_read() {
    // Written under 3 probe slots and a 10s window, read under 2 slots and a 60s window.
    let p = policy_with(|p| {
        p.half_open_attempts = 2;
        p.failure_rate = Some(FailureRate { threshold: 0.5 });
        p.window = RateWindow {
            window: Duration::from_secs(60),
            minimum_requests: 7,
        };
    });
    let mut half = through_shared_data(&half_open_state());
    let r = rejected(half.admit(&p, T0 + 1, &mut rng()));
    assert_eq!(
        r.phase,
        Phase::HalfOpen,
        "1 success + 2 leases held fill the 2 slots"
    );

    let mut closed = through_shared_data(&closed_state());
    let step = closed.record(&p, Permit::counted(3), FAIL, T0 + 20_000, &mut rng());
    let opening = step
        .events
        .opened()
        .expect("the 20s-old buckets count in the new 60s window");
    assert_eq!(
        opening.reason,
        OpenReason::FailureRate {
            rate: 4.0 / 7.0,
            requests: 7
        }
    );
}
