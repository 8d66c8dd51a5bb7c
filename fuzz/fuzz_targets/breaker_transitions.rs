//! The breaker's transitions, driven by arbitrary operations on a decoded (or fresh) state
//! under arbitrary validated policies that change between calls, with a clock that jumps
//! forwards and a little backwards (workers' clocks disagree), as the glue drives it through
//! shared data.
//!
//! Invariants after every step:
//! - the state survives shared data: `decode(encode(s)) == s`;
//! - `changed == false` means the bytes did not change (the glue then skips the write);
//! - a probe is only admitted with a free slot: leases held plus successes never exceed
//!   `half_open_attempts` right after a probe is admitted, and every lease belongs to a probe
//!   of this half-open epoch that has not reported (or whose outcome a `disabled` or
//!   `forced_open` policy ignored);
//! - every phase change bumps the epoch and is reported as an event, and nothing else is;
//!   only `admit` half-opens, and an outcome from another epoch drives nothing;
//! - an enforcing breaker that is open rejects until its open time has passed, with exactly
//!   the time left; a half-open one rejects only when every slot is taken; a rejection always
//!   says to come back later (never zero); `shadow` never rejects, `forced_open` always does,
//!   and `disabled` and `forced_open` never write;
//! - an open time is never zero and never over 1.1 × `max_timeout`.

#![no_main]

use arbitrary::{Result, Unstructured};
use breakwater::core::breaker::{Admission, Breaker, Call, Permit, Phase};
use breakwater::policy::{BreakerMode, BreakerPolicy};
use breakwater_fuzz::breaker_bytes::{self, Fields, HALF_OPEN, OPEN};
use breakwater_fuzz::breaker_policy;
use libfuzzer_sys::fuzz_target;
use rand::rngs::StdRng;
use rand::SeedableRng;

/// With `BREAKWATER_FUZZ_TRACE` set, each operation is printed: how a crash is turned into a
/// regression test.
fn tracing() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("BREAKWATER_FUZZ_TRACE").is_some())
}

macro_rules! trace {
    ($($arg:tt)*) => {
        if tracing() {
            eprintln!($($arg)*);
        }
    };
}

fn encode(b: &Breaker) -> Vec<u8> {
    let mut out = Vec::new();
    b.encode(&mut out);
    out
}

/// A request admitted and not yet reported.
struct Outstanding {
    permit: Permit,
}

struct Run {
    breaker: Breaker,
    policies: Vec<BreakerPolicy>,
    p: usize,
    now: u64,
    rng: StdRng,
    outstanding: Vec<Outstanding>,
    /// Probes whose outcome a `disabled` or `forced_open` policy ignored.
    ignored: Vec<Outstanding>,
    /// The epoch of the state the run started from.
    initial_epoch: u64,
}

impl Run {
    /// Checks one step: `before` is the encoding before it, `changed` what it reported.
    fn after_step(&self, before: &[u8], changed: bool, events_changed_phase: bool) {
        let after = encode(&self.breaker);
        assert_eq!(
            Breaker::decode(&after).as_ref(),
            Ok(&self.breaker),
            "the state must survive shared data: {after:?}"
        );
        if !changed {
            assert_eq!(
                before, after,
                "a step that reported no change changed the bytes; the glue would not write them"
            );
        }
        let (b, a) = (
            Fields::read(before).expect("layout"),
            Fields::read(&after).expect("layout"),
        );
        assert!(
            a.phase == b.phase || a.epoch != b.epoch,
            "a phase change must bump the epoch: {b:?} -> {a:?}"
        );
        assert_eq!(
            events_changed_phase,
            a.epoch != b.epoch,
            "a phase change is always reported, and only a phase change: {b:?} -> {a:?}"
        );
        if a.phase == HALF_OPEN && a.epoch != self.initial_epoch {
            // Every lease belongs to a probe of this epoch that has not reported. (Leases of
            // a state decoded at the start belong to other workers' probes.)
            let probes_out = self
                .outstanding
                .iter()
                .chain(&self.ignored)
                .filter(|o| o.permit.is_probe() && o.permit.epoch() == a.epoch)
                .count();
            assert!(
                a.leases.len() <= probes_out,
                "{} leases but only {probes_out} unreported probes of epoch {}",
                a.leases.len(),
                a.epoch
            );
        }
    }

