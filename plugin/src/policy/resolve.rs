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

use super::duration::show;
use super::layer::{BreakerLayer, RetryLayer, ScopeLayer};
use super::raw::Toggle;
use super::rule::Across;
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

/// A part once its default is filled in: `None` when off.
fn on<T>(toggle: Toggle<T>) -> Option<T> {
    match toggle {
        Toggle::On(value) => Some(value),
        Toggle::Unset | Toggle::Off => None,
    }
}

fn breaker(l: BreakerLayer) -> BreakerPolicy {
    let b = l.values();
    let rate = on(b.failure_rate);
    // The window is `failure_rate`'s, or its default when only `slow_call` is on.
    let window = rate.clone().unwrap_or_default().values();
    let fallback = on(b.fallback).unwrap_or_default().values();
    BreakerPolicy {
        failure_threshold: b.failure_threshold,
        failure_rate: rate.map(|r| FailureRate {
            threshold: r.values().threshold,
        }),
        slow_call: on(b.slow_call).map(|s| {
            let s = s.values();
            SlowCall {
                duration: s.duration,
                rate_threshold: s.rate_threshold,
            }
        }),
        window: RateWindow {
            window: window.window,
            minimum_requests: window.minimum_requests,
        },
        timeout: b.timeout,
        // "= timeout" unless some scope set it, and never below it (see the module docs).
        max_timeout: b.max_timeout.max(b.timeout),
        half_open_attempts: b.half_open_attempts,
        probe_timeout: b.probe_timeout,
        failure_on: b.failure_on,
        count_retries: b.count_retries,
        fallback: Fallback {
            status: fallback.status,
            grpc_status: fallback.grpc_status,
            headers: fallback.headers,
            body: fallback.body,
        },
        mode: b.mode,
    }
}

fn retry(l: RetryLayer) -> RetryPolicy {
    let r = l.values();
    RetryPolicy {
        max_attempts: r.max_attempts,
        backoff: BackoffPolicy {
            base_delay: r.base_delay,
            max_delay: r.max_delay,
            exponential_base: r.exponential_base,
            jitter: r.jitter,
        },
        retry_on: r.retry_on,
        methods: r.methods,
        idempotency_header: on(r.idempotency_header),
        per_try_timeout: r.per_try_timeout,
        deadline: r.deadline,
        respect_retry_after: r.respect_retry_after,
        budget: on(r.budget).map(|b| {
            let b = b.values();
            BudgetPolicy {
                ratio: b.ratio,
                min_per_second: b.min_per_second,
                window: b.window,
            }
        }),
        max_request_body: r.max_request_body,
    }
}

/// A broken rule across fields, before it is given a scope.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Finding {
    pub path: &'static str,
    pub value: String,
    pub rule: Across,
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
                rule: Across::StatusWithoutBody,
                fields: &[
                    "circuit_breaker.fallback.status",
                    "circuit_breaker.fallback.body",
                ],
                warning: false,
            });
        }
        let written_max = match &merged.breaker {
            Toggle::On(l) => l.max_timeout,
            Toggle::Unset | Toggle::Off => None,
        };
        if let Some(max) = written_max.filter(|max| *max < b.timeout) {
            found.push(Finding {
                path: "circuit_breaker.max_timeout",
                value: show(max),
                rule: Across::MaxTimeoutFollowsTimeout(b.timeout),
                fields: &["circuit_breaker.max_timeout", "circuit_breaker.timeout"],
                warning: true,
            });
        }
        let judges = matches!(b.mode, BreakerMode::Enforce | BreakerMode::Shadow);
        if judges && b.failure_threshold == 0 && b.failure_rate.is_none() && b.slow_call.is_none() {
            found.push(Finding {
                path: "circuit_breaker.failure_threshold",
                value: "0".to_owned(),
                rule: Across::NeverOpens,
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
            rule: Across::MaxDelayBelowBaseDelay(r.backoff.base_delay),
            fields: &["retry.max_delay", "retry.base_delay"],
            warning: false,
        });
    }
    // The next two only matter when a request may be retried at all.
    if r.max_attempts > 1 && r.deadline < r.per_try_timeout {
        found.push(Finding {
            path: "retry.deadline",
            value: show(r.deadline),
            rule: Across::DeadlineBelowPerTryTimeout(r.per_try_timeout),
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
            rule: Across::PerTryTimeoutOutlastsOpenTime(b.timeout),
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
