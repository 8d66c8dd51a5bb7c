//! What the filter costs: wasm fuel (executed instructions, roughly) per request on the common
//! paths, the host calls of a healthy request, and the size of the release `.wasm`. Fuel and
//! host calls are deterministic and independent of the machine, so they are figures to compare
//! across changes: the healthy path's fuel is guarded at its measured figure plus room, its host
//! calls exactly (speed is measured in benchmarks, never in tests).

use std::collections::BTreeMap;
use std::time::Duration;

use breakwater_host_tests::{ms, Callback, HostCallReport, Reply, World};
use serde_json::json;

use crate::common::{count, policy, world, CLUSTER};

/// Requests measured per figure, after the warm-up.
const MEASURED: u64 = 50;

/// The fuel per request of `MEASURED` requests of `method`, after 10 to warm up (metric ids,
/// allocations), each run to its end.
fn fuel_per_request(w: &mut World, method: &str) -> u64 {
    let send = |w: &mut World, n: u64| {
        for i in 0..n {
            w.request((i % 2) as usize)
                .method(method)
                .cluster(CLUSTER)
                .send();
            w.run_until_idle();
        }
    };
    send(w, 10);
    let before = w.fuel().total;
    send(w, MEASURED);
    (w.fuel().total - before) / MEASURED
}

fn default_world() -> World {
    // The defaults of POLICY.md, with a short retry delay so the runs stay short.
    world(2, &policy(json!({}), json!({ "base_delay": "10ms" })))
}

#[test]
fn fuel_per_request_on_the_healthy_path_on_a_failure_and_on_a_retry() {
    let mut w = default_world();
    w.upstream(CLUSTER, Reply::ok().after(ms(1)));
    let healthy_get = fuel_per_request(&mut w, "GET");
    let healthy_post = fuel_per_request(&mut w, "POST");

    // The default breaker opens after 5 failures in a row: turn that trigger off to keep
    // measuring the closed path. POSTs are not retried.
    let mut w = world(
        2,
        &policy(
            json!({ "failure_threshold": 0 }),
            json!({ "base_delay": "10ms" }),
        ),
    );
    w.upstream(CLUSTER, Reply::status(503).after(ms(1)));
    let failure = fuel_per_request(&mut w, "POST");
    assert_eq!(count(&w, "retries_total"), 0);

    let mut w = world(
        2,
        &policy(
            json!({ "failure_threshold": 0 }),
            json!({ "base_delay": "10ms", "max_attempts": 2 }),
        ),
    );
    w.upstream(CLUSTER, Reply::status(503).after(ms(1)));
    let retried = fuel_per_request(&mut w, "GET");
    assert_eq!(
        count(&w, "retries_total"),
        10 + MEASURED,
        "every request was retried once"
    );

    println!(
        "fuel per request: healthy GET (retry-eligible, copied) {healthy_get}, healthy POST \
         {healthy_post}, failed POST (not retried) {failure}, failed GET retried once {retried}"
    );
    assert!(
        healthy_post > 0 && healthy_get < 1_000_000,
        "healthy: {healthy_get}"
    );
    assert!(
        healthy_get > healthy_post,
        "a retry-eligible request pays for its copy: {healthy_get} vs {healthy_post}"
    );
    assert!(
        failure > healthy_post,
        "a failure is judged and recorded: {failure} vs {healthy_post}"
    );
    assert!(
        retried > failure,
        "a retry adds a tick, a dispatch and a call response: {retried} vs {failure}"
    );
    assert!(retried < 3_000_000, "retried: {retried}");
    // Fuel is counted, not timed: a regression guard at the measured figure plus room. The
    // healthy path was 27.7k before the request's header map was read in place (18.7k), then
    // 16.9k with property paths and shared-data keys built without the SDK's serialization and
    // `format!`; then 20.4k once every success is recorded (the breaker's state is read on the
    // response too: a success resets the consecutive count whenever it is non-zero); then 15.9k
    // with the quiet breaker answered from its bytes, the clock read lazily, `requests_total`
    // counted per worker and closed breakers admitted without the clock; then 12.8k with the
    // request's headers read in one pass (an ASCII check of all names and values at once instead
    // of a UTF-8 check of each), its policy entry and breaker key found once at admission and
    // kept, the cluster's metrics and budget batch found through one slot, and nothing reported
    // for an admission that did not step the breaker; then 11.1k with the request's state in
    // one allocation (a boxed exchange, moved by pointer), what a configuration needs of a
    // cluster (its policy row, metric slot and breaker key) kept per cluster, and header pairs
    // read without a call per pair.
    assert!(
        healthy_get <= HEALTHY_FUEL_BUDGET,
        "a healthy GET took {healthy_get} fuel, over its {HEALTHY_FUEL_BUDGET} budget: find what \
         the request path does again (`cargo run -p breakwater-host-tests --example fuel -- \
         --profile`)"
    );
}

