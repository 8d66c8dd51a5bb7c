//! What the failure scenarios' samples say: success rates, rates per second, when the breaker
//! tripped and when the first success came back. Pure functions over the recorded samples and
//! admin polls, so they are tested without Envoy.

use std::time::Duration;

use crate::load::Sample;

/// One look at the running Envoy and upstream during the outage.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Poll {
    pub at: Duration,
    /// Requests the upstream had received by then.
    pub upstream: usize,
    /// Whether the breaker had tripped (Breakwater open or half-open; Envoy: host ejected).
    pub tripped: bool,
}

/// Successful responses over all responses; `None` without responses.
pub fn success_rate(samples: &[Sample]) -> Option<f64> {
    let ok = samples.iter().filter(|s| s.is_success()).count();
    (!samples.is_empty()).then(|| ok as f64 / samples.len() as f64)
}

/// The `q` quantile (0..=1) of the samples' latencies, in milliseconds (nearest rank).
pub fn latency_ms(samples: &[Sample], q: f64) -> Option<f64> {
    let mut latencies: Vec<Duration> = samples.iter().map(|s| s.latency).collect();
    latencies.sort_unstable();
    let last = latencies.len().checked_sub(1)?;
    let rank = ((q.clamp(0.0, 1.0) * latencies.len() as f64).ceil() as usize).saturating_sub(1);
    latencies
        .get(rank.min(last))
        .map(|d| d.as_secs_f64() * 1000.0)
}

/// Responses per second that arrived in `[from, to)`.
pub fn rate(samples: &[Sample], from: Duration, to: Duration) -> f64 {
    let seconds = to.saturating_sub(from).as_secs_f64();
    if seconds <= 0.0 {
        return 0.0;
    }
    let n = samples.iter().filter(|s| s.at >= from && s.at < to).count();
    n as f64 / seconds
}

/// The first successful response after `after`.
pub fn first_success_after(samples: &[Sample], after: Duration) -> Option<Duration> {
    samples
        .iter()
        .filter(|s| s.at > after && s.is_success())
        .map(|s| s.at)
        .min()
}

/// The outage as it was run.
#[derive(Debug, Clone)]
pub struct Outage {
    /// When the upstream started failing every request.
    pub failing_from: Duration,
    /// When it answered 200 again.
    pub recovered_at: Duration,
    /// Requests the upstream had received at `recovered_at`.
    pub upstream_at_recovery: usize,
    /// When the healthy phase before the outage started counting (after its ramp-up).
    pub healthy_from: Duration,
    pub polls: Vec<Poll>,
    pub samples: Vec<Sample>,
}

/// What the outage showed.
#[derive(Debug, Clone, PartialEq)]
pub struct OutageSummary {
    /// Seconds from the outage's start to the first poll that saw the breaker tripped.
    pub tripped_after: Option<f64>,
    /// Requests per second reaching the upstream from the trip (or, without one, from the
    /// outage's start) to the recovery.
    pub upstream_rps_after_trip: f64,
    /// Client requests per second over the same interval.
    pub client_rps_after_trip: f64,
    /// Client requests per second before the outage.
    pub healthy_rps: f64,
    /// The load the upstream is compared against: the smaller of the two client rates above.
    pub offered_rps: f64,
    /// Seconds from the upstream's recovery to the first successful response.
    pub recovery_seconds: Option<f64>,
}

impl OutageSummary {
    /// Upstream load while tripped as a fraction of the offered load.
    pub fn shed_fraction(&self) -> Option<f64> {
        (self.offered_rps > 0.0).then(|| self.upstream_rps_after_trip / self.offered_rps)
    }
}

pub fn summarize(outage: &Outage) -> OutageSummary {
    let trip = outage
        .polls
        .iter()
        .find(|p| p.tripped && p.at >= outage.failing_from);
    let (from, upstream_from) = match trip {
        Some(p) => (p.at, p.upstream),
        None => {
            // Never tripped: the whole outage counts, from the last poll before it started.
            let before = outage
                .polls
                .iter()
                .rfind(|p| p.at <= outage.failing_from)
                .map_or(0, |p| p.upstream);
            (outage.failing_from, before)
        }
    };
    let seconds = outage.recovered_at.saturating_sub(from).as_secs_f64();
    let upstream_rps_after_trip = if seconds > 0.0 {
        outage.upstream_at_recovery.saturating_sub(upstream_from) as f64 / seconds
    } else {
        0.0
    };
    let client_rps_after_trip = rate(&outage.samples, from, outage.recovered_at);
    let healthy_rps = rate(&outage.samples, outage.healthy_from, outage.failing_from);
    OutageSummary {
        tripped_after: trip.map(|p| p.at.saturating_sub(outage.failing_from).as_secs_f64()),
        upstream_rps_after_trip,
        client_rps_after_trip,
        healthy_rps,
        offered_rps: client_rps_after_trip.min(healthy_rps),
        recovery_seconds: first_success_after(&outage.samples, outage.recovered_at)
            .map(|t| t.saturating_sub(outage.recovered_at).as_secs_f64()),
    }
}

/// What happened in one slice of the outage scenario.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Slice {
    /// The slice's start, from the scenario's start.
    pub at: Duration,
    /// Client responses: 2xx, other (errors included), and of those Breakwater's fallbacks.
    pub ok: usize,
    pub failed: usize,
    pub fallback: usize,
    /// Requests that reached the upstream, from the polls around the slice.
    pub upstream: usize,
}

