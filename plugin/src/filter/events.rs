//! Breaker events become log lines and metrics: a warning when a breaker opens,
//! info when it half-opens and closes, and counters for each so operators can alert on them. A
//! state clamped to the policy is a warning and `state_clamped_total`: kept apart from
//! `state_errors_total` (bytes that did not decode at all), since a lowered `max_timeout` or
//! `probe_timeout` clamps too, legitimately, once.
//!
//! The state gauge follows the breaker's state machine. In `shadow` mode that machine runs
//! beside the traffic without rejecting anything: its phase (open on a would-open, then
//! half-open and closed as reported) goes to `breaker_shadow_state`, and `breaker_state` stays
//! closed, which is what clients get (`metrics::Metrics::mode`, told by each step's events).

use crate::core::breaker::{Events, Phase};

use super::metrics::{Counter, Metrics};

/// Logs and counts what a breaker transition reported.
pub fn apply(metrics: &mut Metrics, cluster: &str, events: &Events) {
    if events.is_empty() {
        return;
    }
    if events.clamped() {
        log::warn!(
            "breakwater: circuit breaker '{cluster}' state was beyond the policy's times; clamped"
        );
        metrics.add(cluster, Counter::StateClamped, 1);
    }
    let reclaimed = events.probes_reclaimed();
    if reclaimed > 0 {
        log::info!(
            "breakwater: circuit breaker '{cluster}' reclaimed {reclaimed} probe slot(s) after probe_timeout"
        );
        metrics.add(cluster, Counter::ProbesReclaimed, u64::from(reclaimed));
    }
    if events.half_opened() {
        log::info!("breakwater: circuit breaker '{cluster}' entering HALF_OPEN");
        metrics.add(cluster, Counter::BreakerHalfOpened, 1);
        metrics.state(cluster, Phase::HalfOpen.gauge());
    }
    if events.closed() {
        log::info!("breakwater: circuit breaker '{cluster}' closed");
        metrics.add(cluster, Counter::BreakerClosed, 1);
        metrics.state(cluster, Phase::Closed.gauge());
    }
    if let Some(opening) = events.opened() {
        log::warn!(
            "breakwater: circuit breaker '{cluster}' OPEN after {}; open for {} ms",
            opening.reason,
            crate::core::millis(opening.open_for)
        );
        metrics.add(cluster, Counter::BreakerOpened, 1);
        metrics.state(cluster, Phase::Open.gauge());
    }
    if let Some(opening) = events.would_open() {
        log::warn!(
            "breakwater: circuit breaker '{cluster}' would OPEN after {} (shadow mode)",
            opening.reason
        );
        metrics.add(cluster, Counter::BreakerWouldOpen, 1);
        metrics.state(cluster, Phase::Open.gauge());
    }
}
