//! From merged layers to the effective policy: defaults fill what no scope set, then the rules
//! that relate several fields are checked on the result.
//!
//! # Rules across fields
//!
//! They are checked on every merged combination, because the values they relate may come from
//! different scopes (the route that sets `max_delay` may meet a cluster that set `base_delay`).
//!
//! - errors: `max_delay` ≥ `base_delay`; with retries on, `deadline` ≥ `per_try_timeout` (or no
//!   retry could ever finish in time); a fallback `status` of 204 or 304 with a `body` (such a
//!   response has no body: HTTP/1.1 clients would read the body as the next response).
//! - warnings: `per_try_timeout` longer than the breaker `timeout` (one attempt outlasts it); a
//!   breaker that can never open (every trigger off while it enforces or shadows).
//!
//! # `max_timeout` follows a raised `timeout`
//!
//! `max_timeout` defaults to "= timeout", and `POLICY.md`'s own example writes both as 60s in
//! `default` and then raises `timeout` to 120s for one cluster. So a `max_timeout` shorter than
//! a `timeout` set in another scope is not an error: the cap becomes the timeout (the open time
//! does not grow) and a warning says so. Written in the same scope, it is an error (see
//! `read_breaker`): there it can only be a mistake.

use super::defaults as d;
use super::duration::show;
use super::layer::{BreakerLayer, RetryLayer, ScopeLayer};
use super::raw::Toggle;
use super::types::*;

/// The effective policy of a merged layer.
pub(crate) fn effective(layer: &ScopeLayer) -> Effective {
    Effective {
        breaker: part(&layer.breaker).map(breaker),
        retry: part(&layer.retry).map(retry),
    }
}

/// The part of a policy as merged: `None` when turned off, the defaults when never set.
fn part<T: Default + Clone>(toggle: &Toggle<T>) -> Option<T> {
    match toggle {
        Toggle::Off => None,
        Toggle::Unset => Some(T::default()),
        Toggle::On(layer) => Some(layer.clone()),
    }
}

fn breaker(l: BreakerLayer) -> BreakerPolicy {
    let rate = part_if_on(&l.failure_rate);
    let slow = part_if_on(&l.slow_call);
    let fallback = part(&l.fallback).unwrap_or_default();
    let timeout = l.timeout.unwrap_or(d::TIMEOUT);
    BreakerPolicy {
        failure_threshold: l.failure_threshold.unwrap_or(d::FAILURE_THRESHOLD),
        failure_rate: rate.map(|r| FailureRate {
            threshold: r.threshold.unwrap_or(d::FAILURE_RATE_THRESHOLD),
        }),
        slow_call: slow.map(|s| SlowCall {
            duration: s.duration.unwrap_or(d::SLOW_CALL_DURATION),
            rate_threshold: s.rate_threshold.unwrap_or(d::SLOW_CALL_RATE_THRESHOLD),
        }),
        window: RateWindow {
            window: rate.and_then(|r| r.window).unwrap_or(d::WINDOW),
            minimum_requests: rate
                .and_then(|r| r.minimum_requests)
                .unwrap_or(d::MINIMUM_REQUESTS),
        },
        timeout,
        // "= timeout" unless some scope set it, and never below it (see the module docs).
        max_timeout: l.max_timeout.map_or(timeout, |max| max.max(timeout)),
        half_open_attempts: l.half_open_attempts.unwrap_or(d::HALF_OPEN_ATTEMPTS),
        probe_timeout: l.probe_timeout.unwrap_or(d::PROBE_TIMEOUT),
        failure_on: l.failure_on.unwrap_or_else(|| classes(&d::FAILURE_ON)),
        count_retries: l.count_retries.unwrap_or(d::COUNT_RETRIES),
        fallback: Fallback {
            status: fallback.status.unwrap_or(d::FALLBACK_STATUS),
            grpc_status: fallback.grpc_status.unwrap_or(d::FALLBACK_GRPC_STATUS),
            headers: fallback.headers.unwrap_or_else(|| {
                let pairs = d::FALLBACK_HEADERS.iter();
                pairs.map(|(n, v)| (n.to_string(), v.to_string())).collect()
            }),
            body: fallback.body.unwrap_or_else(|| d::FALLBACK_BODY.to_owned()),
        },
        mode: l.mode.unwrap_or(d::MODE),
    }
}

/// An optional trigger: off unless some scope turned it on.
fn part_if_on<T>(toggle: &Toggle<T>) -> Option<&T> {
    match toggle {
        Toggle::On(layer) => Some(layer),
        Toggle::Unset | Toggle::Off => None,
    }
}

