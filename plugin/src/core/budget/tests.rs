use std::time::Duration;

use super::*;
use crate::core::retry::fixtures::budget_policy;
use proptest::prelude::*;

const S: Millis = 1000;
/// A Monday in 2024, so bucket alignment is exercised on a realistic clock value.
const T0: Millis = 1_704_067_200_000;

fn ratio_only(ratio: f64) -> BudgetPolicy {
    BudgetPolicy {
        ratio,
        min_per_second: 0,
        ..budget_policy()
    }
}

/// How many withdrawals succeed in a row at `now`.
fn drain(b: &mut Budget, p: &BudgetPolicy, now: Millis) -> u32 {
    let mut n = 0;
    while b.try_withdraw(p, now).is_ok() {
        n += 1;
        assert!(n <= 1_000_000, "the budget never ran out");
    }
    n
}

// --- the rule ---

#[test]
fn with_no_traffic_the_floor_allows_min_per_second_times_the_window() {
    let mut b = Budget::default();
    assert_eq!(drain(&mut b, &budget_policy(), T0), 100, "10/s over 10s");
    let err = b.try_withdraw(&budget_policy(), T0).unwrap_err();
    assert_eq!(
        err,
        Exhausted {
            in_window: 100,
            allowed: 100
        }
    );
    assert!(err
        .to_string()
        .contains("100 retries in the window, 100 allowed"));
}

#[test]
fn the_ratio_allows_a_share_of_the_requests_in_the_window() {
    let p = ratio_only(0.2);
    let mut b = Budget::default();
    b.record_requests(&p, 100, T0);
    assert_eq!(drain(&mut b, &p, T0), 20, "20% of 100 requests");
    b.record_requests(&p, 10, T0 + 1);
    assert_eq!(drain(&mut b, &p, T0 + 1), 2, "more traffic, more room");
}

#[test]
fn ratio_and_floor_add_up() {
    let p = budget_policy();
    let mut b = Budget::default();
    b.record_requests(&p, 50, T0);
    assert_eq!(b.usage(&p, T0).allowed, 110.0, "0.2 × 50 + 10 × 10");
    assert_eq!(drain(&mut b, &p, T0), 110);
}

#[test]
fn pending_retries_count_until_refunded() {
    let p = ratio_only(0.5);
    let mut b = Budget::default();
    b.record_requests(&p, 4, T0);
    let first = b.try_withdraw(&p, T0).expect("room for 2");
    b.try_withdraw(&p, T0 + 10).expect("room for 2");
    assert!(
        b.try_withdraw(&p, T0 + 20).is_err(),
        "two pending retries fill it"
    );
    b.refund(&p, first, T0 + 30);
    assert!(
        b.try_withdraw(&p, T0 + 40).is_ok(),
        "a dropped retry gives its room back"
    );
}

// --- the window ---

#[test]
fn counts_expire_once_their_bucket_leaves_the_window() {
    let p = ratio_only(0.2);
    let mut b = Budget::default();
    b.record_requests(&p, 10, T0);
    b.try_withdraw(&p, T0).expect("2 allowed");
    assert_eq!(
        b.usage(&p, T0 + 10 * S - 1).requests,
        10,
        "still in the window"
    );
    let later = b.usage(&p, T0 + 10 * S);
    assert_eq!(
        (later.requests, later.retries),
        (0, 0),
        "a whole window later all expired"
    );
}

#[test]
fn the_window_slides_a_bucket_at_a_time() {
    let p = ratio_only(1.0);
    let mut b = Budget::default();
    b.record_requests(&p, 3, T0);
    b.record_requests(&p, 5, T0 + 4 * S);
    b.record_requests(&p, 7, T0 + 9 * S);
    assert_eq!(b.usage(&p, T0 + 9 * S).requests, 15);
    assert_eq!(
        b.usage(&p, T0 + 10 * S).requests,
        12,
        "the first bucket left"
    );
    assert_eq!(b.usage(&p, T0 + 14 * S).requests, 7, "the second left too");
    assert_eq!(b.usage(&p, T0 + 19 * S).requests, 0);
}

#[test]
fn retries_expire_with_their_window_and_make_room_again() {
    let p = budget_policy();
    let mut b = Budget::default();
    assert_eq!(drain(&mut b, &p, T0), 100);
    assert_eq!(
        drain(&mut b, &p, T0 + 10 * S),
        100,
        "the next window has its own floor"
    );
}

