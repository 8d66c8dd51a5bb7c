use super::fixtures::{matcher, retry_policy, rng};
use super::*;
use crate::core::outcome::Cause;
use crate::policy::{Jitter, OutcomeClass};
use proptest::prelude::*;

const S: Millis = 1000;

fn upstream(status: u16) -> Outcome {
    Outcome::http(Some(status), Cause::Upstream)
}

fn failed(outcome: Outcome, attempts: u32) -> PlanInput<'static> {
    PlanInput {
        outcome,
        attempts,
        eligible: true,
        started_at: 0,
        now: 0,
        retry_after: None,
        now_unix: 0,
        previous_delay: None,
    }
}

fn no_jitter() -> RetryPolicy {
    let mut p = retry_policy();
    p.backoff.jitter = Jitter::None;
    p
}

fn verdict(p: &RetryPolicy, input: &PlanInput<'_>) -> Verdict {
    plan(p, input, &mut rng(9))
}

fn retry_in(delay: Duration) -> Verdict {
    Verdict::Retry { delay }
}

// --- eligibility ---

#[test]
fn idempotent_methods_are_eligible_and_post_is_not() {
    let p = retry_policy();
    for method in ["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"] {
        assert_eq!(eligible(&p, method, false), Ok(()), "{method}");
    }
    assert_eq!(
        eligible(&p, "POST", false),
        Err(Ineligible::Method),
        "a POST is not idempotent"
    );
    assert_eq!(eligible(&p, "PATCH", false), Err(Ineligible::Method));
}

#[test]
fn any_method_with_an_idempotency_key_is_eligible() {
    let p = retry_policy();
    assert_eq!(eligible(&p, "POST", true), Ok(()));
    assert_eq!(eligible(&p, "PATCH", true), Ok(()));
}

#[test]
fn without_an_idempotency_header_a_key_does_not_count() {
    let p = RetryPolicy {
        idempotency_header: None,
        ..retry_policy()
    };
    assert_eq!(eligible(&p, "POST", true), Err(Ineligible::Method));
}

#[test]
fn methods_are_compared_exactly_because_they_are_case_sensitive() {
    assert_eq!(
        eligible(&retry_policy(), "get", false),
        Err(Ineligible::Method)
    );
}

// --- what is retried ---

#[test]
fn a_success_stops_and_a_5xx_is_retried_after_the_backoff() {
    let p = retry_policy();
    assert_eq!(
        verdict(&p, &failed(upstream(200), 1)),
        Verdict::Stop(Stop::Success)
    );
    match verdict(&p, &failed(upstream(503), 1)) {
        Verdict::Retry { delay } => {
            assert!(delay >= Duration::from_millis(500) && delay <= Duration::from_millis(1500));
        }
        other => panic!("a 503 under the default policy is retried, got {other:?}"),
    }
}

#[test]
fn outcomes_outside_retry_on_are_final() {
    let p = no_jitter();
    let timeout = Outcome::http(Some(504), Cause::Timeout);
    assert_eq!(
        verdict(&p, &failed(timeout, 1)),
        Verdict::Stop(Stop::NotRetryable)
    );
    let p = RetryPolicy {
        retry_on: matcher(&[OutcomeClass::Timeout], &[]),
        ..no_jitter()
    };
    assert_eq!(
        verdict(&p, &failed(timeout, 1)),
        retry_in(Duration::from_secs(1))
    );
}

#[test]
fn a_4xx_other_than_408_409_429_is_never_retried_even_when_listed() {
    let p = RetryPolicy {
        retry_on: matcher(&[OutcomeClass::Status5xx], &[400, 401, 403, 404, 422]),
        ..no_jitter()
    };
    for status in [400, 401, 403, 404, 422] {
        assert_eq!(
            verdict(&p, &failed(upstream(status), 1)),
            Verdict::Stop(Stop::NotRetryable),
            "{status} is the client's fault, whatever the policy says"
        );
    }
}

