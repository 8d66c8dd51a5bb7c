//! The rules a policy can break, each a variant worded once (its `Display`), so that the set is
//! closed: a problem names one of these, never free text, and a test can walk them all.
//!
//! The wording follows the value it is about (`timeout: "2x" is not a duration, ...`), so it
//! starts with a verb; the few that are not about a value (the whole text, the whole table) say
//! what they are about.

use super::bounds::{MAX_FALLBACK_BODY_BYTES, MAX_RESOLVED, STATE_SCOPE_BYTES};
use super::duration::{show, DurationError};
use super::raw::BUDGET_ON_ROUTE;
use std::fmt;
use std::time::Duration;

/// A rule broken by a value (or a warning about one). Renders as its wording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    // --- the JSON's shape ---
    /// The whole text is not JSON (the parser's message).
    InvalidJson(String),
    NotAPolicy,
    NotAnObject,
    NotAnObjectOfNames,
    /// A field the object does not have: the likely meant one, else every one it has.
    UnknownField {
        did_you_mean: Option<&'static str>,
        known: &'static [&'static str],
    },
    RepeatedField,
    RepeatedKey,
    RepeatedName,
    NotAnInteger,
    IntegerTooLarge,
    NotANumberMustBeInteger,
    NotANumber,
    NotABool,
    NotAString,
    NotAnArray,
    NotAMode,
    NotAJitter,
    NotSpecialClusters,
    BreakerOnRoute,
    BudgetOnRoute,

    // --- single values ---
    /// Outside the field's bounds, as written in the field's units.
    OutOfRange {
        low: String,
        high: String,
    },
    RateOutOfRange,
    NotADuration,
    NegativeDuration,
    DurationTooLarge,
    NotAnOutcome,
    NotAFailureStatus,
    NeverRetried,
    GrpcNotRetried,
    NotAMethod,
    NotAHeaderName,
    NotAHeaderValue,
    /// The fallback body's length in bytes.
    BodyTooLong(usize),
    RepeatedHeader,
    FilterSetsHeader,
    GrpcHeader,
    EnvoySetsFromBody,
    PseudoHeader,
    BreakwaterHeader,
    AddedByEnvoy,
    EnvoyHeader,
    TracingHeader,
    HopByHopHeader,
    OnEveryRequest,
    OnEveryRequestWithBody,
    NotAStateScope,
    /// Why the key does not parse.
    NotAServiceKey(&'static str),
    EmptyName,

    // --- warnings about single values ---
    LowFailureThreshold,
    ManyAttempts,
    HostWithoutDot,
    ClusterIsServiceHost,

    // --- rules across fields ---
    /// Both written in one scope (the timeout).
    MaxTimeoutBelowTimeout(Duration),
    /// Checked on every merged combination of scopes.
    Across(Across),

    // --- the whole table ---
    /// Clusters, combinations of services keys, routes, and the policies they resolve to.
    TableTooLarge {
        clusters: usize,
        service_rows: usize,
        routes: usize,
        size: usize,
    },
}

/// A rule across fields, checked on every merged combination of scopes (see `resolve`); each
/// holds the other field's value. Apart from [`Rule`] so that the checks can keep and compare
/// what they found cheaply (it is `Copy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Across {
    /// The fallback status is 204 or 304 and there is a body.
    StatusWithoutBody,
    /// `max_timeout` below a `timeout` set in another scope.
    MaxTimeoutFollowsTimeout(Duration),
    /// `failure_threshold` 0 with no other trigger.
    NeverOpens,
    MaxDelayBelowBaseDelay(Duration),
    DeadlineBelowPerTryTimeout(Duration),
    PerTryTimeoutOutlastsOpenTime(Duration),
}

/// Writes `before`, `value` and `after`. The rules with a value call this rather than each
/// having its own format string: every byte of this is in the `.wasm`.
fn around(
    f: &mut fmt::Formatter,
    before: &str,
    value: &dyn fmt::Display,
    after: &str,
) -> fmt::Result {
    f.write_str(before)?;
    value.fmt(f)?;
    f.write_str(after)
}

