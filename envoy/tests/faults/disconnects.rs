//! Clients that leave in the middle of their retries, many at once, while other clients keep
//! Envoy busy: half close their connection (FIN), half reset it (RST).
//!
//! What must hold afterwards: a retry that was still waiting is never sent; a retry that was in
//! flight ends (its call times out) and nothing follows it; the clients that stayed got every
//! answer; Envoy has nothing left in flight, no wasm error, and serves new requests.

use std::io::Write;
use std::net::TcpStream;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use breakwater_envoy::soak::load::MakeRequest;
use breakwater_envoy::soak::{Load, LoadSpec};
use breakwater_envoy::{Envoy, EnvoyConfig, Reply, Request, Route, Upstream};
use serde_json::Value;

use crate::common::{
    assert_no_wasm_errors, assert_nothing_in_flight, breakwater, place, retries,
    session_per_worker, start, stat, upstream, wait_until, wasm_health, Metrics, WORKERS,
};

/// Clients that leave.
const LEAVING: usize = 32;
/// Background load: requests per second to the healthy cluster while clients leave.
const BACKGROUND_RATE: f64 = 100.0;

/// Envoy with Breakwater (`policy`) in front of `flaky` (routes `/flaky/`) and `healthy`
/// (everything else), the background load on `healthy` running.
fn envoy_under_load(flaky: &Upstream, healthy: &Upstream, policy: &Value) -> (Envoy, Load) {
    let envoy = start(
        &EnvoyConfig::new()
            .cluster("flaky", flaky.addr())
            .cluster("healthy", healthy.addr())
            .route(Route::prefix("flaky", "/flaky/", "flaky"))
            .route(Route::prefix("healthy", "/", "healthy"))
            .filter(breakwater(policy)),
    );
    let make: Arc<MakeRequest> = Arc::new(|_, n| Request::get(&format!("/healthy/{n}")));
    let load = Load::start(
        envoy.listener(),
        &LoadSpec {
            connections: 4,
            rate: BACKGROUND_RATE,
            make,
        },
    );
    // Its connections are open before any other is placed on a worker.
    wait_until("the background load to run on all its connections", || {
        load.tally().answered() >= 16
    });
    (envoy, load)
}

/// Opens [`LEAVING`] connections one at a time (so both workers get some), then sends `GET
/// /flaky/gone/<i>` on all of them at once.
fn leaving_clients(envoy: &Envoy) -> Vec<TcpStream> {
    let mut by_worker = vec![0; WORKERS];
    let mut clients: Vec<TcpStream> = (0..LEAVING)
        .map(|_| {
            let (client, worker) = place(envoy, || {
                TcpStream::connect(envoy.listener()).expect("connects")
            });
            by_worker[worker] += 1;
            client
        })
        .collect();
    assert!(
        by_worker.iter().all(|&n| n > 0),
        "both workers have leaving clients: {by_worker:?}"
    );
    for (i, client) in clients.iter_mut().enumerate() {
        client
            .write_all(format!("GET /flaky/gone/{i} HTTP/1.1\r\nhost: b\r\n\r\n").as_bytes())
            .expect("sends");
    }
    clients
}

/// Closes every other client with a reset (linger zero), the rest gracefully, and waits until
/// Envoy has seen every one leave with its request active.
fn leave(envoy: &Envoy, clients: Vec<TcpStream>) {
    let left_before = stat(
        envoy,
        "http.ingress_http.downstream_cx_destroy_remote_active_rq",
    );
    for (i, client) in clients.into_iter().enumerate() {
        if i % 2 == 0 {
            socket2::SockRef::from(&client)
                .set_linger(Some(Duration::ZERO))
                .expect("linger");
        }
        drop(client);
    }
    wait_until("Envoy to see every client leave", || {
        stat(
            envoy,
            "http.ingress_http.downstream_cx_destroy_remote_active_rq",
        ) >= left_before + LEAVING as u64
    });
}

/// Stops the background load and checks that it got a 200 for every request.
fn assert_background_served(load: Load) {
    let finished = load.stop();
    let tally = finished.tally;
    assert!(tally.sent > 0, "the background load ran");
    assert_eq!(
        tally.ok, tally.sent,
        "every background request got its 200 while clients left: {tally:?} {:?}",
        finished.errors
    );
}