#[test]
fn a_refund_after_its_bucket_expired_changes_nothing() {
    let p = ratio_only(1.0);
    let mut b = Budget::default();
    b.record_requests(&p, 1, T0);
    let old = b.try_withdraw(&p, T0).expect("1 allowed");
    b.record_requests(&p, 1, T0 + 20 * S);
    let new = b
        .try_withdraw(&p, T0 + 20 * S)
        .expect("1 allowed in the new window");
    b.refund(&p, old, T0 + 20 * S);
    assert_eq!(
        b.usage(&p, T0 + 20 * S).retries,
        1,
        "the new retry still counts"
    );
    b.refund(&p, new, T0 + 20 * S);
    assert_eq!(b.usage(&p, T0 + 20 * S).retries, 0);
}

#[test]
fn a_worker_behind_the_newest_bucket_counts_into_it() {
    let p = ratio_only(1.0);
    let mut b = Budget::default();
    b.record_requests(&p, 1, T0 + 5 * S);
    b.record_requests(&p, 1, T0 + 4 * S);
    assert_eq!(b.usage(&p, T0 + 5 * S).requests, 2);
    assert_eq!(
        b.buckets.len(),
        1,
        "no bucket is made behind the newest one"
    );
}

#[test]
fn counts_saturate_instead_of_wrapping() {
    let p = ratio_only(1.0);
    let mut b = Budget::default();
    b.record_requests(&p, u32::MAX, T0);
    b.record_requests(&p, u32::MAX, T0 + S);
    assert_eq!(b.usage(&p, T0 + S).requests, u32::MAX);
}

#[test]
fn an_unusable_ratio_allows_nothing_beyond_the_floor() {
    let p = BudgetPolicy {
        ratio: f64::NAN,
        ..budget_policy()
    };
    let mut b = Budget::default();
    b.record_requests(&p, 100, T0);
    assert!(b.try_withdraw(&p, T0).is_err(), "NaN never makes room");
}

// --- policy changes ---

#[test]
fn a_longer_window_keeps_the_counts_still_inside_it() {
    let ten = ratio_only(0.5);
    let twenty = BudgetPolicy {
        window: Duration::from_secs(20),
        ..ten
    };
    let mut b = Budget::default();
    b.record_requests(&ten, 10, T0);
    let w = b.try_withdraw(&ten, T0 + 2 * S).expect("5 allowed");
    let u = b.usage(&twenty, T0 + 5 * S);
    assert_eq!((u.requests, u.retries), (10, 1), "nothing forgotten early");
    b.refund(&twenty, w, T0 + 5 * S);
    assert_eq!(
        b.usage(&twenty, T0 + 5 * S).retries,
        1,
        "old withdrawals stay counted"
    );
    assert_eq!(
        b.usage(&twenty, T0 + 25 * S).requests,
        0,
        "expired one new window later"
    );
}

#[test]
fn a_shorter_window_drops_what_is_already_outside_it() {
    let ten = ratio_only(1.0);
    let two = BudgetPolicy {
        window: Duration::from_secs(2),
        ..ten
    };
    let mut b = Budget::default();
    b.record_requests(&ten, 3, T0);
    b.record_requests(&ten, 4, T0 + 8 * S);
    assert_eq!(
        b.usage(&two, T0 + 9 * S).requests,
        4,
        "only the last 2s still count"
    );
}

// --- encoding ---

#[test]
fn an_empty_budget_encodes_to_the_bare_header() {
    let mut out = Vec::new();
    Budget::default().encode(&mut out);
    assert_eq!(out, [b'R', b'B', 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(Budget::decode(&out), Ok(Budget::default()));
}

#[test]
fn the_encoding_is_pinned_byte_by_byte() {
    let p = budget_policy(); // 10s window: 1000 ms buckets
    let mut b = Budget::default();
    b.record_requests(&p, 3, 12_345);
    b.try_withdraw(&p, 12_999).expect("room");
    b.record_requests(&p, 0x0102_0304, 13_000);
    let mut out = vec![0xAA]; // encode appends
    b.encode(&mut out);
    #[rustfmt::skip]
    let expected = [
        0xAA,
        b'R', b'B', 1,                      // magic, version
        0xE8, 0x03, 0, 0, 0, 0, 0, 0,       // width 1000
        2,                                  // two buckets
        0xE0, 0x2E, 0, 0, 0, 0, 0, 0,       // start 12000
        3, 0, 0, 0,  1, 0, 0, 0,            // 3 requests, 1 retry
        0xC8, 0x32, 0, 0, 0, 0, 0, 0,       // start 13000
        4, 3, 2, 1,  0, 0, 0, 0,            // 0x01020304 requests, 0 retries
    ];
    assert_eq!(out, expected);
    assert_eq!(Budget::decode(&out[1..]), Ok(b));
}

#[test]
fn a_full_window_fits_the_named_maximum() {
    let p = ratio_only(1.0);
    let mut b = Budget::default();
    for i in 0..30 {
        b.record_requests(&p, 1, T0 + i * S);
    }
    let mut out = Vec::new();
    b.encode(&mut out);
    assert_eq!(out.len(), ENCODED_MAX_LEN);
    assert_eq!(ENCODED_MAX_LEN, 172);
}

fn header(count: u8, width: u64) -> Vec<u8> {
    let mut v = vec![b'R', b'B', 1];
    v.extend_from_slice(&width.to_le_bytes());
    v.push(count);
    v
}

fn bucket(start: u64) -> Vec<u8> {
    let mut v = start.to_le_bytes().to_vec();
    v.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0]);
    v
}

