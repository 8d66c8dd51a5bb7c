//! A flood of concurrent large retry-eligible uploads on one worker no longer runs its VM out of
//! memory: the worker's byte budget (`max_worker_buffer`) decides which requests are kept for a
//! retry, and the rest are forwarded without a copy.
//!
//! # Why this flood
//! Proxy-wasm-cpp-host caps a V8 VM at 1 GiB (`PROXY_WASM_HOST_MAX_WASM_MEMORY_SIZE_BYTES`), and a
//! VM that cannot grow traps, failing every request on its worker. Before the budget, Breakwater
//! kept a copy of every retry-eligible body (up to `max_request_body`) until the request ended,
//! so 80 uploads of 16 MiB held in flight together (1.25 GiB) made the VM trap: that flood was how
//! the failure-policy tests made the real filter fail. The same flood, with the largest budget
//! the policy allows, must now leave the VM alive and every client answered by the upstream.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use breakwater_envoy::metrics::Metrics;
use breakwater_envoy::soak::health::rss_bytes;
use breakwater_envoy::{EnvoyConfig, FailurePolicy, Route, WasmFilter};
use serde_json::json;

use crate::common::{start, trapped};
use crate::sink::{put, Answer, Sink};

/// Uploads held in flight at once: more than 1 GiB / 16 MiB.
const FLOOD: usize = 80;
/// The largest body `max_request_body` allows: every upload is eligible for a copy.
const BODY: usize = 16 * 1024 * 1024;
/// The largest `max_worker_buffer` the policy allows.
const BUDGET: u64 = 256 * 1024 * 1024;
/// A bound on how long the flood may take to reach the upstream before the test gives up.
const FLOOD_LIMIT: Duration = Duration::from_secs(120);

fn breakwater() -> WasmFilter {
    let policy = json!({
        "max_worker_buffer": BUDGET,
        "default": { "circuit_breaker": null, "retry": null },
        "clusters": {
            // Every upload may be retried once, soon, and only the byte budget can stop it: no
            // retry budget, a deadline far beyond the flood.
            "bulk": { "retry": {
                "max_attempts": 2,
                "max_request_body": BODY,
                "base_delay": "10ms",
                "per_try_timeout": "60s",
                "deadline": "10m",
                "budget": null
            } }
        }
    });
    let wasm =
        breakwater_wasm::breakwater().unwrap_or_else(|e| panic!("breakwater.wasm must build: {e}"));
    WasmFilter::new(wasm)
        .configuration(&policy.to_string())
        .failure_policy(FailurePolicy::FailClosed)
}

/// Samples a process's resident memory every 20 ms and keeps the peak, until dropped.
struct PeakRss {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl PeakRss {
    fn watch(pid: u32) -> PeakRss {
        let peak = Arc::new(AtomicU64::new(rss_bytes(pid).expect("Envoy's RSS")));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (Arc::clone(&peak), Arc::clone(&stop));
        thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                if let Ok(rss) = rss_bytes(pid) {
                    p.fetch_max(rss, Ordering::Relaxed);
                }
                thread::sleep(Duration::from_millis(20));
            }
        });
        PeakRss { peak, stop }
    }

    fn peak(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }
}

