//! Generators of policy-shaped JSON for the property tests: every field in its place, mostly with
//! values of the right JSON type, sometimes with a wrong one, `null`, or an unknown field.

use proptest::prelude::*;
use serde_json::{Map, Value};

/// What a position in the policy holds.
#[derive(Debug, Clone, Copy)]
pub(super) enum Kind {
    Policy,
    Scope,
    Route,
    Breaker,
    FailureRate,
    SlowCall,
    Fallback,
    Retry,
    Budget,
    Names(Named),
    Int,
    Float,
    Bool,
    Duration,
    Jitter,
    Mode,
    Special,
    /// `state_scope`.
    StateScope,
    Outcomes,
    Methods,
    Header,
    Headers,
    /// Anything that is not a scalar of the right kind: only `null`.
    RouteBreaker,
}

#[derive(Debug, Clone, Copy)]
pub(super) enum Named {
    Services,
    Clusters,
    Routes,
}

fn fields(kind: Kind) -> &'static [(&'static str, Kind)] {
    use Kind::*;
    match kind {
        Policy => &[
            ("default", Scope),
            ("services", Names(Named::Services)),
            ("clusters", Names(Named::Clusters)),
            ("routes", Names(Named::Routes)),
            ("special_clusters", Special),
            ("state_scope", StateScope),
        ],
        Scope => &[("circuit_breaker", Breaker), ("retry", Retry)],
        Route => &[("circuit_breaker", RouteBreaker), ("retry", Retry)],
        Breaker => &[
            ("failure_threshold", Int),
            ("failure_rate", FailureRate),
            ("slow_call", SlowCall),
            ("timeout", Duration),
            ("max_timeout", Duration),
            ("half_open_attempts", Int),
            ("probe_timeout", Duration),
            ("failure_on", Outcomes),
            ("count_retries", Bool),
            ("fallback", Fallback),
            ("mode", Mode),
        ],
        FailureRate => &[
            ("threshold", Float),
            ("minimum_requests", Int),
            ("window", Duration),
        ],
        SlowCall => &[("duration", Duration), ("rate_threshold", Float)],
        Fallback => &[("status", Int), ("headers", Headers), ("body", Header)],
        Retry => &[
            ("max_attempts", Int),
            ("base_delay", Duration),
            ("max_delay", Duration),
            ("exponential_base", Float),
            ("jitter", Jitter),
            ("retry_on", Outcomes),
            ("methods", Methods),
            ("idempotency_header", Header),
            ("per_try_timeout", Duration),
            ("deadline", Duration),
            ("respect_retry_after", Bool),
            ("budget", Budget),
            ("max_request_body", Int),
        ],
        Budget => &[
            ("ratio", Float),
            ("min_per_second", Int),
            ("window", Duration),
        ],
        _ => &[],
    }
}

fn strings(options: &'static [&'static str]) -> BoxedStrategy<Value> {
    proptest::sample::select(options)
        .prop_map(Value::from)
        .boxed()
}

/// A scalar of any JSON type, mostly of the wrong one for its position.
fn scalar() -> BoxedStrategy<Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        (-3i64..70_000).prop_map(Value::from),
        Just(Value::from(u64::MAX)),
        (-2.0f64..4000.0).prop_map(Value::from),
        strings(&["", "x", "1s", "5xx", "429", "GET", "full", "enforce", "-1s", "2.5"]),
    ]
    .boxed()
}

