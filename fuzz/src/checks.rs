//! What a policy that passed validation must look like: every number inside its bound, every
//! list in its documented form. A violation panics with what and why, which the fuzzer reports
//! as a crash.

use breakwater::policy::bounds;
use breakwater::policy::{
    BreakerPolicy, BudgetPolicy, Effective, OutcomeMatcher, Parsed, RetryPolicy,
};

fn within<T: PartialOrd + std::fmt::Debug>(
    what: &str,
    value: T,
    range: &std::ops::RangeInclusive<T>,
) {
    assert!(
        range.contains(&value),
        "a validated {what} is {value:?}, outside its bound {range:?}"
    );
}

fn count_within(what: &str, value: u32, range: &std::ops::RangeInclusive<i64>) {
    within(what, i64::from(value), range);
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn sorted_codes(what: &str, m: &OutcomeMatcher) {
    assert!(
        m.codes.windows(2).all(|w| w[0] < w[1]),
        "{what} codes must be sorted without duplicates: {:?}",
        m.codes
    );
}

/// A validated breaker policy.
pub fn breaker(b: &BreakerPolicy) {
    count_within(
        "failure_threshold",
        b.failure_threshold,
        &bounds::FAILURE_THRESHOLD,
    );
    if let Some(r) = b.failure_rate {
        assert!(
            r.threshold > 0.0 && r.threshold <= bounds::RATE_THRESHOLD_MAX,
            "failure_rate.threshold {} must be in (0, 1]",
            r.threshold
        );
    }
    if let Some(s) = b.slow_call {
        within(
            "slow_call.duration",
            s.duration,
            &bounds::SLOW_CALL_DURATION,
        );
        assert!(
            s.rate_threshold > 0.0 && s.rate_threshold <= bounds::RATE_THRESHOLD_MAX,
            "slow_call.rate_threshold {} must be in (0, 1]",
            s.rate_threshold
        );
    }
    within("rate window", b.window.window, &bounds::WINDOW);
    count_within(
        "minimum_requests",
        b.window.minimum_requests,
        &bounds::MINIMUM_REQUESTS,
    );
    within("timeout", b.timeout, &bounds::OPEN_TIME);
    within("max_timeout", b.max_timeout, &bounds::OPEN_TIME);
    assert!(
        b.max_timeout >= b.timeout,
        "max_timeout {:?} is below timeout {:?}: the open time would shrink on a re-open",
        b.max_timeout,
        b.timeout
    );
    count_within(
        "half_open_attempts",
        b.half_open_attempts,
        &bounds::HALF_OPEN_ATTEMPTS,
    );
    within("probe_timeout", b.probe_timeout, &bounds::PROBE_TIMEOUT);
    sorted_codes("failure_on", &b.failure_on);
    for code in &b.failure_on.codes {
        within("failure_on code", *code, &bounds::FAILURE_CODES);
    }
    within(
        "fallback.status",
        i64::from(b.fallback.status),
        &bounds::FALLBACK_STATUS,
    );
    assert!(
        b.fallback.body.len() <= bounds::MAX_FALLBACK_BODY_BYTES,
        "fallback body of {} bytes is over the bound",
        b.fallback.body.len()
    );
    for (name, value) in &b.fallback.headers {
        assert!(
            is_token(name) && name.bytes().all(|c| !c.is_ascii_uppercase()),
            "fallback header name {name:?} must be a lower-case token"
        );
        assert!(
            value.chars().all(|c| c == '\t' || !c.is_control()) && value.trim() == value,
            "fallback header value {value:?} could not be sent as a header"
        );
    }
}

/// A validated budget policy.
pub fn budget(b: &BudgetPolicy) {
    assert!(
        b.ratio.is_finite() && bounds::BUDGET_RATIO.contains(&b.ratio),
        "budget.ratio {} is outside {:?}",
        b.ratio,
        bounds::BUDGET_RATIO
    );
    count_within(
        "budget.min_per_second",
        b.min_per_second,
        &bounds::MIN_PER_SECOND,
    );
    within("budget.window", b.window, &bounds::WINDOW);
}

/// A validated retry policy.
pub fn retry(r: &RetryPolicy) {
    count_within("max_attempts", r.max_attempts, &bounds::MAX_ATTEMPTS);
    within("base_delay", r.backoff.base_delay, &bounds::DELAY);
    within("max_delay", r.backoff.max_delay, &bounds::DELAY);
    assert!(
        r.backoff.max_delay >= r.backoff.base_delay,
        "max_delay {:?} below base_delay {:?}",
        r.backoff.max_delay,
        r.backoff.base_delay
    );
    assert!(
        bounds::EXPONENTIAL_BASE.contains(&r.backoff.exponential_base),
        "exponential_base {} outside its bound",
        r.backoff.exponential_base
    );
    sorted_codes("retry_on", &r.retry_on);
    for code in &r.retry_on.codes {
        assert!(
            bounds::RETRYABLE_4XX.contains(code) || bounds::RETRYABLE_5XX.contains(code),
            "retry_on lists {code}, a status that must never be retried"
        );
    }
    for method in &r.methods {
        assert!(
            is_token(method) && method.bytes().all(|c| !c.is_ascii_lowercase()),
            "method {method:?} must be an upper-case token"
        );
    }
    if let Some(header) = &r.idempotency_header {
        assert!(
            is_token(header) && header.bytes().all(|c| !c.is_ascii_uppercase()),
            "idempotency_header {header:?} must be a lower-case token"
        );
    }
    within("per_try_timeout", r.per_try_timeout, &bounds::REQUEST_TIME);
    within("deadline", r.deadline, &bounds::REQUEST_TIME);
    if r.max_attempts > 1 {
        assert!(
            r.deadline >= r.per_try_timeout,
            "deadline {:?} below per_try_timeout {:?}: no retry could ever finish",
            r.deadline,
            r.per_try_timeout
        );
    }
    if let Some(b) = &r.budget {
        budget(b);
    }
    let max_body = u64::try_from(*bounds::MAX_REQUEST_BODY.end()).unwrap_or(u64::MAX);
    assert!(
        r.max_request_body <= max_body,
        "max_request_body {} over the bound",
        r.max_request_body
    );
}

/// An effective policy.
pub fn effective(e: &Effective) {
    if let Some(b) = &e.breaker {
        breaker(b);
    }
    if let Some(r) = &e.retry {
        retry(r);
    }
}

/// A parsed policy: every entry valid, lookups consistent, and the messages printable.
pub fn parsed(parsed: &Parsed, routes: &[&str]) {
    for warning in &parsed.warnings {
        assert!(
            !warning.to_string().is_empty(),
            "a warning must say something"
        );
    }
    let policy = &parsed.policy;
    let unknown = "\u{0}no such name\u{0}";
    let mut clusters: Vec<&str> = policy.clusters().collect();
    clusters.push(unknown);
    clusters.push("");
    for cluster in clusters {
        let without_route = policy.lookup(cluster, unknown);
        effective(without_route);
        assert_eq!(
            policy.breaker_for(cluster),
            without_route.breaker.as_ref(),
            "the breaker of cluster {cluster:?} is the route-less entry's"
        );
        for route in routes.iter().copied().chain([unknown, ""]) {
            let entry = policy.lookup(cluster, route);
            effective(entry);
            if entry.breaker.is_some() {
                assert_eq!(
                    entry.breaker.as_ref(),
                    policy.breaker_for(cluster),
                    "route {route:?} changed the breaker settings of cluster {cluster:?}: \
                     breaker state is per cluster"
                );
            }
        }
    }
    let other = "\u{0}another unknown name\u{0}";
    assert_eq!(
        policy.lookup(unknown, unknown),
        policy.lookup(other, other),
        "every cluster and route the policy does not name gets the same default entry"
    );
}
