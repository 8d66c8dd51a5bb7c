//! The way a retried request's final response takes, and what a retry sends, in the real Envoy
//! 1.40 with filters around Breakwater and a route that rewrites.
//!
//! # What happens (measured on Envoy 1.40)
//! - Breakwater holds the failed first response (its head paused, Envoy buffering the rest) and,
//!   when a retry answers, writes the retry's head, body and trailers into the held response's
//!   place and resumes it. The client's final response then passes every encoder filter before
//!   Breakwater (a Lua filter's stamp is there) and `local_reply_config` leaves it alone, exactly
//!   like an unretried response. (Before, it went out through Envoy's local reply: the stamp was
//!   missing, and a mapper rewrote it.)
//! - A reply made by a filter after Breakwater (an authorization filter's refusal, a rate
//!   limiter's 429) never reached the upstream: it is neither retried nor a failure for the
//!   breaker (`response.code_details` is not `via_upstream`).
//! - A retry is built from the request as it reached Breakwater, because a downstream filter
//!   cannot read the request as the router sent it: Envoy's wasm context lets go of the request
//!   header map once the filter's request-headers callback continues, and reads in later
//!   callbacks find no map. So a retry misses the route's rewrites and header changes; the test
//!   below pins exactly which headers differ, and README lists them for operators.

use breakwater_envoy::{EnvoyConfig, Reply, Route};
use serde_json::json;

use crate::common::{
    assert_no_wasm_errors, assert_nothing_in_flight, breakwater, retries, start, upstream,
    wasm_health,
};

/// A Lua filter that stamps every response that passes it.
const STAMP_RESPONSES: &str = r#"{
  "name": "stamp",
  "typed_config": {
    "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
    "default_source_code": { "inline_string":
      "function envoy_on_response(h) h:headers():add('x-lua-stamp', 'seen') end" }
  }
}"#;

/// A `local_reply_config` whose mapper marks every local reply.
const MARK_LOCAL_REPLIES: &str = r#"{
  "mappers": [{
    "filter": { "status_code_filter": { "comparison": { "op": "GE",
      "value": { "default_value": 100, "runtime_key": "breakwater_test.unused" } } } },
    "headers_to_add": [{ "header": { "key": "x-local-reply", "value": "mapped" } }]
  }]
}"#;

/// A Lua filter after Breakwater that refuses requests carrying `x-deny` with its own 503, as an
/// authorization filter whose service is down would.
const REFUSE_DENIED: &str = r#"{
  "name": "refuse",
  "typed_config": {
    "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
    "default_source_code": { "inline_string":
      "function envoy_on_request(h) if h:headers():get('x-deny') then h:respond({[':status'] = '503'}, 'denied') end end" }
  }
}"#;

#[test]
fn a_retried_response_passes_the_filters_before_breakwater_like_an_unretried_one() {
    let upstream = upstream("a");
    upstream.script([Reply::Status(503)]);
    let envoy = start(
        &EnvoyConfig::new()
            .cluster("a", upstream.addr())
            .filter(breakwater(&retries(3, "20ms", "2s")))
            .filter_before(STAMP_RESPONSES)
            .connection_manager("local_reply_config", MARK_LOCAL_REPLIES),
    );
    let health = wasm_health(&envoy);

    let retried = envoy.get("/retried").expect("a response");
    let plain = envoy.get("/plain").expect("a response");

    assert_eq!(retried.status, 200, "the retry's answer");
    assert_eq!(retried.header("x-breakwater-attempts"), Some("2"));
    assert_eq!(plain.header("x-breakwater-attempts"), None);
    for (what, response) in [("retried", &retried), ("unretried", &plain)] {
        assert_eq!(
            response.header("x-lua-stamp"),
            Some("seen"),
            "the {what} response passed the Lua filter before Breakwater"
        );
        assert_eq!(
            response.header("x-local-reply"),
            None,
            "no local reply mapper touched the {what} response"
        );
    }
    assert_eq!(
        String::from_utf8_lossy(&retried.body),
        "a 200\n",
        "the retry's body, not the held 503's"
    );
    assert_eq!(upstream.requests().len(), 3, "two attempts, then one plain");
    assert_nothing_in_flight(&envoy);
    assert_no_wasm_errors(&envoy, &health);
}

