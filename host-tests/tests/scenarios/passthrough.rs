//! A healthy request: the filter lets it through untouched and costs no shared-data write, and a
//! client cannot steer the filter with `x-breakwater-*` headers.

use breakwater_host_tests::{Reply, Source};
use serde_json::json;

use crate::common::{
    assert_no_errors, budget_key, count, flush, policy, response, stat, state_gauge, world, CLUSTER,
};

fn healthy_world() -> breakwater_host_tests::World {
    let mut w = world(2, &policy(json!({}), json!({})));
    w.upstream(
        CLUSTER,
        Reply::status(201)
            .header("content-type", "application/json")
            .header("x-upstream", "yes")
            .body(r#"{"ok":true}"#)
            .trailer("x-checksum", "abc"),
    );
    w
}

#[test]
fn a_healthy_request_reaches_the_upstream_and_its_response_reaches_the_client_untouched() {
    let mut w = healthy_world();
    let s = w
        .request(1)
        .method("PUT")
        .path("/orders/7?expand=true")
        .header("content-type", "text/plain")
        .header("x-tenant", "acme")
        .body("hello")
        .trailer("x-digest", "d1")
        .cluster(CLUSTER)
        .send();
    w.run_until_idle();

    let attempts = w.upstream_attempts(CLUSTER);
    assert_eq!(
        attempts.len(),
        1,
        "exactly one request reaches the upstream"
    );
    let sent = &attempts[0].request;
    assert_eq!(sent.method(), "PUT");
    assert_eq!(sent.path(), "/orders/7?expand=true");
    assert_eq!(sent.header("x-tenant"), Some("acme"));
    assert_eq!(sent.body, b"hello", "the body passes as the client sent it");
    assert_eq!(sent.trailers.get("x-digest"), Some("d1"));
    assert!(
        sent.headers
            .iter()
            .all(|(n, _)| !n.starts_with("x-breakwater-")),
        "a first attempt carries no breakwater header: {:?}",
        sent.headers
    );

    let r = response(&w, s);
    assert_eq!(r.status, 201);
    assert_eq!(r.source, Source::Upstream, "the upstream's own response");
    assert_eq!(r.header("x-upstream"), Some("yes"));
    assert_eq!(r.body_text(), r#"{"ok":true}"#);
    assert_eq!(r.trailers.get("x-checksum"), Some("abc"));
    assert!(
        r.headers
            .iter()
            .all(|(n, _)| !n.starts_with("x-breakwater-")),
        "a response that needed no retry gets no breakwater header: {:?}",
        r.headers
    );
    assert_no_errors(&w);
}

#[test]
fn a_healthy_request_is_counted_and_leaves_the_breaker_closed_without_writing_shared_data() {
    let mut w = healthy_world();
    for worker in [0, 1, 0] {
        w.request(worker).cluster(CLUSTER).send();
    }
    w.run_until_idle();
    assert_eq!(
        count(&w, "requests_total"),
        0,
        "counted in each worker, not yet flushed"
    );
    assert!(
        w.shared_data_keys().is_empty(),
        "the closed, healthy path writes no shared data (a CAS per request would cost every \
         request); found {:?}",
        w.shared_data_keys()
    );
    flush(&mut w);

    assert_eq!(count(&w, "requests_total"), 3, "flushed within a second");
    assert_eq!(count(&w, "failures_total"), 0);
    assert_eq!(
        state_gauge(&w, CLUSTER),
        Some(0),
        "the state gauge exists from the first request and says closed"
    );
    assert_eq!(
        w.shared_data_keys(),
        vec![budget_key(CLUSTER).into_bytes()],
        "the flush adds the workers' request counts to the retry budget; the breaker is never \
         written"
    );
    for metric in ["rejected_total", "retries_total", "breaker_opened_total"] {
        assert_eq!(
            w.counter(&stat(CLUSTER, metric)),
            None,
            "{metric} is not even defined on a healthy path"
        );
    }
}

#[test]
fn client_breakwater_headers_are_removed_before_the_upstream_sees_them() {
    let mut w = healthy_world();
    let s = w
        .request(0)
        .header("x-breakwater-attempt", "9")
        .header("X-Breakwater-Breaker", "closed")
        .header("x-breakwater-anything", "steer")
        .header("x-breakwaterish", "kept: not the filter's prefix")
        .cluster(CLUSTER)
        .send();
    w.run_until_idle();

    let sent = &w.upstream_attempts(CLUSTER)[0].request;
    let names: Vec<&str> = sent.headers.iter().map(|(n, _)| n).collect();
    assert!(
        !names.iter().any(|n| n.starts_with("x-breakwater-")),
        "a client cannot pass breakwater headers upstream: {names:?}"
    );
    assert_eq!(
        sent.header("x-breakwaterish"),
        Some("kept: not the filter's prefix")
    );
    assert_eq!(response(&w, s).status, 201);
}

#[test]
fn client_breakwater_headers_are_not_replayed_on_a_retry_either() {
    let mut w = world(1, &policy(json!({}), json!({ "base_delay": "10ms" })));
    w.upstream(CLUSTER, Reply::sequence([Reply::status(503), Reply::ok()]));
    let s = w
        .request(0)
        .header("x-breakwater-attempt", "7")
        .cluster(CLUSTER)
        .send();
    w.run_until_idle();

    let attempts = w.upstream_attempts(CLUSTER);
    assert_eq!(attempts.len(), 2);
    assert_eq!(
        attempts[1].request.headers.get_all("x-breakwater-attempt"),
        vec!["2"],
        "the retry carries the filter's own attempt number, once"
    );
    assert_eq!(response(&w, s).header("x-breakwater-attempts"), Some("2"));
}

#[test]
fn an_upstreams_own_breakwater_headers_pass_a_response_this_filter_did_not_touch() {
    // In a mesh the upstream may be another Breakwater (the server's inbound sidecar): its
    // `x-breakwater-attempts` and `x-breakwater-breaker` describe what that hop did. This hop
    // passes a response it neither retried nor replaced untouched (removing them would cost two
    // host calls on every response), and writes its own headers when it acted: the headers on a
    // response always describe the nearest hop that acted on it (README, "Headers").
    let mut w = world(1, &policy(json!({}), json!({ "base_delay": "10ms" })));
    w.upstream(
        CLUSTER,
        Reply::sequence([
            Reply::ok()
                .header("x-breakwater-attempts", "3")
                .header("x-breakwater-breaker", "open"),
            Reply::status(503).header("x-breakwater-attempts", "2"),
            Reply::ok().header("x-breakwater-attempts", "4"),
        ]),
    );
    let untouched = w.request(0).cluster(CLUSTER).send();
    w.run_until_idle();
    let r = response(&w, untouched);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("x-breakwater-attempts"),
        Some("3"),
        "the upstream's"
    );
    assert_eq!(
        r.header("x-breakwater-breaker"),
        Some("open"),
        "the upstream's"
    );

    let retried = w.request(0).cluster(CLUSTER).send();
    w.run_until_idle();
    let r = response(&w, retried);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.headers.get_all("x-breakwater-attempts"),
        ["2"],
        "this hop retried: its own count replaces the upstream's"
    );
    assert_no_errors(&w);
}
