//! Policy-shaped JSON from fuzzer bytes: every field of POLICY.md in its place, mostly with a
//! value of the right type (in range, at an edge, or just outside), sometimes a wrong type,
//! `null`, a repeated or unknown field. The text is written by hand (not through a map) so that
//! repeated keys and key order reach the parser as written.

use std::cell::Cell;

use arbitrary::{Result, Unstructured};

thread_local! {
    /// This document leans valid: only values every field of their kind accepts, no wrong
    /// types, no unknown fields. About half the documents do, so that cross-field rules and the
    /// resolved table see many accepted policies; the other half explore the refusals.
    static STRICT: Cell<bool> = const { Cell::new(false) };
}

fn strict() -> bool {
    STRICT.with(Cell::get)
}

/// What a position in the policy holds.
#[derive(Clone, Copy)]
enum Kind {
    Scope,
    Route,
    Breaker,
    FailureRate,
    SlowCall,
    Fallback,
    Retry,
    Budget,
    Names(bool),
    Count,
    Fraction,
    Bool,
    Duration,
    Jitter,
    Mode,
    Outcomes,
    Methods,
    Header,
    Headers,
    Status,
    Text,
    RouteBreaker,
}

fn fields(kind: Kind) -> &'static [(&'static str, Kind)] {
    use Kind::*;
    match kind {
        Scope => &[("circuit_breaker", Breaker), ("retry", Retry)],
        Route => &[("circuit_breaker", RouteBreaker), ("retry", Retry)],
        Breaker => &[
            ("failure_threshold", Count),
            ("failure_rate", FailureRate),
            ("slow_call", SlowCall),
            ("timeout", Duration),
            ("max_timeout", Duration),
            ("half_open_attempts", Count),
            ("probe_timeout", Duration),
            ("failure_on", Outcomes),
            ("count_retries", Bool),
            ("fallback", Fallback),
            ("mode", Mode),
        ],
        FailureRate => &[
            ("threshold", Fraction),
            ("minimum_requests", Count),
            ("window", Duration),
        ],
        SlowCall => &[("duration", Duration), ("rate_threshold", Fraction)],
        Fallback => &[("status", Status), ("headers", Headers), ("body", Text)],
        Retry => &[
            ("max_attempts", Count),
            ("base_delay", Duration),
            ("max_delay", Duration),
            ("exponential_base", Fraction),
            ("jitter", Jitter),
            ("retry_on", Outcomes),
            ("methods", Methods),
            ("idempotency_header", Header),
            ("per_try_timeout", Duration),
            ("deadline", Duration),
            ("respect_retry_after", Bool),
            ("budget", Budget),
            ("max_request_body", Count),
        ],
        Budget => &[
            ("ratio", Fraction),
            ("min_per_second", Count),
            ("window", Duration),
        ],
        _ => &[],
    }
}

/// Names of clusters and routes: a few that repeat (so scopes meet), odd ones, arbitrary ones.
fn name(u: &mut Unstructured) -> Result<String> {
    const NAMES: [&str; 6] = [
        "payments",
        "partner-api",
        "checkout-create",
        "outbound|8080||reviews.default.svc.cluster.local",
        "",
        "a;b",
    ];
    if u.ratio(3, 4)? {
        Ok(u.choose(&NAMES)?.to_string())
    } else {
        u.arbitrary()
    }
}

fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string())
}

/// A JSON number as text: whole, fractional, negative, huge, or with an exponent.
fn number(u: &mut Unstructured, typical: &[&str]) -> Result<String> {
    if strict() {
        // 1, 2 and 3 are inside the bounds of every count; 1 of every fraction.
        return Ok(u.choose(&["1", "2", "3"])?.to_string());
    }
    Ok(match u.int_in_range(0..=9u8)? {
        0..=4 => u.choose(typical)?.to_string(),
        5 => u.arbitrary::<u32>()?.to_string(),
        6 => u.arbitrary::<i64>()?.to_string(),
        7 => {
            let x: f64 = u.arbitrary()?;
            if x.is_finite() {
                x.to_string()
            } else {
                "1e400".to_string()
            }
        }
        8 => format!(
            "{}e{}",
            u.int_in_range(0..=99u8)?,
            u.int_in_range(-9..=9i8)?
        ),
        _ => u.int_in_range(0..=20u8)?.to_string(),
    })
}