    fn admit(&mut self) {
        let before = encode(&self.breaker);
        let old = Fields::read(&before).expect("layout");
        let policy = self.policies[self.p].clone();
        let step = self.breaker.admit(&policy, self.now, &mut self.rng);
        trace!(
            "admit at {} under policy {} -> {:?} {:?} changed={}",
            self.now,
            self.p,
            step.value,
            step.events,
            step.changed
        );
        let events = step.events;
        let moved = events.half_opened()
            || events.closed()
            || events.opened().is_some()
            || events.would_open().is_some();
        let after = Fields::read(&encode(&self.breaker)).expect("layout");
        match (policy.mode, step.value) {
            (BreakerMode::Disabled, Admission::Admitted(p)) => {
                assert!(!p.is_counted(), "disabled admits untracked");
                assert!(!step.changed, "disabled never writes");
            }
            (BreakerMode::Disabled, Admission::Rejected(r)) => panic!("disabled rejected: {r:?}"),
            (BreakerMode::ForcedOpen, Admission::Rejected(r)) => {
                assert!(!step.changed, "forced_open does not touch the state");
                assert!(
                    !r.retry_after.is_zero(),
                    "a rejection says when to come back"
                );
            }
            (BreakerMode::ForcedOpen, Admission::Admitted(_)) => panic!("forced_open admitted"),
            (BreakerMode::Shadow, Admission::Rejected(r)) => panic!("shadow rejected: {r:?}"),
            (_, Admission::Rejected(r)) => {
                assert!(
                    !r.retry_after.is_zero(),
                    "a rejection says when to come back"
                );
                match r.phase {
                    Phase::Open => {
                        assert_eq!(after.phase, OPEN);
                        assert!(
                            self.now < after.open_until,
                            "rejected after the open time passed"
                        );
                        assert_eq!(
                            r.retry_after.as_millis(),
                            u128::from(after.open_until - self.now),
                            "retry-after is the time until half-open"
                        );
                    }
                    Phase::HalfOpen => {
                        assert_eq!(after.phase, HALF_OPEN);
                        let slots = u64::from(policy.half_open_attempts);
                        assert!(
                            after.leases.len() as u64 + u64::from(after.successes) >= slots,
                            "a probe was refused with a free slot: {after:?} under {slots}"
                        );
                    }
                    Phase::Closed => panic!("a closed breaker rejected"),
                }
            }
            (_, Admission::Admitted(permit)) => {
                if old.phase == OPEN
                    && self.now < old.open_until
                    && policy.mode == BreakerMode::Enforce
                {
                    panic!("an enforcing open breaker admitted a request before its open time");
                }
                if permit.is_probe() {
                    let slots = u64::from(policy.half_open_attempts);
                    assert!(
                        after.leases.len() as u64 + u64::from(after.successes) <= slots,
                        "more probes than half_open_attempts = {slots}: {after:?}"
                    );
                }
                self.outstanding.push(Outstanding { permit });
            }
        }
        self.after_step(&before, step.changed, moved);
    }

    fn report(&mut self, u: &mut Unstructured, release: bool) -> Result<()> {
        if self.outstanding.is_empty() {
            return Ok(());
        }
        let i = u.choose_index(self.outstanding.len())?;
        let Outstanding { permit } = self.outstanding.swap_remove(i);
        let before = encode(&self.breaker);
        let old = Fields::read(&before).expect("layout");
        let policy = self.policies[self.p].clone();
        let (changed, events) = if release {
            let step = self.breaker.release(permit, self.now);
            trace!(
                "release {permit:?} at {} -> {:?} changed={}",
                self.now,
                step.events,
                step.changed
            );
            (step.changed, step.events)
        } else {
            let call = Call {
                failed: u.arbitrary()?,
                slow: u.arbitrary()?,
            };
            let step = self
                .breaker
                .record(&policy, permit, call, self.now, &mut self.rng);
            trace!(
                "record {permit:?} {call:?} at {} under policy {} -> {:?} changed={}",
                self.now,
                self.p,
                step.events,
                step.changed
            );
            (step.changed, step.events)
        };
        let moved = events.half_opened()
            || events.closed()
            || events.opened().is_some()
            || events.would_open().is_some();
        assert!(!events.half_opened(), "only admit moves open to half-open");
        if matches!(policy.mode, BreakerMode::Disabled | BreakerMode::ForcedOpen) && !release {
            assert!(!changed, "{:?} ignores outcomes", policy.mode);
            // An ignored outcome leaves a probe's lease in place until `probe_timeout`
            // reclaims it (module docs, "Modes"): the probe still counts as holding it.
            self.ignored.push(Outstanding { permit });
        }
        self.after_step(&before, changed, moved);
        if permit.epoch() != old.epoch {
            assert!(!moved, "a stale outcome drove a transition");
        }
        if let Some(opening) = events.opened().or(events.would_open()) {
            let max = policy.max_timeout.as_millis() * 11 / 10 + 1;
            assert!(
                !opening.open_for.is_zero() && opening.open_for.as_millis() <= max,
                "open time {:?} outside (0, 1.1 × max_timeout]",
                opening.open_for
            );
        }
        Ok(())
    }
}

fn run(u: &mut Unstructured) -> Result<()> {
    let now = if u.ratio(1, 8)? {
        u.arbitrary()?
    } else {
        1_700_000_000_000
    };
    let breaker = match u.int_in_range(0..=3u8)? {
        0 => {
            let len = u.int_in_range(0..=256usize)?;
            Breaker::decode(u.bytes(len)?).unwrap_or_default()
        }
        1 | 2 => Breaker::decode(&breaker_bytes::state(u, now)?).unwrap_or_default(),
        _ => Breaker::new(),
    };
    let mut policies = vec![breaker_policy(u)?];
    if u.arbitrary()? {
        policies.push(breaker_policy(u)?);
    }
    let initial_epoch = breaker.epoch();
    trace!("start: {breaker:?}");
    for (i, p) in policies.iter().enumerate() {
        trace!("policy {i}: {p:?}");
    }
    let mut run = Run {
        initial_epoch,
        breaker,
        policies,
        p: 0,
        now,
        rng: StdRng::seed_from_u64(u.arbitrary()?),
        outstanding: Vec::new(),
        ignored: Vec::new(),
    };
    for _ in 0..u.int_in_range(0..=200u8)? {
        match u.int_in_range(0..=11u8)? {
            0..=3 => run.admit(),
            4..=6 => run.report(u, false)?,
            7 => run.report(u, true)?,
            8 => run.now = run.now.saturating_add(u64::from(u.arbitrary::<u8>()?)),
            9 => run.now = run.now.saturating_add(u64::from(u.arbitrary::<u32>()?)),
            10 => run.now = run.now.saturating_sub(u64::from(u.int_in_range(0..=50u8)?)),
            _ => run.p = (run.p + 1) % run.policies.len(),
        }
    }
    Ok(())
}

fuzz_target!(|bytes: &[u8]| {
    let _ = run(&mut Unstructured::new(bytes));
});
