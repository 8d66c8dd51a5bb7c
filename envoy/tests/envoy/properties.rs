//! Properties Breakwater reads in `on_http_response_headers`, measured in Envoy 1.40 with the
//! harness's fixture filter (its `x-fixture-response` script runs there and reports each
//! result as an `x-fixture-result` response header).
//!
//! Breakwater reads no clock when a request arrives at a quiet breaker; a failure that may be
//! retried derives the request's start from `request.time` read against the wall clock. This
//! pins what that needs: `request.time` is there when the response headers pass, as 8 bytes of
//! Unix nanoseconds (the stream's start), and `request.duration` is not there yet (Envoy sets it
//! when the stream completes), so it cannot serve.

use std::time::Duration;

use breakwater_envoy::{EnvoyConfig, Request, WasmFilter};

use crate::common::{start, upstream};

fn results(response: &breakwater_envoy::Response) -> Vec<String> {
    response
        .headers
        .iter()
        .filter(|(name, _)| name == "x-fixture-result")
        .map(|(_, value)| value.clone())
        .collect()
}

/// The value of `command`'s result, `<command>=<value>`.
fn result<'a>(results: &'a [String], command: &str) -> &'a str {
    results
        .iter()
        .find_map(|r| r.strip_prefix(command)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no result for {command}: {results:?}"))
}

#[test]
fn request_time_is_the_streams_start_in_unix_nanoseconds_and_request_duration_is_unset_in_the_response_headers(
) {
    let upstream = upstream("a");
    upstream.set_delay(Duration::from_millis(300));
    let fixture = breakwater_wasm::build("breakwater-fixture")
        .unwrap_or_else(|e| panic!("the fixture filter must build: {e}"));
    let envoy = start(
        &EnvoyConfig::new()
            .cluster("a", upstream.addr())
            .filter(WasmFilter::new(fixture).configuration("log start")),
    );
    let response = envoy
        .send(&Request::get("/").header(
            "x-fixture-response",
            "property-int request.time;property-int request.duration;time",
        ))
        .expect("a response");
    assert_eq!(response.status, 200);
    let results = results(&response);
    println!("{results:?}");
    let start: i64 = result(&results, "property-int request.time")
        .parse()
        .unwrap_or_else(|e| panic!("request.time is an 8-byte integer: {e} in {results:?}"));
    let now: i64 = result(&results, "time")
        .strip_prefix("host=")
        .and_then(|t| t.split(' ').next())
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("the wall clock: {results:?}"));
    let elapsed = Duration::from_nanos(u64::try_from(now - start).expect("start before now"));
    assert!(
        elapsed >= Duration::from_millis(300) && elapsed < Duration::from_secs(10),
        "request.time is the stream's start on the wall clock, in ns: the upstream took 300 ms, \
         and {elapsed:?} passed since request.time"
    );
    assert_eq!(
        result(&results, "property-int request.duration"),
        "missing",
        "request.duration is set only when the stream completes"
    );
}
