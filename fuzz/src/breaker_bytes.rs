//! The breaker's shared-data encoding read field by field, as its layout is documented in
//! `breakwater::core::breaker::codec` ("Layout (format 1)").
//!
//! The breaker keeps its state private; the encoding is its public face, and what every Envoy
//! worker sees. The invariant checks read the phase, the open-until time, the probe successes
//! and the leases from it, independently of the crate's own decoder; [`state`] writes states
//! that other workers (or another build) could have left in shared data, field by field, so that
//! the fuzzer reaches every phase without having to guess a whole valid encoding.

use arbitrary::{Result, Unstructured};

/// The fields of one encoded breaker that the checks look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fields {
    pub phase: u8,
    pub escalation: u8,
    pub epoch: u64,
    pub failures: u32,
    pub open_until: u64,
    pub successes: u32,
    pub next_id: u64,
    pub buckets: u8,
    /// (id, expires) of every lease, in order.
    pub leases: Vec<(u64, u64)>,
}

pub const CLOSED: u8 = 0;
pub const OPEN: u8 = 1;
pub const HALF_OPEN: u8 = 2;

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

impl Fields {
    /// Reads an encoding that `Breaker::encode` wrote; `None` if the layout does not fit.
    pub fn read(b: &[u8]) -> Option<Fields> {
        let buckets = *b.get(35)?;
        let lease_count_at = 36 + 20 * usize::from(buckets);
        let count = u16::from_le_bytes(b.get(lease_count_at..lease_count_at + 2)?.try_into().ok()?);
        let mut leases = Vec::with_capacity(usize::from(count));
        for i in 0..usize::from(count) {
            let at = lease_count_at + 2 + 16 * i;
            leases.push((u64_at(b, at)?, u64_at(b, at + 8)?));
        }
        if b.len() != lease_count_at + 2 + 16 * usize::from(count) {
            return None;
        }
        Some(Fields {
            phase: *b.get(1)?,
            escalation: *b.get(2)?,
            epoch: u64_at(b, 3)?,
            failures: u32_at(b, 11)?,
            open_until: u64_at(b, 15)?,
            successes: u32_at(b, 23)?,
            next_id: u64_at(b, 27)?,
            buckets,
            leases,
        })
    }
}

/// A number that is often at an edge: 0, 1, the maximum or just below it.
fn edgy_u64(u: &mut Unstructured) -> Result<u64> {
    Ok(match u.int_in_range(0..=5u8)? {
        0 => 0,
        1 => 1,
        2 => u64::MAX,
        3 => u64::MAX - u64::from(u.int_in_range(1..=4u8)?),
        _ => u.arbitrary()?,
    })
}

impl Fields {
    /// Writes these fields in the documented layout (`buckets` must be 0: no window buckets).
    pub fn write(&self) -> Vec<u8> {
        let mut out = vec![0xB1, self.phase, self.escalation];
        out.extend_from_slice(&self.epoch.to_le_bytes());
        out.extend_from_slice(&self.failures.to_le_bytes());
        out.extend_from_slice(&self.open_until.to_le_bytes());
        out.extend_from_slice(&self.successes.to_le_bytes());
        out.extend_from_slice(&self.next_id.to_le_bytes());
        out.push(0);
        out.extend_from_slice(&(self.leases.len() as u16).to_le_bytes());
        for (id, expires) in &self.leases {
            out.extend_from_slice(&id.to_le_bytes());
            out.extend_from_slice(&expires.to_le_bytes());
        }
        out
    }
}

/// The bytes of a breaker state another worker could have written: a phase with plausible and
/// edge values in its fields (`now` is the fuzz run's clock, so open times and lease expiries
/// fall around it). The decoder may still refuse them; the caller then starts fresh.
pub fn state(u: &mut Unstructured, now: u64) -> Result<Vec<u8>> {
    let phase = u.int_in_range(0..=2u8)?;
    let around = |u: &mut Unstructured| -> Result<u64> {
        Ok(if u.arbitrary()? {
            now.saturating_add(u64::from(u.arbitrary::<u16>()?))
        } else {
            edgy_u64(u)?
        })
    };
    let mut f = Fields {
        phase,
        escalation: 0,
        epoch: edgy_u64(u)?,
        failures: 0,
        open_until: 0,
        successes: 0,
        next_id: 0,
        buckets: 0,
        leases: Vec::new(),
    };
    match phase {
        CLOSED => f.failures = u.arbitrary()?,
        OPEN => {
            f.escalation = u.arbitrary()?;
            f.open_until = around(u)?;
        }
        _ => {
            f.escalation = u.arbitrary()?;
            f.successes = u32::from(u.int_in_range(0..=4u8)?);
            f.next_id = edgy_u64(u)?;
            // Up to four consecutive ids just below the next one (valid leases).
            let first = f
                .next_id
                .saturating_sub(u64::from(u.int_in_range(0..=8u8)?));
            let count = u64::from(u.int_in_range(0..=4u8)?);
            for id in (first..f.next_id).take(count as usize) {
                f.leases.push((id, around(u)?));
            }
        }
    }
    Ok(f.write())
}