#[test]
fn bytes_that_are_not_a_budget_are_refused_with_the_reason() {
    let cases: Vec<(Vec<u8>, DecodeError)> = vec![
        (vec![], DecodeError::TooShort { len: 0 }),
        (b"RB\x01".to_vec(), DecodeError::TooShort { len: 3 }),
        (
            [b"{\"json\":1}xx".as_slice()].concat(),
            DecodeError::BadMagic { found: *b"{\"" },
        ),
        (
            [&[b'R', b'B', 2][..], &[0; 9]].concat(),
            DecodeError::UnsupportedVersion(2),
        ),
        (
            header(11, 1000),
            DecodeError::TooManyBuckets { count: 11, max: 10 },
        ),
        (
            header(1, 1000),
            DecodeError::Length {
                expected: 28,
                actual: 12,
            },
        ),
        (
            [header(0, 1000), bucket(0)].concat(),
            DecodeError::Length {
                expected: 12,
                actual: 28,
            },
        ),
        ([header(1, 0), bucket(0)].concat(), DecodeError::ZeroWidth),
        (
            [header(2, 1000), bucket(2000), bucket(2000)].concat(),
            DecodeError::Unordered { index: 1 },
        ),
        (
            [header(2, 1000), bucket(2000), bucket(1000)].concat(),
            DecodeError::Unordered { index: 1 },
        ),
        (
            [header(1, 1000), bucket(1500)].concat(),
            DecodeError::Misaligned { index: 0 },
        ),
    ];
    for (bytes, expected) in cases {
        assert_eq!(Budget::decode(&bytes), Err(expected), "{bytes:02x?}");
    }
}

#[derive(Debug, Clone)]
enum Op {
    Requests(u32),
    Withdraw,
    Refund,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u32..1000).prop_map(Op::Requests),
        Just(Op::Withdraw),
        Just(Op::Refund),
    ]
}

proptest! {
    #[test]
    fn decode_of_encode_is_the_same_budget(
        ops in proptest::collection::vec((op(), 0u64..3_000, 0usize..3), 0..60),
    ) {
        let windows = [Duration::from_secs(10), Duration::from_secs(3), Duration::from_millis(7)];
        let mut b = Budget::default();
        let mut now = T0;
        let mut taken = Vec::new();
        for (op, step, window) in ops {
            let p = BudgetPolicy { window: windows[window], ..budget_policy() };
            now += step;
            match op {
                Op::Requests(n) => b.record_requests(&p, n, now),
                Op::Withdraw => taken.extend(b.try_withdraw(&p, now).ok()),
                Op::Refund => if let Some(w) = taken.pop() { b.refund(&p, w, now) },
            }
            let mut out = Vec::new();
            b.encode(&mut out);
            prop_assert!(out.len() <= ENCODED_MAX_LEN);
            prop_assert_eq!(Budget::decode(&out), Ok(b.clone()));
        }
    }

    #[test]
    fn decoding_any_bytes_returns_a_result_and_a_budget_reencodes_to_them(
        bytes in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..200),
            (0u8..12, 0u64..5000, proptest::collection::vec(any::<u8>(), 0..200))
                .prop_map(|(n, w, rest)| [header(n, w), rest].concat()),
            // Mostly well-formed: aligned, ascending starts, sometimes not.
            (1u64..5000, proptest::collection::btree_set(0u64..1000, 0..12), any::<bool>())
                .prop_map(|(w, slots, skew)| {
                    let n = slots.len() as u8;
                    let buckets = slots.iter().map(|s| bucket(s * w + u64::from(skew)));
                    [header(n, w), buckets.flatten().collect()].concat()
                }),
        ],
    ) {
        if let Ok(b) = Budget::decode(&bytes) {
            let mut out = Vec::new();
            b.encode(&mut out);
            prop_assert_eq!(out, bytes, "the encoding is canonical");
        }
    }
}