fn duration(u: &mut Unstructured) -> Result<String> {
    const TYPICAL: [&str; 16] = [
        "\"250ms\"",
        "\"1s\"",
        "\"1.5s\"",
        "\"2m\"",
        "\"1h\"",
        "\"0s\"",
        "\"0ms\"",
        "\"10s\"",
        "\"24h\"",
        "\"25h\"",
        "\"0.0005s\"",
        "\"1.0000000000001h\"",
        "60",
        "0.001",
        "\"-1s\"",
        "\"3600000ms\"",
    ];
    if strict() {
        // Inside the bounds of every duration field.
        return Ok(u
            .choose(&[
                "\"1s\"", "\"2s\"", "\"1.5s\"", "\"10s\"", "\"1m\"", "\"1h\"", "30",
            ])?
            .to_string());
    }
    Ok(match u.int_in_range(0..=4u8)? {
        0..=2 => u.choose(&TYPICAL)?.to_string(),
        3 => {
            let unit = *u.choose(&["ms", "s", "m", "h", "", "us", "S"])?;
            let whole = u.arbitrary::<u32>()? % 100_000;
            if u.arbitrary()? {
                format!("\"{whole}.{}{unit}\"", u.arbitrary::<u16>()?)
            } else {
                format!("\"{whole}{unit}\"")
            }
        }
        _ => quote(&u.arbitrary::<String>()?),
    })
}

/// A scalar or list value of `kind`, with a small chance of anything else.
fn leaf(u: &mut Unstructured, kind: Kind) -> Result<String> {
    use Kind::*;
    Ok(match kind {
        Count => number(
            u,
            &[
                "0", "1", "2", "3", "5", "10", "11", "1000", "1001", "16777216",
            ],
        )?,
        Fraction if strict() => u.choose(&["1", "1.0"])?.to_string(),
        Jitter if strict() => u
            .choose(&["true", "false", "\"full\"", "\"equal\"", "\"decorrelated\""])?
            .to_string(),
        Mode if strict() => u
            .choose(&[
                "\"enforce\"",
                "\"shadow\"",
                "\"forced_open\"",
                "\"disabled\"",
            ])?
            .to_string(),
        Status if strict() => u.choose(&["503", "200", "429"])?.to_string(),
        Outcomes | Methods | Header | Headers | Text if strict() => strict_leaf(u, kind)?,
        Fraction => number(
            u,
            &[
                "0",
                "0.2",
                "0.5",
                "1",
                "1.0",
                "2.0",
                "10",
                "10.5",
                "-0.5",
                "0.0000001",
            ],
        )?,
        Status => number(u, &["503", "200", "599", "600", "199", "429", "0"])?,
        Bool => u.choose(&["true", "false"])?.to_string(),
        Duration => duration(u)?,
        Jitter => u
            .choose(&[
                "true",
                "false",
                "\"none\"",
                "\"proportional\"",
                "\"full\"",
                "\"equal\"",
                "\"decorrelated\"",
                "\"Full\"",
            ])?
            .to_string(),
        Mode => u
            .choose(&[
                "\"enforce\"",
                "\"shadow\"",
                "\"forced_open\"",
                "\"disabled\"",
                "\"off\"",
            ])?
            .to_string(),
        Outcomes => {
            let items = list(u, |u| {
                Ok(u.choose(&[
                    "\"5xx\"",
                    "\"gateway-error\"",
                    "\"reset\"",
                    "\"connect-failure\"",
                    "\"timeout\"",
                    "\"no-healthy-upstream\"",
                    "\"overflow\"",
                    "\"429\"",
                    "\"408\"",
                    "\"404\"",
                    "\"503\"",
                    "\"599\"",
                    "\"600\"",
                    "429",
                    "\"4xx\"",
                ])?
                .to_string())
            })?;
            format!("[{}]", items.join(","))
        }
        Methods => {
            let items = list(u, |u| {
                Ok(match u.int_in_range(0..=3u8)? {
                    0 => quote(&u.arbitrary::<String>()?),
                    _ => u
                        .choose(&[
                            "\"GET\"",
                            "\"post\"",
                            "\"PUT\"",
                            "\"DELETE\"",
                            "\"BAD METHOD\"",
                        ])?
                        .to_string(),
                })
            })?;
            format!("[{}]", items.join(","))
        }
        Header => match u.int_in_range(0..=3u8)? {
            0 => "null".to_string(),
            1 => quote(&u.arbitrary::<String>()?),
            _ => u
                .choose(&["\"idempotency-key\"", "\"X-Idempotency\"", "\"bad header\""])?
                .to_string(),
        },
        Headers => {
            let entries = list(u, |u| {
                let name = match u.int_in_range(0..=4u8)? {
                    0 => u.arbitrary::<String>()?,
                    _ => u
                        .choose(&[
                            "content-type",
                            "X-Source",
                            "retry-after",
                            "x-breakwater-breaker",
                            "content-length",
                            "bad name",
                        ])?
                        .to_string(),
                };
                let value = match u.int_in_range(0..=3u8)? {
                    0 => u.arbitrary::<String>()?,
                    1 => " padded ".to_string(),
                    _ => "application/json".to_string(),
                };
                Ok(format!("{}:{}", quote(&name), quote(&value)))
            })?;
            format!("{{{}}}", entries.join(","))
        }
        Text => {
            if u.ratio(1, 16)? {
                quote(&"x".repeat(16 * 1024 + usize::from(u.arbitrary::<bool>()?)))
            } else {
                quote(&u.arbitrary::<String>()?)
            }
        }
        RouteBreaker => "null".to_string(),
        _ => "null".to_string(),
    })
}

