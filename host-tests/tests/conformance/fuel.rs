//! Cost counters: fuel (wasm instructions, roughly) per callback and per request.

use super::common::fixture;
use breakwater_host_tests::{ms, Callback, Reply, StreamId, World};

fn run() -> (World, Vec<StreamId>) {
    let mut world = fixture()
        .configuration("tick 10")
        .workers(2)
        .build()
        .expect("starts");
    world.upstream("c", Reply::ok().after(ms(5)));
    let streams = [0, 1, 0]
        .into_iter()
        .map(|worker| {
            world
                .request(worker)
                .cluster("c")
                .header("x-fixture-request", "shared-set k v 0")
                .send()
        })
        .collect();
    world.advance(ms(50));
    (world, streams)
}

#[test]
fn fuel_is_counted_per_callback_per_stream_and_per_request() {
    let (world, streams) = run();
    let report = world.fuel();
    assert_eq!(report.finished_streams, 3);
    let headers = report.by_callback[&Callback::RequestHeaders];
    assert_eq!(headers.calls, 3);
    assert!(headers.fuel > 0);
    assert!(
        report.by_callback[&Callback::Tick].calls >= 8,
        "ticks are charged too"
    );
    let in_streams: u64 = streams.iter().map(|s| world.stream_fuel(*s)).sum();
    assert!(
        in_streams > 0 && in_streams < report.total,
        "the roots' work is outside the streams"
    );
    assert_eq!(report.per_request(), Some(report.total / 3));
}

#[test]
fn the_same_scenario_costs_the_same_fuel() {
    assert_eq!(run().0.fuel(), run().0.fuel(), "fuel is deterministic");
}
