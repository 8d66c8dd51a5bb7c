//! The faults a test injects: another worker winning compare-and-swap writes (a real write with a
//! fresh cas, so Envoy's CAS rules still decide), dispatches refused at once, and the record of
//! actions a filter asks for on streams that have ended.

use super::common::{fixture, result};
use breakwater_host_tests::{
    ms, Contention, LateAction, Refusal, RefusedCall, Reply, Response, VmId, World,
};

fn world() -> World {
    let mut world = fixture().build().expect("starts");
    world.upstream("c", Reply::ok());
    world.upstream("auth", Reply::ok().after(ms(5)));
    world
}

/// Runs `script` in a request's headers, lets 1 s pass, answers the response.
fn run(world: &mut World, script: &str) -> Response {
    let s = world
        .request(0)
        .cluster("c")
        .header("x-fixture-request", script)
        .send();
    world.advance(ms(1_000));
    world.response(s).expect("answered")
}

fn value(world: &World, key: &str) -> String {
    world.shared_data(key).map(|v| v.text()).unwrap_or_default()
}

#[test]
fn another_worker_winning_the_next_writes_makes_a_cas_loop_retry_and_the_state_stays_exact() {
    let mut world = world();
    run(&mut world, "cas-incr hits");
    world.contend(Contention::rewrite().on_key("hits").times(3));
    let response = run(&mut world, "cas-incr hits");
    assert_eq!(
        result(&response, "cas-incr hits"),
        "2 tries=4",
        "three writes met a fresh cas, the fourth landed"
    );
    assert_eq!(
        value(&world, "hits"),
        "2",
        "the interloper only rewrote what it found"
    );
    let contended = world.contended_writes();
    assert_eq!(contended.len(), 3);
    assert!(contended
        .iter()
        .all(|c| c.key == b"hits" && c.vm == VmId::Worker(0)));
}

#[test]
fn on_an_absent_key_the_interloper_inserts_the_same_change_first() {
    let mut world = world();
    world.contend(Contention::rewrite().times(1));
    let response = run(&mut world, "cas-incr fresh");
    assert_eq!(
        result(&response, "cas-incr fresh"),
        "2 tries=2",
        "the insert with a non-zero cas met the interloper's entry, then incremented it"
    );
}

#[test]
fn a_worker_that_always_loses_gives_up_after_its_own_bound_and_nothing_lands() {
    let mut world = world();
    run(&mut world, "cas-incr hits");
    world.contend(Contention::rewrite().on_key("hits"));
    let response = run(&mut world, "cas-incr hits");
    assert_eq!(result(&response, "cas-incr hits"), "gave-up");
    assert_eq!(
        world.contended_writes().len(),
        32,
        "the fixture's bound is 32 tries"
    );
    assert_eq!(value(&world, "hits"), "1");
}

#[test]
fn writes_with_cas_zero_and_writes_to_other_keys_are_never_struck() {
    let mut world = world();
    world.contend(Contention::rewrite().on_prefix("busy/"));
    let response = run(&mut world, "shared-set busy/a x 0; cas-incr idle/b");
    assert_eq!(result(&response, "shared-set busy/a x 0"), "Ok");
    assert_eq!(result(&response, "cas-incr idle/b"), "1 tries=1");
    assert!(world.contended_writes().is_empty());
    assert_eq!(value(&world, "busy/a"), "x");
}

#[test]
fn an_interloper_writing_garbage_is_what_the_next_read_sees() {
    let mut world = world();
    let cas = world.set_shared_data("state", "1");
    world.contend(Contention::write("junk").on_key("state").times(1));
    let script = format!("shared-set state 2 {cas}; shared-get state");
    let response = run(&mut world, &script);
    assert_eq!(
        result(&response, &format!("shared-set state 2 {cas}")),
        "CasMismatch"
    );
    assert_eq!(
        result(&response, "shared-get state"),
        format!("junk@{}", cas + 1),
        "the interloper's write took the next cas"
    );
}

#[test]
fn a_closure_interloper_sees_the_current_and_the_attempted_bytes() {
    let mut world = world();
    world.set_shared_data("n", "10");
    world.contend(
        Contention::with(|current, attempted| {
            assert_eq!((current, attempted), (Some(&b"10"[..]), &b"11"[..]));
            b"20".to_vec()
        })
        .times(1),
    );
    let response = run(&mut world, "cas-incr n");
    assert_eq!(result(&response, "cas-incr n"), "21 tries=2");
}

#[test]
fn an_injected_internal_failure_refuses_the_dispatch_and_nothing_is_ever_delivered_for_it() {
    let mut world = world();
    world.refuse_calls(Refusal::internal_failure().to("auth").times(1));
    let response = run(&mut world, "dispatch auth 1000; dispatch auth 1000");
    assert_eq!(result(&response, "dispatch auth 1000"), "InternalFailure");
    assert!(
        response
            .header_values("x-fixture-result")
            .contains(&"dispatch auth 1000=token=8"),
        "the refused dispatch used token 4, as Envoy takes it before send fails: {:?}",
        response.header_values("x-fixture-result")
    );
    let calls: Vec<_> = response
        .header_values("x-fixture-result")
        .into_iter()
        .filter(|r| r.starts_with("call "))
        .collect();
    assert_eq!(calls.len(), 1, "only the started call came back: {calls:?}");
    assert_eq!(world.upstream_attempts("auth").len(), 1);
    assert_eq!(
        world.refused_calls(),
        vec![RefusedCall {
            at: ms(0),
            vm: VmId::Worker(0),
            cluster: "auth".into(),
            status: 10,
            injected: true,
        }]
    );
}

#[test]
fn an_injected_bad_argument_takes_no_token_and_other_clusters_are_untouched() {
    let mut world = world();
    world.upstream("other", Reply::ok());
    world.refuse_calls(Refusal::bad_argument().to("auth"));
    let response = run(&mut world, "dispatch auth 1000; dispatch other 1000");
    assert_eq!(result(&response, "dispatch auth 1000"), "BadArgument");
    assert_eq!(result(&response, "dispatch other 1000"), "token=4");
    world.clear_faults();
    let response = run(&mut world, "dispatch auth 1000");
    assert_eq!(
        result(&response, "dispatch auth 1000"),
        "token=8",
        "cleared faults no longer strike (token 4 went to the call to `other`)"
    );
}

#[test]
fn refusals_by_envoys_own_checks_are_recorded_too() {
    let mut world = world();
    run(&mut world, "dispatch nowhere 1000");
    let refused = world.refused_calls();
    assert_eq!(refused.len(), 1);
    assert_eq!(
        (
            refused[0].cluster.as_str(),
            refused[0].status,
            refused[0].injected
        ),
        ("nowhere", 2, false)
    );
}

#[test]
fn a_reply_asked_for_after_the_stream_ended_is_ignored_and_recorded() {
    let mut world = world();
    let s = world
        .request(0)
        .cluster("c")
        .header("x-fixture-log", "local-reply 500 late")
        .send();
    let response = world.response(s).expect("answered");
    assert_eq!(response.status, 200, "the client got the upstream's answer");
    assert_eq!(
        world.late_actions(),
        vec![LateAction {
            at: ms(0),
            stream: s,
            action: "local reply"
        }],
        "the reply asked for in on_log came too late"
    );
}

#[test]
fn an_ordinary_exchange_leaves_no_late_action() {
    let mut world = world();
    run(&mut world, "dispatch auth 1000");
    assert!(world.late_actions().is_empty());
}
