//! The circuit breaker (POLICY.md "Circuit breaker"): one breaker per cluster shared by both
//! workers, the fallback while open, one probe at a time while half-open, closing once the
//! upstream heals; resets and refused connections count as failures.

use std::thread;

use breakwater_envoy::{Envoy, Reply, Request, Upstream};
use serde_json::json;

use crate::common::{
    assert_fallback, breaker_policy, envoy_with, from_upstream, get_until_admitted, is_fallback,
    send_on_both_workers, upstream, wait_until, Metrics, Placed, WORKERS,
};

/// Opens the breaker of cluster `a` with four failed requests, two on each worker: no single
/// worker saw `failure_threshold` failures, so only the breaker the workers share can have opened.
fn open_across_both_workers(envoy: &Envoy, upstream: &Upstream) {
    upstream.respond_with(503);
    let mut placed = Placed::open(envoy, WORKERS);
    let mut fail_on = |worker: usize, path: &str| {
        let response = placed.by_worker[worker][0]
            .send(&Request::get(path))
            .expect("a response");
        assert!(
            response.status == 503 && from_upstream(&response),
            "admitted while closed, failed by the upstream: {response:?}"
        );
    };
    fail_on(0, "/first/worker-0");
    fail_on(1, "/first/worker-1");
    fail_on(0, "/second/worker-0");
    let metrics = Metrics::read(envoy, "a");
    assert_eq!(metrics.get("failures_total"), 3);
    assert_eq!(
        metrics.get("breaker_opened_total"),
        0,
        "three failures are below the threshold"
    );
    assert_ne!(metrics.state(), Some(1), "not open");

    fail_on(1, "/second/worker-1");
    let metrics = Metrics::read(envoy, "a");
    assert_eq!(metrics.get("failures_total"), 4);
    assert_eq!(
        metrics.get("breaker_opened_total"),
        1,
        "the fourth failure opened the breaker: two on each worker, counted together"
    );
    assert_eq!(metrics.state(), Some(1), "the state gauge says open");
    assert_eq!(upstream.total(), 4);
}

#[test]
fn the_breaker_opens_after_failure_threshold_failures_across_workers_and_spares_the_upstream() {
    let upstream = upstream("a");
    let envoy = envoy_with(&upstream, "a", &breaker_policy());
    open_across_both_workers(&envoy, &upstream);

    upstream.respond_with(200);
    let rejected =
        send_on_both_workers(&envoy, 4, 3, |c, i| Request::get(&format!("/open/{c}/{i}")));
    for response in &rejected {
        assert_fallback(response, "open");
    }
    assert_eq!(
        upstream.total(),
        4,
        "no request reached the upstream while the breaker was open"
    );
    let metrics = Metrics::read(&envoy, "a");
    assert_eq!(metrics.get("rejected_total"), 12);
    assert_eq!(
        metrics.get("requests_total"),
        16,
        "rejected requests are requests too"
    );
    assert_eq!(metrics.get("breaker_half_opened_total"), 0);
    let log = envoy.log();
    assert!(
        log.contains("circuit breaker 'a' OPEN after"),
        "the opening is logged as a warning naming the cluster"
    );
}

