use super::*;
use crate::core::retry::fixtures::{backoff, ms, rng};
use proptest::prelude::*;

const SECOND: Duration = Duration::from_secs(1);

fn draws(p: &BackoffPolicy, retry: u32, previous: Option<Duration>) -> Vec<Duration> {
    let mut rng = rng(42);
    (0..2000)
        .map(|_| delay(p, retry, previous, &mut rng))
        .collect()
}

#[test]
fn without_jitter_the_delay_doubles_from_base_delay_until_max_delay() {
    let p = backoff(Jitter::None);
    let seen: Vec<u64> = (1..=8)
        .map(|n| delay(&p, n, None, &mut rng(1)).as_secs())
        .collect();
    assert_eq!(
        seen,
        [1, 2, 4, 8, 16, 32, 60, 60],
        "1s · 2^(n-1), capped at 60s"
    );
}

#[test]
fn retry_zero_is_read_as_the_first_retry() {
    let p = backoff(Jitter::None);
    assert_eq!(exponential(&p, 0), SECOND);
}

#[test]
fn fractional_delays_are_exact_to_the_millisecond() {
    let p = BackoffPolicy {
        base_delay: ms(100),
        exponential_base: 1.5,
        ..backoff(Jitter::None)
    };
    assert_eq!(exponential(&p, 1), ms(100));
    assert_eq!(exponential(&p, 2), ms(150));
    assert_eq!(exponential(&p, 3), ms(225));
}

#[test]
fn huge_retry_numbers_and_bases_saturate_at_max_delay() {
    for base in [2.0, 1e300, f64::INFINITY, f64::NAN] {
        let p = BackoffPolicy {
            exponential_base: base,
            ..backoff(Jitter::None)
        };
        assert_eq!(exponential(&p, u32::MAX), p.max_delay, "base {base}");
    }
    let p = BackoffPolicy {
        max_delay: Duration::MAX,
        base_delay: Duration::from_secs(u64::MAX / 2),
        ..backoff(Jitter::Proportional)
    };
    assert_eq!(
        exponential(&p, 40),
        Duration::MAX,
        "saturates instead of overflowing"
    );
    let jittered = delay(&p, 40, None, &mut rng(3));
    assert!(
        jittered >= Duration::MAX / 2,
        "jitter of a saturated delay stays in range"
    );
}

#[test]
fn a_zero_base_delay_is_always_zero_and_a_base_above_the_cap_is_the_cap() {
    let zero = BackoffPolicy {
        base_delay: Duration::ZERO,
        exponential_base: f64::INFINITY,
        ..backoff(Jitter::None)
    };
    assert_eq!(
        exponential(&zero, 50),
        Duration::ZERO,
        "0 · ∞ must not become NaN"
    );
    let above = BackoffPolicy {
        base_delay: Duration::from_secs(90),
        ..backoff(Jitter::None)
    };
    assert_eq!(exponential(&above, 1), above.max_delay);
}

#[test]
fn proportional_jitter_spreads_half_to_one_and_a_half_times_the_delay() {
    let p = backoff(Jitter::Proportional);
    let d = Duration::from_secs(4); // retry 3
    let seen = draws(&p, 3, None);
    assert!(
        seen.iter().all(|x| *x >= d / 2 && *x <= d * 3 / 2),
        "within [2s, 6s]"
    );
    assert!(seen.iter().any(|x| *x < ms(2500)), "reaches the low end");
    assert!(seen.iter().any(|x| *x > ms(5500)), "reaches the high end");
}

