//! Summaries of repeated measurements.
//!
//! # Why medians of per-round ratios
//! The machine is shared: other processes come and go during a run. Every round runs each
//! configuration once, back to back, so a slow minute hurts all of a round alike; the ratio of two
//! configurations *within* a round cancels most of that drift, and the median over rounds drops
//! the rounds that a burst of outside load hit unevenly.

/// The median of `values` (the mean of the middle two for an even count); `None` when empty or
/// when a value is not a number.
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() || values.iter().any(|v| v.is_nan()) {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    Some(if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    })
}

/// The spread of `values` around their median, as a fraction: (max − min) / median.
pub fn spread(values: &[f64]) -> Option<f64> {
    let median = median(values)?;
    let max = values.iter().copied().fold(f64::MIN, f64::max);
    let min = values.iter().copied().fold(f64::MAX, f64::min);
    (median > 0.0).then(|| (max - min) / median)
}

/// The median over rounds of `numerator[i] / denominator[i]`.
pub fn median_ratio(numerator: &[f64], denominator: &[f64]) -> Option<f64> {
    if numerator.len() != denominator.len() {
        return None;
    }
    let ratios: Vec<f64> = numerator
        .iter()
        .zip(denominator)
        .filter(|(_, d)| **d > 0.0)
        .map(|(n, d)| n / d)
        .collect();
    if ratios.len() != numerator.len() {
        return None;
    }
    median(&ratios)
}

/// Rounds to `digits` decimals, for the JSON and the tables.
pub fn round(value: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (value * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_of_an_odd_count_is_the_middle_value() {
        assert_eq!(median(&[5.0, 1.0, 3.0]), Some(3.0));
    }

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }

    #[test]
    fn no_values_or_a_nan_give_no_median() {
        assert_eq!(median(&[]), None);
        assert_eq!(
            median(&[1.0, f64::NAN]),
            None,
            "a NaN would sort arbitrarily"
        );
    }

    #[test]
    fn ratios_are_taken_within_each_round_before_the_median() {
        // Round 2 ran while the machine was twice as busy: both configurations halved. The
        // per-round ratio is 0.9 every time; a ratio of medians would say 0.9 too here, but
        // per-round ratios stay right when the drift hits rounds unevenly.
        let breakwater = [900.0, 450.0, 880.0];
        let noop = [1000.0, 500.0, 980.0];
        let ratio = median_ratio(&breakwater, &noop).expect("three rounds");
        assert!((ratio - 0.9).abs() < 1e-9, "got {ratio}");
    }

    #[test]
    fn a_zero_denominator_or_unequal_rounds_give_no_ratio() {
        assert_eq!(median_ratio(&[1.0, 2.0], &[1.0, 0.0]), None);
        assert_eq!(median_ratio(&[1.0, 2.0], &[1.0]), None);
    }

    #[test]
    fn spread_is_the_range_over_the_median() {
        let s = spread(&[90.0, 100.0, 110.0]).expect("values");
        assert!((s - 0.2).abs() < 1e-9, "got {s}");
    }

    #[test]
    fn rounding_keeps_the_asked_decimals() {
        assert_eq!(round(0.95449, 3), 0.954);
        assert_eq!(round(1234.5678, 1), 1234.6);
    }
}