/// The healthy path's fuel per request, measured at 11,139 (a GET, the default policy, two
/// workers), plus 10%.
const HEALTHY_FUEL_BUDGET: u64 = 12_253;

/// The .wasm must stay small: Envoy loads it into every worker's VM and Istio pulls it into
/// every proxy.
///
/// The issues set a 200 KB target; it is not met. Measured on the release profile (opt-level "z",
/// fat LTO, one codegen unit, abort on panic, stripped): a proxy-wasm filter with one root and one
/// HTTP context is ~85 KB; the repo's no-op fixture, which adds serde_json, ~140 KB; the policy
/// parser and validator (every rule with path, value and rule in its messages) ~75 KB; the core
/// ~20 KB; the glue ~35 KB with the SDK dispatcher bodies it inlines into. Real traffic (a body
/// copy that follows the stream past the response, the worker's byte budget, rate-limited
/// warnings, replies with raw header bytes) took it from 277 KB to 285 KB; Istio's service keys
/// (the cluster-name reader and the table of service combinations), the stable state scope and
/// the shadow-state gauge to 299 KB; the retried response written into the held response's
/// place (raw header, buffer and trailer writes, the relay table, the choice between that and a
/// local reply) and the router's attempt count to 306 KB; gRPC outcomes and the gRPC fallback,
/// and the healthy path's savings (the quiet breaker read from its bytes, counters batched per
/// worker and flushed on the root's tick, the clock read lazily, `failure_rate`'s successes held
/// per worker), which traded size for a cheaper request, deliberately, to 322 KB; the policy's
/// field table and closed set of rules (+1.3 KB), and the bounded cluster table, the memory
/// stats and the per-cluster cache of the cheaper request path, to 326.7 KB. This bound is the
/// regression guard at the current size plus a little room: growth past it must be a decision.
const WASM_BUDGET_BYTES: u64 = 330_000;

#[test]
fn the_release_wasm_stays_within_its_size_budget() {
    let path = breakwater_wasm::breakwater().expect("the module builds");
    let size = std::fs::metadata(&path).expect("the module exists").len();
    println!("{}: {size} bytes", path.display());
    assert!(
        size <= WASM_BUDGET_BYTES,
        "{} is {size} bytes, over the {WASM_BUDGET_BYTES}-byte budget: find what grew \
         (`twiggy top` on an unstripped build) before raising it",
        path.display(),
    );
}

/// Requests measured for host calls: a multiple of both workers' budget writes (every 32 of a
/// worker's requests), so the batched writes come out whole.
const HOST_CALL_REQUESTS: u64 = 128;
/// One request every 25 ms, alternating workers: the measured requests span 3.2 s, so each
/// worker's batched counts are flushed by its tick three times.
const HOST_CALL_SPACING: Duration = ms(25);

/// The host calls of [`HOST_CALL_REQUESTS`] healthy GETs after a warm-up, alternating workers,
/// each run to its end: by callback and import.
fn host_calls_of_healthy_gets(w: &mut World) -> HostCallReport {
    w.upstream(CLUSTER, Reply::ok().after(ms(1)));
    let send = |w: &mut World, n: u64| {
        for i in 0..n {
            let start = w.now();
            w.request((i % 2) as usize).cluster(CLUSTER).send();
            w.run_until_idle();
            w.advance_to(start + HOST_CALL_SPACING);
        }
    };
    send(w, 64);
    let before = w.host_calls();
    send(w, HOST_CALL_REQUESTS);
    w.host_calls().since(&before)
}

