//! The virtual clock, seeded randomness and the environment, through proxy-wasm and WASI.

use super::common::{fixture, result};
use breakwater_host_tests::clock::START_UNIX_SECS;
use breakwater_host_tests::{ms, Reply, World, WorldBuilder};

fn answer(builder: WorldBuilder, script: &str, after: std::time::Duration) -> String {
    let mut world: World = builder.build().expect("starts");
    world.upstream("c", Reply::ok());
    world.advance(after);
    let s = world
        .request(0)
        .cluster("c")
        .header("x-fixture-request", script)
        .send();
    result(&world.response(s).expect("answered"), script)
}

#[test]
fn host_time_and_the_wasi_realtime_clock_read_the_virtual_clock() {
    let nanos = START_UNIX_SECS * 1_000_000_000 + 1_234_000_000;
    assert_eq!(
        answer(fixture(), "time", ms(1_234)),
        format!("host={nanos} wasi={nanos}"),
        "2026-01-01T00:00:00Z plus the virtual time elapsed"
    );
}

#[test]
fn random_get_is_seeded() {
    let seven = answer(fixture().seed(7), "random", ms(0));
    assert_eq!(
        answer(fixture().seed(7), "random", ms(0)),
        seven,
        "same seed, same bytes"
    );
    assert_ne!(answer(fixture().seed(8), "random", ms(0)), seven);
}

#[test]
fn the_vm_sees_the_environment_it_was_given() {
    assert_eq!(
        answer(fixture().env("REGION", "eu-west"), "env REGION", ms(0)),
        "eu-west"
    );
    assert_eq!(answer(fixture(), "env REGION", ms(0)), "missing");
}