/// The requests to `/flaky/gone/*` that reached the upstream, and how many were retries.
fn gone_attempts(flaky: &Upstream) -> (usize, usize) {
    let gone: Vec<_> = flaky
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/flaky/gone/"))
        .collect();
    let retried = gone.iter().filter(|r| r.attempt().is_some()).count();
    (gone.len(), retried)
}

#[test]
fn clients_that_leave_while_their_retries_wait_get_no_retry_sent() {
    let flaky = upstream("flaky");
    let healthy = upstream("healthy");
    // Retries wait 5 s: the clients leave well within that.
    let (envoy, load) = envoy_under_load(&flaky, &healthy, &retries(2, "5s", "2s"));
    let health = wasm_health(&envoy);
    flaky.fail_first_per_path(1, Reply::Status(503));

    let clients = leaving_clients(&envoy);
    wait_until("every first attempt's 503 to pass the router", || {
        stat(&envoy, "cluster.flaky.upstream_rq_503") == LEAVING as u64
    });
    leave(&envoy, clients);

    // On each worker, a request whose retry is due after every dropped one would have been.
    for (w, mut session) in session_per_worker(&envoy).into_iter().enumerate() {
        let later = session
            .send(&Request::get(&format!("/flaky/later/{w}")))
            .expect("a response");
        assert_eq!(later.status, 200, "{later:?}");
        assert_eq!(later.header("x-breakwater-attempts"), Some("2"));
    }
    assert_eq!(
        gone_attempts(&flaky),
        (LEAVING, 0),
        "the first attempts arrived; no retry was sent for a client that had left"
    );
    assert_eq!(
        Metrics::read(&envoy, "flaky").get("retries_total"),
        WORKERS as u64,
        "only the later requests were retried"
    );
    assert_background_served(load);
    assert_nothing_in_flight(&envoy);
    assert_no_wasm_errors(&envoy, &health);
}

#[test]
fn clients_that_leave_while_their_retries_are_in_flight_leave_nothing_behind() {
    let flaky = upstream("flaky");
    let healthy = upstream("healthy");
    // A retry that times out is retried (retry_on lists timeout): were a gone client's job kept,
    // its third attempt would reach the upstream. The clients leave well within the 5 s.
    let (envoy, load) = envoy_under_load(&flaky, &healthy, &retries(3, "10ms", "5s"));
    let health = wasm_health(&envoy);
    // First attempts fail; every retry is read and never answered, until per_try_timeout.
    flaky.fail_first_per_path(1, Reply::Status(503));
    flaky.set_default(Reply::Never);

    let clients = leaving_clients(&envoy);
    wait_until("every client's retry to be in flight", || {
        gone_attempts(&flaky) == (2 * LEAVING, LEAVING)
    });
    leave(&envoy, clients);
    wait_until("the retries in flight to end", || {
        stat(&envoy, "cluster.flaky.upstream_rq_active") == 0
    });

    // On each worker at once, a request that goes through the same two timeouts, later: its
    // third attempt comes after every third attempt the gone clients could have had.
    let sessions = session_per_worker(&envoy);
    thread::scope(|s| {
        for (w, mut session) in sessions.into_iter().enumerate() {
            s.spawn(move || {
                let later = session
                    .send(&Request::get(&format!("/flaky/later/{w}")))
                    .expect("a response");
                assert_eq!(later.status, 504, "{later:?}");
                assert_eq!(later.header("x-breakwater-attempts"), Some("3"));
            });
        }
    });
    assert_eq!(
        gone_attempts(&flaky),
        (2 * LEAVING, LEAVING),
        "a retry in flight when its client left ended there: no third attempt"
    );
    assert_eq!(
        Metrics::read(&envoy, "flaky").get("retries_total"),
        (LEAVING + 2 * WORKERS) as u64
    );
    assert_background_served(load);
    assert_nothing_in_flight(&envoy);

    flaky.no_path_failures();
    flaky.respond_with(200);
    let after = envoy.get("/flaky/after").expect("a response");
    assert_eq!(after.status, 200, "Envoy serves on: {after:?}");
    assert_no_wasm_errors(&envoy, &health);
}