impl Drop for PeakRss {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

const MIB: u64 = 1024 * 1024;

#[test]
fn a_flood_of_large_retryable_uploads_leaves_the_vm_alive_and_every_client_answered() {
    let sink = Sink::replying(503);
    let envoy = start(
        &EnvoyConfig::new()
            .cluster("bulk", sink.addr())
            // No route timeout: the held requests stay in flight however slow the flood.
            .route(Route::prefix("bulk", "/", "bulk").timeout(Duration::ZERO))
            .concurrency(1)
            // Envoy opens one upstream connection per upload, all at once; on a loaded machine
            // its busy worker may see a connection's timer before its completion (1 s in the
            // config), and the upload would get Envoy's 503 instead of reaching the upstream.
            .connect_timeout(Duration::from_secs(20))
            .filter(breakwater()),
    );
    let pid = envoy.pid().expect("Envoy runs");
    let idle = rss_bytes(pid).expect("Envoy's RSS");
    let rss = PeakRss::watch(pid);

    // 1. The flood: every upload reaches the upstream, which holds them all, then fails them.
    let started = Instant::now();
    let body = Arc::new(vec![b'x'; BODY]);
    let listener = envoy.listener();
    let flood: Vec<_> = (0..FLOOD)
        .map(|i| put(listener, format!("/bulk/{i}"), Arc::clone(&body)))
        .collect();
    while sink.received() < FLOOD {
        assert!(
            !trapped(&envoy),
            "the VM trapped during the flood:\n{}",
            envoy.log_tail(20)
        );
        assert!(
            started.elapsed() < FLOOD_LIMIT,
            "only {} of {FLOOD} uploads reached the upstream within {FLOOD_LIMIT:?}",
            sink.received()
        );
        thread::sleep(Duration::from_millis(50));
    }
    let held = started.elapsed();
    sink.release();
    let answers: Vec<Option<Answer>> = flood
        .into_iter()
        .map(|t| t.join().expect("a flood thread"))
        .collect();
    let elapsed = started.elapsed();
    let peak = rss.peak();
    drop(rss);

    // 2. Nothing lost: every client got the upstream's answer, some after a retry.
    let log = envoy.log();
    assert!(
        !trapped(&envoy) && !log.contains("memory allocation of"),
        "the VM must not run out of memory:\n{}",
        envoy.log_tail(20)
    );
    let mut retried = 0u64;
    for (i, answer) in answers.iter().enumerate() {
        let answer = answer
            .as_ref()
            .unwrap_or_else(|| panic!("upload {i} got no answer: {answers:?}"));
        assert_eq!(answer.status, 503, "upload {i}: the upstream's own status");
        assert!(
            answer.from_sink,
            "upload {i}: answered by the upstream, not by Envoy: {answer:?}"
        );
        match answer.attempts {
            Some(2) => retried += 1,
            None => {}
            other => panic!("upload {i}: one retry at most, got attempts {other:?}"),
        }
    }

    // 3. The budget decided: the copies that fit were retried, the others were counted as
    //    skipped for memory when the upstream failed them.
    let metrics = Metrics::read(&envoy, "bulk");
    let skipped = metrics.skipped("memory");
    eprintln!(
        "flood of {FLOOD} x {} MiB: all at the upstream after {held:?}, answered after \
         {elapsed:?}; {retried} retried, {skipped} skipped for memory; Envoy RSS {} MiB idle, \
         {} MiB at the peak",
        BODY as u64 / MIB,
        idle / MIB,
        peak / MIB
    );
    assert_eq!(
        metrics.get("retries_total"),
        retried,
        "each retry counted once"
    );
    assert_eq!(
        metrics.get("retries_exhausted_total"),
        retried,
        "and failed again: the client got the retry's 503"
    );
    assert_eq!(
        retried + skipped,
        FLOOD as u64,
        "every failed upload was either retried or skipped for memory"
    );
    // Each copy leases its announced length with its headers as they arrive, and none is given
    // back while the upstream holds every upload: the first 15 to arrive fill the budget.
    let fits = BUDGET / BODY as u64 - 1;
    assert_eq!(
        retried, fits,
        "as many copies of {BODY} bytes and their headers as fit in {BUDGET} bytes were kept"
    );
    for reason in [
        "budget",
        "deadline",
        "breaker",
        "refused",
        "incomplete_body",
        "not_eligible",
    ] {
        assert_eq!(metrics.skipped(reason), 0, "no retry skipped for {reason}");
    }
    assert_eq!(
        metrics.get("retry_responses_dropped_total"),
        0,
        "every retry's answer was relayed"
    );

    // 4. Envoy's memory stayed bounded: the VM holds at most the budget, Envoy its own copy of
    //    each retried body and its stream buffers; the copies alone would have taken 1.25 GiB.
    assert!(
        peak < idle + 1024 * MIB,
        "Envoy grew from {} MiB to {} MiB",
        idle / MIB,
        peak / MIB
    );

    // 5. The budget was given back: a small upload is kept and retried again.
    let small = put(
        listener,
        "/bulk/after".to_string(),
        Arc::new(vec![b'y'; 1024]),
    )
    .join()
    .expect("the last upload's thread")
    .expect("the last upload gets an answer");
    assert_eq!(small.attempts, Some(2), "retried: {small:?}");
}