/// The scenario cut into slices of `width`: what the client got and what the upstream received.
pub fn timeline(outage: &Outage, width: Duration) -> Vec<Slice> {
    let end = outage.samples.last().map_or(Duration::ZERO, |s| s.at);
    let upstream_at = |t: Duration| {
        outage
            .polls
            .iter()
            .rfind(|p| p.at <= t)
            .map_or(0, |p| p.upstream)
    };
    let mut slices = Vec::new();
    let mut at = Duration::ZERO;
    while at <= end && !width.is_zero() {
        let next = at + width;
        let inside = outage.samples.iter().filter(|s| s.at >= at && s.at < next);
        let (mut ok, mut failed, mut fallback) = (0, 0, 0);
        for s in inside {
            if s.is_success() {
                ok += 1;
            } else {
                failed += 1;
            }
            fallback += usize::from(s.fallback);
        }
        slices.push(Slice {
            at,
            ok,
            failed,
            fallback,
            upstream: upstream_at(next).saturating_sub(upstream_at(at)),
        });
        at = next;
    }
    slices
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(at_ms: u64, status: u16) -> Sample {
        Sample {
            at: Duration::from_millis(at_ms),
            status,
            fallback: status == 503,
            latency: Duration::from_millis(1),
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn success_rate_counts_2xx_over_every_response_errors_included() {
        let samples = [s(1, 200), s(2, 204), s(3, 503), s(4, 0)];
        assert_eq!(success_rate(&samples), Some(0.5));
        assert_eq!(success_rate(&[]), None, "no responses, no rate");
    }

    #[test]
    fn latency_quantiles_use_the_nearest_rank() {
        let samples: Vec<Sample> = (1..=100)
            .map(|i| Sample {
                latency: ms(i),
                ..s(i, 200)
            })
            .collect();
        assert_eq!(latency_ms(&samples, 0.5), Some(50.0));
        assert_eq!(latency_ms(&samples, 0.99), Some(99.0));
        assert_eq!(latency_ms(&samples, 1.0), Some(100.0));
        assert_eq!(latency_ms(&[], 0.5), None);
    }

    #[test]
    fn rate_counts_responses_in_a_half_open_interval() {
        let samples = [s(0, 200), s(500, 200), s(999, 200), s(1000, 200)];
        assert_eq!(rate(&samples, ms(0), ms(1000)), 3.0);
        assert_eq!(rate(&samples, ms(1000), ms(1000)), 0.0, "an empty interval");
    }

    #[test]
    fn the_first_success_after_recovery_ignores_earlier_ones_and_failures() {
        let samples = [s(100, 200), s(2100, 503), s(2400, 200), s(2300, 200)];
        assert_eq!(first_success_after(&samples, ms(2000)), Some(ms(2300)));
        assert_eq!(first_success_after(&samples, ms(3000)), None);
    }

    /// 1 s healthy at 1000 req/s, outage from 1 s, tripped at 1.1 s, recovery at 5 s.
    fn outage(tripped: bool) -> Outage {
        let mut samples: Vec<Sample> = (0..1000).map(|i| s(i, 200)).collect();
        samples.extend((0..8000).map(|i| s(1000 + i / 2, 503)));
        samples.push(s(7500, 200));
        Outage {
            failing_from: ms(1000),
            recovered_at: ms(5000),
            upstream_at_recovery: 1000 + 400 + 2,
            healthy_from: ms(0),
            polls: vec![
                Poll {
                    at: ms(950),
                    upstream: 1000,
                    tripped: false,
                },
                Poll {
                    at: ms(1100),
                    upstream: 1400,
                    tripped,
                },
                Poll {
                    at: ms(1150),
                    upstream: 1401,
                    tripped,
                },
            ],
            samples,
        }
    }

    #[test]
    fn after_a_trip_the_upstream_rate_counts_from_the_trip_to_the_recovery() {
        let summary = summarize(&outage(true));
        let tripped = summary.tripped_after.expect("tripped");
        assert!((tripped - 0.1).abs() < 1e-9, "tripped 100 ms in: {tripped}");
        assert!(
            (summary.upstream_rps_after_trip - 2.0 / 3.9).abs() < 1e-9,
            "2 requests in 3.9 s: {}",
            summary.upstream_rps_after_trip
        );
        assert_eq!(summary.healthy_rps, 1000.0);
        assert!(summary.client_rps_after_trip > 1000.0, "fallbacks are fast");
        assert_eq!(
            summary.offered_rps, 1000.0,
            "the smaller client rate is the offer"
        );
        assert_eq!(summary.recovery_seconds, Some(2.5));
        let shed = summary.shed_fraction().expect("offered load");
        assert!(shed < 0.01, "{shed}");
    }

    #[test]
    fn the_timeline_counts_responses_and_upstream_requests_per_slice() {
        let slices = timeline(&outage(true), ms(1000));
        assert_eq!(slices.len(), 8, "0 s to 7.5 s in 1 s slices");
        assert_eq!(
            (slices[0].ok, slices[0].failed),
            (1000, 0),
            "healthy first second"
        );
        assert_eq!(
            slices[1].upstream, 401,
            "polls at 0.95 s and 1.15 s: 1000 → 1401"
        );
        assert_eq!((slices[1].failed, slices[1].fallback), (2000, 2000));
        assert_eq!(
            (slices[7].ok, slices[7].failed),
            (1, 0),
            "the success at 7.5 s"
        );
    }

    #[test]
    fn without_a_trip_the_whole_outage_counts() {
        let summary = summarize(&outage(false));
        assert_eq!(summary.tripped_after, None);
        assert!(
            (summary.upstream_rps_after_trip - 402.0 / 4.0).abs() < 1e-9,
            "402 requests from the last poll before the outage, over 4 s: {}",
            summary.upstream_rps_after_trip
        );
    }
}