/// A held failure whose body is still arriving when the retry answers (8 MiB, more than Envoy
/// buffers for a paused response, so its upstream is held back): writing the retry into its
/// place would make the client wait for the rest of the failure, and an upstream that then
/// failed would cut the client's response. The retry's answer goes out as Envoy's local reply
/// instead, ending the stream at once.
#[test]
fn a_retry_answered_while_the_held_failure_still_arrives_is_sent_whole_at_once() {
    let upstream = upstream("a");
    upstream.script([Reply::Large(503, 8 << 20)]);
    let envoy = start(
        &EnvoyConfig::new()
            .cluster("a", upstream.addr())
            .filter(breakwater(&retries(2, "20ms", "2s"))),
    );
    let health = wasm_health(&envoy);

    let response = envoy.get("/large-failure").expect("a response");
    assert_eq!(response.status, 200);
    assert_eq!(response.header("x-breakwater-attempts"), Some("2"));
    assert_eq!(String::from_utf8_lossy(&response.body), "a 200\n");
    assert_nothing_in_flight(&envoy);
    assert_no_wasm_errors(&envoy, &health);
}

#[test]
fn a_reply_from_a_filter_after_breakwater_is_neither_retried_nor_a_failure() {
    let upstream = upstream("a");
    let policy = json!({
        "default": {
            "circuit_breaker": { "failure_threshold": 1, "timeout": "60s" },
            "retry": {
                "max_attempts": 3, "base_delay": "20ms", "jitter": false,
                "retry_on": ["5xx"], "budget": null
            }
        }
    });
    let envoy = start(
        &EnvoyConfig::new()
            .cluster("a", upstream.addr())
            .filter(breakwater(&policy))
            .filter_after(REFUSE_DENIED),
    );
    let health = wasm_health(&envoy);

    for _ in 0..3 {
        let denied = envoy
            .send(&breakwater_envoy::client::Request::get("/denied").header("x-deny", "1"))
            .expect("a response");
        assert_eq!(denied.status, 503);
        assert_eq!(String::from_utf8_lossy(&denied.body), "denied");
        assert_eq!(denied.header("x-breakwater-attempts"), None, "not retried");
    }
    let next = envoy.get("/allowed").expect("a response");
    assert_eq!(
        next.status, 200,
        "one counted failure would have opened the breaker (threshold 1)"
    );
    assert_eq!(upstream.requests().len(), 1, "only the allowed request");
    assert_nothing_in_flight(&envoy);
    assert_no_wasm_errors(&envoy, &health);
}

