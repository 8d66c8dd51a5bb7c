//! Configuration changes and bad state: a new policy finds the breaker as the old one left it,
//! an invalid policy is refused with a message naming the field, garbage in shared data is
//! replaced and reported, and the retry timer follows the queue across root contexts.

use breakwater_host_tests::{ms, Reply, World};
use serde_json::{json, Value};

use crate::common::{
    answer_now, assert_no_errors, breaker_key, budget_key, builder, count, fail_in_turn, get,
    log_text, policy, response, retries_sent, world, CLUSTER,
};

fn with_fallback(body: &str, threshold: u32) -> Value {
    policy(
        json!({ "failure_threshold": threshold, "timeout": "60s",
                "fallback": { "status": 503, "body": body } }),
        json!({ "base_delay": "1s", "jitter": false, "max_attempts": 3 }),
    )
}

fn opened_under_a() -> World {
    let mut w = world(2, &with_fallback("A", 3));
    w.upstream(CLUSTER, Reply::status(503));
    for worker in [0, 1, 0] {
        w.request(worker).method("POST").cluster(CLUSTER).send();
    }
    w.run_until_idle();
    assert_eq!(count(&w, "breaker_opened_total"), 1);
    w
}

#[test]
fn a_new_policy_keeps_the_breaker_state() {
    let mut w = opened_under_a();
    assert!(
        w.reconfigure(with_fallback("B", 10).to_string()),
        "a valid policy is accepted"
    );
    for worker in [0, 1] {
        let r = answer_now(&mut w, worker);
        assert_eq!(
            r.body_text(),
            "B",
            "still open (the state survived the new root contexts), with the new fallback"
        );
    }
    assert_eq!(w.upstream_attempts(CLUSTER).len(), 3);
    assert_no_errors(&w);
}

/// Istio up to 1.29 names the plugin `<namespace>.<name>`; from 1.30 it appends
/// `~istio-translated-wasmplugin`. Its root id is the WasmPlugin's `pluginName` in both.
const BEFORE_1_30: &str = "istio-system.breakwater";
const FROM_1_30: &str = "istio-system.breakwater~istio-translated-wasmplugin";

/// A world whose breaker for [`CLUSTER`] was opened under the plugin name of Istio 1.29.
fn opened_under_istio_1_29(policy: &Value) -> World {
    let mut w = builder(2, policy)
        .plugin_name(BEFORE_1_30)
        .root_id("breakwater")
        .build()
        .expect("starts");
    w.upstream(CLUSTER, Reply::status(503));
    for worker in [0, 1, 0] {
        w.request(worker).method("POST").cluster(CLUSTER).send();
    }
    w.run_until_idle();
    assert_eq!(
        count(&w, "breaker_opened_total"),
        1,
        "three failures open it"
    );
    w
}

#[test]
fn a_breaker_opened_under_one_plugin_name_is_still_open_under_istios_translated_name() {
    let policy = with_fallback("A", 3);
    let mut w = opened_under_istio_1_29(&policy);
    assert!(
        w.reconfigure_renamed(FROM_1_30, policy.to_string()),
        "the same policy under the new name is accepted"
    );
    assert!(
        !w.logs_containing(&format!("plugin '{FROM_1_30}', state scope 'breakwater'"))
            .is_empty(),
        "the new root contexts run under the new name:\n{}",
        log_text(&w)
    );
    for worker in [0, 1] {
        assert_eq!(
            answer_now(&mut w, worker).body_text(),
            "A",
            "still open: the keys follow the root id, which the rename keeps"
        );
    }
    assert_eq!(
        w.upstream_attempts(CLUSTER).len(),
        3,
        "nothing more reached it"
    );
    assert_no_errors(&w);
}

#[test]
fn a_state_scope_in_the_policy_keeps_the_breaker_whatever_the_names() {
    let mut policy = with_fallback("A", 3);
    policy["state_scope"] = json!("shop-edge");
    let mut w = opened_under_istio_1_29(&policy);
    let keys: Vec<String> = w
        .shared_data_keys()
        .iter()
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .collect();
    assert_eq!(
        keys,
        [format!("breakwater/v3/shop-edge/breaker/{CLUSTER}")],
        "the policy's scope names the key, not the plugin's names"
    );
    assert!(w.reconfigure_renamed(FROM_1_30, policy.to_string()));
    assert_eq!(answer_now(&mut w, 1).body_text(), "A", "still open");
    policy["state_scope"] = json!("another");
    assert!(w.reconfigure(policy.to_string()));
    w.upstream(CLUSTER, Reply::ok());
    let s = w.request(0).cluster(CLUSTER).send();
    w.run_until_idle();
    assert_eq!(
        response(&w, s).status,
        200,
        "another scope is another breaker, closed: the scope is the only name that counts"
    );
}

#[test]
fn an_invalid_policy_is_refused_with_a_message_naming_the_field_and_the_old_one_keeps_serving() {
    let mut w = opened_under_a();
    let invalid = json!({ "default": { "circuit_breaker": { "half_open_attempts": 0 } } });
    assert!(
        !w.reconfigure(invalid.to_string()),
        "on_configure returns false"
    );
    let named = w.logs_containing("circuit_breaker.half_open_attempts");
    assert!(
        !named.is_empty() && named.iter().all(|l| l.message.contains('0')),
        "a line names the field and its value:\n{}",
        log_text(&w)
    );
    assert_eq!(
        answer_now(&mut w, 1).body_text(),
        "A",
        "the previous policy still serves"
    );

    let typo = json!({ "default": { "retry": { "max_attempt": 2 } } });
    assert!(
        !w.reconfigure(typo.to_string()),
        "unknown fields are errors"
    );
    assert!(
        !w.logs_containing("retry.max_attempt").is_empty(),
        "the typo is named:\n{}",
        log_text(&w)
    );
    assert!(
        !w.reconfigure("{not json"),
        "bytes that are not JSON are refused too"
    );
    assert_eq!(answer_now(&mut w, 0).body_text(), "A");
}

