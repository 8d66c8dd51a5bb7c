//! The demo's phase driver, end to end in its short form: real Envoy, the real module, the real
//! upstreams. The story must come out as told: retries rescue the flaky phase, the breaker opens
//! when the catalog is down and spares it, and closes again once it recovers, while the reviews
//! cluster's own breaker never moves.

use std::sync::atomic::AtomicBool;

use breakwater_demo::load::Counts;
use breakwater_demo::stage::State;
use breakwater_demo::{run, summary, Options};

#[test]
fn the_quick_demo_tells_the_whole_story() {
    let mut out = Vec::new();
    let stop = AtomicBool::new(false);
    let (stage, report) = run(&Options::quick(), &mut out, false, &stop).expect("the demo runs");
    summary::write_try_it(&mut out, &stage, false).expect("writes");
    let text = String::from_utf8(out).expect("utf-8 output");
    let fail = |why: &str| -> ! { panic!("{why}\n--- demo output ---\n{text}") };

    let names: Vec<_> = report.phases.iter().map(|p| p.name).collect();
    if names != ["healthy", "flaky", "down", "recovering", "healthy"] || report.interrupted {
        fail(&format!("every phase ran: {names:?}"));
    }
    if !report.phases.iter().all(|p| p.reached) {
        fail("every phase reached its goal");
    }
    let [healthy, flaky, down, recovering, healed] = &report.phases[..] else {
        unreachable!("five phases, checked above")
    };
    let catalog = |p: &breakwater_demo::PhaseReport| p.counts[0];

    let c = catalog(healthy);
    if c.ok == 0 || c.failed + c.errors + c.fallback + c.retried != 0 {
        fail(&format!("healthy: every request succeeds at once: {c:?}"));
    }

    let c = catalog(flaky);
    if c.rescued == 0 {
        fail(&format!("flaky: retries turned failures into 2xx: {c:?}"));
    }
    if c.ok * 10 < c.requests * 9 {
        fail(&format!(
            "flaky: at least 90% of requests succeed thanks to retries: {c:?}"
        ));
    }
    if flaky.upstream_hits[0] <= c.requests {
        fail("flaky: the catalog saw more attempts than client requests (the retries)");
    }
    if flaky.delta("catalog", |b| b.opened) != 0 {
        fail("flaky: retried successes do not open the breaker");
    }

    let c = catalog(down);
    if down.delta("catalog", |b| b.opened) == 0 || c.fallback == 0 {
        fail(&format!(
            "down: the breaker opened and served fallbacks: {c:?}"
        ));
    }
    if down.upstream_hits[0] * 2 >= c.requests {
        fail(&format!(
            "down: the open breaker spared the catalog ({} hits for {} requests)",
            down.upstream_hits[0], c.requests
        ));
    }

    if recovering.delta("catalog", |b| b.closed) == 0
        || recovering.end_state("catalog") != State::Closed
    {
        fail("recovering: a probe went through and closed the breaker");
    }

    let c = catalog(healed);
    if c.ok == 0 || c.fallback != 0 {
        fail(&format!(
            "healthy again: traffic flows, no fallbacks: {c:?}"
        ));
    }

    let reviews = report
        .phases
        .iter()
        .fold(Counts::default(), |sum, p| sum.plus(p.counts[1]));
    let reviews_breaker = report.breakers.get("reviews").copied();
    let reviews_failed = reviews.failed + reviews.errors + reviews.fallback;
    if reviews.ok == 0 || reviews_failed != 0 || reviews_breaker.is_none_or(|b| b.opened != 0) {
        fail(&format!(
            "reviews: its own breaker never opened and all its requests succeeded: {reviews:?}"
        ));
    }
    if !report.connections_per_worker.iter().all(|&n| n > 0) {
        fail(&format!(
            "both Envoy workers served clients: {:?}",
            report.connections_per_worker
        ));
    }

    for expected in [
        "== phase 1/5: healthy",
        "== phase 3/5: down",
        "circuit breaker 'catalog' OPEN after",
        "circuit breaker 'catalog' entering HALF_OPEN",
        "circuit breaker 'catalog' closed",
        "== summary",
        &format!("curl -si http://{}/catalog/item/1", stage.envoy.listener()),
    ] {
        if !text.contains(expected) {
            fail(&format!("the output shows {expected:?}"));
        }
    }
    if text.contains('\r') || text.contains('\x1b') {
        fail("without a terminal the output has no carriage returns or escape codes");
    }
}
