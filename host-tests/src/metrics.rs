//! Metrics with Envoy's rules (`source/extensions/common/wasm/context.cc`, `defineMetric` and
//! friends; ids from proxy-wasm-cpp-host `include/proxy-wasm/wasm.h`).
//!
//! # Rules
//! - A metric is an Envoy stat: one per name and type for the whole process, so every worker's
//!   increments land in the same value (Envoy's `/stats` shows the sum).
//! - Each `define_metric` hands out a fresh per-VM id, even for a name defined before; the low two
//!   bits of an id say its type (counter 0, gauge 1, histogram 2), ids step by 4.
//! - Counter increments must be positive (`BadArgument` otherwise); `record` on a counter adds.
//! - Gauge increments add or subtract; `record` on a gauge sets it.
//! - Histograms only `record`; `increment` and `get` on them are `BadArgument`.
//! - An id this VM never handed out is `NotFound`.

use std::collections::BTreeMap;

/// The three Envoy stat types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MetricKind {
    Counter = 0,
    Gauge = 1,
    Histogram = 2,
}

impl MetricKind {
    pub(crate) fn from_u32(kind: u32) -> Option<Self> {
        Some(match kind {
            0 => MetricKind::Counter,
            1 => MetricKind::Gauge,
            2 => MetricKind::Histogram,
            _ => return None,
        })
    }

    fn of_id(id: u32) -> Option<Self> {
        Self::from_u32(id & 0x3)
    }
}

/// A metric's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetricValue {
    Counter(u64),
    Gauge(u64),
    /// Every recorded value, in order.
    Histogram(Vec<u64>),
}

/// Process-wide values, by type and name.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    values: BTreeMap<(MetricKind, String), MetricValue>,
}

/// Per-VM ids handed out by `define_metric`.
#[derive(Debug, Default)]
pub(crate) struct MetricIds {
    names: BTreeMap<u32, (MetricKind, String)>,
    next: [u32; 3],
}

/// What a metric call answers the guest, as a proxy-wasm status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MetricError {
    NotFound,
    BadArgument,
    /// A gauge would go below zero: Envoy asserts against it, so the harness traps.
    Underflow,
}

impl MetricIds {
    pub fn define(&mut self, kind: MetricKind, name: &str, metrics: &mut Metrics) -> u32 {
        let slot = kind as usize;
        if self.next[slot] == 0 {
            self.next[slot] = kind as u32;
        }
        self.next[slot] += 4;
        let id = self.next[slot];
        self.names.insert(id, (kind, name.to_string()));
        metrics
            .values
            .entry((kind, name.to_string()))
            .or_insert_with(|| match kind {
                MetricKind::Counter => MetricValue::Counter(0),
                MetricKind::Gauge => MetricValue::Gauge(0),
                MetricKind::Histogram => MetricValue::Histogram(Vec::new()),
            });
        id
    }

    fn lookup<'m>(
        &self,
        id: u32,
        metrics: &'m mut Metrics,
    ) -> Result<(&str, &'m mut MetricValue), MetricError> {
        let (kind, name) = self.names.get(&id).ok_or(MetricError::NotFound)?;
        let value = metrics
            .values
            .get_mut(&(*kind, name.clone()))
            .ok_or(MetricError::NotFound)?;
        Ok((name, value))
    }

    pub fn increment(
        &self,
        id: u32,
        offset: i64,
        metrics: &mut Metrics,
    ) -> Result<(), MetricError> {
        if MetricKind::of_id(id) == Some(MetricKind::Histogram) || MetricKind::of_id(id).is_none() {
            return Err(MetricError::BadArgument);
        }
        match self.lookup(id, metrics)?.1 {
            MetricValue::Counter(v) if offset > 0 => *v = v.saturating_add(offset.unsigned_abs()),
            MetricValue::Counter(_) => return Err(MetricError::BadArgument),
            MetricValue::Gauge(v) if offset >= 0 => *v = v.saturating_add(offset.unsigned_abs()),
            MetricValue::Gauge(v) => {
                *v = v
                    .checked_sub(offset.unsigned_abs())
                    .ok_or(MetricError::Underflow)?
            }
            MetricValue::Histogram(_) => return Err(MetricError::BadArgument),
        }
        Ok(())
    }

    pub fn record(&self, id: u32, value: u64, metrics: &mut Metrics) -> Result<(), MetricError> {
        match self.lookup(id, metrics)?.1 {
            MetricValue::Counter(v) => *v = v.saturating_add(value),
            MetricValue::Gauge(v) => *v = value,
            MetricValue::Histogram(samples) => samples.push(value),
        }
        Ok(())
    }

    pub fn get(&self, id: u32, metrics: &mut Metrics) -> Result<u64, MetricError> {
        if MetricKind::of_id(id) == Some(MetricKind::Histogram) || MetricKind::of_id(id).is_none() {
            return Err(MetricError::BadArgument);
        }
        match self.lookup(id, metrics)?.1 {
            MetricValue::Counter(v) | MetricValue::Gauge(v) => Ok(*v),
            MetricValue::Histogram(_) => Err(MetricError::BadArgument),
        }
    }

    /// The name behind an id, for error messages.
    pub fn name(&self, id: u32) -> Option<&str> {
        self.names.get(&id).map(|(_, n)| n.as_str())
    }
}

