//! The virtual clock, seeded randomness, the environment and the log level, through proxy-wasm
//! and WASI.

use super::common::{fixture, result};
use breakwater_host_tests::clock::{MONOTONIC_START, START_UNIX_SECS};
use breakwater_host_tests::{ms, LogLevel, Reply, World, WorldBuilder};

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
fn a_wall_clock_step_moves_host_and_realtime_time_but_not_the_monotonic_clock() {
    let mut world = fixture().build().expect("starts");
    world.upstream("c", Reply::ok());
    let read = |world: &mut World| {
        let s = world
            .request(0)
            .cluster("c")
            .header("x-fixture-request", "time; monotonic")
            .send();
        let response = world.response(s).expect("answered");
        (result(&response, "time"), result(&response, "monotonic"))
    };
    world.advance(ms(1_000));
    let unix = |secs: i64| {
        let nanos = (i64::try_from(START_UNIX_SECS).unwrap() + secs) * 1_000_000_000;
        format!("host={nanos} wasi={nanos}")
    };
    let monotonic = (MONOTONIC_START.as_secs() + 1) * 1_000_000_000;
    assert_eq!(read(&mut world), (unix(1), monotonic.to_string()));
    world.step_wall_clock_forward(ms(3_600_000));
    assert_eq!(
        read(&mut world),
        (unix(3_601), monotonic.to_string()),
        "an hour ahead on the wall clock; the monotonic clock did not move"
    );
    world.step_wall_clock_back(ms(7_200_000));
    assert_eq!(read(&mut world), (unix(-3_599), monotonic.to_string()));
    assert_eq!(world.now(), ms(1_000), "a step runs no time");
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

#[test]
fn the_log_level_filters_lines_and_is_what_the_module_reads() {
    assert_eq!(
        answer(fixture(), "log-level", ms(0)),
        "Info",
        "Envoy's default"
    );
    assert_eq!(
        answer(fixture().log_level(LogLevel::Debug), "log-level", ms(0)),
        "Debug"
    );
    let mut world = fixture().build().expect("starts");
    world.upstream("c", Reply::ok());
    world
        .request(0)
        .cluster("c")
        .header("x-fixture-request", "log debug quiet; log warn loud")
        .send();
    let lines = |text: &str| -> Vec<_> {
        world
            .logs()
            .into_iter()
            .filter(|l| l.message == text)
            .collect()
    };
    assert!(lines("quiet").is_empty(), "below the level: dropped");
    let loud = lines("loud");
    assert_eq!(loud.len(), 1);
    assert_eq!((loud[0].level, loud[0].context), (LogLevel::Warn, 2));
}