impl From<DurationError> for Rule {
    fn from(error: DurationError) -> Self {
        match error {
            DurationError::Negative => Rule::NegativeDuration,
            DurationError::Malformed => Rule::NotADuration,
            DurationError::TooLarge => Rule::DurationTooLarge,
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        use Rule::*;
        let text = match self {
            InvalidJson(error) => return around(f, "the policy is not valid JSON: ", error, ""),
            NotAPolicy => "is not a policy, must be a JSON object",
            NotAnObject => "is not an object",
            NotAnObjectOfNames => "is not an object of names",
            UnknownField {
                did_you_mean: Some(name),
                ..
            } => return around(f, "is set on an unknown field, did you mean ", name, "?"),
            UnknownField { known, .. } => {
                // Written one by one: `join` costs a kilobyte of `.wasm` for this one message.
                f.write_str("is set on an unknown field, must be one of ")?;
                for (i, name) in known.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    f.write_str(name)?;
                }
                return Ok(());
            }
            RepeatedField => "is a second value for this field, set it once",
            RepeatedKey => "is a second value for this key, set it once",
            RepeatedName => "is a second entry for this name, write each once",
            NotAnInteger => {
                "is not an integer, must be written without a decimal point or exponent"
            }
            IntegerTooLarge => "is too large",
            NotANumberMustBeInteger => "is not a number, must be an integer",
            NotANumber => "is not a number",
            NotABool => "is not true or false",
            NotAString => "is not a string",
            NotAnArray => "is not an array",
            NotAMode => {
                "is not a mode, must be \"enforce\", \"shadow\", \"forced_open\" or \"disabled\""
            }
            NotAJitter => {
                "is not a jitter, must be true, false, \"none\", \"proportional\", \"full\", \
                 \"equal\" or \"decorrelated\""
            }
            NotSpecialClusters => "is not \"bypass\" or \"guard\"",
            BreakerOnRoute => {
                "is not allowed on a route: breaker settings are per cluster (set them under \
                 clusters.<name>); a route may only set null to bypass the breaker"
            }
            BudgetOnRoute => {
                f.write_str("is not allowed on a route: ")?;
                BUDGET_ON_ROUTE
            }
            OutOfRange { low, high } => {
                around(f, "is out of range, must be ", low, "..=")?;
                return f.write_str(high);
            }
            RateOutOfRange => "is out of range, must be greater than 0 and at most 1",
            NotADuration => {
                "is not a duration, must be a number of seconds or a string such as \"250ms\", \
                 \"1.5s\", \"2m\" or \"1h\""
            }
            NegativeDuration => "is negative, a duration must be at least 0",
            DurationTooLarge => "is too large for a duration",
            NotAnOutcome => {
                "is not an outcome, must be \"5xx\", \"gateway-error\", \"reset\", \
                 \"connect-failure\", \"timeout\", \"no-healthy-upstream\", \"overflow\", a \
                 status code or a gRPC status (\"unavailable\", \"grpc-14\", ...)"
            }
            NotAFailureStatus => "is not a failure status, a failure_on code must be 400..=599",
            NeverRetried => "is never retried, a retry_on code must be 408, 409, 429 or 500..=599",
            GrpcNotRetried => {
                "is a gRPC status, which retry_on may not list: the filter never retries a gRPC \
                 request (its relayed reply would lose its trailers), so it would never apply"
            }
            NotAMethod => "is not an HTTP method, must be a token such as \"GET\"",
            NotAHeaderName => "is not a header name, must be letters, digits and !#$%&'*+-.^_`|~",
            NotAHeaderValue => {
                "is not a header value, must have no control characters and no spaces at either \
                 end"
            }
            BodyTooLong(bytes) => {
                around(f, "is ", bytes, " bytes long, must be at most ")?;
                return MAX_FALLBACK_BODY_BYTES.fmt(f);
            }
            RepeatedHeader => "is a second value for this header (names are case-insensitive)",
            FilterSetsHeader => "is under a header that the filter sets on every fallback reply",
            GrpcHeader => {
                "is under a gRPC header, which the filter and Envoy set on the fallback to a gRPC \
                 request"
            }
            EnvoySetsFromBody => "is under a header that Envoy sets from the body",
            PseudoHeader => "is a pseudo-header, on every request",
            BreakwaterHeader => "is Breakwater's own, left out of retries",
            AddedByEnvoy => "is added by Envoy to every request, so every request would be retried",
            EnvoyHeader => "is an x-envoy- header, set or removed by Envoy",
            TracingHeader => "is a tracing header, on every traced request",
            HopByHopHeader => "is a hop-by-hop header, removed by Envoy",
            OnEveryRequest => "is on every request",
            OnEveryRequestWithBody => "is on every request with a body",
            NotAStateScope => {
                return around(
                    f,
                    "is not a state scope, must be 1 to ",
                    &STATE_SCOPE_BYTES,
                    " letters, digits, `-`, `.` and `_`",
                );
            }
            NotAServiceKey(why) => {
                return around(
                    f,
                    "is not a service key, which is HOST, HOST:PORT, HOST#SUBSET or \
                     HOST:PORT#SUBSET: ",
                    why,
                    "",
                );
            }
            EmptyName => {
                "is an empty name, which matches whatever Envoy leaves unnamed; give the entry a \
                 name"
            }
            LowFailureThreshold => "is below 3, so the breaker trips on transient errors",
            ManyAttempts => {
                "is above 5, so every failure multiplies the load on a struggling upstream"
            }
            HostWithoutDot => {
                "has a host without a dot, which matches a cluster of that exact host only; \
                 Istio names a Kubernetes service by its full name \
                 (<name>.<namespace>.svc.cluster.local)"
            }
            ClusterIsServiceHost => {
                "is a service's host, but Istio names clusters outbound|PORT|SUBSET|HOST, so this \
                 entry matches no cluster of Istio's; write it under services"
            }
            MaxTimeoutBelowTimeout(timeout) => {
                return around(
                    f,
                    "is shorter than circuit_breaker.timeout ",
                    &show(*timeout),
                    ", must be at least that",
                );
            }
            Across(across) => return across.fmt(f),
            TableTooLarge {
                clusters,
                service_rows,
                routes,
                size,
            } => {
                around(f, "", clusters, " clusters")?;
                if *service_rows > 0 {
                    around(f, ", ", service_rows, " combinations of services keys")?;
                }
                around(f, " and ", routes, " routes resolve to ")?;
                around(
                    f,
                    "",
                    size,
                    " policies, which every worker keeps; must be at most ",
                )?;
                return MAX_RESOLVED.fmt(f);
            }
        };
        f.write_str(text)
    }
}