impl Metrics {
    pub fn get(&self, kind: MetricKind, name: &str) -> Option<&MetricValue> {
        self.values.get(&(kind, name.to_string()))
    }

    pub fn all(&self) -> &BTreeMap<(MetricKind, String), MetricValue> {
        &self.values
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (MetricIds, Metrics) {
        (MetricIds::default(), Metrics::default())
    }

    #[test]
    fn ids_carry_their_type_in_the_low_bits_and_step_by_four() {
        let (mut ids, mut m) = setup();
        let c1 = ids.define(MetricKind::Counter, "a", &mut m);
        let c2 = ids.define(MetricKind::Counter, "a", &mut m);
        let g = ids.define(MetricKind::Gauge, "g", &mut m);
        let h = ids.define(MetricKind::Histogram, "h", &mut m);
        assert_eq!((c1, c2, g, h), (4, 8, 5, 6), "cpp-host's next*MetricId");
    }

    #[test]
    fn a_counter_increment_must_be_positive_and_record_adds() {
        let (mut ids, mut m) = setup();
        let c = ids.define(MetricKind::Counter, "c", &mut m);
        assert_eq!(ids.increment(c, 0, &mut m), Err(MetricError::BadArgument));
        assert_eq!(ids.increment(c, -1, &mut m), Err(MetricError::BadArgument));
        ids.increment(c, 2, &mut m).unwrap();
        ids.record(c, 5, &mut m).unwrap();
        assert_eq!(ids.get(c, &mut m), Ok(7), "record on a counter adds");
    }

    #[test]
    fn gauges_go_both_ways_and_record_sets_them() {
        let (mut ids, mut m) = setup();
        let g = ids.define(MetricKind::Gauge, "g", &mut m);
        ids.increment(g, 5, &mut m).unwrap();
        ids.increment(g, -2, &mut m).unwrap();
        assert_eq!(ids.get(g, &mut m), Ok(3));
        ids.record(g, 10, &mut m).unwrap();
        assert_eq!(ids.get(g, &mut m), Ok(10));
        assert_eq!(ids.increment(g, -11, &mut m), Err(MetricError::Underflow));
    }

    #[test]
    fn histograms_only_record() {
        let (mut ids, mut m) = setup();
        let h = ids.define(MetricKind::Histogram, "h", &mut m);
        ids.record(h, 3, &mut m).unwrap();
        assert_eq!(ids.increment(h, 1, &mut m), Err(MetricError::BadArgument));
        assert_eq!(ids.get(h, &mut m), Err(MetricError::BadArgument));
        assert_eq!(
            m.get(MetricKind::Histogram, "h"),
            Some(&MetricValue::Histogram(vec![3]))
        );
    }

    #[test]
    fn an_unknown_id_is_not_found_and_two_vms_share_one_value() {
        let (mut vm_a, mut m) = setup();
        let mut vm_b = MetricIds::default();
        assert_eq!(vm_a.record(4, 1, &mut m), Err(MetricError::NotFound));
        let a = vm_a.define(MetricKind::Counter, "shared", &mut m);
        let b = vm_b.define(MetricKind::Counter, "shared", &mut m);
        vm_a.increment(a, 1, &mut m).unwrap();
        vm_b.increment(b, 1, &mut m).unwrap();
        assert_eq!(vm_a.get(a, &mut m), Ok(2), "one stat for the process");
    }
}
