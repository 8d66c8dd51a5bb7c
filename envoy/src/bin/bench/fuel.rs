//! Part 3: the filter's wasm work per request, from the wasmtime harness.
//!
//! The harness counts fuel (about one unit per wasm instruction), which does not depend on this
//! machine's load or on how the harness itself was compiled, so it runs as the debug build of
//! `host-tests/examples/fuel.rs` (`cargo run -p breakwater-host-tests --example fuel -- --json`);
//! building wasmtime in release mode would take many minutes for nothing.

use std::collections::BTreeMap;
use std::process::Command;

use serde_json::Value;

use crate::BenchResult;

/// What the harness measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Fuel {
    /// A healthy GET through a closed breaker, all callbacks and VMs included.
    pub closed: u64,
    /// A 503 the breaker records (a POST: not retried).
    pub failure: u64,
    /// A GET that fails once and succeeds on its retry, the retry's tick and call included.
    pub retry: u64,
    /// The no-op filter's closed path, for comparison.
    pub noop_closed: u64,
    /// Breakwater's closed path per callback (mean fuel per request).
    pub closed_by_callback: BTreeMap<String, f64>,
    pub noop_by_callback: BTreeMap<String, f64>,
}

/// Runs the harness example and reads its JSON line.
pub fn measure() -> BenchResult<Fuel> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let args = [
        "run",
        "-q",
        "-p",
        "breakwater-host-tests",
        "--example",
        "fuel",
        "--",
        "--json",
    ];
    let output = Command::new(&cargo)
        .current_dir(breakwater_wasm::workspace_root())
        .args(args)
        .output()
        .map_err(|e| format!("running `{cargo} {}`: {e}", args.join(" ")))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "`cargo {}` failed ({}):\n{}{stdout}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    parse(&stdout)
}

/// Reads the example's output: its last non-empty line is one JSON object.
pub fn parse(output: &str) -> BenchResult<Fuel> {
    let line = output
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .ok_or("the fuel example printed nothing")?;
    let value: Value = serde_json::from_str(line)
        .map_err(|e| format!("the fuel example's line is not JSON ({e}): {line}"))?;
    let number = |path: &[&str]| -> BenchResult<u64> {
        let mut at = &value;
        for key in path {
            at = at.get(key).ok_or_else(|| {
                format!("the fuel example's JSON has no {}: {line}", path.join("."))
            })?;
        }
        at.as_u64()
            .ok_or_else(|| format!("{} is not a whole number: {line}", path.join(".")).into())
    };
    let callbacks = |key: &str| -> BTreeMap<String, f64> {
        value
            .get(key)
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_f64()?)))
                    .collect()
            })
            .unwrap_or_default()
    };
    Ok(Fuel {
        closed: number(&["fuel_per_request", "closed"])?,
        failure: number(&["fuel_per_request", "failure"])?,
        retry: number(&["fuel_per_request", "retry"])?,
        noop_closed: number(&["noop_fuel_per_request"])?,
        closed_by_callback: callbacks("closed_by_callback"),
        noop_by_callback: callbacks("noop_by_callback"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = r#"{"closed_by_callback":{"proxy_on_request_headers":25477.0,"proxy_on_response_headers":8715.0},"fuel_per_request":{"closed":37073,"failure":39640,"retry":78745},"noop_by_callback":{"proxy_on_request_headers":1700.0},"noop_fuel_per_request":4490}"#;

    #[test]
    fn the_last_line_of_the_example_is_read() {
        let output = format!("compiling noise\n{LINE}\n\n");
        let fuel = parse(&output).expect("the example's line parses");
        assert_eq!(
            (fuel.closed, fuel.failure, fuel.retry),
            (37073, 39640, 78745)
        );
        assert_eq!(fuel.noop_closed, 4490);
        assert_eq!(
            fuel.closed_by_callback.get("proxy_on_request_headers"),
            Some(&25477.0)
        );
    }

    #[test]
    fn a_missing_figure_is_named() {
        let cut = LINE.replace(r#""retry":78745"#, r#""retried":78745"#);
        let error = parse(&cut).expect_err("retry is required").to_string();
        assert!(error.contains("fuel_per_request.retry"), "{error}");
    }

    #[test]
    fn output_that_is_not_json_is_an_error_not_a_panic() {
        assert!(parse("error: could not compile").is_err());
        assert!(parse("").is_err());
    }
}