#[test]
fn proportional_jitter_at_the_cap_spreads_below_max_delay_instead_of_piling_on_it() {
    let p = backoff(Jitter::Proportional);
    let seen = draws(&p, 10, None); // d = 60s, the cap
    assert!(seen.iter().all(|x| *x <= p.max_delay), "never above 60s");
    assert!(
        seen.iter().all(|x| *x >= Duration::from_secs(30)),
        "never below d/2"
    );
    let at_cap = seen.iter().filter(|x| **x == p.max_delay).count();
    assert_eq!(
        at_cap, 0,
        "the interval is cut at the cap, not the draw: no delay lands exactly on 60s"
    );
    assert!(
        seen.iter().any(|x| *x < Duration::from_secs(35))
            && seen.iter().any(|x| *x > Duration::from_secs(55)),
        "spread over [30s, 60s]"
    );
}

#[test]
fn full_jitter_draws_from_zero_to_the_delay() {
    let p = backoff(Jitter::Full);
    let seen = draws(&p, 4, None); // d = 8s
    assert!(seen.iter().all(|x| *x <= Duration::from_secs(8)));
    assert!(seen.iter().any(|x| *x < ms(500)), "reaches near zero");
    assert!(seen.iter().any(|x| *x > ms(7500)), "reaches near the delay");
}

#[test]
fn equal_jitter_keeps_half_the_delay_and_draws_the_other_half() {
    let p = backoff(Jitter::Equal);
    let seen = draws(&p, 4, None); // d = 8s
    let (low, high) = (Duration::from_secs(4), Duration::from_secs(8));
    assert!(
        seen.iter().all(|x| *x >= low && *x <= high),
        "within [4s, 8s]"
    );
    assert!(seen.iter().any(|x| *x < ms(4500)) && seen.iter().any(|x| *x > ms(7500)));
}

#[test]
fn decorrelated_jitter_grows_from_the_previous_delay() {
    let p = backoff(Jitter::Decorrelated);
    let first = draws(&p, 1, None);
    assert!(
        first.iter().all(|x| *x >= SECOND && *x <= 3 * SECOND),
        "the first draw is U[base, 3 · base]"
    );
    let later = draws(&p, 7, Some(Duration::from_secs(10)));
    assert!(
        later
            .iter()
            .all(|x| *x >= SECOND && *x <= Duration::from_secs(30)),
        "U[base, 3 · previous], whatever the retry number"
    );
    assert!(later.iter().any(|x| *x > Duration::from_secs(25)));
    let capped = draws(&p, 2, Some(Duration::from_secs(50)));
    assert!(capped.iter().all(|x| *x <= p.max_delay));
    assert!(
        !capped.contains(&p.max_delay),
        "U[base, min(3 · previous, max_delay)]: the interval is cut, no draw sits on the cap"
    );
    assert!(capped.iter().any(|x| *x > Duration::from_secs(55)));
}

#[test]
fn decorrelated_jitter_never_drops_below_base_delay() {
    let p = backoff(Jitter::Decorrelated);
    let seen = draws(&p, 2, Some(ms(100)));
    assert!(
        seen.iter().all(|x| *x == SECOND),
        "3 · 100ms < base: the interval is just base"
    );
}

fn jitter() -> impl Strategy<Value = Jitter> {
    prop_oneof![
        Just(Jitter::None),
        Just(Jitter::Proportional),
        Just(Jitter::Full),
        Just(Jitter::Equal),
        Just(Jitter::Decorrelated),
    ]
}

