//! Generators of policy-shaped JSON for the property tests: every field in its place, mostly with
//! values of the right JSON type, sometimes with a wrong one, `null`, or an unknown field.

use super::super::layer::FieldTypes;
use super::super::raw::{
    Entries, RawBreaker, RawBudget, RawDuration, RawFailureRate, RawFallback, RawJitter, RawMode,
    RawOutcome, RawRetry, RawSlowCall, Toggle,
};
use proptest::prelude::*;
use serde_json::{Map, Value};
use std::any::TypeId;

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

/// The fields of an object, each with what it holds. Those of `circuit_breaker`, `retry` and
/// their parts come from the policy's field table, so a field added there is generated here.
fn fields(kind: Kind) -> Vec<(&'static str, Kind)> {
    use Kind::*;
    match kind {
        Policy => vec![
            ("default", Scope),
            ("services", Names(Named::Services)),
            ("clusters", Names(Named::Clusters)),
            ("routes", Names(Named::Routes)),
            ("special_clusters", Special),
            ("state_scope", StateScope),
        ],
        Scope => vec![("circuit_breaker", Breaker), ("retry", Retry)],
        Route => vec![("circuit_breaker", RouteBreaker), ("retry", Retry)],
        Breaker => from_table(RawBreaker::FIELD_TYPES),
        FailureRate => from_table(RawFailureRate::FIELD_TYPES),
        SlowCall => from_table(RawSlowCall::FIELD_TYPES),
        Fallback => from_table(RawFallback::FIELD_TYPES),
        Retry => from_table(RawRetry::FIELD_TYPES),
        Budget => from_table(RawBudget::FIELD_TYPES),
        _ => Vec::new(),
    }
}

/// The fields of one object of the field table, each with what its raw type holds.
fn from_table(fields: FieldTypes) -> Vec<(&'static str, Kind)> {
    let kinds: [(TypeId, Kind); 15] = [
        (TypeId::of::<Option<i64>>(), Kind::Int),
        (TypeId::of::<Option<f64>>(), Kind::Float),
        (TypeId::of::<Option<bool>>(), Kind::Bool),
        (TypeId::of::<Option<RawDuration>>(), Kind::Duration),
        (TypeId::of::<Option<RawJitter>>(), Kind::Jitter),
        (TypeId::of::<Option<RawMode>>(), Kind::Mode),
        (TypeId::of::<Option<Vec<RawOutcome>>>(), Kind::Outcomes),
        (TypeId::of::<Option<Vec<String>>>(), Kind::Methods),
        (TypeId::of::<Option<String>>(), Kind::Header),
        (TypeId::of::<Toggle<String>>(), Kind::Header),
        (TypeId::of::<Option<Entries<String>>>(), Kind::Headers),
        (TypeId::of::<Toggle<RawFailureRate>>(), Kind::FailureRate),
        (TypeId::of::<Toggle<RawSlowCall>>(), Kind::SlowCall),
        (TypeId::of::<Option<RawFallback>>(), Kind::Fallback),
        (TypeId::of::<Toggle<RawBudget>>(), Kind::Budget),
    ];
    let kind_of = |name: &str, ty: TypeId| {
        let kind = kinds.iter().find(|(known, _)| *known == ty);
        kind.map(|(_, kind)| *kind)
            .unwrap_or_else(|| panic!("{name}: no generator for its raw type; add one to Kind"))
    };
    fields
        .iter()
        .map(|(name, ty)| (*name, kind_of(name, ty())))
        .collect()
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
        .into_iter()
        .map(|(name, field)| {
            proptest::option::weighted(0.4, value(field).prop_map(move |v| (name.to_string(), v)))
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
