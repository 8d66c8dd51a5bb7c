//! Policy values for the core's tests, built directly (not parsed): the defaults of `POLICY.md`,
//! which tests then change field by field.

use std::time::Duration;

use rand::{rngs::StdRng, SeedableRng};

use crate::policy::{
    BackoffPolicy, BudgetPolicy, Jitter, OutcomeClass, OutcomeMatcher, RetryPolicy,
};

/// `retry` with every default of `POLICY.md`.
pub fn retry_policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        backoff: backoff(Jitter::Proportional),
        retry_on: matcher(
            &[
                OutcomeClass::Status5xx,
                OutcomeClass::Reset,
                OutcomeClass::ConnectFailure,
            ],
            &[],
        ),
        methods: ["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"]
            .map(String::from)
            .to_vec(),
        idempotency_header: Some("idempotency-key".to_string()),
        per_try_timeout: Duration::from_secs(10),
        deadline: Duration::from_secs(30),
        respect_retry_after: true,
        budget: Some(budget_policy()),
        max_request_body: 65536,
    }
}

/// The default schedule (1s, 60s, ×2) with the given jitter.
pub fn backoff(jitter: Jitter) -> BackoffPolicy {
    BackoffPolicy {
        base_delay: Duration::from_secs(1),
        max_delay: Duration::from_secs(60),
        exponential_base: 2.0,
        jitter,
    }
}

/// The default budget: 20% of requests plus 10 retries a second, over 10 s.
pub fn budget_policy() -> BudgetPolicy {
    BudgetPolicy {
        ratio: 0.2,
        min_per_second: 10,
        window: Duration::from_secs(10),
    }
}

/// A matcher of these classes and codes (codes sorted, as validation leaves them).
pub fn matcher(classes: &[OutcomeClass], codes: &[u16]) -> OutcomeMatcher {
    let mut codes = codes.to_vec();
    codes.sort_unstable();
    codes.dedup();
    OutcomeMatcher {
        classes: classes.to_vec(),
        codes,
    }
}

/// A seeded RNG, so a test sees the same draws on every run.
pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// Milliseconds as a [`Duration`].
pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}
