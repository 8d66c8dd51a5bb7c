//! The rules of the `retry` fields, one scope at a time: the raw retry becomes a [`RetryLayer`]
//! holding the values it sets.

use super::bounds::*;
use super::check::{self, duration, field, integer, number, toggle};
use super::layer::{BudgetLayer, RetryLayer};
use super::problem::At;
use super::raw::{JitterName, RawBudget, RawJitter, RawRetry, Toggle};
use super::types::Jitter;

/// Checks the fields of a `retry` object; `at` is at that object.
pub(crate) fn retry(at: &mut At, raw: &RawRetry) -> RetryLayer {
    RetryLayer {
        max_attempts: field(at, "max_attempts", &raw.max_attempts, |at, v| {
            let n: u32 = integer(at, *v, MAX_ATTEMPTS)?;
            if n > MAX_ATTEMPTS_WARN_ABOVE {
                at.warning(
                    n.to_string(),
                    "is above 5, so every failure multiplies the load on a struggling upstream",
                );
            }
            Some(n)
        }),
        base_delay: field(at, "base_delay", &raw.base_delay, |at, v| {
            duration(at, v, DELAY)
        }),
        max_delay: field(at, "max_delay", &raw.max_delay, |at, v| {
            duration(at, v, DELAY)
        }),
        exponential_base: field(at, "exponential_base", &raw.exponential_base, |at, v| {
            number(at, *v, EXPONENTIAL_BASE)
        }),
        jitter: raw.jitter.map(jitter),
        retry_on: field(at, "retry_on", &raw.retry_on, |at, v| {
            check::outcomes(
                at,
                v,
                |code| RETRYABLE_5XX.contains(&code) || RETRYABLE_4XX.contains(&code),
                "is never retried, a retry_on code must be 408, 409, 429 or 500..=599",
            )
        }),
        methods: field(at, "methods", &raw.methods, |at, v| check::methods(at, v)),
        idempotency_header: match &raw.idempotency_header {
            Toggle::Unset => Toggle::Unset,
            Toggle::Off => Toggle::Off,
            Toggle::On(name) => at
                .field("idempotency_header", |at| check::header_name(at, name))
                .map_or(Toggle::Unset, Toggle::On),
        },
        per_try_timeout: field(at, "per_try_timeout", &raw.per_try_timeout, |at, v| {
            duration(at, v, REQUEST_TIME)
        }),
        deadline: field(at, "deadline", &raw.deadline, |at, v| {
            duration(at, v, REQUEST_TIME)
        }),
        respect_retry_after: raw.respect_retry_after,
        budget: toggle(at, "budget", &raw.budget, budget),
        max_request_body: field(at, "max_request_body", &raw.max_request_body, |at, v| {
            integer(at, *v, MAX_REQUEST_BODY)
        }),
    }
}

fn jitter(raw: RawJitter) -> Jitter {
    match raw {
        RawJitter::Switch(true) | RawJitter::Named(JitterName::Proportional) => {
            Jitter::Proportional
        }
        RawJitter::Switch(false) | RawJitter::Named(JitterName::None) => Jitter::None,
        RawJitter::Named(JitterName::Full) => Jitter::Full,
        RawJitter::Named(JitterName::Equal) => Jitter::Equal,
        RawJitter::Named(JitterName::Decorrelated) => Jitter::Decorrelated,
    }
}

fn budget(at: &mut At, raw: &RawBudget) -> BudgetLayer {
    BudgetLayer {
        ratio: field(at, "ratio", &raw.ratio, |at, v| {
            number(at, *v, BUDGET_RATIO)
        }),
        min_per_second: field(at, "min_per_second", &raw.min_per_second, |at, v| {
            integer(at, *v, MIN_PER_SECOND)
        }),
        window: field(at, "window", &raw.window, |at, v| duration(at, v, WINDOW)),
    }
}
