//! Shared fixtures: worlds running the fixture filter, and readers for its results.

use breakwater_host_tests::{Response, World, WorldBuilder};

/// A world running the fixture filter with one worker and, unless a test turns them on, neither
/// Envoy's configuration canary nor its main-thread VM (so logs show the workers only).
pub fn fixture() -> WorldBuilder {
    World::builder()
        .fixture()
        .canary(false)
        .main_thread_vm(false)
}

/// What the fixture answered for `command`, from the `x-fixture-result` response headers.
#[track_caller]
pub fn result(response: &Response, command: &str) -> String {
    let prefix = format!("{command}=");
    response
        .header_values("x-fixture-result")
        .into_iter()
        .find_map(|r| r.strip_prefix(&prefix).map(str::to_string))
        .unwrap_or_else(|| {
            panic!(
                "no result for `{command}` in {:?}",
                response.header_values("x-fixture-result")
            )
        })
}

/// What the fixture logged for `command` (results of `on_log` and body callbacks).
#[track_caller]
pub fn logged_result(world: &World, command: &str) -> String {
    let needle = format!(" {command}=");
    world
        .logs()
        .iter()
        .find_map(|l| {
            let at = l.message.find(&needle)?;
            Some(l.message[at + needle.len()..].to_string())
        })
        .unwrap_or_else(|| panic!("no logged result for `{command}`"))
}

/// The log messages, in order.
pub fn messages(world: &World) -> Vec<String> {
    world.logs().into_iter().map(|l| l.message).collect()
}
