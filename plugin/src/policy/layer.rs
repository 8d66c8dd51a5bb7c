//! One scope of the policy (`default`, a cluster or a route) after its fields were checked: the
//! values it sets, in domain units, and nothing for what it leaves to the scopes above.
//!
//! # Merge
//!
//! Layers merge like a JSON merge patch, in the order `default` → `clusters.<name>` →
//! `routes.<name>`: a later layer overrides only the fields it sets, nested objects
//! (`failure_rate`, `slow_call`, `fallback`, `budget`) merge field by field, and `null` turns a
//! part off. A part turned off and set again by a later layer starts from the defaults, not from
//! what the earlier layers had set before the `null`. Lists (`methods`, `failure_on`, ...) and
//! the fallback `headers` are values: a later layer replaces them whole, so a header or a method
//! can be taken away.

use super::raw::Toggle;
use super::types::{BreakerMode, Jitter, OutcomeMatcher};
use std::time::Duration;

/// Merging a later layer over an earlier one.
pub(crate) trait Merge {
    /// `self` with every field that `later` sets taken from `later`.
    fn merge(self, later: Self) -> Self;
}

impl<T> Merge for Option<T> {
    fn merge(self, later: Self) -> Self {
        later.or(self)
    }
}

/// A plain value (a header name): the later one wins whole.
impl Merge for String {
    fn merge(self, later: Self) -> Self {
        later
    }
}

impl<T: Merge + Default> Merge for Toggle<T> {
    fn merge(self, later: Self) -> Self {
        match (self, later) {
            (earlier, Toggle::Unset) => earlier,
            (_, Toggle::Off) => Toggle::Off,
            (Toggle::On(earlier), Toggle::On(later)) => Toggle::On(earlier.merge(later)),
            (_, Toggle::On(later)) => Toggle::On(T::default().merge(later)),
        }
    }
}

/// Implements [`Merge`] field by field.
macro_rules! merge_fields {
    ($name:ident { $($field:ident),* $(,)? }) => {
        impl Merge for $name {
            fn merge(self, later: Self) -> Self {
                $name { $($field: self.$field.merge(later.$field)),* }
            }
        }
    };
}

/// A scope: both halves.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ScopeLayer {
    pub breaker: Toggle<BreakerLayer>,
    pub retry: Toggle<RetryLayer>,
}
merge_fields!(ScopeLayer { breaker, retry });

#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct BreakerLayer {
    pub failure_threshold: Option<u32>,
    pub failure_rate: Toggle<FailureRateLayer>,
    pub slow_call: Toggle<SlowCallLayer>,
    pub timeout: Option<Duration>,
    pub max_timeout: Option<Duration>,
    pub half_open_attempts: Option<u32>,
    pub probe_timeout: Option<Duration>,
    pub failure_on: Option<OutcomeMatcher>,
    pub count_retries: Option<bool>,
    /// Merged field by field like the parts that null turns off, but never `Off`: the reader
    /// refuses `"fallback": null` (an open breaker must answer something).
    pub fallback: Toggle<FallbackLayer>,
    pub mode: Option<BreakerMode>,
}

merge_fields!(BreakerLayer {
    failure_threshold,
    failure_rate,
    slow_call,
    timeout,
    max_timeout,
    half_open_attempts,
    probe_timeout,
    failure_on,
    count_retries,
    fallback,
    mode,
});

#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct FailureRateLayer {
    pub threshold: Option<f64>,
    pub minimum_requests: Option<u32>,
    pub window: Option<Duration>,
}
merge_fields!(FailureRateLayer {
    threshold,
    minimum_requests,
    window
});

#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct SlowCallLayer {
    pub duration: Option<Duration>,
    pub rate_threshold: Option<f64>,
}
merge_fields!(SlowCallLayer {
    duration,
    rate_threshold
});

#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct FallbackLayer {
    pub status: Option<u16>,
    pub grpc_status: Option<u8>,
    pub headers: Option<Vec<(String, String)>>,
    pub body: Option<String>,
}
merge_fields!(FallbackLayer {
    status,
    grpc_status,
    headers,
    body
});

#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct RetryLayer {
    pub max_attempts: Option<u32>,
    pub base_delay: Option<Duration>,
    pub max_delay: Option<Duration>,
    pub exponential_base: Option<f64>,
    pub jitter: Option<Jitter>,
    pub retry_on: Option<OutcomeMatcher>,
    pub methods: Option<Vec<String>>,
    pub idempotency_header: Toggle<String>,
    pub per_try_timeout: Option<Duration>,
    pub deadline: Option<Duration>,
    pub respect_retry_after: Option<bool>,
    pub budget: Toggle<BudgetLayer>,
    pub max_request_body: Option<u64>,
}

merge_fields!(RetryLayer {
    max_attempts,
    base_delay,
    max_delay,
    exponential_base,
    jitter,
    retry_on,
    methods,
    idempotency_header,
    per_try_timeout,
    deadline,
    respect_retry_after,
    budget,
    max_request_body,
});

#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct BudgetLayer {
    pub ratio: Option<f64>,
    pub min_per_second: Option<u32>,
    pub window: Option<Duration>,
}
merge_fields!(BudgetLayer {
    ratio,
    min_per_second,
    window
});