fn retry(l: RetryLayer) -> RetryPolicy {
    RetryPolicy {
        max_attempts: l.max_attempts.unwrap_or(d::MAX_ATTEMPTS),
        backoff: BackoffPolicy {
            base_delay: l.base_delay.unwrap_or(d::BASE_DELAY),
            max_delay: l.max_delay.unwrap_or(d::MAX_DELAY),
            exponential_base: l.exponential_base.unwrap_or(d::EXPONENTIAL_BASE),
            jitter: l.jitter.unwrap_or(d::JITTER),
        },
        retry_on: l.retry_on.unwrap_or_else(|| classes(&d::RETRY_ON)),
        methods: l
            .methods
            .unwrap_or_else(|| d::METHODS.map(String::from).to_vec()),
        idempotency_header: match l.idempotency_header {
            Toggle::Off => None,
            Toggle::Unset => Some(d::IDEMPOTENCY_HEADER.to_owned()),
            Toggle::On(name) => Some(name),
        },
        per_try_timeout: l.per_try_timeout.unwrap_or(d::PER_TRY_TIMEOUT),
        deadline: l.deadline.unwrap_or(d::DEADLINE),
        respect_retry_after: l.respect_retry_after.unwrap_or(d::RESPECT_RETRY_AFTER),
        // Unlike the triggers, the budget is on by default.
        budget: part(&l.budget).map(|b| BudgetPolicy {
            ratio: b.ratio.unwrap_or(d::BUDGET_RATIO),
            min_per_second: b.min_per_second.unwrap_or(d::BUDGET_MIN_PER_SECOND),
            window: b.window.unwrap_or(d::BUDGET_WINDOW),
        }),
        max_request_body: l.max_request_body.unwrap_or(d::MAX_REQUEST_BODY),
    }
}

fn classes(list: &[OutcomeClass]) -> OutcomeMatcher {
    OutcomeMatcher {
        classes: list.to_vec(),
        codes: Vec::new(),
    }
}

/// A broken rule across fields, before it is given a scope.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Finding {
    pub path: &'static str,
    pub value: String,
    pub rule: String,
    /// Every field the rule reads: when one of them has its own problem, the rule is skipped.
    pub fields: &'static [&'static str],
    pub warning: bool,
}

/// The rules across fields, on a merged layer and its effective policy.
pub(crate) fn cross_check(merged: &ScopeLayer, e: &Effective) -> Vec<Finding> {
    let mut found = Vec::new();
    if let Some(b) = &e.breaker {
        if matches!(b.fallback.status, 204 | 304) && !b.fallback.body.is_empty() {
            found.push(Finding {
                path: "circuit_breaker.fallback.status",
                value: b.fallback.status.to_string(),
                rule: "is a status that has no body, but circuit_breaker.fallback.body is set; \
                       drop the body or choose another status"
                    .to_owned(),
                fields: &[
                    "circuit_breaker.fallback.status",
                    "circuit_breaker.fallback.body",
                ],
                warning: false,
            });
        }
        let written_max = part_if_on(&merged.breaker).and_then(|l| l.max_timeout);
        if let Some(max) = written_max.filter(|max| *max < b.timeout) {
            found.push(Finding {
                path: "circuit_breaker.max_timeout",
                value: show(max),
                rule: format!(
                    "is shorter than circuit_breaker.timeout {} set in another scope, so the \
                     open time does not grow on a re-open",
                    show(b.timeout)
                ),
                fields: &["circuit_breaker.max_timeout", "circuit_breaker.timeout"],
                warning: true,
            });
        }
        let judges = matches!(b.mode, BreakerMode::Enforce | BreakerMode::Shadow);
        if judges && b.failure_threshold == 0 && b.failure_rate.is_none() && b.slow_call.is_none() {
            found.push(Finding {
                path: "circuit_breaker.failure_threshold",
                value: "0".to_owned(),
                rule: "turns off the only trigger (neither failure_rate nor slow_call is set), \
                       so the breaker never opens"
                    .to_owned(),
                fields: &[
                    "circuit_breaker.failure_threshold",
                    "circuit_breaker.failure_rate",
                    "circuit_breaker.slow_call",
                    "circuit_breaker.mode",
                ],
                warning: true,
            });
        }
    }
    let Some(r) = &e.retry else {
        return found;
    };
    if r.backoff.max_delay < r.backoff.base_delay {
        found.push(Finding {
            path: "retry.max_delay",
            value: show(r.backoff.max_delay),
            rule: format!(
                "is shorter than retry.base_delay {}, must be at least that",
                show(r.backoff.base_delay)
            ),
            fields: &["retry.max_delay", "retry.base_delay"],
            warning: false,
        });
    }
    // The next two only matter when a request may be retried at all.
    if r.max_attempts > 1 && r.deadline < r.per_try_timeout {
        found.push(Finding {
            path: "retry.deadline",
            value: show(r.deadline),
            rule: format!(
                "is shorter than retry.per_try_timeout {}, so no retry could finish in time; \
                 must be at least that",
                show(r.per_try_timeout)
            ),
            fields: &[
                "retry.deadline",
                "retry.per_try_timeout",
                "retry.max_attempts",
            ],
            warning: false,
        });
    }
    let breaker = e.breaker.as_ref().filter(|b| r.per_try_timeout > b.timeout);
    if let Some(b) = breaker.filter(|_| r.max_attempts > 1) {
        found.push(Finding {
            path: "retry.per_try_timeout",
            value: show(r.per_try_timeout),
            rule: format!(
                "is longer than circuit_breaker.timeout {}, so one attempt outlasts the \
                 breaker's open time",
                show(b.timeout)
            ),
            fields: &[
                "retry.per_try_timeout",
                "circuit_breaker.timeout",
                "retry.max_attempts",
            ],
            warning: true,
        });
    }
    found
}
