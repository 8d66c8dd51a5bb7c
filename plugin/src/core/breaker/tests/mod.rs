//! Specifications of the breaker: one file per phase or concern, shared fixtures here.

mod clamp;
mod closed;
mod codec_bytes;
mod codec_errors;
mod events;
mod fuzz_regressions;
mod half_open;
mod modes;
mod open;
mod props;
mod quiet;
mod successes;

use std::time::Duration;

use rand::rngs::StdRng;
use rand::SeedableRng;

use super::{Admission, Breaker, Call, Permit, Phase, Rejection, Step};
use crate::core::Millis;
use crate::policy::{
    BreakerMode, BreakerPolicy, FailureRate, Fallback, OutcomeClass, OutcomeMatcher, RateWindow,
    SlowCall,
};

/// A moment on the host clock, far from 0 so that nothing works by accident of a zero clock.
pub(super) const T0: Millis = 1_700_000_000_000;

/// The policy with POLICY.md's defaults: 5 consecutive failures, no rate triggers, 60s open,
/// one probe, 30s probe timeout, `enforce`.
pub(super) fn policy() -> BreakerPolicy {
    BreakerPolicy {
        failure_threshold: 5,
        failure_rate: None,
        slow_call: None,
        window: RateWindow {
            window: Duration::from_secs(10),
            minimum_requests: 20,
        },
        timeout: Duration::from_secs(60),
        max_timeout: Duration::from_secs(60),
        half_open_attempts: 1,
        probe_timeout: Duration::from_secs(30),
        failure_on: OutcomeMatcher {
            classes: vec![
                OutcomeClass::Status5xx,
                OutcomeClass::Reset,
                OutcomeClass::ConnectFailure,
                OutcomeClass::Timeout,
                OutcomeClass::NoHealthyUpstream,
            ],
            codes: vec![],
        },
        count_retries: false,
        fallback: Fallback {
            status: 503,
            grpc_status: 14,
            headers: vec![("content-type".into(), "application/json".into())],
            body: r#"{"source":"fallback"}"#.into(),
        },
        mode: BreakerMode::Enforce,
    }
}

/// The default policy, changed by `f`.
pub(super) fn policy_with(f: impl FnOnce(&mut BreakerPolicy)) -> BreakerPolicy {
    let mut p = policy();
    f(&mut p);
    p
}

/// A failure-rate trigger: `threshold` over a 10s window once `minimum_requests` finished; the
/// consecutive trigger off so that only the rate can trip.
pub(super) fn rate_policy(threshold: f64, minimum_requests: u32) -> BreakerPolicy {
    policy_with(|p| {
        p.failure_threshold = 0;
        p.failure_rate = Some(FailureRate { threshold });
        p.window = RateWindow {
            window: Duration::from_secs(10),
            minimum_requests,
        };
    })
}

/// A slow-call trigger alone: slower than 2s is slow, `rate_threshold` over the default window.
pub(super) fn slow_policy(rate_threshold: f64, minimum_requests: u32) -> BreakerPolicy {
    policy_with(|p| {
        p.failure_threshold = 0;
        p.slow_call = Some(SlowCall {
            duration: Duration::from_secs(2),
            rate_threshold,
        });
        p.window.minimum_requests = minimum_requests;
    })
}

pub(super) fn rng() -> StdRng {
    StdRng::seed_from_u64(0x5eed)
}

pub(super) const OK: Call = Call {
    failed: false,
    slow: false,
};
pub(super) const FAIL: Call = Call {
    failed: true,
    slow: false,
};
pub(super) const SLOW: Call = Call {
    failed: false,
    slow: true,
};

/// The permit of an admission that must have been admitted.
#[track_caller]
pub(super) fn admitted(step: Step<Admission>) -> Permit {
    match step.value {
        Admission::Admitted(permit) => permit,
        Admission::Rejected(r) => panic!("expected the request to be admitted, it was {r:?}"),
    }
}

/// The rejection of an admission that must have been rejected.
#[track_caller]
pub(super) fn rejected(step: Step<Admission>) -> Rejection {
    match step.value {
        Admission::Rejected(r) => r,
        Admission::Admitted(p) => panic!("expected the request to be rejected, it got {p:?}"),
    }
}

/// Admits one request at `now` and records `call` for it at the same time.
#[track_caller]
pub(super) fn request(b: &mut Breaker, p: &BreakerPolicy, now: Millis, call: Call) -> Step<()> {
    let mut rng = rng();
    let permit = admitted(b.admit(p, now, &mut rng));
    b.record(p, permit, call, now, &mut rng)
}

/// A breaker opened by `p.failure_threshold` consecutive failures at `now`.
#[track_caller]
pub(super) fn opened(p: &BreakerPolicy, now: Millis) -> Breaker {
    let mut b = Breaker::new();
    for _ in 0..p.failure_threshold {
        let _ = request(&mut b, p, now, FAIL);
    }
    assert_eq!(
        b.phase(),
        Phase::Open,
        "{} consecutive failures must open",
        p.failure_threshold
    );
    b
}

/// When an open breaker lets the next request through.
#[track_caller]
pub(super) fn open_until(b: &Breaker) -> Millis {
    match b.state {
        super::state::State::Open { until, .. } => until,
        ref other => panic!("expected an open breaker, found {other:?}"),
    }
}

/// A breaker that `p` made half-open at `open_until`, with its first probe's permit.
#[track_caller]
pub(super) fn half_open(p: &BreakerPolicy) -> (Breaker, Permit, Millis) {
    let mut b = opened(p, T0);
    let at = open_until(&b);
    let probe = admitted(b.admit(p, at, &mut rng()));
    assert_eq!(
        b.phase(),
        Phase::HalfOpen,
        "the first request after the open time half-opens"
    );
    (b, probe, at)
}

/// The glue's view: what decoding the state's encoding gives back.
#[track_caller]
pub(super) fn through_shared_data(b: &Breaker) -> Breaker {
    let mut bytes = Vec::new();
    b.encode(&mut bytes);
    match Breaker::decode(&bytes) {
        Ok(decoded) => decoded,
        Err(e) => panic!("a state the breaker reached must decode, got {e} for {b:?}"),
    }
}