#[test]
fn statuses_408_409_429_are_retried_only_when_listed() {
    for status in RETRYABLE_4XX {
        let unlisted = no_jitter();
        assert_eq!(
            verdict(&unlisted, &failed(upstream(status), 1)),
            Verdict::Stop(Stop::NotRetryable),
            "{status} is not in the default retry_on"
        );
        let listed = RetryPolicy {
            retry_on: matcher(&[OutcomeClass::Status5xx], &[status]),
            ..no_jitter()
        };
        assert_eq!(
            verdict(&listed, &failed(upstream(status), 1)),
            retry_in(Duration::from_secs(1)),
            "{status} listed"
        );
    }
}

#[test]
fn an_ineligible_request_is_not_retried_but_only_a_retryable_failure_counts_as_skipped() {
    let p = retry_policy();
    let input = PlanInput {
        eligible: false,
        ..failed(upstream(503), 1)
    };
    assert_eq!(verdict(&p, &input), Verdict::Stop(Stop::NotEligible));
    let final_404 = PlanInput {
        eligible: false,
        ..failed(upstream(404), 1)
    };
    assert_eq!(verdict(&p, &final_404), Verdict::Stop(Stop::NotRetryable));
}

#[test]
fn max_attempts_counts_the_first_attempt() {
    let p = no_jitter();
    assert_eq!(
        verdict(&p, &failed(upstream(503), 2)),
        retry_in(Duration::from_secs(2))
    );
    assert_eq!(
        verdict(&p, &failed(upstream(503), 3)),
        Verdict::Stop(Stop::Exhausted)
    );
    let off = RetryPolicy {
        max_attempts: 1,
        ..no_jitter()
    };
    assert_eq!(
        verdict(&off, &failed(upstream(503), 1)),
        Verdict::Stop(Stop::NotRetryable),
        "max_attempts 1 turns retries off: nothing is exhausted"
    );
}

// --- deadline ---

#[test]
fn a_retry_that_cannot_finish_before_the_deadline_does_not_start() {
    // Deadline 30s from the start; retry 1 waits 1s, then may run 10s.
    let p = no_jitter();
    let at = |now| PlanInput {
        started_at: 5 * S,
        now,
        ..failed(upstream(503), 1)
    };
    assert_eq!(verdict(&p, &at(20 * S)), retry_in(Duration::from_secs(1)));
    assert_eq!(
        verdict(&p, &at(24 * S)),
        retry_in(Duration::from_secs(1)),
        "5 + 30 = 24 + 1 + 10: finishing exactly at the deadline is allowed"
    );
    assert_eq!(verdict(&p, &at(24 * S + 1)), Verdict::Stop(Stop::Deadline));
}

#[test]
fn at_dispatch_a_retry_whose_timer_fired_late_no_longer_fits_the_deadline() {
    // Planned at 24s for 25s: 25 + 10 = 35 = 5 + 30, exactly the deadline.
    let p = no_jitter();
    let planned = PlanInput {
        started_at: 5 * S,
        now: 24 * S,
        ..failed(upstream(503), 1)
    };
    assert_eq!(verdict(&p, &planned), retry_in(Duration::from_secs(1)));
    assert!(deadline_allows(&p, 5 * S, 25 * S), "on time, it fits");
    assert!(
        !deadline_allows(&p, 5 * S, 25 * S + 1),
        "a timer a millisecond late no longer fits: the retry is dropped"
    );
    assert!(
        deadline_allows(&p, 5 * S, 0),
        "a clock behind the start is no reason to drop a retry"
    );
    assert!(
        deadline_allows(&p, u64::MAX, u64::MAX - 1),
        "saturating, no overflow"
    );
}

// --- Retry-After ---

/// The delay of a `Retry` verdict; panics on a stop.
fn retry_delay(v: Verdict) -> Duration {
    match v {
        Verdict::Retry { delay, .. } => delay,
        Verdict::Stop(stop) => panic!("expected a retry, got {stop:?}"),
    }
}

#[test]
fn a_respected_retry_after_replaces_the_backoff_never_earlier_than_asked() {
    let p = retry_policy();
    let input = PlanInput {
        retry_after: Some("5"),
        ..failed(upstream(503), 1)
    };
    let delay = retry_delay(verdict(&p, &input));
    assert!(
        delay >= Duration::from_secs(5) && delay <= Duration::from_millis(5500),
        "5s, spread by at most a tenth: {delay:?}"
    );
    let date = PlanInput {
        retry_after: Some("Sun, 06 Nov 1994 08:49:37 GMT"),
        now_unix: 784_111_777_000 - 3_000,
        ..failed(upstream(503), 1)
    };
    let delay = retry_delay(verdict(&p, &date));
    assert!(delay >= Duration::from_secs(3) && delay <= Duration::from_millis(3300));
}

