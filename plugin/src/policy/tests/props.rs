//! Properties of the parser as a whole, over generated policies: it never panics, the walk that
//! reports every problem reads exactly what the serde derives of the raw types read, and a policy
//! it accepts keeps every bound.

use super::super::build;
use super::super::problem::Report;
use super::super::raw::RawPolicy;
use super::generate::{any_json, value, Kind};
use super::*;
use proptest::prelude::*;

/// The problems with the JSON's shape that the filter's reader finds in `text`.
fn shape_problems(text: &str) -> usize {
    let mut report = Report::default();
    let _ = build::read(text.as_bytes(), &mut report);
    report.shape_problems
}

/// Cluster names the generated policies may name, exactly or by a `services` key.
const CLUSTERS: [&str; 7] = [
    "payments",
    "search",
    "unknown",
    "outbound|8080|v2|payments.shop.svc.cluster.local",
    "outbound|8080||payments.shop.svc.cluster.local",
    "outbound|9090|v1|payments.shop.svc.cluster.local",
    "PassthroughCluster",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// The generator never puts an array where an object belongs, nor a one-key object where a
    /// mode or jitter name belongs: serde_json reads those as a struct's fields in order and as
    /// an externally tagged enum, forms a policy author would never write and the reader refuses.
    #[test]
    fn the_reader_finds_a_shape_problem_exactly_when_the_serde_derives_refuse(
        policy in value(Kind::Policy),
    ) {
        let text = policy.to_string();
        let shape = shape_problems(&text);
        match serde_json::from_str::<RawPolicy>(&text) {
            Ok(_) => prop_assert_eq!(shape, 0, "serde read {}, the reader refused its shape", text),
            Err(e) => prop_assert!(shape > 0, "serde refused {text} ({e}), the reader did not"),
        }
    }

    /// The raw types carry every value: a policy read by serde and written back parses to the
    /// same table.
    #[test]
    fn a_policy_written_back_from_the_raw_types_parses_the_same(policy in value(Kind::Policy)) {
        let text = policy.to_string();
        let Ok(raw) = serde_json::from_str::<RawPolicy>(&text) else {
            return Ok(());
        };
        let written = serde_json::to_string(&raw).expect("raw types serialize");
        let (before, after) = (Policy::parse(text.as_bytes()), Policy::parse(written.as_bytes()));
        match (before, after) {
            (Ok(before), Ok(after)) => prop_assert_eq!(before, after, "{} → {}", text, written),
            (Err(before), Err(after)) => prop_assert_eq!(before.0.len(), after.0.len(), "{} → {}", text, written),
            (before, after) => prop_assert!(false, "{text} → {written}: {before:?} vs {after:?}"),
        }
    }

    #[test]
    fn any_policy_shaped_json_is_accepted_or_refused_with_reasons(policy in value(Kind::Policy)) {
        match Policy::parse(policy.to_string().as_bytes()) {
            Ok(parsed) => {
                let routes = ["checkout", "upload", "unknown"];
                for cluster in CLUSTERS {
                    for route in routes {
                        assert_bounds_hold(parsed.policy.lookup(cluster, route));
                    }
                }
            }
            Err(errors) => {
                prop_assert!(!errors.0.is_empty(), "a refusal says why");
                for p in &errors.0 {
                    prop_assert!(!p.rule.to_string().is_empty() && !p.scope.is_empty(), "{:?}", p);
                }
            }
        }
    }

    /// The budget of a cluster lives in one shared-data entry: whatever the routes say, every
    /// entry of the table for that cluster that has a budget must have the same one, or the
    /// routes would keep re-bucketing the shared window (see `read_retry`).
    #[test]
    fn every_route_to_a_cluster_shares_one_budget(policy in value(Kind::Policy)) {
        let Ok(parsed) = Policy::parse(policy.to_string().as_bytes()) else {
            return Ok(());
        };
        for cluster in CLUSTERS {
            let budgets: Vec<_> = ["checkout", "upload", "unknown"]
                .iter()
                .filter_map(|route| parsed.policy.lookup(cluster, route).retry.as_ref())
                .filter_map(|retry| retry.budget)
                .collect();
            prop_assert!(
                budgets.windows(2).all(|w| w[0] == w[1]),
                "{cluster} has budgets {budgets:?} in {policy}"
            );
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
        if let Some(name) = &r.idempotency_header {
            assert_eq!(
                name,
                &name.to_ascii_lowercase(),
                "looked up as Envoy spells names"
            );
            assert!(
                !name.starts_with(':') && super::super::read_retry::unusable_key(name).is_none(),
                "{name} would make requests retryable that no client marked"
            );
        }
        if let Some(budget) = r.budget {
            assert!(BUDGET_RATIO.contains(&budget.ratio) && WINDOW.contains(&budget.window));
        }
    }
}