/// The calls in `report` as `callback import ×n` lines, for messages.
fn listing(report: &HostCallReport) -> String {
    report
        .by_callback
        .iter()
        .flat_map(|(callback, imports)| {
            let callback = callback.map_or("-", |c| c.export_name());
            imports
                .iter()
                .map(move |(name, n)| format!("{callback} {name} ×{n}"))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Asserts that `report` holds exactly the `expected` calls (callback, import, calls over
/// [`HOST_CALL_REQUESTS`] requests), and nothing else.
fn assert_host_calls(report: &HostCallReport, expected: &[(Callback, &str, u64)], why: &str) {
    let wanted: BTreeMap<(Option<Callback>, String), u64> = expected
        .iter()
        .map(|(callback, name, n)| ((Some(*callback), name.to_string()), *n))
        .collect();
    let made: BTreeMap<(Option<Callback>, String), u64> = report
        .by_callback
        .iter()
        .flat_map(|(callback, imports)| {
            imports
                .iter()
                .map(move |(name, n)| ((*callback, name.clone()), *n))
        })
        .collect();
    assert_eq!(
        made,
        wanted,
        "{why}: the host calls of {HOST_CALL_REQUESTS} healthy GETs changed; made:\n{}\nEach call \
         on the healthy path is listed with the behaviour that needs it in BENCHMARKS.md \
         (Harness figures): update both together",
        listing(report)
    );
}

#[test]
fn host_calls_per_healthy_request_are_the_listed_ones() {
    use Callback::{RequestHeaders as Req, ResponseHeaders as Resp, Tick};
    const N: u64 = HOST_CALL_REQUESTS;
    // Each worker flushes its batched counts (`requests_total`, the retry budget's request
    // count) once a second: 3.2 s of requests on two workers.
    const FLUSHES: u64 = 6;
    let mut w = default_world();
    let report = host_calls_of_healthy_gets(&mut w);
    assert_host_calls(
        &report,
        &[
            // Every request: its headers (client `x-breakwater-*` to strip, what a retry copy
            // needs), its cluster, its breaker at admission; the response's `:status`, and the
            // breaker again for the success (a consecutive count to reset).
            (Req, "proxy_get_header_map_pairs", N),
            (Req, "proxy_get_property", N),
            (Req, "proxy_get_shared_data", N),
            (Resp, "proxy_get_header_map_value", N),
            (Resp, "proxy_get_shared_data", N),
            // The first request after a flush reads the clock and arms the flush on its root.
            (Req, "clock_time_get", FLUSHES),
            (Req, "proxy_set_tick_period_milliseconds", FLUSHES),
            // The flush: the clock, `requests_total`, the budget's read and write, timer off
            // (the memory stats move only when the VM grew, which it no longer does once warm).
            (Tick, "clock_time_get", FLUSHES),
            (Tick, "proxy_increment_metric", FLUSHES),
            (Tick, "proxy_get_shared_data", FLUSHES),
            (Tick, "proxy_set_shared_data", FLUSHES),
            (Tick, "proxy_set_tick_period_milliseconds", FLUSHES),
        ],
        "default policy",
    );
    assert_eq!(report.total, 5 * N + 7 * FLUSHES);

    let mut w = world(
        2,
        &policy(
            json!({ "failure_rate": { "threshold": 0.5, "minimum_requests": 20, "window": "10s" } }),
            json!({ "base_delay": "10ms" }),
        ),
    );
    let report = host_calls_of_healthy_gets(&mut w);
    assert_host_calls(
        &report,
        &[
            (Req, "proxy_get_header_map_pairs", N),
            (Req, "proxy_get_property", N),
            (Req, "proxy_get_shared_data", N),
            // A closed breaker admits without the clock, window or not.
            (Req, "clock_time_get", FLUSHES),
            (Req, "proxy_set_tick_period_milliseconds", FLUSHES),
            (Resp, "proxy_get_header_map_value", N),
            // A success reads the breaker (a consecutive count to reset?) and is held back in
            // the worker for the rate window.
            (Resp, "proxy_get_shared_data", N),
            (Tick, "clock_time_get", FLUSHES),
            (Tick, "proxy_increment_metric", FLUSHES),
            // The flush adds the held successes to the window and the request counts to the
            // budget: a read and a write each.
            (Tick, "proxy_get_shared_data", 2 * FLUSHES),
            (Tick, "proxy_set_shared_data", 2 * FLUSHES),
            (Tick, "proxy_set_tick_period_milliseconds", FLUSHES),
        ],
        "failure_rate on",
    );
    assert_eq!(report.total, 5 * N + 9 * FLUSHES);
}
