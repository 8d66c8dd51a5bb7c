//! Dispatched HTTP calls: refusals, tokens, and the three failure shapes (Envoy's
//! `Context::httpCall`, `onHttpCallSuccess`, `onHttpCallFailure`).

use super::common::{fixture, result};
use breakwater_host_tests::{ms, AttemptKind, Reply, Response, VmId, World};

fn world() -> World {
    let mut world = fixture().build().expect("starts");
    world.upstream("c", Reply::ok());
    world
}

/// Sends a request whose filter runs `script` in its request headers, runs 1 s, answers the
/// response.
fn run(world: &mut World, script: &str) -> Response {
    let s = world
        .request(0)
        .cluster("c")
        .header("x-fixture-request", script)
        .send();
    world.advance(ms(1_000));
    world.response(s).expect("answered")
}

/// The fixture's record of the call's response.
fn call_result(response: &Response) -> String {
    response
        .header_values("x-fixture-result")
        .into_iter()
        .find(|r| r.starts_with("call "))
        .expect("the call came back")
        .to_string()
}

#[test]
fn a_call_to_an_unknown_cluster_is_refused_at_once() {
    let mut world = world();
    let response = run(&mut world, "dispatch nowhere 1000");
    assert_eq!(result(&response, "dispatch nowhere 1000"), "BadArgument");
}

#[test]
fn a_call_without_method_path_or_authority_is_refused() {
    let mut world = world();
    world.upstream("auth", Reply::ok());
    for header in [":method", ":path", ":authority"] {
        let script = format!("dispatch auth 1000 -{header}");
        let response = run(&mut world, &script);
        assert_eq!(
            result(&response, &script),
            "BadArgument",
            "without {header}"
        );
    }
    assert!(world.upstream_attempts("auth").is_empty());
}

#[test]
fn each_call_gets_a_fresh_token_per_vm() {
    let mut world = world();
    world.upstream("auth", Reply::ok());
    let response = run(&mut world, "dispatch auth 1000; dispatch auth 1000");
    let tokens: Vec<&str> = response
        .header_values("x-fixture-result")
        .into_iter()
        .filter(|r| r.starts_with("dispatch"))
        .collect();
    assert_eq!(
        tokens,
        vec!["dispatch auth 1000=token=4", "dispatch auth 1000=token=8"],
        "Envoy's nextHttpCallId steps by 4"
    );
}

#[test]
fn an_answered_call_comes_back_to_the_context_that_dispatched_it() {
    let mut world = world();
    world.upstream("auth", Reply::status(201).body("yes").after(ms(7)));
    let response = run(&mut world, "dispatch auth 1000");
    assert_eq!(
        call_result(&response),
        "call token=4 status=201 headers=3 body=yes get_status=0:",
        ":status, content-length and x-envoy-upstream-service-time; get_status untouched by a \
         success"
    );
    let call = &world.upstream_attempts("auth")[0];
    assert_eq!(call.request.method(), "GET");
    assert_eq!(call.request.header(":authority"), Some("auth"));
    assert_eq!(
        call.request.kind,
        AttemptKind::Call {
            vm: VmId::Worker(0),
            token: 4,
            timeout: Some(ms(1_000))
        }
    );
    assert_eq!(
        world.upstream_attempts("c")[0].request.at,
        ms(7),
        "the stream resumed when the call came back"
    );
}

#[test]
fn a_refused_call_is_a_synthesized_503() {
    let mut world = world();
    world.upstream("auth", Reply::refuse());
    let response = run(&mut world, "dispatch auth 1000");
    assert_eq!(
        call_result(&response),
        "call token=4 status=503 headers=3 body=upstream connect error or disconnect/reset \
         before headers. reset reason: connection failure get_status=0:"
    );
}

#[test]
fn a_call_that_outlives_its_timeout_is_a_synthesized_504_at_the_timeout() {
    let mut world = world();
    world.upstream("auth", Reply::ok().after(ms(500)));
    let response = run(&mut world, "dispatch auth 100");
    assert_eq!(
        call_result(&response),
        "call token=4 status=504 headers=3 body=upstream request timeout get_status=0:"
    );
    assert_eq!(world.upstream_attempts("c")[0].request.at, ms(100));
}

#[test]
fn a_call_with_no_timeout_waits_as_long_as_the_upstream_takes() {
    let mut world = world();
    world.upstream("auth", Reply::ok().after(ms(900)));
    let response = run(&mut world, "dispatch auth 0");
    assert!(call_result(&response).contains("status=200"));
}

#[test]
fn a_reset_after_headers_comes_back_with_no_headers_and_status_11() {
    let mut world = world();
    world.upstream("auth", Reply::ok().reset_after_headers());
    let response = run(&mut world, "dispatch auth 1000");
    assert_eq!(
        call_result(&response),
        "call token=4 status=none headers=0 body= get_status=11:reset",
        "BrokenConnection, message `reset`, during the callback"
    );
}
