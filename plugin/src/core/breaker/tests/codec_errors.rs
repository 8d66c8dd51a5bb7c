//! Bytes that are not a breaker state: every rejection names what is wrong.

use super::codec_bytes::{CLOSED, FRESH, HALF_OPEN, OPEN};
use super::*;
use crate::core::breaker::codec::{FORMAT, MAX_BUCKETS, MAX_LEASES};
use crate::core::breaker::DecodeError;

fn decode_err(bytes: &[u8]) -> DecodeError {
    match Breaker::decode(bytes) {
        Err(e) => e,
        Ok(b) => panic!("expected a decode error for {bytes:02x?}, got {b:?}"),
    }
}

/// `FRESH` with `bytes` written at `offset`.
fn fresh_with(offset: usize, bytes: &[u8]) -> Vec<u8> {
    let mut v = FRESH.to_vec();
    v[offset..offset + bytes.len()].copy_from_slice(bytes);
    v
}

#[test]
fn an_unknown_format_byte_is_refused() {
    assert_eq!(
        decode_err(b"{\"state\":\"closed\"}"),
        DecodeError::Format { found: b'{' }
    );
    assert_eq!(
        decode_err(&fresh_with(0, &[0xb2])),
        DecodeError::Format { found: 0xb2 }
    );
    assert_eq!(FORMAT, 0xb1);
}

#[test]
fn truncated_bytes_name_the_field_that_is_missing() {
    let empty = DecodeError::Truncated {
        field: "format",
        offset: 0,
        needed: 1,
        available: 0,
    };
    assert_eq!(decode_err(&[]), empty);
    let short = DecodeError::Truncated {
        field: "epoch",
        offset: 3,
        needed: 8,
        available: 4,
    };
    assert_eq!(decode_err(&FRESH[..7]), short);
    assert_eq!(
        short.to_string(),
        "breaker state is truncated: epoch needs 8 bytes at offset 3, 4 left"
    );
    let lease = decode_err(&HALF_OPEN[..HALF_OPEN.len() - 1]);
    assert!(
        matches!(
            lease,
            DecodeError::Truncated {
                field: "lease expiry",
                ..
            }
        ),
        "{lease}"
    );
    for len in 0..CLOSED.len() {
        assert!(
            Breaker::decode(&CLOSED[..len]).is_err(),
            "a {len}-byte prefix is not a state"
        );
    }
}

#[test]
fn trailing_bytes_are_an_error() {
    let mut bytes = FRESH.to_vec();
    bytes.push(0);
    assert_eq!(
        decode_err(&bytes),
        DecodeError::Trailing {
            offset: 38,
            count: 1
        }
    );
}

#[test]
fn list_counts_above_their_maximum_are_refused_before_reading() {
    let buckets = fresh_with(35, &[MAX_BUCKETS as u8 + 1]);
    assert_eq!(
        decode_err(&buckets),
        DecodeError::TooMany {
            list: "buckets",
            count: 11,
            max: MAX_BUCKETS
        }
    );
    let leases = fresh_with(36, &(MAX_LEASES as u16 + 1).to_le_bytes());
    let e = decode_err(&leases);
    assert_eq!(
        e,
        DecodeError::TooMany {
            list: "probe leases",
            count: 1001,
            max: MAX_LEASES
        }
    );
    assert_eq!(
        e.to_string(),
        "breaker state holds 1001 probe leases, more than the maximum 1000"
    );
}

#[test]
fn an_unknown_phase_is_refused() {
    let e = decode_err(&fresh_with(1, &[3]));
    assert!(
        matches!(
            e,
            DecodeError::Invalid {
                field: "phase",
                value: 3,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn fields_the_phase_does_not_use_must_be_zero() {
    let e = decode_err(&fresh_with(15, &[1]));
    assert_eq!(
        e.to_string(),
        "breaker state field open until is 1: must be 0 while closed",
        "an open-until in a closed state is corruption"
    );
    let mut open = OPEN;
    open[11] = 7;
    let e = decode_err(&open);
    assert!(matches!(
        e,
        DecodeError::Invalid {
            field: "consecutive failures",
            value: 7,
            ..
        }
    ));
    let mut half = HALF_OPEN;
    half[15] = 1;
    let e = decode_err(&half);
    assert!(
        matches!(
            e,
            DecodeError::Invalid {
                field: "open until",
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn buckets_must_be_in_time_order_with_parts_within_totals() {
    let mut swapped = CLOSED;
    swapped[36..44].copy_from_slice(&(T0 + 1000).to_le_bytes());
    let e = decode_err(&swapped);
    assert!(
        matches!(
            e,
            DecodeError::Invalid {
                field: "bucket start",
                ..
            }
        ),
        "{e}"
    );

    let mut failed = CLOSED;
    failed[48] = 6;
    let e = decode_err(&failed);
    assert!(
        matches!(
            e,
            DecodeError::Invalid {
                field: "bucket failed",
                value: 6,
                ..
            }
        ),
        "{e}"
    );

    let mut slow = CLOSED;
    slow[52] = 6;
    let e = decode_err(&slow);
    assert!(
        matches!(
            e,
            DecodeError::Invalid {
                field: "bucket slow",
                value: 6,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn lease_ids_must_increase_and_stay_below_the_next_id() {
    let mut repeated = HALF_OPEN;
    repeated[54] = 1;
    let e = decode_err(&repeated);
    assert!(
        matches!(
            e,
            DecodeError::Invalid {
                field: "lease id",
                value: 1,
                ..
            }
        ),
        "{e}"
    );

    let mut ahead = HALF_OPEN;
    ahead[27] = 2;
    let e = decode_err(&ahead);
    assert!(
        matches!(
            e,
            DecodeError::Invalid {
                field: "lease id",
                value: 2,
                ..
            }
        ),
        "{e}"
    );
}
