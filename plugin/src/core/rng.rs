//! Uniform draws from any [`Rng`]: the glue passes one backed by the host's `random_get`,
//! tests pass a seeded one.

use std::time::Duration;

use rand_core::Rng;

/// A uniform draw from `[0, 1)` with 53 bits of precision.
pub fn unit(rng: &mut impl Rng) -> f64 {
    const SCALE: f64 = 1.0 / (1u64 << 53) as f64;
    (rng.next_u64() >> 11) as f64 * SCALE
}

/// A uniform draw from `[low, high)`; `low` when the range is empty.
pub fn uniform(rng: &mut impl Rng, low: f64, high: f64) -> f64 {
    if high <= low {
        return low;
    }
    low + (high - low) * unit(rng)
}

/// A uniform draw from `[low, high]` in whole nanoseconds; `low` when the interval is empty.
/// Clamped to the interval, so the bounds hold exactly, not just up to float rounding.
pub fn between(rng: &mut impl Rng, low: Duration, high: Duration) -> Duration {
    if high <= low {
        return low;
    }
    let span = (high - low).as_nanos();
    let offset = (span as f64 * unit(rng)) as u128;
    low.saturating_add(from_nanos(offset.min(span))).min(high)
}

/// Nanoseconds as a [`Duration`], saturating at [`Duration::MAX`].
///
/// Divided 32 bits at a time (long division by a one-limb divisor): a 128-bit `/` links a
/// kilobyte of compiler-builtins into the filter's `.wasm`.
pub fn from_nanos(nanos: u128) -> Duration {
    const NANOS_PER_SEC: u64 = 1_000_000_000;
    let (mut secs, mut rest) = (0u128, 0u64);
    for shift in [96, 64, 32, 0] {
        // rest < 10^9 < 2^30, so the partial dividend fits 62 bits.
        let part = (rest << 32) | ((nanos >> shift) as u64 & 0xffff_ffff);
        secs |= u128::from(part / NANOS_PER_SEC) << shift;
        rest = part % NANOS_PER_SEC;
    }
    match u64::try_from(secs) {
        // rest < 10^9: no carry into the seconds.
        Ok(secs) => Duration::new(secs, rest as u32),
        Err(_) => Duration::MAX,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, SeedableRng};

    #[test]
    fn unit_draws_stay_in_the_half_open_interval() {
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..10_000 {
            let x = unit(&mut rng);
            assert!((0.0..1.0).contains(&x), "{x} escaped [0, 1)");
        }
    }

    #[test]
    fn uniform_with_an_empty_range_returns_its_low_end() {
        let mut rng = StdRng::seed_from_u64(7);
        assert_eq!(uniform(&mut rng, 3.0, 3.0), 3.0);
        assert_eq!(uniform(&mut rng, 3.0, 1.0), 3.0);
    }
}