#[test]
fn after_the_timeout_one_probe_at_a_time_goes_through_and_a_healed_upstream_closes_the_breaker() {
    let upstream = upstream("a");
    let envoy = envoy_with(&upstream, "a", &breaker_policy());
    open_across_both_workers(&envoy, &upstream);

    // First probe: caught in flight while the upstream still fails.
    upstream.hold();
    thread::scope(|s| {
        let prober = s.spawn(|| get_until_admitted(&envoy, "/probe/1", "open"));
        wait_until("the first probe to reach the upstream", || {
            upstream.total() == 5
        });
        let during = send_on_both_workers(&envoy, 4, 2, |c, i| {
            Request::get(&format!("/half-open/{c}/{i}"))
        });
        for response in &during {
            assert_fallback(response, "half-open");
        }
        assert_eq!(
            upstream.total(),
            5,
            "half_open_attempts: 1 lets one probe through, across both workers"
        );
        let metrics = Metrics::read(&envoy, "a");
        assert_eq!(metrics.get("breaker_half_opened_total"), 1);
        assert_eq!(metrics.state(), Some(2), "the state gauge says half-open");
        upstream.release();
        let probe = prober.join().expect("the prober");
        assert_eq!(probe.status, 503, "the probe got the upstream's failure");
        assert!(from_upstream(&probe));
    });
    let metrics = Metrics::read(&envoy, "a");
    assert_eq!(
        metrics.get("breaker_opened_total"),
        2,
        "the failed probe opened it again"
    );
    assert_eq!(metrics.state(), Some(1));
    assert_eq!(metrics.get("breaker_closed_total"), 0);

    // The upstream heals; the next probe succeeds and closes the breaker.
    upstream.respond_with(200);
    let probe = get_until_admitted(&envoy, "/probe/2", "open");
    assert_eq!(probe.status, 200, "{probe:?}");
    assert!(from_upstream(&probe));
    let metrics = Metrics::read(&envoy, "a");
    assert_eq!(metrics.get("breaker_half_opened_total"), 2);
    assert_eq!(
        metrics.get("breaker_closed_total"),
        1,
        "the successful probe closed it"
    );
    assert_eq!(metrics.state(), Some(0), "the state gauge says closed");

    let hits = upstream.total();
    let after = send_on_both_workers(&envoy, 4, 3, |c, i| {
        Request::get(&format!("/closed/{c}/{i}"))
    });
    assert!(
        after.iter().all(|r| r.status == 200 && from_upstream(r)),
        "closed again: traffic flows on both workers: {after:?}"
    );
    assert_eq!(upstream.total(), hits + 12);
    let log = envoy.log();
    assert!(log.contains("circuit breaker 'a' entering HALF_OPEN"));
    assert!(log.contains("circuit breaker 'a' closed"));
}

#[test]
fn a_probe_that_never_reports_gives_its_slot_back_after_probe_timeout() {
    let upstream = upstream("a");
    let mut policy = breaker_policy();
    policy["default"]["circuit_breaker"]["probe_timeout"] = json!("1s");
    let envoy = envoy_with(&upstream, "a", &policy);
    open_across_both_workers(&envoy, &upstream);

    upstream.respond_with(200);
    upstream.hold();
    thread::scope(|s| {
        let first = s.spawn(|| get_until_admitted(&envoy, "/probe/stuck", "open"));
        wait_until("the first probe to reach the upstream", || {
            upstream.total() == 5
        });
        // The first probe hangs; after probe_timeout its slot is reclaimed and another probe is
        // let through, while the first is still in flight.
        let second = s.spawn(|| get_until_admitted(&envoy, "/probe/next", "half-open"));
        wait_until("a second probe to reach the upstream", || {
            upstream.total() == 6
        });
        let metrics = Metrics::read(&envoy, "a");
        assert_eq!(metrics.get("probes_reclaimed_total"), 1);
        assert_eq!(
            metrics.get("breaker_half_opened_total"),
            1,
            "still the same half-open"
        );
        upstream.release();
        for probe in [first, second] {
            let response = probe.join().expect("a prober");
            assert_eq!(response.status, 200, "{response:?}");
        }
    });
    let metrics = Metrics::read(&envoy, "a");
    assert_eq!(
        metrics.get("breaker_closed_total"),
        1,
        "a successful probe closed the breaker"
    );
    assert_eq!(metrics.state(), Some(0));
}

#[test]
fn resets_closed_connections_and_refused_connections_count_as_failures() {
    let upstream = upstream("a");
    let mut policy = breaker_policy();
    policy["default"]["circuit_breaker"]["failure_threshold"] = json!(3);
    policy["default"]["circuit_breaker"]["timeout"] = json!("30s");
    policy["default"]["circuit_breaker"]["max_timeout"] = json!("30s");
    let envoy = envoy_with(&upstream, "a", &policy);

    upstream.script([Reply::Reset, Reply::Close]);
    let reset = envoy.get("/reset").expect("a response");
    let closed = envoy.get("/close").expect("a response");
    upstream.stop_listening();
    let refused = envoy.get("/refused").expect("a response");
    for response in [&reset, &closed, &refused] {
        assert_eq!(
            response.status, 503,
            "Envoy's own failure reply: {response:?}"
        );
        assert!(
            !is_fallback(response),
            "admitted while closed: {response:?}"
        );
    }
    let metrics = Metrics::read(&envoy, "a");
    assert_eq!(
        metrics.get("failures_total"),
        3,
        "a reset, a close and a refusal are failures"
    );
    assert_eq!(
        metrics.get("breaker_opened_total"),
        1,
        "and they open the breaker"
    );

    upstream.start_listening().expect("listening again");
    let next = envoy.get("/after").expect("a response");
    assert!(is_fallback(&next), "the breaker is open: {next:?}");
    assert_eq!(
        upstream.total(),
        2,
        "only the reset and the close reached the upstream"
    );
}