/// A value of the right shape for `kind`, with some values of the wrong shape inside.
pub(super) fn value(kind: Kind) -> BoxedStrategy<Value> {
    use Kind::*;
    let right = match kind {
        Int => prop_oneof![0i64..12, 0i64..70_000]
            .prop_map(Value::from)
            .boxed(),
        Float => prop_oneof![
            (0.0f64..1.0).prop_map(Value::from),
            (0i64..12).prop_map(Value::from)
        ]
        .boxed(),
        Bool => any::<bool>().prop_map(Value::from).boxed(),
        Duration => prop_oneof![
            strings(&["250ms", "1s", "1.5s", "10s", "2m", "1h", "0s", "soon"]),
            (0u32..100).prop_map(Value::from),
        ]
        .boxed(),
        Jitter => prop_oneof![
            any::<bool>().prop_map(Value::from),
            strings(&[
                "none",
                "full",
                "equal",
                "decorrelated",
                "proportional",
                "random"
            ])
        ]
        .boxed(),
        Mode => strings(&["enforce", "shadow", "forced_open", "disabled", "off"]),
        Special => strings(&["bypass", "guard", "skip"]),
        StateScope => strings(&["breakwater", "shop.edge", "", "a/b"]),
        Outcomes => proptest::collection::vec(
            prop_oneof![
                strings(&[
                    "5xx",
                    "gateway-error",
                    "reset",
                    "connect-failure",
                    "timeout",
                    "no-healthy-upstream",
                    "overflow",
                    "429",
                    "4xx"
                ]),
                (400i64..600).prop_map(Value::from)
            ],
            0..4,
        )
        .prop_map(Value::from)
        .boxed(),
        Methods => proptest::collection::vec(strings(&["GET", "post", "PUT", "G T"]), 0..4)
            .prop_map(Value::from)
            .boxed(),
        Header => strings(&[
            "idempotency-key",
            "X-Key",
            "bad name",
            "a",
            "X-Request-Id",
            ":path",
        ]),
        Headers => proptest::collection::btree_map(
            proptest::sample::select(&["content-type", "X-A", "retry-after", "bad name"][..])
                .prop_map(String::from),
            strings(&["application/json", "1", " padded"]),
            0..3,
        )
        .prop_map(|m| Value::Object(m.into_iter().collect()))
        .boxed(),
        RouteBreaker => Just(Value::Null).boxed(),
        Names(named) => {
            let (names, scope): (&'static [&'static str], Kind) = match named {
                Named::Services => (
                    &[
                        "payments.shop.svc.cluster.local",
                        "payments.shop.svc.cluster.local:8080",
                        "payments.shop.svc.cluster.local#v2",
                        "payments.shop.svc.cluster.local:8080#v2",
                        "search",
                        "bad|key",
                    ],
                    Scope,
                ),
                Named::Clusters => (
                    &[
                        "payments",
                        "search",
                        "",
                        "outbound|8080|v2|payments.shop.svc.cluster.local",
                        "PassthroughCluster",
                    ],
                    Scope,
                ),
                Named::Routes => (&["checkout", "upload"], Route),
            };
            proptest::collection::btree_map(
                proptest::sample::select(names).prop_map(String::from),
                value(scope),
                0..3,
            )
            .prop_map(|m| Value::Object(m.into_iter().collect()))
            .boxed()
        }
        _ => object(kind),
    };
    let nullable = matches!(
        kind,
        Breaker | Retry | FailureRate | SlowCall | Budget | Header
    );
    let null = if nullable { 2 } else { 0 };
    prop_oneof![12 => right, 1 => scalar(), null => Just(Value::Null)].boxed()
}

/// An object with some of `kind`'s fields, and sometimes one that is not.
fn object(kind: Kind) -> BoxedStrategy<Value> {
    let present: Vec<BoxedStrategy<Option<(String, Value)>>> = fields(kind)
        .iter()
        .map(|(name, field)| {
            proptest::option::weighted(0.4, value(*field).prop_map(move |v| (name.to_string(), v)))
                .boxed()
        })
        .collect();
    let unknown = proptest::option::weighted(0.05, Just(("colour".to_owned(), Value::from(1))));
    (present, unknown)
        .prop_map(|(present, unknown)| {
            let map: Map<String, Value> = present.into_iter().flatten().chain(unknown).collect();
            Value::Object(map)
        })
        .boxed()
}

/// Any JSON, with keys that are often the policy's own.
pub(super) fn any_json() -> impl Strategy<Value = Value> {
    let leaf = scalar();
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            proptest::collection::btree_map(
                proptest::sample::select(
                    &[
                        "default",
                        "clusters",
                        "routes",
                        "a",
                        "retry",
                        "circuit_breaker",
                        "timeout",
                        "fallback",
                        "headers",
                        "methods",
                        "budget"
                    ][..]
                )
                .prop_map(String::from),
                inner,
                0..4,
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}