proptest! {
    #[test]
    fn every_delay_is_within_its_modes_bounds_and_never_above_max_delay(
        base_ms in 0u64..200_000,
        max_ms in 0u64..400_000,
        exponential_base in prop_oneof![0.0f64..20.0, Just(f64::INFINITY), Just(f64::NAN)],
        jitter in jitter(),
        retry in any::<u32>(),
        previous_ms in proptest::option::of(0u64..1_000_000),
        seed in any::<u64>(),
    ) {
        let p = BackoffPolicy {
            base_delay: ms(base_ms),
            max_delay: ms(max_ms),
            exponential_base,
            jitter,
        };
        let previous = previous_ms.map(ms);
        let got = delay(&p, retry, previous, &mut rng(seed));
        let d = exponential(&p, retry);
        prop_assert!(d <= p.max_delay, "the exponential delay is capped");
        prop_assert!(got <= p.max_delay, "{got:?} above max_delay {:?}", p.max_delay);
        let (low, high) = match jitter {
            Jitter::None => (d, d),
            Jitter::Proportional => (d / 2, (d * 3 / 2).min(p.max_delay)),
            Jitter::Full => (Duration::ZERO, d),
            Jitter::Equal => (d / 2, d),
            Jitter::Decorrelated => {
                let previous = previous.unwrap_or(p.base_delay);
                let high = (previous * 3).max(p.base_delay).min(p.max_delay);
                (p.base_delay.min(p.max_delay), high)
            }
        };
        prop_assert!(got >= low && got <= high, "{got:?} outside [{low:?}, {high:?}]");
        if jitter == Jitter::Decorrelated && p.base_delay <= p.max_delay {
            prop_assert!(got >= p.base_delay, "decorrelated never below base_delay");
        }
    }
}

proptest! {
    /// Once the schedule has reached `max_delay`, the clients that failed together must still
    /// be spread: no jitter mode may put its draws exactly on the cap (the old clamp-after-draw
    /// put half of the proportional draws there).
    #[test]
    fn at_the_cap_no_jitter_mode_piles_its_draws_on_max_delay(
        max_ms in 2u64..400_000,
        base_share in 0.01f64..0.5,
        jitter in prop_oneof![
            Just(Jitter::Proportional),
            Just(Jitter::Full),
            Just(Jitter::Equal),
            Just(Jitter::Decorrelated),
        ],
        seed in any::<u64>(),
    ) {
        let base_ms = ((max_ms as f64 * base_share) as u64).max(1);
        let p = BackoffPolicy {
            base_delay: ms(base_ms),
            max_delay: ms(max_ms),
            exponential_base: 2.0,
            jitter,
        };
        let mut rng = rng(seed);
        // Retry 40 has long reached the cap; decorrelated grows from a previous delay at the cap.
        let draws: Vec<Duration> =
            (0..64).map(|_| delay(&p, 40, Some(p.max_delay), &mut rng)).collect();
        let on_cap = draws.iter().filter(|d| **d == p.max_delay).count();
        prop_assert!(on_cap <= 1, "{on_cap} of 64 {jitter:?} draws sit exactly on {:?}", p.max_delay);
        prop_assert!(draws.iter().all(|d| *d <= p.max_delay));
    }
}

proptest! {
    #[test]
    fn the_exponential_delay_is_within_a_nanosecond_of_the_formula(
        base_ms in 1u64..=3_600_000,
        exponential_base in 1.0f64..=10.0,
        retry in 1u32..=10,
    ) {
        let p = BackoffPolicy {
            base_delay: ms(base_ms),
            max_delay: Duration::from_secs(3_600),
            exponential_base,
            jitter: Jitter::None,
        };
        // base_delay · exponential_base^(retry-1), through a correctly rounded power.
        let exact = base_ms as f64 * 1e6 * exponential_base.powf(f64::from(retry - 1));
        let expected_ns = exact.min(p.max_delay.as_nanos() as f64).round() as i128;
        let got_ns = exponential(&p, retry).as_nanos() as i128;
        prop_assert!(
            (got_ns - expected_ns).abs() <= 1,
            "{got_ns} ns against {expected_ns} ns for retry {retry}"
        );
    }
}

proptest! {
    #[test]
    fn nanoseconds_convert_exactly_and_saturate(
        nanos in prop_oneof![
            any::<u64>().prop_map(u128::from),
            any::<u128>(),
            (0u128..=1_000_000).prop_map(|n| Duration::MAX.as_nanos() - 500_000 + n),
        ],
    ) {
        let expected = match u64::try_from(nanos / 1_000_000_000) {
            Ok(secs) => Duration::new(secs, (nanos % 1_000_000_000) as u32),
            Err(_) => Duration::MAX,
        };
        prop_assert_eq!(from_nanos(nanos), expected);
    }
}
