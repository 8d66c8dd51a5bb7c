//! Validated breaker and budget policies built from fuzzer bytes, every number inside the bounds
//! that policy validation enforces (`breakwater::policy::bounds`), edges included.

use std::ops::RangeInclusive;
use std::time::Duration;

use arbitrary::{Result, Unstructured};
use breakwater::policy::bounds;
use breakwater::policy::{
    BreakerMode, BreakerPolicy, BudgetPolicy, FailureRate, Fallback, OutcomeClass, OutcomeMatcher,
    RateWindow, SlowCall,
};

/// A whole number in `range`, with its ends and small values more likely than a uniform draw
/// would make them (bugs live at edges).
pub fn number_in(u: &mut Unstructured, range: RangeInclusive<u64>) -> Result<u64> {
    let (low, high) = (*range.start(), *range.end());
    Ok(match u.int_in_range(0..=7u8)? {
        0 => low,
        1 => high,
        2 => low.saturating_add(1).min(high),
        3 => low.saturating_add(u.int_in_range(0..=16)?).min(high),
        _ => u.int_in_range(low..=high)?,
    })
}

/// A duration in `range`, whole milliseconds.
pub fn duration_in(u: &mut Unstructured, range: &RangeInclusive<Duration>) -> Result<Duration> {
    let ms = |d: &Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let millis = number_in(u, ms(range.start())..=ms(range.end()))?;
    Ok(Duration::from_millis(millis))
}

fn count_in(u: &mut Unstructured, range: &RangeInclusive<i64>) -> Result<u32> {
    let low = u64::try_from(*range.start()).unwrap_or(0);
    let high = u64::try_from(*range.end()).unwrap_or(0);
    Ok(u32::try_from(number_in(u, low..=high)?).unwrap_or(u32::MAX))
}

/// A fraction in `(0, 1]`: the rate thresholds.
pub fn rate(u: &mut Unstructured) -> Result<f64> {
    Ok(match u.int_in_range(0..=4u8)? {
        0 => bounds::RATE_THRESHOLD_MAX,
        1 => f64::MIN_POSITIVE,
        2 => 0.5,
        _ => {
            let x = f64::from(u.arbitrary::<u32>()?) / f64::from(u32::MAX);
            if x > 0.0 {
                x
            } else {
                bounds::RATE_THRESHOLD_MAX
            }
        }
    })
}

fn outcome_classes(u: &mut Unstructured) -> Result<Vec<OutcomeClass>> {
    let all = [
        OutcomeClass::Status5xx,
        OutcomeClass::GatewayError,
        OutcomeClass::Reset,
        OutcomeClass::ConnectFailure,
        OutcomeClass::Timeout,
        OutcomeClass::Grpc(14),
        OutcomeClass::Grpc(4),
    ];
    let mut classes = Vec::new();
    for class in all {
        if u.arbitrary()? {
            classes.push(class);
        }
    }
    Ok(classes)
}

/// A `failure_on`: classes and status codes 400..=599, codes sorted without duplicates.
pub fn failure_on(u: &mut Unstructured) -> Result<OutcomeMatcher> {
    let classes = outcome_classes(u)?;
    let mut codes = Vec::new();
    for _ in 0..u.int_in_range(0..=3u8)? {
        let (low, high) = (*bounds::FAILURE_CODES.start(), *bounds::FAILURE_CODES.end());
        codes.push(u.int_in_range(low..=high)?);
    }
    codes.sort_unstable();
    codes.dedup();
    Ok(OutcomeMatcher { classes, codes })
}

fn mode(u: &mut Unstructured) -> Result<BreakerMode> {
    Ok(match u.int_in_range(0..=7u8)? {
        0 => BreakerMode::Shadow,
        1 => BreakerMode::ForcedOpen,
        2 => BreakerMode::Disabled,
        _ => BreakerMode::Enforce,
    })
}

/// A breaker policy as validation would let it through.
pub fn breaker_policy(u: &mut Unstructured) -> Result<BreakerPolicy> {
    let failure_rate = if u.arbitrary()? {
        Some(FailureRate {
            threshold: rate(u)?,
        })
    } else {
        None
    };
    let slow_call = if u.arbitrary()? {
        Some(SlowCall {
            duration: duration_in(u, &bounds::SLOW_CALL_DURATION)?,
            rate_threshold: rate(u)?,
        })
    } else {
        None
    };
    let window = RateWindow {
        window: duration_in(u, &bounds::WINDOW)?,
        minimum_requests: count_in(u, &bounds::MINIMUM_REQUESTS)?,
    };
    let timeout = duration_in(u, &bounds::OPEN_TIME)?;
    // `max_timeout` is never below `timeout` once validated.
    let max_timeout = duration_in(u, &(timeout..=*bounds::OPEN_TIME.end()))?;
    // Mostly few probes: the interesting arithmetic is at small numbers.
    let half_open_attempts = if u.arbitrary()? {
        u32::from(u.int_in_range(1..=4u8)?)
    } else {
        count_in(u, &bounds::HALF_OPEN_ATTEMPTS)?
    };
    // Mostly small thresholds, where trips happen within a short run of operations.
    let failure_threshold = if u.arbitrary()? {
        u32::from(u.int_in_range(0..=8u8)?)
    } else {
        count_in(u, &bounds::FAILURE_THRESHOLD)?
    };
    Ok(BreakerPolicy {
        failure_threshold,
        failure_rate,
        slow_call,
        window,
        timeout,
        max_timeout,
        half_open_attempts,
        probe_timeout: duration_in(u, &bounds::PROBE_TIMEOUT)?,
        failure_on: failure_on(u)?,
        count_retries: u.arbitrary()?,
        fallback: Fallback {
            status: 503,
            grpc_status: 14,
            headers: Vec::new(),
            body: String::new(),
        },
        mode: mode(u)?,
    })
}

/// A retry budget policy as validation would let it through.
pub fn budget_policy(u: &mut Unstructured) -> Result<BudgetPolicy> {
    let ratio = match u.int_in_range(0..=3u8)? {
        0 => *bounds::BUDGET_RATIO.start(),
        1 => *bounds::BUDGET_RATIO.end(),
        _ => {
            let x = f64::from(u.arbitrary::<u32>()?) / f64::from(u32::MAX);
            x * bounds::BUDGET_RATIO.end()
        }
    };
    Ok(BudgetPolicy {
        ratio,
        min_per_second: count_in(u, &bounds::MIN_PER_SECOND)?,
        window: duration_in(u, &bounds::WINDOW)?,
    })
}