#[test]
fn garbage_under_the_breaker_key_is_replaced_by_a_fresh_state_and_logged() {
    let mut w = opened_under_a();
    w.set_shared_data(breaker_key(CLUSTER), b"\x00garbage\xff");
    w.upstream(CLUSTER, Reply::ok());
    let s = get(&mut w, 1);
    w.run_until_idle();
    assert_eq!(
        response(&w, s).status,
        200,
        "a fresh (closed) breaker admits the request: no panic, no stuck worker"
    );
    assert_eq!(count(&w, "state_errors_total"), 1);
    let warned = w.logs_containing("was unreadable");
    assert_eq!(warned.len(), 1, "logged once:\n{}", log_text(&w));
    assert!(
        warned[0].message.contains(&breaker_key(CLUSTER)),
        "the line names the key"
    );
    let stored = w.shared_data(breaker_key(CLUSTER)).expect("rewritten");
    assert_ne!(
        stored.bytes, b"\x00garbage\xff",
        "the fresh state replaced the garbage"
    );

    w.upstream(CLUSTER, Reply::status(503));
    fail_in_turn(&mut w, 3);
    w.run_until_idle();
    assert_eq!(
        count(&w, "breaker_opened_total"),
        2,
        "the fresh breaker works"
    );
    assert_eq!(count(&w, "state_errors_total"), 1, "and reads back cleanly");
}

#[test]
fn garbage_under_the_budget_key_is_replaced_too() {
    let mut w = world(1, &with_fallback("A", 3));
    w.set_shared_data(budget_key(CLUSTER), b"nonsense");
    w.upstream(CLUSTER, Reply::sequence([Reply::status(503), Reply::ok()]));
    let s = get(&mut w, 0);
    w.run_until_idle();
    assert_eq!(response(&w, s).status, 200, "the retry got a fresh budget");
    assert_eq!(count(&w, "state_errors_total"), 1);
}

#[test]
fn the_tick_period_follows_the_queue_and_returns_to_zero_when_it_is_empty() {
    let mut w = world(2, &with_fallback("A", 5));
    w.upstream(
        CLUSTER,
        Reply::sequence([Reply::status(503), Reply::status(503), Reply::ok()]),
    );
    assert_eq!(w.tick_period(0), None, "no retry waits: no tick");
    get(&mut w, 0);
    assert_eq!(
        w.tick_period(0),
        Some(ms(1_000)),
        "armed for the retry due in 1 s"
    );
    assert_eq!(w.tick_period(1), None, "another worker's queue is its own");
    w.advance(ms(1_000));
    assert_eq!(
        w.tick_period(0),
        Some(ms(2_000)),
        "re-armed for the second retry"
    );
    w.advance(ms(2_000));
    assert_eq!(retries_sent(&w, CLUSTER).len(), 2);
    assert_eq!(
        w.tick_period(0),
        None,
        "the queue is empty: the tick is off again"
    );
}

#[test]
fn after_a_reconfiguration_the_old_root_serves_its_waiting_retry_and_the_new_root_arms_its_own() {
    let mut w = world(1, &with_fallback("A", 5));
    w.upstream(CLUSTER, Reply::sequence([Reply::status(503), Reply::ok()]));
    let old = get(&mut w, 0);
    w.advance(ms(200));
    assert!(w.reconfigure(with_fallback("B", 5).to_string()));
    assert_eq!(
        w.tick_period(0),
        None,
        "the new root has no retry of its own yet: its timer is off"
    );
    w.upstream(CLUSTER, Reply::sequence([Reply::status(503), Reply::ok()]));
    let new = get(&mut w, 0);
    assert_eq!(
        w.tick_period(0),
        Some(ms(1_000)),
        "the new root set its own period for its stream's retry"
    );
    w.run_until_idle();
    let at: Vec<_> = retries_sent(&w, CLUSTER)
        .iter()
        .map(|a| a.request.at)
        .collect();
    assert_eq!(
        at,
        vec![ms(1_000), ms(1_200)],
        "each retry went out on time"
    );
    assert_eq!(
        response(&w, old).status,
        200,
        "the old root kept serving its stream"
    );
    assert_eq!(response(&w, new).status, 200);
    assert_eq!(
        w.tick_period(0),
        None,
        "nothing waits: the new root's timer is off again"
    );
    assert_no_errors(&w);
}

#[test]
fn retries_of_streams_under_old_and_new_roots_due_together_are_all_answered() {
    // S1 belongs to the old root, S2 to the new one; their retries are due at the same instant.
    // Whichever root's tick serves them, both clients must be answered, even after the old root
    // goes away with its last stream.
    let mut w = world(1, &with_fallback("A", 5));
    w.upstream(
        CLUSTER,
        Reply::sequence([
            Reply::status(503),
            Reply::status(503),
            Reply::ok().body("s1 retried").after(ms(10)),
            Reply::ok().body("s2 retried").after(ms(50)),
        ]),
    );
    let s1 = get(&mut w, 0);
    assert!(w.reconfigure(with_fallback("B", 5).to_string()));
    let s2 = get(&mut w, 0);
    w.run_until_idle();
    assert_eq!(response(&w, s1).body_text(), "s1 retried");
    assert_eq!(response(&w, s2).body_text(), "s2 retried");
    assert_no_errors(&w);
}