#[test]
fn a_retry_misses_the_routes_rewrites_and_header_changes_and_nothing_else() {
    let upstream = upstream("a");
    upstream.script([Reply::Status(503)]);
    let route = Route::prefix("api", "/api/", "a")
        .action("prefix_rewrite", r#""/v2/""#)
        .action("host_rewrite_literal", r#""svc.internal""#)
        .with(
            "request_headers_to_add",
            r#"[{ "header": { "key": "x-route-added", "value": "r" } }]"#,
        )
        .with("request_headers_to_remove", r#"["x-secret"]"#);
    let envoy = start(
        &EnvoyConfig::new()
            .cluster("a", upstream.addr())
            .route(route)
            .virtual_host(
                "request_headers_to_add",
                r#"[{ "header": { "key": "x-vhost-added", "value": "v" } }]"#,
            )
            .filter(breakwater(&retries(2, "20ms", "2s"))),
    );
    let health = wasm_health(&envoy);

    let request = breakwater_envoy::client::Request::get("/api/orders?id=7")
        .header("host", "shop.example")
        .header("x-secret", "s3cret");
    let response = envoy.send(&request).expect("a response");
    assert_eq!(response.status, 200);

    let attempts = upstream.requests();
    assert_eq!(attempts.len(), 2);
    let (first, retry) = (&attempts[0], &attempts[1]);
    eprintln!("first attempt: {} {:?}", first.path, first.headers);
    eprintln!("retry:         {} {:?}", retry.path, retry.headers);

    // The first attempt, as the route says.
    assert_eq!(first.path, "/v2/orders?id=7");
    assert_eq!(first.header("host"), Some("svc.internal"));
    assert_eq!(first.header("x-route-added"), Some("r"));
    assert_eq!(first.header("x-vhost-added"), Some("v"));
    assert_eq!(first.header("x-secret"), None);
    // The retry, as the request reached Breakwater: what README's "Retries and the route" lists.
    assert_eq!(retry.path, "/api/orders?id=7");
    assert_eq!(retry.header("host"), Some("shop.example"));
    assert_eq!(retry.header("x-route-added"), None);
    assert_eq!(retry.header("x-vhost-added"), None);
    assert_eq!(retry.header("x-secret"), Some("s3cret"));
    assert_eq!(retry.header("x-envoy-internal"), Some("true"));
    assert_eq!(retry.header("x-breakwater-attempt"), Some("2"));

    // Every other header is the same on both, apart from the router's own.
    let differs = |name: &str| {
        matches!(
            name,
            "host"
                | "x-route-added"
                | "x-vhost-added"
                | "x-secret"
                | "x-envoy-internal"
                | "x-breakwater-attempt"
                | "x-envoy-original-path"
                | "x-envoy-original-host"
                | "x-envoy-expected-rq-timeout-ms"
        )
    };
    let rest = |r: &breakwater_envoy::RecordedRequest| {
        let mut rest: Vec<(String, String)> = r
            .headers
            .iter()
            .filter(|(n, _)| !differs(n))
            .cloned()
            .collect();
        rest.sort();
        rest
    };
    assert_eq!(rest(first), rest(retry));
    assert_nothing_in_flight(&envoy);
    assert_no_wasm_errors(&envoy, &health);
}

/// Requests a dispatched retry cannot replay faithfully are not retried, and their clients get
/// the first answer at once: `HEAD` (a relayed answer would lose the `content-length` of the
/// body it describes), an upgrade (a tunnel, not a request), and a request that asked for
/// `100-continue` is replayed whole without the expectation (Envoy answers it hop by hop).
#[test]
fn head_upgrade_and_expect_continue_requests_are_answered_without_a_lost_or_stuck_client() {
    let upstream = upstream("a");
    upstream.set_default(Reply::Echo(200));
    let envoy = start(
        &EnvoyConfig::new()
            .cluster("a", upstream.addr())
            .filter(breakwater(&retries(3, "20ms", "2s")))
            .connection_manager("upgrade_configs", r#"[{ "upgrade_type": "websocket" }]"#),
    );
    let health = wasm_health(&envoy);
    use breakwater_envoy::client::Request;

    upstream.script([Reply::Status(503)]);
    let head = envoy
        .send(&Request::new("HEAD", "/head"))
        .expect("a response");
    assert_eq!(head.status, 503, "HEAD is not retried");
    assert_eq!(head.header("x-breakwater-attempts"), None);
    assert!(head.body.is_empty());
    assert_eq!(upstream.requests().len(), 1);

    upstream.script([Reply::Status(503)]);
    let upgrade = envoy
        .send(
            &Request::get("/socket")
                .header("connection", "upgrade")
                .header("upgrade", "websocket")
                .header("sec-websocket-version", "13")
                .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        )
        .expect("a response");
    assert_eq!(upgrade.status, 503, "an upgrade is not retried");
    assert_eq!(upgrade.header("x-breakwater-attempts"), None);
    assert_eq!(upstream.requests().len(), 2);

    upstream.script([Reply::Status(503)]);
    let body: Vec<u8> = (0..3_000u32).map(|i| (i % 251) as u8).collect();
    let put = envoy
        .send(
            &Request::new("PUT", "/continue")
                .header("expect", "100-continue")
                .body(body.clone()),
        )
        .expect("a response");
    assert_eq!(put.status, 200, "retried");
    assert_eq!(put.header("x-breakwater-attempts"), Some("2"));
    let attempts = upstream.requests();
    let retry = attempts.last().expect("the retry");
    assert_eq!(retry.body, body, "the whole body, replayed");
    assert_eq!(retry.header("expect"), None, "no expectation on the retry");
    assert_nothing_in_flight(&envoy);
    assert_no_wasm_errors(&envoy, &health);
}

/// A route that retries by itself (Envoy's `retry_policy`, as Istio sets one on every route by
/// default) under a policy that retries too: each of Breakwater's attempts is retried again by
/// the router. `breakwater_stacked_retries_total` counts the failed first attempts the router had
/// already retried, so operators can find the stacking.
#[test]
fn a_route_that_retries_too_is_counted_as_stacked_retries() {
    let upstream = upstream("a");
    upstream.set_default(Reply::Status(503));
    let native = breakwater_envoy::NativeResilience {
        retry_on: "5xx".to_string(),
        num_retries: 1,
        backoff_base: std::time::Duration::from_millis(10),
        backoff_max: std::time::Duration::from_millis(10),
        consecutive_5xx: 1000,
        ..Default::default()
    };
    let envoy = start(
        &EnvoyConfig::new()
            .cluster("a", upstream.addr())
            .native_resilience(native)
            .filter(breakwater(&retries(2, "20ms", "2s"))),
    );
    let health = wasm_health(&envoy);

    let response = envoy.get("/stacked").expect("a response");
    assert_eq!(response.status, 503);
    assert_eq!(response.header("x-breakwater-attempts"), Some("2"));
    assert_eq!(
        upstream.requests().len(),
        3,
        "the router's two attempts, then Breakwater's dispatched retry (which the router does not see)"
    );
    crate::common::wait_until("the stacked retry to be counted", || {
        crate::common::Metrics::read(&envoy, "a").get("stacked_retries_total") == 1
    });
    assert_nothing_in_flight(&envoy);
    assert_no_wasm_errors(&envoy, &health);
}