/// The values of `kind` that validation accepts.
fn strict_leaf(u: &mut Unstructured, kind: Kind) -> Result<String> {
    use Kind::*;
    let pick = |u: &mut Unstructured, all: &[&str]| -> Result<String> {
        let items = list(u, |u| Ok(u.choose(all)?.to_string()))?;
        Ok(format!("[{}]", items.join(",")))
    };
    Ok(match kind {
        Outcomes => pick(
            u,
            &[
                "\"5xx\"",
                "\"gateway-error\"",
                "\"reset\"",
                "\"connect-failure\"",
                "\"429\"",
                "\"503\"",
            ],
        )?,
        Methods => pick(u, &["\"GET\"", "\"PUT\"", "\"post\"", "\"DELETE\""])?,
        Header => u
            .choose(&["\"idempotency-key\"", "\"X-Idempotency\"", "null"])?
            .to_string(),
        Headers => u
            .choose(&[
                "{}",
                "{\"content-type\":\"text/plain\"}",
                "{\"X-Source\":\"fallback\",\"cache-control\":\"no-store\"}",
            ])?
            .to_string(),
        _ => quote(
            &u.arbitrary::<String>()?
                .chars()
                .take(64)
                .collect::<String>(),
        ),
    })
}

fn list(
    u: &mut Unstructured,
    mut item: impl FnMut(&mut Unstructured) -> Result<String>,
) -> Result<Vec<String>> {
    let mut items = Vec::new();
    for _ in 0..u.int_in_range(0..=4u8)? {
        items.push(item(u)?);
    }
    Ok(items)
}

/// Any value at all, for the wrong-type cases.
fn stray(u: &mut Unstructured) -> Result<String> {
    Ok(u.choose(&[
        "null",
        "true",
        "0",
        "-1",
        "1.5",
        "\"x\"",
        "[]",
        "{}",
        "[1]",
        "{\"a\":1}",
    ])?
    .to_string())
}

fn value(u: &mut Unstructured, kind: Kind, depth: u8) -> Result<String> {
    // Now and then a value of the wrong type (or null, which turns parts off).
    if !strict() && u.ratio(1, 12)? {
        return stray(u);
    }
    match kind {
        Kind::Names(routes) => {
            let entries = list(u, |u| {
                let scope = if routes { Kind::Route } else { Kind::Scope };
                Ok(format!(
                    "{}:{}",
                    quote(&name(u)?),
                    value(u, scope, depth + 1)?
                ))
            })?;
            Ok(format!("{{{}}}", entries.join(",")))
        }
        k if !fields(k).is_empty() => object(u, k, depth),
        k => leaf(u, k),
    }
}

fn object(u: &mut Unstructured, kind: Kind, depth: u8) -> Result<String> {
    let mut entries = Vec::new();
    if depth < 6 {
        for (field, inner) in fields(kind) {
            if u.ratio(1, 3)? {
                entries.push(format!("{}:{}", quote(field), value(u, *inner, depth + 1)?));
            }
        }
    }
    if !strict() && u.ratio(1, 20)? {
        // A typo, or a field repeated.
        let key = match fields(kind).first() {
            Some((field, _)) if u.arbitrary()? => field.to_string(),
            _ => u.arbitrary::<String>()?,
        };
        entries.push(format!("{}:{}", quote(&key), stray(u)?));
    }
    // The order of fields is not significant, but the reader must not depend on it.
    if entries.len() > 1 && u.arbitrary()? {
        entries.reverse();
    }
    Ok(format!("{{{}}}", entries.join(",")))
}

/// A whole policy document.
pub fn policy_json(u: &mut Unstructured) -> Result<String> {
    STRICT.with(|s| s.set(false));
    let strict = u.arbitrary()?;
    STRICT.with(|s| s.set(strict));
    let mut entries = Vec::new();
    if u.ratio(3, 4)? {
        entries.push(format!("\"default\":{}", value(u, Kind::Scope, 1)?));
    }
    if u.arbitrary()? {
        entries.push(format!("\"clusters\":{}", value(u, Kind::Names(false), 1)?));
    }
    if u.arbitrary()? {
        entries.push(format!("\"routes\":{}", value(u, Kind::Names(true), 1)?));
    }
    if !strict && u.ratio(1, 30)? {
        entries.push(format!(
            "{}:{}",
            quote(&u.arbitrary::<String>()?),
            stray(u)?
        ));
    }
    Ok(format!("{{{}}}", entries.join(",")))
}

/// The route names a policy document mentions, for lookups.
pub fn route_names() -> &'static [&'static str] {
    &[
        "payments",
        "partner-api",
        "checkout-create",
        "outbound|8080||reviews.default.svc.cluster.local",
        "a;b",
    ]
}
