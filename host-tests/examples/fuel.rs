//! Wasm work per request (fuel: about one unit per executed wasm instruction) on Breakwater's
//! three paths, for the benchmark (`cargo run --release -p breakwater-envoy --bin bench`).
//!
//! ```sh
//! cargo run -p breakwater-host-tests --example fuel            # a table
//! cargo run -p breakwater-host-tests --example fuel -- --json  # one JSON line (the bench reads it)
//! ```
//!
//! Two workers (as in the Envoy benchmark), the default policy (`{}`), one cluster:
//! - **closed**: a GET answered 200 through a closed breaker. The figure is the mean over
//!   [`REQUESTS`] requests of all fuel used meanwhile, every VM and callback included, after a
//!   warm-up (the first requests of a worker define its metrics and create the shared state).
//! - **failure**: a POST answered 503. The breaker records a failure; a POST is not retried. Each
//!   failure follows a success, so the breaker stays closed; the figure is the mean of the fuel
//!   used by each failed request alone.
//! - **retry**: a GET answered 503, then 200 on its retry: the whole request, the tick that
//!   dispatches the retry and the call's response included.
//!
//! The noop filter (`breakwater-noop`, the benchmark's baseline) runs the closed path too, and the
//! fuel per callback is printed for both, so a regression shows where it comes from. Fuel counts
//! do not depend on how fast this machine is or on how the harness was compiled.
//!
//! `--profile` adds an ablation: the closed path under policies that turn parts off (retries,
//! the budget, the breaker, both) and with `failure_rate` on, and a POST (never copied for a
//! retry). The differences say what each part of the hot path costs, without touching the filter.

use std::collections::BTreeMap;

use breakwater_host_tests::{ms, Callback, CallbackFuel, Reply, World};

/// Requests averaged on the closed path.
const REQUESTS: u64 = 400;
/// Failures and retries averaged.
const SAMPLES: u64 = 50;
/// Requests sent before measuring.
const WARM_UP: usize = 40;
const CLUSTER: &str = "backend";
const WORKERS: usize = 2;

/// Fuel used so far, in all and per callback.
fn snapshot(world: &World) -> (u64, BTreeMap<Callback, CallbackFuel>) {
    let fuel = world.fuel();
    (fuel.total, fuel.by_callback)
}

/// Fuel per callback call between two snapshots, divided by `requests`.
fn per_callback(
    before: &BTreeMap<Callback, CallbackFuel>,
    after: &BTreeMap<Callback, CallbackFuel>,
    requests: u64,
) -> BTreeMap<String, (f64, u64)> {
    after
        .iter()
        .filter_map(|(callback, now)| {
            let was = before.get(callback).copied().unwrap_or_default();
            let calls = now.calls - was.calls;
            (calls > 0).then(|| {
                let fuel = (now.fuel - was.fuel) as f64 / requests as f64;
                (callback.export_name().to_string(), (fuel, calls))
            })
        })
        .collect()
}

/// One request on `worker`, run to completion; the fuel it used.
fn one(world: &mut World, worker: usize, method: &str) -> u64 {
    let before = world.fuel().total;
    let stream = world
        .request(worker)
        .method(method)
        .path("/item")
        .cluster(CLUSTER)
        .send();
    world.run_until_idle();
    assert!(
        world.response(stream).is_some(),
        "every measured request gets a response"
    );
    world.fuel().total - before
}

struct Closed {
    per_request: u64,
    by_callback: BTreeMap<String, (f64, u64)>,
}

/// The closed path of `world`'s module: healthy GETs, alternating workers.
fn closed(world: World) -> Closed {
    closed_with(world, "GET")
}

/// The closed path with requests of `method`.
fn closed_with(mut world: World, method: &str) -> Closed {
    world.upstream(CLUSTER, Reply::ok().body("ok").after(ms(1)));
    for i in 0..WARM_UP {
        one(&mut world, i % WORKERS, method);
    }
    let (total, callbacks) = snapshot(&world);
    for i in 0..REQUESTS {
        one(&mut world, i as usize % WORKERS, method);
    }
    let (total_after, callbacks_after) = snapshot(&world);
    Closed {
        per_request: (total_after - total) / REQUESTS,
        by_callback: per_callback(&callbacks, &callbacks_after, REQUESTS),
    }
}

fn breakwater() -> Result<World, Box<dyn std::error::Error>> {
    breakwater_with("{}")
}

fn breakwater_with(policy: &str) -> Result<World, Box<dyn std::error::Error>> {
    Ok(World::builder()
        .breakwater()
        .configuration(policy)
        .workers(WORKERS)
        .seed(1)
        .build()?)
}

