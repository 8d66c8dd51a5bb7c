//! `proxy_set_effective_context`: `BadArgument` for a context the VM does not have (cpp-host
//! `exports.cc`), and a context is gone once its stream ended.

use super::common::{fixture, result};
use breakwater_host_tests::{Reply, World};

fn world() -> World {
    let mut world = fixture().build().expect("starts");
    world.upstream("c", Reply::ok());
    world
}

#[test]
fn an_unknown_context_is_bad_argument_and_a_live_one_is_ok() {
    let mut world = world();
    let s = world
        .request(0)
        .cluster("c")
        .header(
            "x-fixture-request",
            "effective 99; effective 1; effective 2",
        )
        .send();
    let r = world.response(s).expect("answered");
    assert_eq!(
        world.context_id(s),
        Some(2),
        "the root is 1, the first stream 2"
    );
    assert_eq!(result(&r, "effective 99"), "BadArgument");
    assert_eq!(result(&r, "effective 1"), "Ok", "the root");
    assert_eq!(result(&r, "effective 2"), "Ok", "the stream itself");
}

#[test]
fn a_finished_streams_context_is_bad_argument() {
    let mut world = world();
    let first = world.request(0).cluster("c").send();
    let gone = world.context_id(first).expect("it arrived");
    let script = format!("effective {gone}");
    let s = world
        .request(0)
        .cluster("c")
        .header("x-fixture-request", &script)
        .send();
    assert_eq!(
        result(&world.response(s).expect("answered"), &script),
        "BadArgument"
    );
}
