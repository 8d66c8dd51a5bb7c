//! Properties over random runs: what no sequence of requests, outcomes, time and policy changes
//! may break. Each run plays the glue: the state goes through its encoding between every step.

use proptest::prelude::*;

use super::*;
use crate::core::breaker::{Event, OpenReason};

/// One thing that can happen to a cluster's breaker.
#[derive(Clone, Debug)]
enum Op {
    Admit,
    /// Records the outcome of the outstanding permit `which` (modulo their number).
    Record {
        which: usize,
        failed: bool,
        slow: bool,
    },
    Release {
        which: usize,
    },
    Advance(Millis),
    /// A new policy: probe slots, consecutive threshold, rate triggers, mode.
    Policy {
        attempts: u32,
        threshold: u32,
        rates: bool,
        mode: BreakerMode,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let mode = prop_oneof![
        6 => Just(BreakerMode::Enforce),
        3 => Just(BreakerMode::Shadow),
        1 => Just(BreakerMode::ForcedOpen),
        1 => Just(BreakerMode::Disabled),
    ];
    prop_oneof![
        6 => Just(Op::Admit),
        6 => (any::<usize>(), prop::bool::weighted(0.6), any::<bool>())
            .prop_map(|(which, failed, slow)| Op::Record { which, failed, slow }),
        2 => any::<usize>().prop_map(|which| Op::Release { which }),
        3 => prop_oneof![0..2_000u64, 0..40_000u64].prop_map(Op::Advance),
        1 => (1..5u32, 0..4u32, any::<bool>(), mode)
            .prop_map(|(attempts, threshold, rates, mode)| Op::Policy { attempts, threshold, rates, mode }),
    ]
}

/// The timing of a run: fixed for the run so that open times can be checked.
fn timing() -> impl Strategy<Value = (u64, u64, u64)> {
    (1..20_000u64, 1..5u64, 1..30_000u64).prop_map(|(t, cap, probe)| (t, t * cap, probe))
}

fn run_policy(timing: (u64, u64, u64)) -> BreakerPolicy {
    policy_with(|p| {
        p.timeout = Duration::from_millis(timing.0);
        p.max_timeout = Duration::from_millis(timing.1);
        p.probe_timeout = Duration::from_millis(timing.2);
        p.failure_threshold = 2;
        p.half_open_attempts = 2;
        p.window = RateWindow {
            window: Duration::from_secs(5),
            minimum_requests: 4,
        };
    })
}

fn apply_policy(
    p: &mut BreakerPolicy,
    attempts: u32,
    threshold: u32,
    rates: bool,
    mode: BreakerMode,
) {
    p.half_open_attempts = attempts;
    p.failure_threshold = threshold;
    p.failure_rate = rates.then_some(FailureRate { threshold: 0.5 });
    p.slow_call = rates.then_some(SlowCall {
        duration: Duration::from_secs(1),
        rate_threshold: 0.5,
    });
    p.mode = mode;
}

/// A probe the run holds: its permit and its lease's expiry.
struct Held {
    permit: Permit,
    expires: Millis,
}

/// Checks an opening against the escalation `level`: within ±10% of min(timeout·2^k, max).
fn check_open_time(p: &BreakerPolicy, level: u32, open_for: Duration) -> Result<(), TestCaseError> {
    let base = (p.timeout.as_millis() << level.min(64)).min(p.max_timeout.as_millis());
    let open = open_for.as_millis();
    prop_assert!(
        open * 10 >= base * 9 && open * 10 <= base * 11,
        "open time {open}ms outside ±10% of {base}ms at escalation {level}"
    );
    Ok(())
}

/// Plays `ops` through the glue's read-modify-write cycle, checking every invariant.
/// Returns every encoding the run wrote.
fn play(timing: (u64, u64, u64), ops: &[Op]) -> Result<Vec<Vec<u8>>, TestCaseError> {
    let mut p = run_policy(timing);
    let mut rng = StdRng::seed_from_u64(timing.0 ^ timing.2);
    let mut shared = Vec::new();
    Breaker::new().encode(&mut shared);
    let mut written = vec![shared.clone()];
    let mut now = T0;
    let mut held: Vec<Held> = Vec::new();
    let mut level = 0u32;

    for op in ops {
        let mut b = Breaker::decode(&shared).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let (changed, events) = match *op {
            Op::Admit => {
                let step = b.admit(&p, now, &mut rng);
                match step.value {
                    Admission::Admitted(permit) => {
                        let expires = now.saturating_add(p.probe_timeout.as_millis() as u64);
                        held.push(Held { permit, expires });
                        if permit.is_probe() {
                            let live = held
                                .iter()
                                .filter(|h| h.permit.is_probe() && h.permit.epoch() == b.epoch())
                                .filter(|h| now < h.expires)
                                .count();
                            prop_assert!(
                                live <= p.half_open_attempts as usize,
                                "{live} probes in flight with {} slots",
                                p.half_open_attempts
                            );
                        }
                    }
                    Admission::Rejected(r) => {
                        prop_assert!(r.retry_after > Duration::ZERO, "retry_after is never 0");
                        prop_assert!(p.mode != BreakerMode::Shadow, "shadow never rejects");
                    }
                }
                (step.changed, step.events)
            }
            Op::Record {
                which,
                failed,
                slow,
            } if !held.is_empty() => {
                let h = held.swap_remove(which % held.len());
                let call = Call { failed, slow };
                let step = b.record(&p, h.permit, call, now, &mut rng);
                (step.changed, step.events)
            }
            Op::Release { which } if !held.is_empty() => {
                let h = held.swap_remove(which % held.len());
                let step = b.release(h.permit, now);
                (step.changed, step.events)
            }
            Op::Advance(ms) => {
                now += ms;
                continue;
            }
            Op::Policy {
                attempts,
                threshold,
                rates,
                mode,
            } => {
                apply_policy(&mut p, attempts, threshold, rates, mode);
                continue;
            }
            _ => continue,
        };

        prop_assert!(
            !events.clamped(),
            "a state only this code wrote, under one timing and a forward clock, is never clamped"
        );
        for event in events.iter() {
            if let Event::Opened(o) | Event::WouldOpen(o) = event {
                let probe = matches!(o.reason, OpenReason::ProbeFailed | OpenReason::ProbeSlow);
                level = if probe { level + 1 } else { 0 };
                check_open_time(&p, level, o.open_for)?;
            }
        }
        prop_assert_eq!(b.is_closed(), b.phase() == Phase::Closed);
        let mut encoded = Vec::new();
        b.encode(&mut encoded);
        if changed {
            let decoded = Breaker::decode(&encoded);
            prop_assert_eq!(decoded.as_ref(), Ok(&b), "decode(encode(s)) == s");
            shared = encoded;
            written.push(shared.clone());
        } else {
            prop_assert_eq!(
                &encoded,
                &shared,
                "changed == false but the state changed: {:?}",
                op
            );
        }
    }
    Ok(written)
}

proptest! {
    #[test]
    fn no_run_breaks_the_breakers_invariants(
        timing in timing(),
        ops in prop::collection::vec(op(), 1..120),
    ) {
        play(timing, &ops)?;
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        if let Ok(b) = Breaker::decode(&bytes) {
            let mut again = Vec::new();
            b.encode(&mut again);
            prop_assert_eq!(again, bytes, "whatever decodes is canonical");
        }
    }

    #[test]
    fn decoding_damaged_encodings_never_panics(
        timing in timing(),
        ops in prop::collection::vec(op(), 1..60),
        damage in prop::collection::vec((any::<usize>(), any::<u8>()), 1..4),
        cut in any::<usize>(),
    ) {
        for bytes in play(timing, &ops)? {
            let mut damaged = bytes.clone();
            for &(at, value) in &damage {
                let len = damaged.len();
                damaged[at % len] = value;
            }
            if let Ok(b) = Breaker::decode(&damaged) {
                let mut again = Vec::new();
                b.encode(&mut again);
                prop_assert_eq!(&again, &damaged, "whatever decodes is canonical");
            }
            let short = &bytes[..cut % bytes.len()];
            prop_assert!(Breaker::decode(short).is_err(), "a strict prefix is never a state");
        }
    }
}