#[test]
fn clients_told_the_same_retry_after_do_not_retry_in_lockstep() {
    let p = retry_policy();
    let input = PlanInput {
        retry_after: Some("1"),
        ..failed(upstream(503), 1)
    };
    let delays: std::collections::HashSet<Duration> = (0..100)
        .map(|seed| retry_delay(plan(&p, &input, &mut rng(seed))))
        .collect();
    assert!(
        delays.len() > 90,
        "100 clients, {} distinct delays",
        delays.len()
    );
}

#[test]
fn a_retry_after_longer_than_max_delay_means_no_retry() {
    let p = RetryPolicy {
        deadline: Duration::from_secs(600),
        ..retry_policy()
    };
    let input = PlanInput {
        retry_after: Some("3600"),
        ..failed(upstream(503), 1)
    };
    assert_eq!(
        verdict(&p, &input),
        Verdict::Stop(Stop::RetryAfterTooLong),
        "retrying after 60s would come back 59 minutes early"
    );
    let just_over = PlanInput {
        retry_after: Some("61"),
        ..input
    };
    assert_eq!(
        verdict(&p, &just_over),
        Verdict::Stop(Stop::RetryAfterTooLong)
    );
    let at_the_cap = PlanInput {
        retry_after: Some("60"),
        ..input
    };
    assert_eq!(
        verdict(&p, &at_the_cap),
        retry_in(Duration::from_secs(60)),
        "exactly max_delay is allowed, and not spread past it"
    );
}

#[test]
fn a_long_retry_after_is_only_a_stop_when_it_is_respected_and_a_retry_was_wanted() {
    let asked = |input: PlanInput<'static>| PlanInput {
        retry_after: Some("3600"),
        ..input
    };
    let ignoring = RetryPolicy {
        respect_retry_after: false,
        ..no_jitter()
    };
    assert_eq!(
        verdict(&ignoring, &asked(failed(upstream(503), 1))),
        retry_in(Duration::from_secs(1)),
        "ignored: the backoff applies"
    );
    let p = retry_policy();
    assert_eq!(
        verdict(&p, &asked(failed(upstream(503), 3))),
        Verdict::Stop(Stop::Exhausted),
        "no attempt left: nothing was skipped because of the header"
    );
    assert_eq!(
        verdict(&p, &asked(failed(upstream(404), 1))),
        Verdict::Stop(Stop::NotRetryable)
    );
}

#[test]
fn a_retry_after_within_max_delay_is_still_bound_by_the_deadline() {
    let input = PlanInput {
        retry_after: Some("25"),
        ..failed(upstream(503), 1)
    };
    assert_eq!(
        verdict(&retry_policy(), &input),
        Verdict::Stop(Stop::Deadline),
        "25s + 10s does not fit in the default 30s deadline"
    );
}

#[test]
fn an_ignored_or_unreadable_retry_after_leaves_the_backoff() {
    let ignoring = RetryPolicy {
        respect_retry_after: false,
        ..no_jitter()
    };
    let asked = PlanInput {
        retry_after: Some("5"),
        ..failed(upstream(503), 1)
    };
    assert_eq!(verdict(&ignoring, &asked), retry_in(Duration::from_secs(1)));
    let garbage = PlanInput {
        retry_after: Some("later, maybe"),
        ..failed(upstream(503), 1)
    };
    assert_eq!(
        verdict(&no_jitter(), &garbage),
        retry_in(Duration::from_secs(1))
    );
}

#[test]
fn decorrelated_jitter_grows_from_the_previous_delay_the_glue_passes() {
    let mut p = retry_policy();
    p.backoff.jitter = Jitter::Decorrelated;
    p.deadline = Duration::from_secs(600);
    let input = PlanInput {
        previous_delay: Some(Duration::from_secs(10)),
        ..failed(upstream(503), 2)
    };
    for seed in 0..200 {
        let Verdict::Retry { delay, .. } = plan(&p, &input, &mut rng(seed)) else {
            panic!("a 503 with attempts left is retried");
        };
        assert!(delay >= Duration::from_secs(1) && delay <= Duration::from_secs(30));
    }
}

