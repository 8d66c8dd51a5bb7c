//! The half-open phase: a bounded number of probes, counted across all workers.
//!
//! # Recovery
//! Half-open lets up to `half_open_attempts` probes through at once. Each admitted probe holds a
//! lease (an id and an expiry `now + probe_timeout`) in the shared state, so every Envoy worker
//! sees the same free slots. A probe that succeeds gives its slot back and counts towards the
//! `half_open_attempts` successes that close the breaker; a probe that fails re-opens it. There
//! are never more probes in flight than successes still needed (in flight + successes ≤
//! `half_open_attempts`), so a recovering upstream sees no more probe traffic than it must serve.
//!
//! # Lost probes
//! A probe whose client went away reports through `release`, which gives the slot back. A probe
//! that never reports at all (its worker's VM restarted, a stream vanished) would hold its slot
//! forever; so a lease expires after `probe_timeout` and any later call reclaims it. A probe
//! whose lease was reclaimed and that then reports in the same half-open epoch is still evidence
//! about the upstream, and counts like any probe outcome.

use crate::core::Millis;
use crate::policy::BreakerPolicy;

/// Largest number of probe slots: the bound that policy validation puts on
/// `half_open_attempts`. The shared state never holds more leases than this.
pub(super) const MAX_PROBES: u32 = 1000;

/// A probe slot in use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Lease {
    /// Unique within the half-open epoch; carried by the probe's permit.
    pub(super) id: u64,
    /// Absolute time after which the slot is reclaimed.
    pub(super) expires: Millis,
}

/// What the half-open phase remembers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Probes {
    /// Doublings applied to the open time that led here; a probe failure re-opens one higher.
    pub(super) escalation: u8,
    /// Probes that succeeded in this half-open epoch.
    pub(super) successes: u32,
    /// The id of the next lease.
    pub(super) next_id: u64,
    /// Leases held, in the order they were granted (ids ascending).
    pub(super) leases: Vec<Lease>,
}

impl Probes {
    pub(super) fn new(escalation: u8) -> Self {
        Probes {
            escalation,
            ..Probes::default()
        }
    }

    /// The probe slots, and the successes that close: `half_open_attempts`, within
    /// `1..=MAX_PROBES` whatever the policy says.
    pub(super) fn required(p: &BreakerPolicy) -> u32 {
        p.half_open_attempts.clamp(1, MAX_PROBES)
    }

    /// Enough probes succeeded to close (also after a policy change lowered the number).
    pub(super) fn succeeded(&self, required: u32) -> bool {
        self.successes >= required
    }

    /// Slots free for new probes. 0 when the policy now allows fewer than are held.
    pub(super) fn free(&self, required: u32) -> u32 {
        let held = u32::try_from(self.leases.len()).unwrap_or(u32::MAX);
        required.saturating_sub(self.successes.saturating_add(held))
    }

    /// Gives back the slots of expired leases; returns how many.
    pub(super) fn reclaim(&mut self, now: Millis) -> u32 {
        let before = self.leases.len();
        self.leases.retain(|lease| now < lease.expires);
        u32::try_from(before - self.leases.len()).unwrap_or(u32::MAX)
    }

    /// Takes a slot until `expires`; returns the lease id.
    pub(super) fn lease(&mut self, expires: Millis) -> u64 {
        if self.next_id == u64::MAX {
            // Counting never gets here (2^64 probes in one half-open epoch); only a state written
            // by something else does (found by fuzzing). The held leases are numbered again from
            // 0, so that ids stay unique and below the next id, as the encoding requires; a probe
            // that holds an old id then reports like one whose lease was reclaimed, and its slot
            // comes back at the lease's expiry.
            for (id, lease) in (0u64..).zip(self.leases.iter_mut()) {
                lease.id = id;
            }
            self.next_id = u64::try_from(self.leases.len()).unwrap_or(u64::MAX - 1);
        }
        let id = self.next_id;
        self.next_id += 1;
        self.leases.push(Lease { id, expires });
        id
    }

    /// Gives back the slot of lease `id`; `false` if it is not held (reclaimed already).
    pub(super) fn give_back(&mut self, id: u64) -> bool {
        let before = self.leases.len();
        self.leases.retain(|lease| lease.id != id);
        self.leases.len() != before
    }

    /// Brings every lease that expires more than `slack` after `latest` back to `latest`;
    /// whether any did.
    pub(super) fn clamp_leases(&mut self, latest: Millis, slack: Millis) -> bool {
        let beyond = latest.saturating_add(slack);
        let mut clamped = false;
        for lease in self.leases.iter_mut().filter(|l| l.expires > beyond) {
            lease.expires = latest;
            clamped = true;
        }
        clamped
    }

    /// When the first held lease expires.
    pub(super) fn earliest_expiry(&self) -> Option<Millis> {
        self.leases.iter().map(|lease| lease.expires).min()
    }
}
