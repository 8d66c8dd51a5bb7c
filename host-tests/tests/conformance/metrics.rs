//! Metrics with Envoy's rules (`Context::defineMetric`, `incrementMetric`, `recordMetric`,
//! `getMetric` in `source/extensions/common/wasm/context.cc`).

use super::common::fixture;
use breakwater_host_tests::{Reply, World};

fn run(world: &mut World, worker: usize, script: &str) -> Vec<String> {
    let s = world
        .request(worker)
        .cluster("c")
        .header("x-fixture-request", script)
        .send();
    let response = world.response(s).expect("answered");
    response
        .header_values("x-fixture-result")
        .into_iter()
        .map(|r| r.rsplit('=').next().unwrap_or_default().to_string())
        .collect()
}

fn world(workers: usize) -> World {
    let mut world = fixture().workers(workers).build().expect("starts");
    world.upstream("c", Reply::ok());
    world
}

#[test]
fn a_counter_increment_must_be_positive() {
    let mut world = world(1);
    let outcomes = run(
        &mut world,
        0,
        "metric counter c inc 0; metric counter c inc -1; metric counter c inc 2; metric counter c get",
    );
    assert_eq!(outcomes, vec!["BadArgument", "BadArgument", "Ok", "2"]);
    assert_eq!(world.counter("c"), Some(2));
}

#[test]
fn record_on_a_counter_adds() {
    let mut world = world(1);
    let outcomes = run(
        &mut world,
        0,
        "metric counter c inc 1; metric counter c rec 5; metric counter c get",
    );
    assert_eq!(outcomes, vec!["Ok", "Ok", "6"]);
}

#[test]
fn a_gauge_goes_both_ways_and_record_sets_it() {
    let mut world = world(1);
    let outcomes = run(
        &mut world,
        0,
        "metric gauge g inc 5; metric gauge g inc -2; metric gauge g get; metric gauge g rec 9; metric gauge g get",
    );
    assert_eq!(outcomes, vec!["Ok", "Ok", "3", "Ok", "9"]);
    assert_eq!(world.gauge("g"), Some(9));
}

#[test]
fn a_histogram_only_records() {
    let mut world = world(1);
    let outcomes = run(
        &mut world,
        0,
        "metric histogram h rec 7; metric histogram h rec 3; metric histogram h inc 1; metric histogram h get",
    );
    assert_eq!(outcomes, vec!["Ok", "Ok", "BadArgument", "BadArgument"]);
    assert_eq!(world.histogram("h"), Some(vec![7, 3]));
}

#[test]
fn every_worker_adds_to_the_same_stat() {
    let mut world = world(3);
    for worker in 0..3 {
        run(&mut world, worker, "metric counter hits inc 1");
    }
    assert_eq!(
        world.counter("hits"),
        Some(3),
        "Envoy's /stats shows the sum"
    );
    assert_eq!(world.metric("hits"), Some(3));
}

#[test]
fn a_gauge_below_zero_fails_the_test_as_envoy_asserts() {
    let mut world = world(1);
    let failure = world
        .request(0)
        .cluster("c")
        .header("x-fixture-request", "metric gauge g inc -1")
        .try_send()
        .expect_err("a gauge cannot go negative");
    assert!(
        failure.message.contains("gauge `g` decremented below zero"),
        "{failure}"
    );
}
