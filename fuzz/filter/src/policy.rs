//! Valid policies for the filter target, from fuzzer bytes: small times (so a world goes idle
//! within a few virtual seconds), few attempts and probes, every mode, every jitter, with and
//! without budgets, cluster and route overrides. Whatever validation would refuse (a rare
//! combination) falls back to `{}`, so the filter always starts.

use arbitrary::{Arbitrary, Result, Unstructured};
use serde_json::{json, Map, Value};

/// A policy JSON text that `Policy::parse` accepts.
#[derive(Debug, Clone)]
pub struct FilterPolicy(String);

impl FilterPolicy {
    pub fn json(&self) -> String {
        self.0.clone()
    }
}

fn ms(u: &mut Unstructured, low: u64, high: u64) -> Result<u64> {
    u.int_in_range(low..=high)
}

fn subset(u: &mut Unstructured, all: &[&str]) -> Result<Vec<Value>> {
    let mut picked = Vec::new();
    for item in all {
        if u.arbitrary()? {
            picked.push(json!(item));
        }
    }
    Ok(picked)
}

fn breaker(u: &mut Unstructured) -> Result<Value> {
    let mut b = Map::new();
    b.insert("failure_threshold".into(), json!(u.int_in_range(0..=5u8)?));
    if u.ratio(1, 3)? {
        b.insert(
            "failure_rate".into(),
            json!({
                "threshold": f64::from(u.int_in_range(1..=10u8)?) / 10.0,
                "minimum_requests": u.int_in_range(1..=5u8)?,
                "window": format!("{}ms", ms(u, 1000, 3000)?),
            }),
        );
    }
    if u.ratio(1, 4)? {
        b.insert(
            "slow_call".into(),
            json!({
                "duration": format!("{}ms", ms(u, 1, 500)?),
                "rate_threshold": f64::from(u.int_in_range(1..=10u8)?) / 10.0,
            }),
        );
    }
    let timeout = ms(u, 1, 3000)?;
    b.insert("timeout".into(), json!(format!("{timeout}ms")));
    b.insert(
        "max_timeout".into(),
        json!(format!("{}ms", ms(u, timeout, timeout * 4)?)),
    );
    b.insert("half_open_attempts".into(), json!(u.int_in_range(1..=3u8)?));
    b.insert(
        "probe_timeout".into(),
        json!(format!("{}ms", ms(u, 1, 2000)?)),
    );
    b.insert(
        "failure_on".into(),
        Value::Array(subset(
            u,
            &[
                "5xx",
                "gateway-error",
                "reset",
                "connect-failure",
                "timeout",
                "429",
                "404",
            ],
        )?),
    );
    b.insert("count_retries".into(), json!(u.arbitrary::<bool>()?));
    if u.ratio(1, 3)? {
        b.insert(
            "fallback".into(),
            json!({
                "status": u.int_in_range(200..=599u16)?,
                "headers": { "content-type": "text/plain", "x-fallback": "yes" },
                "body": if u.arbitrary()? { "" } else { "fallback" },
            }),
        );
    }
    let mode = *u.choose(&[
        "enforce",
        "enforce",
        "enforce",
        "shadow",
        "forced_open",
        "disabled",
    ])?;
    b.insert("mode".into(), json!(mode));
    Ok(Value::Object(b))
}

fn retry(u: &mut Unstructured) -> Result<Value> {
    let mut r = Map::new();
    r.insert("max_attempts".into(), json!(u.int_in_range(1..=5u8)?));
    let base = ms(u, 1, 200)?;
    r.insert("base_delay".into(), json!(format!("{base}ms")));
    r.insert(
        "max_delay".into(),
        json!(format!("{}ms", ms(u, base, base * 10)?)),
    );
    r.insert(
        "exponential_base".into(),
        json!(1.0 + f64::from(u.int_in_range(0..=20u8)?) / 10.0),
    );
    let jitters = [
        json!(true),
        json!(false),
        json!("full"),
        json!("equal"),
        json!("decorrelated"),
    ];
    r.insert("jitter".into(), u.choose(&jitters)?.clone());
    r.insert(
        "retry_on".into(),
        Value::Array(subset(
            u,
            &[
                "5xx",
                "gateway-error",
                "reset",
                "connect-failure",
                "408",
                "409",
                "429",
                "503",
            ],
        )?),
    );
    if u.arbitrary()? {
        r.insert(
            "methods".into(),
            Value::Array(subset(u, &["GET", "PUT", "POST", "DELETE", "PATCH"])?),
        );
    }
    if u.arbitrary()? {
        r.insert(
            "idempotency_header".into(),
            if u.arbitrary()? {
                json!("idempotency-key")
            } else {
                Value::Null
            },
        );
    }
    let per_try = ms(u, 1, 2000)?;
    r.insert("per_try_timeout".into(), json!(format!("{per_try}ms")));
    r.insert(
        "deadline".into(),
        json!(format!("{}ms", ms(u, per_try, per_try * 5)?)),
    );
    r.insert("respect_retry_after".into(), json!(u.arbitrary::<bool>()?));
    r.insert(
        "budget".into(),
        if u.ratio(1, 3)? {
            Value::Null
        } else {
            json!({
                "ratio": f64::from(u.int_in_range(0..=20u8)?) / 10.0,
                "min_per_second": u.int_in_range(0..=20u8)?,
                "window": format!("{}ms", ms(u, 1000, 10_000)?),
            })
        },
    );
    r.insert(
        "max_request_body".into(),
        json!(u.int_in_range(0..=4096u16)?),
    );
    Ok(Value::Object(r))
}

fn scope(u: &mut Unstructured) -> Result<Value> {
    let mut s = Map::new();
    match u.int_in_range(0..=7u8)? {
        0 => {
            s.insert("circuit_breaker".into(), Value::Null);
        }
        1 => {}
        _ => {
            s.insert("circuit_breaker".into(), breaker(u)?);
        }
    }
    match u.int_in_range(0..=7u8)? {
        0 => {
            s.insert("retry".into(), Value::Null);
        }
        1 => {}
        _ => {
            s.insert("retry".into(), retry(u)?);
        }
    }
    Ok(Value::Object(s))
}

impl<'a> Arbitrary<'a> for FilterPolicy {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let mut policy = Map::new();
        policy.insert("default".into(), scope(u)?);
        if u.arbitrary()? {
            policy.insert("clusters".into(), json!({ "payments": scope(u)? }));
        }
        if u.arbitrary()? {
            let route = match u.int_in_range(0..=2u8)? {
                0 => json!({ "circuit_breaker": null }),
                1 => json!({ "retry": { "max_attempts": 1 } }),
                _ => json!({ "retry": retry(u)? }),
            };
            policy.insert("routes".into(), json!({ "checkout-create": route }));
        }
        let text = Value::Object(policy).to_string();
        Ok(match breakwater::policy::Policy::parse(text.as_bytes()) {
            Ok(_) => FilterPolicy(text),
            Err(_) => FilterPolicy("{}".to_string()),
        })
    }
}
