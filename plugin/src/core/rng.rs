//! Uniform draws from any [`Rng`]: the glue passes one backed by the host's `random_get`,
//! tests pass a seeded one.

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
