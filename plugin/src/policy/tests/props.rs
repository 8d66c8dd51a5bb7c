//! Properties of the parser as a whole, over generated policies: it never panics, the walk that
//! reports every problem reads exactly what the serde derives of the raw types read, and a policy
//! it accepts keeps every bound.

use super::super::collect;
use super::super::json::Node;
use super::super::problem::Report;
use super::super::raw::RawPolicy;
use super::generate::{any_json, value, Kind};
use super::*;
use proptest::prelude::*;

fn walk(text: &str) -> (RawPolicy, Report) {
    let node: Node = serde_json::from_str(text).expect("generated JSON is valid");
    let mut report = Report::default();
    let raw = collect::policy(&node, &mut report);
    (raw, report)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// The generator never puts an array where an object belongs, nor a one-key object where a
    /// mode or jitter name belongs: serde_json reads those as a struct's fields in order and as
    /// an externally tagged enum, forms a policy author would never write and the walk refuses.
    #[test]
    fn the_walk_accepts_exactly_what_the_serde_derives_accept(policy in value(Kind::Policy)) {
        let text = policy.to_string();
        let (walked, report) = walk(&text);
        match serde_json::from_str::<RawPolicy>(&text) {
            Ok(derived) => {
                prop_assert!(report.problems.is_empty(), "serde read {text}, the walk refused: {:?}", report.problems);
                prop_assert_eq!(&derived, &walked, "both read {}", text);
            }
            Err(e) => prop_assert!(!report.problems.is_empty(), "serde refused {text} ({e}), the walk did not"),
        }
    }

    #[test]
    fn a_raw_policy_written_back_to_json_reads_the_same(policy in value(Kind::Policy)) {
        let (raw, report) = walk(&policy.to_string());
        prop_assume!(report.problems.is_empty());
        let written = serde_json::to_string(&raw).expect("raw types serialize");
        let (again, report) = walk(&written);
        prop_assert!(report.problems.is_empty(), "{:?}", report.problems);
        prop_assert_eq!(raw, again, "{}", written);
    }

    #[test]
    fn any_policy_shaped_json_is_accepted_or_refused_with_reasons(policy in value(Kind::Policy)) {
        match Policy::parse(policy.to_string().as_bytes()) {
            Ok(parsed) => {
                let routes = ["checkout", "upload", "unknown"];
                for cluster in ["payments", "search", "unknown"] {
                    for route in routes {
                        assert_bounds_hold(parsed.policy.lookup(cluster, route));
                    }
                }
            }
            Err(errors) => {
                prop_assert!(!errors.0.is_empty(), "a refusal says why");
                for p in &errors.0 {
                    prop_assert!(!p.rule.is_empty() && !p.scope.is_empty(), "{:?}", p);
                }
            }
        }
    }

    #[test]
    fn any_json_is_refused_or_accepted_without_panicking(json in any_json()) {
        let _ = Policy::parse(json.to_string().as_bytes());
    }

    #[test]
    fn any_bytes_are_refused_or_accepted_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = Policy::parse(&bytes);
    }
}

/// What validation promises about every effective policy it lets through.
fn assert_bounds_hold(e: &Effective) {
    use super::super::bounds::*;
    if let Some(b) = &e.breaker {
        assert!(
            b.max_timeout >= b.timeout,
            "the cap is never below the open time: {b:?}"
        );
        assert!(OPEN_TIME.contains(&b.timeout) && OPEN_TIME.contains(&b.max_timeout));
        assert!(PROBE_TIMEOUT.contains(&b.probe_timeout));
        assert!((1..=1000).contains(&b.half_open_attempts));
        assert!(WINDOW.contains(&b.window.window) && b.window.minimum_requests >= 1);
        assert!(b.failure_on.codes.iter().all(|c| FAILURE_CODES.contains(c)));
        assert!(
            b.failure_on.codes.windows(2).all(|w| w[0] < w[1]),
            "sorted, no duplicates"
        );
        assert!((200..=599).contains(&b.fallback.status));
        let rates = b
            .failure_rate
            .map(|r| r.threshold)
            .into_iter()
            .chain(b.slow_call.map(|s| s.rate_threshold));
        for rate in rates {
            assert!(
                rate > 0.0 && rate <= 1.0,
                "a rate threshold is a fraction above 0"
            );
        }
        for (name, _) in &b.fallback.headers {
            assert_eq!(
                name,
                &name.to_ascii_lowercase(),
                "header names are lower-cased"
            );
        }
    }
    if let Some(r) = &e.retry {
        assert!((1..=10).contains(&r.max_attempts));
        assert!(r.backoff.max_delay >= r.backoff.base_delay, "{r:?}");
        assert!(DELAY.contains(&r.backoff.base_delay) && DELAY.contains(&r.backoff.max_delay));
        assert!(EXPONENTIAL_BASE.contains(&r.backoff.exponential_base));
        assert!(r.max_attempts == 1 || r.deadline >= r.per_try_timeout);
        let four_xx = r.retry_on.codes.iter().filter(|c| (400..500).contains(*c));
        assert!(
            four_xx.into_iter().all(|c| [408, 409, 429].contains(c)),
            "no other 4xx is retried"
        );
        assert!(r.methods.iter().all(|m| *m == m.to_ascii_uppercase()));
        if let Some(budget) = r.budget {
            assert!(BUDGET_RATIO.contains(&budget.ratio) && WINDOW.contains(&budget.window));
        }
    }
}
