//! Which host a retry reaches on a hash-balanced cluster (ring hash, maglev), in the real Envoy
//! 1.40: a route hashes on the client's `x-user`; every attempt fails, so each request is tried
//! three times, and both upstreams record which attempt of which request they got.
//!
//! # What happens (measured on Envoy 1.40)
//! - The first attempt goes through the router: the route's `hash_policy` picks the host, so a
//!   user's first attempts all reach one host whatever the `:authority`, and the users spread
//!   over both hosts.
//! - Breakwater's retries are dispatched through Envoy's async client, which never sees the
//!   route. Envoy's wasm host gives every dispatched call a hash policy of its own, on the
//!   `:authority` header (`source/extensions/common/wasm/context.cc`, `Context::httpCall`: "set
//!   default hash policy to be based on :authority"), and the async client's route carries that
//!   policy to the load balancer (`source/common/http/async_client_impl.h`, `RouteEntryImpl`).
//!   So every retry of every request with the same authority reaches the one host that
//!   authority hashes to, whichever host the user hashes to: retries do not follow the route's
//!   hash policy, and they are not random either (a hash-less pick would be, see
//!   `source/common/upstream/thread_aware_lb_impl.cc`, `chooseHost`: no hash key, a random one).
//! - The async client's route has no retry policy either, so Envoy's retry host predicates
//!   (`previous_hosts`) never apply to a dispatched retry: a retry may reach the very host that
//!   just failed, as here.
//! - A dispatched call still goes through Envoy's router (the async client runs one) and the
//!   cluster's load balancer, so outlier detection hears its outcome: one request whose three
//!   attempts failed on one host is three consecutive 5xx for that host, and ejects it at a
//!   threshold of three (the router's first attempt alone is one).

use std::collections::{BTreeMap, BTreeSet};

use breakwater_envoy::{Cluster, EnvoyConfig, RecordedRequest, Request, Route};

use crate::common::{
    assert_no_wasm_errors, assert_nothing_in_flight, breakwater, retries, start, stat, upstream,
    wait_until, wasm_health,
};

/// Distinct users (the route's hash key) and authorities (the dispatched calls' hash key), every
/// pair sent once: with two hosts, 16 keys all landing on one host by chance has odds of 2 in
/// 65,536 per key kind.
const USERS: usize = 16;
const AUTHORITIES: usize = 16;

/// Where each attempt of one client request went: host name per attempt number (1 = first).
type Attempts = BTreeMap<u32, String>;

/// Sends a request for every (authority, user) pair through a two-host cluster balanced by
/// `lb_policy`, every attempt failing, and returns where each attempt of each request went,
/// keyed by (authority, user).
fn attempts_by_request(lb_policy: &str) -> BTreeMap<(usize, usize), Attempts> {
    let hosts = [upstream("h0"), upstream("h1")];
    for host in &hosts {
        host.respond_with(503);
    }
    let envoy = start(
        &EnvoyConfig::new()
            .add_cluster(
                Cluster::new("hashed", hosts[0].addr())
                    .endpoint(hosts[1].addr())
                    .field("lb_policy", &format!("\"{lb_policy}\"")),
            )
            .route(Route::prefix("by-user", "/", "hashed").action(
                "hash_policy",
                r#"[{ "header": { "header_name": "x-user" } }]"#,
            ))
            .filter(breakwater(&retries(3, "10ms", "2s"))),
    );
    let health = wasm_health(&envoy);
    for authority in 0..AUTHORITIES {
        for user in 0..USERS {
            let request = Request::get(&format!("/a{authority}/u{user}"))
                .header("host", &format!("service-{authority}.example"))
                .header("x-user", &format!("user-{user}"));
            let response = envoy.send(&request).expect("a response");
            assert_eq!(
                response.header("x-breakwater-attempts"),
                Some("3"),
                "every attempt fails, so each request is tried three times: {response:?}"
            );
        }
    }
    assert_nothing_in_flight(&envoy);
    assert_no_wasm_errors(&envoy, &health);

    let mut by_request: BTreeMap<(usize, usize), Attempts> = BTreeMap::new();
    for host in &hosts {
        for request in host.requests() {
            let key = request_key(&request);
            let attempt = match request.attempt() {
                None => 1,
                Some(Ok(n)) => n,
                Some(Err(v)) => panic!("a bad x-breakwater-attempt {v:?}: {request:?}"),
            };
            let previous = by_request
                .entry(key)
                .or_default()
                .insert(attempt, host.name().to_string());
            assert!(
                previous.is_none(),
                "attempt {attempt} of {key:?} arrived twice"
            );
        }
    }
    assert_eq!(by_request.len(), AUTHORITIES * USERS, "{by_request:?}");
    for (key, attempts) in &by_request {
        assert_eq!(
            attempts.keys().copied().collect::<Vec<_>>(),
            vec![1, 2, 3],
            "request {key:?}: {attempts:?}"
        );
    }
    by_request
}

/// (authority, user) from the path `/a{authority}/u{user}`, checked against the headers.
fn request_key(request: &RecordedRequest) -> (usize, usize) {
    let parse = |part: Option<&str>, prefix: char| -> usize {
        part.and_then(|p| p.strip_prefix(prefix))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("an unexpected path: {request:?}"))
    };
    let mut parts = request.path.trim_start_matches('/').split('/');
    let (authority, user) = (parse(parts.next(), 'a'), parse(parts.next(), 'u'));
    assert_eq!(
        request.header("x-user"),
        Some(format!("user-{user}").as_str()),
        "every attempt carries the client's x-user"
    );
    assert_eq!(
        request.header("host"),
        Some(format!("service-{authority}.example").as_str()),
        "every attempt carries the client's authority"
    );
    (authority, user)
}