impl fmt::Display for Across {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        use super::Across::*;
        let text = match self {
            MaxTimeoutFollowsTimeout(timeout) => {
                return around(
                    f,
                    "is shorter than circuit_breaker.timeout ",
                    &show(*timeout),
                    " set in another scope, so the open time does not grow on a re-open",
                );
            }
            StatusWithoutBody => {
                "is a status that has no body, but circuit_breaker.fallback.body is set; drop the \
                 body or choose another status"
            }
            NeverOpens => {
                "turns off the only trigger (neither failure_rate nor slow_call is set), so the \
                 breaker never opens"
            }
            MaxDelayBelowBaseDelay(base) => {
                return around(
                    f,
                    "is shorter than retry.base_delay ",
                    &show(*base),
                    ", must be at least that",
                );
            }
            DeadlineBelowPerTryTimeout(per_try) => {
                return around(
                    f,
                    "is shorter than retry.per_try_timeout ",
                    &show(*per_try),
                    ", so no retry could finish in time; must be at least that",
                );
            }
            PerTryTimeoutOutlastsOpenTime(timeout) => {
                return around(
                    f,
                    "is longer than circuit_breaker.timeout ",
                    &show(*timeout),
                    ", so one attempt outlasts the breaker's open time",
                );
            }
        };
        f.write_str(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One of every rule. The `match` below has no catch-all, so a new rule does not compile
    /// until it is listed here too.
    fn every_rule() -> Vec<Rule> {
        use super::Across::*;
        use Rule::*;
        let second = Duration::from_secs(1);
        let rules = vec![
            InvalidJson("EOF while parsing a value at line 1 column 0".into()),
            NotAPolicy,
            NotAnObject,
            NotAnObjectOfNames,
            UnknownField {
                did_you_mean: Some("retry"),
                known: &["retry"],
            },
            RepeatedField,
            RepeatedKey,
            RepeatedName,
            NotAnInteger,
            IntegerTooLarge,
            NotANumberMustBeInteger,
            NotANumber,
            NotABool,
            NotAString,
            NotAnArray,
            NotAMode,
            NotAJitter,
            NotSpecialClusters,
            BreakerOnRoute,
            BudgetOnRoute,
            OutOfRange {
                low: "1".into(),
                high: "10".into(),
            },
            RateOutOfRange,
            NotADuration,
            NegativeDuration,
            DurationTooLarge,
            NotAnOutcome,
            NotAFailureStatus,
            NeverRetried,
            GrpcNotRetried,
            NotAMethod,
            NotAHeaderName,
            NotAHeaderValue,
            BodyTooLong(20_000),
            RepeatedHeader,
            FilterSetsHeader,
            GrpcHeader,
            EnvoySetsFromBody,
            PseudoHeader,
            BreakwaterHeader,
            AddedByEnvoy,
            EnvoyHeader,
            TracingHeader,
            HopByHopHeader,
            OnEveryRequest,
            OnEveryRequestWithBody,
            NotAStateScope,
            NotAServiceKey("the port is not a number"),
            EmptyName,
            LowFailureThreshold,
            ManyAttempts,
            HostWithoutDot,
            ClusterIsServiceHost,
            MaxTimeoutBelowTimeout(second),
            Rule::Across(StatusWithoutBody),
            Rule::Across(MaxTimeoutFollowsTimeout(second)),
            Rule::Across(NeverOpens),
            Rule::Across(MaxDelayBelowBaseDelay(second)),
            Rule::Across(DeadlineBelowPerTryTimeout(second)),
            Rule::Across(PerTryTimeoutOutlastsOpenTime(second)),
            TableTooLarge {
                clusters: 100,
                service_rows: 0,
                routes: 100,
                size: 10_201,
            },
        ];
        for rule in &rules {
            match rule {
                InvalidJson(_)
                | NotAPolicy
                | NotAnObject
                | NotAnObjectOfNames
                | UnknownField { .. }
                | RepeatedField
                | RepeatedKey
                | RepeatedName
                | NotAnInteger
                | IntegerTooLarge
                | NotANumberMustBeInteger
                | NotANumber
                | NotABool
                | NotAString
                | NotAnArray
                | NotAMode
                | NotAJitter
                | NotSpecialClusters
                | BreakerOnRoute
                | BudgetOnRoute
                | OutOfRange { .. }
                | RateOutOfRange
                | NotADuration
                | NegativeDuration
                | DurationTooLarge
                | NotAnOutcome
                | NotAFailureStatus
                | NeverRetried
                | GrpcNotRetried
                | NotAMethod
                | NotAHeaderName
                | NotAHeaderValue
                | BodyTooLong(_)
                | RepeatedHeader
                | FilterSetsHeader
                | GrpcHeader
                | EnvoySetsFromBody
                | PseudoHeader
                | BreakwaterHeader
                | AddedByEnvoy
                | EnvoyHeader
                | TracingHeader
                | HopByHopHeader
                | OnEveryRequest
                | OnEveryRequestWithBody
                | NotAStateScope
                | NotAServiceKey(_)
                | EmptyName
                | LowFailureThreshold
                | ManyAttempts
                | HostWithoutDot
                | ClusterIsServiceHost
                | MaxTimeoutBelowTimeout(_)
                | TableTooLarge { .. } => {}
                Rule::Across(
                    StatusWithoutBody
                    | MaxTimeoutFollowsTimeout(_)
                    | NeverOpens
                    | MaxDelayBelowBaseDelay(_)
                    | DeadlineBelowPerTryTimeout(_)
                    | PerTryTimeoutOutlastsOpenTime(_),
                ) => {}
            }
        }
        rules
    }

    #[test]
    fn every_rule_is_one_line_that_follows_its_value() {
        for rule in every_rule() {
            let text = rule.to_string();
            let first = text.split(' ').next().unwrap_or_default();
            let about_the_whole = matches!(rule, Rule::InvalidJson(_) | Rule::TableTooLarge { .. });
            assert!(
                about_the_whole || ["is", "has", "turns"].contains(&first),
                "a rule reads after the value it is about: {text}"
            );
            assert!(!text.contains('\n'), "a problem is one log line: {text}");
            assert!(!text.ends_with('.'), "the scope follows the rule: {text}");
        }
    }

    #[test]
    fn no_two_rules_read_the_same() {
        let texts: Vec<String> = every_rule().iter().map(ToString::to_string).collect();
        for (i, text) in texts.iter().enumerate() {
            assert!(
                !texts[..i].contains(text),
                "two rules with one wording cannot be told apart: {text}"
            );
        }
    }

    #[test]
    fn the_rules_with_values_put_them_in_their_wording() {
        let texts: Vec<String> = every_rule().iter().map(ToString::to_string).collect();
        for expected in [
            "is set on an unknown field, did you mean retry?",
            "is out of range, must be 1..=10",
            "is 20000 bytes long, must be at most 16384",
            "is shorter than circuit_breaker.timeout \"1s\", must be at least that",
            "is shorter than retry.base_delay \"1s\", must be at least that",
            "100 clusters and 100 routes resolve to 10201 policies, which every worker keeps; \
             must be at most 10000",
        ] {
            assert!(texts.iter().any(|t| t == expected), "{expected}");
        }
        let with_services = Rule::TableTooLarge {
            clusters: 1,
            service_rows: 2,
            routes: 3,
            size: 12,
        };
        assert!(with_services
            .to_string()
            .starts_with("1 clusters, 2 combinations of services keys and 3 routes"));
    }
}
