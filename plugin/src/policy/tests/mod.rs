//! The policy, specified by example: every field of `POLICY.md` with its default, every rule
//! with its exact message, the merge order, and properties of the parser as a whole.

mod breaker_fields;
mod breaker_rules;
mod durations;
mod every_field;
mod generate;
mod merge;
mod props;
mod reporting;
mod retry_fields;
mod retry_rules;
mod services;
mod shape;
mod warnings;

use super::*;

/// Parses a policy that must be valid.
pub(super) fn parse(json: &str) -> Parsed {
    match Policy::parse(json.as_bytes()) {
        Ok(parsed) => parsed,
        Err(errors) => panic!("the policy should be valid, but:\n{errors}\npolicy: {json}"),
    }
}

/// The problems of a policy that must be refused, one rendered line each.
pub(super) fn problems(json: &str) -> Vec<String> {
    match Policy::parse(json.as_bytes()) {
        Ok(_) => panic!("the policy should be refused: {json}"),
        Err(errors) => errors.0.iter().map(ToString::to_string).collect(),
    }
}

/// The warnings of a policy that must be valid, one rendered line each.
pub(super) fn warnings(json: &str) -> Vec<String> {
    parse(json)
        .warnings
        .iter()
        .map(ToString::to_string)
        .collect()
}

/// The breaker that `default.circuit_breaker = fragment` gives every cluster.
pub(super) fn breaker(fragment: &str) -> BreakerPolicy {
    let json = format!(r#"{{"default": {{"circuit_breaker": {fragment}}}}}"#);
    let policy = parse(&json).policy;
    policy
        .breaker_for("any")
        .cloned()
        .expect("the breaker is on")
}

/// The retry policy that `default.retry = fragment` gives every request.
pub(super) fn retry(fragment: &str) -> RetryPolicy {
    let json = format!(r#"{{"default": {{"retry": {fragment}}}}}"#);
    let policy = parse(&json).policy;
    policy
        .lookup("any", "any")
        .retry
        .clone()
        .expect("retries are on")
}

/// The breaker of the empty policy.
pub(super) fn default_breaker() -> BreakerPolicy {
    Policy::default()
        .breaker_for("any")
        .cloned()
        .expect("on by default")
}

/// The retry policy of the empty policy.
pub(super) fn default_retry() -> RetryPolicy {
    let policy = Policy::default();
    policy
        .lookup("any", "any")
        .retry
        .clone()
        .expect("on by default")
}

/// The problems of `default.circuit_breaker = fragment`.
pub(super) fn breaker_problems(fragment: &str) -> Vec<String> {
    problems(&format!(
        r#"{{"default": {{"circuit_breaker": {fragment}}}}}"#
    ))
}

/// The problems of `default.retry = fragment`.
pub(super) fn retry_problems(fragment: &str) -> Vec<String> {
    problems(&format!(r#"{{"default": {{"retry": {fragment}}}}}"#))
}

/// A matcher of outcome classes and codes.
pub(super) fn matcher(classes: &[OutcomeClass], codes: &[u16]) -> OutcomeMatcher {
    OutcomeMatcher {
        classes: classes.to_vec(),
        codes: codes.to_vec(),
    }
}
