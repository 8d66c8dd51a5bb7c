//! Cases found by fuzzing (`fuzz/`, target `breaker_transitions`), kept as specifications.

use super::*;

/// A half-open state as another worker (or corrupted shared data) may leave it: epoch 5, no
/// probe has reported, no lease held, and the next lease id is `next_id`.
fn half_open_at_lease_id(next_id: u64) -> Breaker {
    let mut bytes = vec![0xb1, 0x02, 0x00];
    bytes.extend_from_slice(&5u64.to_le_bytes()); // epoch
    bytes.extend_from_slice(&0u32.to_le_bytes()); // consecutive failures
    bytes.extend_from_slice(&0u64.to_le_bytes()); // open until
    bytes.extend_from_slice(&0u32.to_le_bytes()); // probe successes
    bytes.extend_from_slice(&next_id.to_le_bytes());
    bytes.push(0); // no buckets
    bytes.extend_from_slice(&0u16.to_le_bytes()); // no leases
    Breaker::decode(&bytes).expect("the decoder accepts any next lease id")
}

#[test]
fn a_probe_admitted_at_the_last_lease_id_leaves_a_state_that_decodes() {
    // Found by `breaker_transitions`: the decoder accepts a next lease id of u64::MAX, the
    // probe then takes that id and the id saturates, so the state written back holds a lease
    // whose id is not below the next id. The next worker's decode refuses it and starts from a
    // fresh, closed breaker: the half-open state is lost.
    let p = policy();
    let mut b = half_open_at_lease_id(u64::MAX);
    let _probe = admitted(b.admit(&p, T0, &mut rng()));
    let back = through_shared_data(&b);
    assert_eq!(
        back, b,
        "the state after admitting a probe must survive shared data"
    );
}

#[test]
fn two_probes_never_share_a_lease_at_the_end_of_the_id_space() {
    // The same saturation gives two probes the same lease id: one probe's report would then
    // give back both slots.
    let p = policy_with(|p| p.half_open_attempts = 2);
    let mut b = half_open_at_lease_id(u64::MAX);
    let first = admitted(b.admit(&p, T0, &mut rng()));
    let second = admitted(b.admit(&p, T0, &mut rng()));
    assert!(first.is_probe() && second.is_probe());
    assert_ne!(first, second, "each probe holds its own lease");
}