/// Policies that turn parts of the closed path off (or on), with the method sent.
const ABLATIONS: [(&str, &str, &str); 7] = [
    ("default policy", "{}", "GET"),
    ("POST (not copied for retries)", "{}", "POST"),
    (
        "budget off",
        r#"{"default": {"retry": {"budget": null}}}"#,
        "GET",
    ),
    ("retries off", r#"{"default": {"retry": null}}"#, "GET"),
    (
        "breaker off",
        r#"{"default": {"circuit_breaker": null}}"#,
        "GET",
    ),
    (
        "breaker and retries off",
        r#"{"default": {"circuit_breaker": null, "retry": null}}"#,
        "GET",
    ),
    (
        "failure_rate on",
        r#"{"default": {"circuit_breaker": {"failure_rate": {"threshold": 0.5, "minimum_requests": 20, "window": "10s"}}}}"#,
        "GET",
    ),
];

/// Prints the closed path's fuel under each ablation, per callback.
fn profile() -> Result<(), Box<dyn std::error::Error>> {
    println!("closed path under ablations (fuel per request: total, then per callback):");
    for (name, policy, method) in ABLATIONS {
        let c = closed_with(breakwater_with(policy)?, method);
        let parts: Vec<String> = c
            .by_callback
            .iter()
            .map(|(cb, (fuel, _))| format!("{}={fuel:.0}", cb.trim_start_matches("proxy_on_")))
            .collect();
        println!("  {name:<32} {:>7}  {}", c.per_request, parts.join(" "));
    }
    Ok(())
}

/// Failed POSTs, each after a success so the breaker stays closed.
fn failure(mut world: World) -> u64 {
    let mut used = 0;
    for i in 0..SAMPLES as usize {
        world.upstream(CLUSTER, Reply::ok().after(ms(1)));
        one(&mut world, i % WORKERS, "GET");
        world.upstream(CLUSTER, Reply::status(503).after(ms(1)));
        used += one(&mut world, i % WORKERS, "POST");
    }
    assert_eq!(
        world.counter("breakwater.breakwater_cluster=.=backend;.;breaker_opened_total"),
        None,
        "the breaker never opened while failures were measured"
    );
    used / SAMPLES
}

/// GETs that fail once and succeed on their retry.
fn retry(mut world: World) -> u64 {
    let mut used = 0;
    for i in 0..SAMPLES as usize {
        world.upstream(
            CLUSTER,
            Reply::sequence([Reply::status(503).after(ms(1)), Reply::ok().after(ms(1))]),
        );
        used += one(&mut world, i % WORKERS, "GET");
    }
    let retries = world
        .counter("breakwater.breakwater_cluster=.=backend;.;retries_total")
        .unwrap_or(0);
    assert_eq!(retries, SAMPLES, "every measured request was retried once");
    used / SAMPLES
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let json = std::env::args().any(|a| a == "--json");
    if std::env::args().any(|a| a == "--profile") {
        return profile();
    }
    let noop = closed(
        World::builder()
            .package("breakwater-noop")
            .workers(WORKERS)
            .build()?,
    );
    let closed_path = closed(breakwater()?);
    let failed = {
        let mut world = breakwater()?;
        for i in 0..WARM_UP {
            world.upstream(CLUSTER, Reply::ok().after(ms(1)));
            one(&mut world, i % WORKERS, "GET");
        }
        failure(world)
    };
    let retried = {
        let mut world = breakwater()?;
        for i in 0..WARM_UP {
            world.upstream(CLUSTER, Reply::ok().after(ms(1)));
            one(&mut world, i % WORKERS, "GET");
        }
        retry(world)
    };

    if json {
        let callbacks = |c: &Closed| {
            c.by_callback
                .iter()
                .map(|(name, (fuel, _))| (name.clone(), serde_json::json!(fuel.round())))
                .collect::<serde_json::Map<_, _>>()
        };
        let line = serde_json::json!({
            "fuel_per_request": {
                "closed": closed_path.per_request,
                "failure": failed,
                "retry": retried,
            },
            "noop_fuel_per_request": noop.per_request,
            "closed_by_callback": callbacks(&closed_path),
            "noop_by_callback": callbacks(&noop),
        });
        println!("{line}");
        return Ok(());
    }
    println!("fuel per request (wasm instructions, roughly), 2 workers, policy {{}}:");
    println!("  noop filter, closed path   {:>8}", noop.per_request);
    println!(
        "  breakwater, closed path    {:>8}",
        closed_path.per_request
    );
    println!("  breakwater, failure (503)  {:>8}", failed);
    println!("  breakwater, one retry      {:>8}", retried);
    for (name, c) in [("noop", &noop), ("breakwater", &closed_path)] {
        println!("{name}, closed path, per request and callback:");
        for (callback, (fuel, calls)) in &c.by_callback {
            println!("  {callback:<32} {fuel:>10.0}  ({calls} calls)");
        }
    }
    Ok(())
}