// --- stop reasons ---

#[test]
fn only_exhaustion_is_exhausted() {
    let stops = [
        Stop::Success,
        Stop::NotRetryable,
        Stop::Exhausted,
        Stop::NotEligible,
        Stop::Deadline,
        Stop::RetryAfterTooLong,
        Stop::Budget,
        Stop::Breaker,
    ];
    for stop in stops {
        assert_eq!(stop.is_exhausted(), stop == Stop::Exhausted, "{stop:?}");
    }
}

fn cause() -> impl Strategy<Value = Cause> {
    prop_oneof![
        Just(Cause::Upstream),
        Just(Cause::Local),
        Just(Cause::NoHealthyUpstream),
        Just(Cause::Overflow),
        Just(Cause::Reset),
        Just(Cause::ConnectFailure),
        Just(Cause::Timeout),
    ]
}

proptest! {
    #[test]
    fn no_4xx_reply_outside_the_listed_408_409_429_is_ever_retried(
        status in 400u16..500,
        reply in prop_oneof![Just(Cause::Upstream), Just(Cause::Local)],
        codes in proptest::collection::vec(400u16..600, 0..8),
        attempts in 1u32..3,
    ) {
        let p = RetryPolicy {
            retry_on: matcher(&[OutcomeClass::Status5xx, OutcomeClass::GatewayError], &codes),
            ..retry_policy()
        };
        let input = failed(Outcome::http(Some(status), reply), attempts);
        let retried = matches!(verdict(&p, &input), Verdict::Retry { .. });
        let allowed = RETRYABLE_4XX.contains(&status) && codes.contains(&status);
        prop_assert!(!retried || allowed, "{} retried with codes {:?}", status, codes);
    }

    #[test]
    fn a_retry_always_fits_the_deadline_and_max_attempts(
        status in proptest::option::of(100u16..600),
        cause in cause(),
        attempts in 0u32..6,
        now in 0u64..60_000,
        retry_after in proptest::option::of("[0-9]{1,3}"),
        seed in any::<u64>(),
    ) {
        let p = retry_policy();
        let input = PlanInput {
            now,
            retry_after: retry_after.as_deref(),
            ..failed(Outcome::http(status, cause), attempts)
        };
        if let Verdict::Retry { delay } = plan(&p, &input, &mut rng(seed)) {
            prop_assert!(attempts.max(1) < p.max_attempts, "a retry only while attempts remain");
            prop_assert!(delay <= p.backoff.max_delay);
            prop_assert!(now + millis(delay) + millis(p.per_try_timeout) <= millis(p.deadline));
            prop_assert!(deadline_allows(&p, 0, now + millis(delay)), "the same rule at dispatch");
        }
    }

    #[test]
    fn a_retry_never_starts_before_the_retry_after_it_respects(
        seconds in 0u64..120,
        seed in any::<u64>(),
    ) {
        let p = RetryPolicy { deadline: Duration::from_secs(600), ..retry_policy() };
        let value = seconds.to_string();
        let input = PlanInput { retry_after: Some(&value), ..failed(upstream(503), 1) };
        match plan(&p, &input, &mut rng(seed)) {
            Verdict::Retry { delay, .. } => {
                prop_assert!(delay >= Duration::from_secs(seconds), "{delay:?} before {seconds}s");
                prop_assert!(delay <= p.backoff.max_delay);
            }
            Verdict::Stop(stop) => {
                prop_assert_eq!(stop, Stop::RetryAfterTooLong);
                prop_assert!(Duration::from_secs(seconds) > p.backoff.max_delay);
            }
        }
    }
}

#[test]
fn a_listed_4xx_is_retried_only_when_the_upstream_sent_it() {
    let p = RetryPolicy {
        retry_on: matcher(&[OutcomeClass::Status5xx], &[429]),
        ..retry_policy()
    };
    let upstream = Outcome::http(Some(429), Cause::Upstream);
    let rate_limiter = Outcome::http(Some(429), Cause::Local);
    assert!(retryable(&p, &upstream));
    assert!(
        !retryable(&p, &rate_limiter),
        "a rate limiter's 429: a retry would go around it"
    );
}