/// The hosts that got attempt `n` of the requests matching `keep`.
fn hosts_of(
    by_request: &BTreeMap<(usize, usize), Attempts>,
    n: u32,
    keep: impl Fn(&(usize, usize)) -> bool,
) -> BTreeSet<String> {
    by_request
        .iter()
        .filter(|(key, _)| keep(key))
        .map(|(_, attempts)| attempts[&n].clone())
        .collect()
}

/// The measured behaviour (see the module docs), for one hash-based load balancing policy.
#[track_caller]
fn first_attempts_follow_the_route_hash_and_retries_the_authority(lb_policy: &str) {
    let by_request = attempts_by_request(lb_policy);
    let of_user: Vec<String> = (0..USERS)
        .map(|u| by_request[&(0, u)][&1].clone())
        .collect();
    let of_authority: Vec<String> = (0..AUTHORITIES)
        .map(|a| by_request[&(a, 0)][&2].clone())
        .collect();
    eprintln!(
        "{lb_policy}: first attempt's host per user {of_user:?}; retries' host per authority \
         {of_authority:?}"
    );

    // The first attempt: the route's hash policy on x-user.
    for user in 0..USERS {
        let hosts = hosts_of(&by_request, 1, |&(_, u)| u == user);
        assert_eq!(
            hosts.len(),
            1,
            "{lb_policy}: the first attempts of user-{user} all reach one host, whatever the \
             authority: {hosts:?}"
        );
    }
    let first_hosts = hosts_of(&by_request, 1, |_| true);

    // Retries: the async client's hash policy on :authority, not the route's.
    for authority in 0..AUTHORITIES {
        for n in [2, 3] {
            let hosts = hosts_of(&by_request, n, |&(a, _)| a == authority);
            assert_eq!(
                hosts.len(),
                1,
                "{lb_policy}: attempt {n} of every user of service-{authority}.example reaches \
                 one host (the authority's), whatever the user: {hosts:?}"
            );
        }
        assert_eq!(
            hosts_of(&by_request, 2, |&(a, _)| a == authority),
            hosts_of(&by_request, 3, |&(a, _)| a == authority),
            "{lb_policy}: both retries of service-{authority}.example reach the same host"
        );
    }
    let retry_hosts = hosts_of(&by_request, 2, |_| true);
    assert_eq!(
        (first_hosts.len(), retry_hosts.len()),
        (2, 2),
        "{lb_policy}: users spread over both hosts for first attempts ({first_hosts:?}) and \
         authorities for retries ({retry_hosts:?}), so the keys really are hashed"
    );
    let elsewhere = by_request
        .values()
        .filter(|attempts| attempts[&2] != attempts[&1])
        .count();
    let again = by_request.len() - elsewhere;
    eprintln!(
        "{lb_policy}: {} requests; retries on another host than the first attempt: {elsewhere}, \
         on the same host again: {again}",
        by_request.len()
    );
    assert!(
        elsewhere > 0 && again > 0,
        "{lb_policy}: whether a retry reaches the host that just failed depends on the \
         authority's hash only (no previous_hosts predicate): {elsewhere} elsewhere, {again} again"
    );
}

#[test]
fn on_a_ring_hash_cluster_retries_hash_on_the_authority_not_on_the_routes_hash_policy() {
    first_attempts_follow_the_route_hash_and_retries_the_authority("RING_HASH");
}

#[test]
fn on_a_maglev_cluster_retries_hash_on_the_authority_not_on_the_routes_hash_policy() {
    first_attempts_follow_the_route_hash_and_retries_the_authority("MAGLEV");
}

/// Outlier detection counts the outcomes of Breakwater's retries: one client request, three
/// failed attempts on the only host, and the host is ejected for three consecutive 5xx (at a
/// threshold of four it is not: measured when the test was written).
#[test]
fn outlier_detection_counts_each_failed_retry_as_a_5xx_of_its_host() {
    let host = upstream("h0");
    host.respond_with(503);
    let envoy = start(
        &EnvoyConfig::new()
            .add_cluster(Cluster::new("ejecting", host.addr()).field(
                "outlier_detection",
                r#"{ "consecutive_5xx": 3, "enforcing_consecutive_5xx": 100,
                     "max_ejection_percent": 100, "interval": "60s",
                     "base_ejection_time": "60s" }"#,
            ))
            .filter(breakwater(&retries(3, "10ms", "2s"))),
    );
    let health = wasm_health(&envoy);
    let ejections = "cluster.ejecting.outlier_detection.ejections_enforced_consecutive_5xx";
    assert_eq!(stat(&envoy, ejections), 0);

    let response = envoy.get("/once").expect("a response");
    assert_eq!(response.status, 503);
    assert_eq!(response.header("x-breakwater-attempts"), Some("3"));
    assert_eq!(host.requests().len(), 3, "three attempts reached the host");
    wait_until("the host to be ejected for three consecutive 5xx", || {
        stat(&envoy, ejections) == 1
    });
    eprintln!(
        "outlier detection after one request with three failed attempts: ejections enforced {}, \
         hosts ejected now {}",
        stat(&envoy, ejections),
        stat(
            &envoy,
            "cluster.ejecting.outlier_detection.ejections_active"
        )
    );
    assert_nothing_in_flight(&envoy);
    assert_no_wasm_errors(&envoy, &health);
}
