//! What the filter costs: wasm fuel (executed instructions, roughly) per request on the common
//! paths, and the size of the release `.wasm`. Fuel is deterministic and independent of the
//! machine, so it is a figure to compare across changes; the bounds asserted here are only
//! generous sanity bounds (speed is measured in benchmarks, never in tests).

use breakwater_host_tests::{ms, Reply, World};
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
    // response too: a success resets the consecutive count whenever it is non-zero).
    assert!(
        healthy_get <= HEALTHY_FUEL_BUDGET,
        "a healthy GET took {healthy_get} fuel, over its {HEALTHY_FUEL_BUDGET} budget: find what \
         the request path does again (`cargo run -p breakwater-host-tests --example fuel -- \
         --profile`)"
    );
}

/// The healthy path's fuel per request, measured at 20.4k (a GET, the default policy, two
/// workers), with room for deliberate small changes.
const HEALTHY_FUEL_BUDGET: u64 = 22_500;

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
/// the shadow-state gauge from 289 KB to 299 KB; the retried response written into the held
/// response's place (raw header, buffer and trailer writes, the relay table, the choice between
/// that and a local reply) and the router's attempt count to 306 KB. This bound is the
/// regression guard at the current size plus a little room: growth past it must be a decision.
const WASM_BUDGET_BYTES: u64 = 315_000;

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
