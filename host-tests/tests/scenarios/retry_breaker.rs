//! The breaker outside the retries (POLICY.md "Circuit breaker"): retries run only while the
//! cluster's breaker is closed; when it opens, pending retries are dropped.

use breakwater_host_tests::{ms, Reply, StreamId, World};
use serde_json::{json, Value};

use crate::common::{
    assert_no_errors, count, is_fallback, policy, response, retries_sent, skipped, world, CLUSTER,
};

/// Threshold 3; retries after exactly 1 s.
fn breaker_and_retry(breaker: Value) -> World {
    let mut b = json!({ "failure_threshold": 3, "timeout": "10s" });
    if let (Some(b), Some(e)) = (b.as_object_mut(), breaker.as_object()) {
        b.extend(e.clone());
    }
    let retry =
        json!({ "base_delay": "1s", "jitter": false, "max_attempts": 5, "deadline": "30s" });
    let mut w = world(4, &policy(b, retry));
    w.upstream(CLUSTER, Reply::status(503).body("upstream failure"));
    w
}

/// Two GETs fail at once on workers 0 and 1 and wait for their retries (due at 1 s); then three
/// POSTs, which are never retried, fail on workers 2 and 3 and open the breaker.
fn retries_waiting_when_the_breaker_opens(w: &mut World) -> [StreamId; 2] {
    let waiting = [0, 1].map(|worker| w.request(worker).cluster(CLUSTER).send());
    for (i, worker) in [2, 3, 2].into_iter().enumerate() {
        w.advance(ms(100));
        w.request(worker).method("POST").cluster(CLUSTER).send();
        assert_eq!(count(w, "breaker_opened_total"), u64::from(i == 2));
    }
    waiting
}

#[test]
fn the_breaker_opening_drops_the_waiting_retries_and_their_clients_get_the_fallback() {
    let mut w = breaker_and_retry(json!({}));
    let waiting = retries_waiting_when_the_breaker_opens(&mut w);
    assert!(
        waiting.iter().all(|s| w.response(*s).is_none()),
        "both still wait"
    );

    w.advance(ms(1_000));
    assert!(
        retries_sent(&w, CLUSTER).is_empty(),
        "no retry is sent to a cluster whose breaker is open (no retry storm)"
    );
    for s in waiting {
        let r = response(&w, s);
        assert!(
            is_fallback(&r),
            "enforce: a new request would be rejected now, so the fallback"
        );
        assert_eq!(r.header("x-breakwater-breaker"), Some("open"));
        assert_eq!(r.at, ms(1_000), "answered when the retry was due");
    }
    assert_eq!(skipped(&w, "breaker"), 2);
    assert_eq!(count(&w, "retries_total"), 0);
    assert_eq!(count(&w, "rejected_total"), 2);
    assert_eq!(w.tick_period(0), None, "nothing left to wait for");
    assert_no_errors(&w);
}

#[test]
fn when_the_breaker_would_admit_a_probe_by_then_the_client_gets_its_last_failure() {
    // The breaker opens for ~100 ms only: when the retries are due it is ready to half-open,
    // so a new request would not be rejected and the fallback would be wrong.
    let mut w = breaker_and_retry(json!({ "timeout": "100ms" }));
    let waiting = retries_waiting_when_the_breaker_opens(&mut w);
    w.advance(ms(1_000));
    assert!(
        retries_sent(&w, CLUSTER).is_empty(),
        "still no retry: the breaker is not closed"
    );
    for s in waiting {
        let r = response(&w, s);
        assert!(!is_fallback(&r));
        assert_eq!(
            (r.status, r.body_text().as_str()),
            (503, "upstream failure"),
            "the last failure, as the upstream sent it"
        );
        assert_eq!(
            r.header("x-breakwater-attempts"),
            None,
            "one attempt was made"
        );
    }
    assert_eq!(skipped(&w, "breaker"), 2);
    assert_eq!(
        count(&w, "breaker_half_opened_total"),
        0,
        "deciding the reply took no probe slot"
    );
}

#[test]
fn with_count_retries_the_attempts_themselves_open_the_breaker_and_stop_the_retries() {
    let mut w = breaker_and_retry(json!({ "count_retries": true }));
    let s = w.request(0).cluster(CLUSTER).send();
    w.run_until_idle();
    assert_eq!(
        w.upstream_attempts(CLUSTER).len(),
        3,
        "every attempt counts: the third failure opens the breaker, no fourth attempt"
    );
    assert_eq!(count(&w, "failures_total"), 3);
    assert_eq!(count(&w, "breaker_opened_total"), 1);
    assert_eq!(skipped(&w, "breaker"), 1);
    let r = response(&w, s);
    assert!(
        is_fallback(&r),
        "the fallback, since the breaker is open now"
    );
    assert_eq!(r.at, ms(3_000), "decided when the third attempt failed");
}

#[test]
fn a_retry_that_succeeds_while_the_breaker_stays_closed_is_delivered() {
    let mut w = breaker_and_retry(json!({}));
    w.upstream(CLUSTER, Reply::sequence([Reply::status(503), Reply::ok()]));
    let s = w.request(0).cluster(CLUSTER).send();
    w.run_until_idle();
    assert_eq!(response(&w, s).status, 200);
    assert_eq!(
        count(&w, "failures_total"),
        0,
        "the request's one outcome was a success"
    );
}
