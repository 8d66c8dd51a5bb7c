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

/// What the fixture reads in `on_log` when asked to (the `x-fixture-log` request header).
pub const SEEN_AT_LOG: &str =
    "property-int response.code;property-int response.flags;property response.code_details";

/// What the filter read in `on_log` (asked with [`SEEN_AT_LOG`]): code, flags, details.
pub fn seen_at_log(world: &World) -> (String, String, String) {
    (
        logged_result(world, "property-int response.code"),
        logged_result(world, "property-int response.flags"),
        logged_result(world, "property response.code_details"),
    )
}

/// Envoy's reply to an upstream reset under a head the filter held: written straight to the
/// client past the filter chain (`FilterManager::sendDirectLocalReply`) with `status`, the
/// router's body for `reason`, `flag` and `details`; the filter saw one `on_response_headers`
/// (the held head), then only the stream's end, and read the reply in `on_log`.
#[track_caller]
pub fn assert_direct_reply_past_the_held_head(
    world: &World,
    s: breakwater_host_tests::StreamId,
    status: u16,
    reason: &str,
    flag: u64,
    details: &str,
) {
    use breakwater_host_tests::{Callback::*, Source, StreamState};
    assert_eq!(world.stream_state(s), StreamState::Complete);
    let response = world.response(s).expect("Envoy answered");
    assert_eq!(
        response.status, status,
        "Envoy's status, not the upstream's"
    );
    assert_eq!(response.source, Source::Envoy);
    assert_eq!(
        response.body_text(),
        format!(
            "upstream connect error or disconnect/reset before headers. reset reason: {reason}"
        )
    );
    assert_eq!(response.flags, flag);
    assert_eq!(response.details, details);
    assert_eq!(
        response.header_values("x-fixture-result"),
        Vec::<&str>::new(),
        "what the filter added to the held head never reached the client"
    );
    assert_eq!(response.header("x-envoy-upstream-service-time"), None);
    assert_eq!(
        world.callbacks(s),
        vec![
            ContextCreate,
            RequestHeaders,
            ResponseHeaders,
            Log,
            Done,
            Delete
        ],
        "one on_response_headers (the held head's); Envoy's reply and any buffered body never \
         reach the filter"
    );
    assert_eq!(
        seen_at_log(world),
        (status.to_string(), flag.to_string(), details.to_string()),
        "on_log reads Envoy's reply"
    );
    assert!(world.late_actions().is_empty());
}
