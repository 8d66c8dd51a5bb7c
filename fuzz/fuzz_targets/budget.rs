//! The retry budget: its decoder on arbitrary bytes, then arbitrary operations (requests,
//! withdrawals, refunds, policy changes, clock jumps forwards and backwards) on the decoded or
//! a fresh budget. Never a panic; the encoding is canonical and bounded at every step; a
//! withdrawal is only granted with room for it; a refund never adds retries.

#![no_main]

use arbitrary::{Result, Unstructured};
use breakwater::core::budget::{Budget, ENCODED_MAX_LEN};
use breakwater_fuzz::budget_policy;
use libfuzzer_sys::fuzz_target;

fn encode(b: &Budget) -> Vec<u8> {
    let mut out = Vec::new();
    b.encode(&mut out);
    out
}

fn check(b: &Budget) {
    let bytes = encode(b);
    assert!(
        bytes.len() <= ENCODED_MAX_LEN,
        "{} bytes, over the maximum",
        bytes.len()
    );
    assert_eq!(
        Budget::decode(&bytes).as_ref(),
        Ok(b),
        "every state survives shared data"
    );
}

fn run(u: &mut Unstructured) -> Result<()> {
    let mut budget = if u.arbitrary()? {
        let len = u.int_in_range(0..=ENCODED_MAX_LEN + 4)?;
        let bytes = u.bytes(len)?;
        match Budget::decode(bytes) {
            Ok(b) => {
                assert_eq!(encode(&b), bytes, "decode then encode gives back the bytes");
                b
            }
            Err(e) => {
                assert!(!e.to_string().is_empty());
                Budget::default()
            }
        }
    } else {
        Budget::default()
    };
    let policies = [budget_policy(u)?, budget_policy(u)?];
    let mut p = 0usize;
    let mut now: u64 = u.arbitrary()?;
    let mut withdrawals = Vec::new();
    check(&budget);
    for _ in 0..u.int_in_range(0..=64u8)? {
        let policy = &policies[p];
        match u.int_in_range(0..=8u8)? {
            0 | 1 => {
                let before = budget.usage(policy, now).retries;
                let n = if u.arbitrary()? {
                    u32::from(u.arbitrary::<u8>()?)
                } else {
                    u.arbitrary()?
                };
                budget.record_requests(policy, n, now);
                assert!(
                    budget.usage(policy, now).retries >= before,
                    "requests never remove retries"
                );
            }
            2 | 3 => match budget.try_withdraw(policy, now) {
                Ok(w) => {
                    let usage = budget.usage(policy, now);
                    assert!(
                        f64::from(usage.retries) <= usage.allowed,
                        "a withdrawal was granted past the budget: {usage:?} under {policy:?}"
                    );
                    withdrawals.push(w);
                }
                Err(exhausted) => {
                    let usage = budget.usage(policy, now);
                    assert_eq!(
                        exhausted.in_window, usage.retries,
                        "the refusal reports the window"
                    );
                }
            },
            4 => {
                if !withdrawals.is_empty() {
                    let i = u.choose_index(withdrawals.len())?;
                    let w = withdrawals.swap_remove(i);
                    let before = budget.usage(policy, now).retries;
                    budget.refund(policy, w, now);
                    assert!(
                        budget.usage(policy, now).retries <= before,
                        "a refund never adds retries"
                    );
                }
            }
            5 => now = now.saturating_add(u64::from(u.arbitrary::<u16>()?)),
            6 => now = now.saturating_add(u64::from(u.arbitrary::<u32>()?)),
            7 => now = now.saturating_sub(u64::from(u.arbitrary::<u16>()?)),
            _ => p = 1 - p,
        }
        check(&budget);
    }
    Ok(())
}

fuzz_target!(|bytes: &[u8]| {
    let _ = run(&mut Unstructured::new(bytes));
});
