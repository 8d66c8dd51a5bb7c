//! The wall clock can be stepped (NTP, an operator) while the filter waits: an hour either way
//! changes no open time, retry due time or deadline, because the filter measures every span on
//! the monotonic clock. Only a `Retry-After` HTTP date is read against the wall clock.

use std::time::Duration;

use breakwater_host_tests::{ms, Reply};
use serde_json::json;

use crate::common::{
    answer_now, assert_no_errors, breaker_only, count, fail_in_turn, get, is_fallback,
    open_instants, open_times, response, retry_only, skipped, world, CLUSTER,
};

const HOUR: Duration = Duration::from_secs(3_600);

/// Times at which the upstream saw each attempt.
fn attempt_times(w: &breakwater_host_tests::World) -> Vec<Duration> {
    w.upstream_attempts(CLUSTER)
        .iter()
        .map(|a| a.request.at)
        .collect()
}

#[test]
fn an_open_breaker_keeps_its_open_time_when_the_wall_clock_jumps_an_hour_either_way() {
    let mut w = world(
        2,
        &breaker_only(json!({ "failure_threshold": 1, "timeout": "30s" })),
    );
    w.upstream(CLUSTER, Reply::status(503));
    fail_in_turn(&mut w, 1);
    let opened = open_instants(&w, CLUSTER)[0];
    let open_for = open_times(&w, CLUSTER)[0];

    w.step_wall_clock_forward(HOUR);
    w.advance_to(opened + ms(1_000));
    let r = answer_now(&mut w, 0);
    assert!(
        is_fallback(&r),
        "an hour ahead on the wall clock is not an hour open: still rejecting"
    );
    let left = (open_for - ms(1_000))
        .as_millis()
        .div_ceil(1000)
        .to_string();
    assert_eq!(
        r.header("retry-after"),
        Some(left.as_str()),
        "the time left open is measured on the monotonic clock"
    );

    w.step_wall_clock_back(2 * HOUR);
    w.advance_to(opened + open_for - ms(1));
    assert!(
        is_fallback(&answer_now(&mut w, 1)),
        "an hour behind changes nothing either: open until its time"
    );
    assert_eq!(w.upstream_attempts(CLUSTER).len(), 1);
    w.advance_to(opened + open_for);
    get(&mut w, 0);
    assert_eq!(
        attempt_times(&w),
        vec![ms(0), opened + open_for],
        "the half-open probe goes out exactly when the breaker's time is up"
    );
    assert_no_errors(&w);
}

#[test]
fn a_waiting_retry_keeps_its_due_time_and_deadline_when_the_wall_clock_jumps() {
    let mut w = world(
        2,
        &retry_only(json!({
            "base_delay": "1s", "max_delay": "10s", "jitter": false, "max_attempts": 3,
            "per_try_timeout": "1s", "deadline": "10s"
        })),
    );
    w.upstream(
        CLUSTER,
        Reply::sequence([Reply::status(503), Reply::status(503), Reply::ok()]),
    );
    let s = get(&mut w, 1);
    w.step_wall_clock_forward(HOUR);
    w.advance(ms(999));
    assert_eq!(attempt_times(&w), vec![ms(0)], "the retry waits its 1 s");
    w.advance(ms(1));
    assert_eq!(
        attempt_times(&w),
        vec![ms(0), ms(1_000)],
        "and goes out on time; its failure is 1 s into a 10 s deadline, not an hour"
    );
    w.step_wall_clock_back(2 * HOUR);
    w.run_until_idle();
    assert_eq!(
        attempt_times(&w),
        vec![ms(0), ms(1_000), ms(3_000)],
        "the second retry 2 s later, not an hour later"
    );
    let r = response(&w, s);
    assert_eq!((r.status, r.at), (200, ms(3_000)));
    assert_eq!(r.header("x-breakwater-attempts"), Some("3"));
    assert_eq!(count(&w, "retries_total"), 2);
    assert_eq!(skipped(&w, "deadline"), 0);
    assert_no_errors(&w);
}

#[test]
fn a_retry_after_date_is_read_against_the_wall_clock_as_stepped() {
    let mut w = world(
        1,
        &retry_only(json!({ "base_delay": "100ms", "max_delay": "10s", "jitter": false })),
    );
    w.step_wall_clock_forward(HOUR);
    let date = httpdate::fmt_http_date(w.unix_time() + Duration::from_secs(3));
    w.upstream(
        CLUSTER,
        Reply::sequence([Reply::status(503).header("retry-after", &date), Reply::ok()]),
    );
    get(&mut w, 0);
    w.run_until_idle();
    let times = attempt_times(&w);
    assert!(
        times.len() == 2 && times[1] >= ms(3_000) && times[1] <= ms(3_300),
        "the date is 3 s ahead of the (stepped) wall clock (spread by at most a tenth): {times:?}"
    );
}
