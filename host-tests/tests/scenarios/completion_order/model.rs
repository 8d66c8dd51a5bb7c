//! The reference breaker: what the shared breaker must be after every event, in a few lines of
//! arithmetic written apart from the filter's core.
//!
//! # Rules
//! - Outcomes count in the order they are recorded, whatever the state was at admission: an
//!   outcome whose ticket is from another epoch (a phase change happened since) counts for
//!   nothing.
//! - Closed: a failure adds one to the consecutive count, a success resets it (whatever the count
//!   was at admission). `failure_threshold` failures in a row open the breaker (0: never).
//! - The rate window (`failure_rate`), when the cluster has one: every closed outcome is counted
//!   in it, and the breaker opens once the live buckets hold at least `minimum_requests` calls of
//!   which the failed fraction is at least `threshold` (see [`Rate`] for the bucket geometry).
//! - Open until an instant the filter draws (jittered): the first admission from then on makes
//!   the breaker half-open.
//! - Half-open: probes in flight plus successes never exceed the slots; that many successes
//!   close (with nothing counted), any failure re-opens. A probe whose client left gives its slot
//!   back and reports nothing.

use breakwater::core::Millis;

/// Buckets per window: the window slides by a tenth of its length.
const BUCKETS: usize = 10;

/// A cluster's `failure_rate`.
#[derive(Debug, Clone, Copy)]
pub struct Rate {
    pub threshold: f64,
    pub minimum: u32,
    pub window: Millis,
}

/// One bucket of the window: the calls that finished in its slice of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    /// Absolute start of the slice, ms on the filter's monotonic clock.
    pub start: Millis,
    pub total: u32,
    pub failed: u32,
}

impl Rate {
    /// The geometry mirrors the filter's core (`core::breaker::window`): ten buckets, each a
    /// tenth of the window wide (at least 1 ms), starting on multiples of that width; a bucket is
    /// live while less than ten widths have passed since its start.
    fn width(&self) -> Millis {
        (self.window / BUCKETS as Millis).max(1)
    }

    fn is_live(&self, bucket: &Bucket, now: Millis) -> bool {
        now.saturating_sub(bucket.start) < self.width() * BUCKETS as Millis
    }

    /// Counts one outcome at `now`, as the core's `Window::record` does: buckets that left the
    /// window are dropped first (only then: until the next outcome they stay stored), the call
    /// goes into the bucket of `now` (appended if the newest is older, dropping the oldest when
    /// ten are stored).
    fn count(&self, buckets: &mut Vec<Bucket>, now: Millis, failed: bool) {
        while buckets.first().is_some_and(|b| !self.is_live(b, now)) {
            buckets.remove(0);
        }
        let start = now - now % self.width();
        if buckets.last().is_none_or(|b| b.start < start) {
            if buckets.len() == BUCKETS {
                buckets.remove(0);
            }
            buckets.push(Bucket {
                start,
                total: 0,
                failed: 0,
            });
        }
        let newest = buckets.last_mut().expect("a bucket was just ensured");
        newest.total += 1;
        newest.failed += u32::from(failed);
    }

    /// The rate trigger, as the core's closed phase decides it: over the live buckets, at least
    /// `minimum` calls (and at least one), and failed / total (as `f64`) at or above `threshold`.
    fn trips(&self, buckets: &[Bucket], now: Millis) -> bool {
        let (total, failed) = buckets
            .iter()
            .filter(|b| self.is_live(b, now))
            .fold((0u32, 0u32), |(t, f), b| (t + b.total, f + b.failed));
        total > 0 && total >= self.minimum && f64::from(failed) / f64::from(total) >= self.threshold
    }
}

/// What a request holds from its admission.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Ticket {
    Rejected,
    Counted { epoch: u64 },
    Probe { epoch: u64 },
}

/// The breaker's phase with what it remembers; compared whole with the shared breaker.
#[derive(Debug, Clone, PartialEq)]
pub enum Phase {
    /// `window` is empty unless the cluster has a rate trigger.
    Closed {
        failures: u32,
        window: Vec<Bucket>,
    },
    Open {
        until: Millis,
    },
    HalfOpen {
        held: u32,
        successes: u32,
    },
}

impl Phase {
    fn fresh() -> Phase {
        Phase::Closed {
            failures: 0,
            window: Vec::new(),
        }
    }
}

#[derive(Debug)]
pub struct Model {
    threshold: u32,
    probes: u32,
    rate: Option<Rate>,
    epoch: u64,
    pub phase: Phase,
}

impl Model {
    pub fn new(threshold: u32, probes: u32, rate: Option<Rate>) -> Model {
        Model {
            threshold,
            probes,
            rate,
            epoch: 0,
            phase: Phase::fresh(),
        }
    }

    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed { .. })
    }

    /// Whether an outcome of `ticket` would still count (it is from the current epoch).
    pub fn is_current(&self, ticket: Ticket) -> bool {
        match ticket {
            Ticket::Rejected => false,
            Ticket::Counted { epoch } | Ticket::Probe { epoch } => epoch == self.epoch,
        }
    }

    /// Whether a request arriving now would be rejected; changes nothing.
    pub fn would_reject(&self, now: Millis) -> bool {
        match self.phase {
            Phase::Closed { .. } => false,
            Phase::Open { until } => now < until,
            Phase::HalfOpen { held, successes } => held + successes >= self.probes,
        }
    }

    pub fn admit(&mut self, now: Millis) -> Ticket {
        if let Phase::Open { until } = self.phase {
            if now >= until {
                self.epoch += 1;
                self.phase = Phase::HalfOpen {
                    held: 0,
                    successes: 0,
                };
            }
        }
        match &mut self.phase {
            Phase::Closed { .. } => Ticket::Counted { epoch: self.epoch },
            Phase::Open { .. } => Ticket::Rejected,
            Phase::HalfOpen { held, successes } => {
                if *held + *successes < self.probes {
                    *held += 1;
                    Ticket::Probe { epoch: self.epoch }
                } else {
                    Ticket::Rejected
                }
            }
        }
    }

    /// Records an outcome at `now`; `true` when the breaker must open now (the caller then adopts
    /// the jittered open time the filter drew, with [`Model::open`]).
    pub fn record(&mut self, ticket: Ticket, failed: bool, now: Millis) -> bool {
        if !self.is_current(ticket) {
            return false;
        }
        match (ticket, &mut self.phase) {
            (Ticket::Counted { .. }, Phase::Closed { failures, window }) => {
                *failures = if failed { *failures + 1 } else { 0 };
                let in_a_row = failed && self.threshold > 0 && *failures >= self.threshold;
                let rate = self.rate.is_some_and(|rate| {
                    rate.count(window, now, failed);
                    rate.trips(window, now)
                });
                in_a_row || rate
            }
            (Ticket::Probe { .. }, Phase::HalfOpen { held, successes }) => {
                *held -= 1;
                if failed {
                    return true;
                }
                *successes += 1;
                if *successes >= self.probes {
                    self.epoch += 1;
                    self.phase = Phase::fresh();
                }
                false
            }
            _ => false,
        }
    }

    /// The client left before its response: a probe gives its slot back.
    pub fn release(&mut self, ticket: Ticket) {
        if !self.is_current(ticket) {
            return;
        }
        if let (Ticket::Probe { .. }, Phase::HalfOpen { held, .. }) = (ticket, &mut self.phase) {
            *held -= 1;
        }
    }

    pub fn open(&mut self, until: Millis) {
        self.epoch += 1;
        self.phase = Phase::Open { until };
    }
}
