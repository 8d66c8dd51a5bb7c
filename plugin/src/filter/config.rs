//! A validated configuration: the policy and its shared-data keys, shared by the root context
//! that parsed it and every stream created under it, with what it found of each cluster on this
//! worker.
//!
//! It sits below everything else in the glue that reads it (the root and HTTP contexts, a
//! request's exchange, the worker's flush), and uses only the worker's [`Metrics`] (a cluster's
//! slot) and the shared-data [`Keys`].

use std::cell::RefCell;
use std::rc::Rc;

type HashMap<K, V> = hashbrown::HashMap<K, V, crate::policy::names::FnvBuildHasher>;

use crate::policy::{Policy, Row};

use super::metrics::{Metrics, Slot};
use super::shared::Keys;

/// A validated configuration, shared by the root and the streams created under it.
#[derive(Debug)]
pub struct Config {
    pub policy: Policy,
    pub keys: Keys,
    /// What this configuration found of each cluster it served on this worker (see
    /// [`Config::cluster`]).
    known: RefCell<HashMap<Rc<str>, Rc<Known>>>,
}

/// What a request needs of its cluster beyond the route: found once per cluster and
/// configuration on a worker, then shared by every request to it (a lookup by name instead of a
/// policy row, a metric slot and a shared-data key made on every request).
#[derive(Debug)]
pub struct Known {
    pub name: Rc<str>,
    /// The cluster's row in the policy.
    pub row: Row,
    /// The cluster's metrics and budget batch in this worker.
    pub slot: Slot,
    /// The shared-data key of the cluster's breaker.
    pub breaker_key: Rc<str>,
}

impl Config {
    pub fn new(policy: Policy, keys: Keys) -> Config {
        Config {
            policy,
            keys,
            known: RefCell::default(),
        }
    }

    /// What this configuration knows of `cluster`, found on its first request here.
    pub fn cluster(&self, cluster: &str, metrics: &mut Metrics) -> Rc<Known> {
        if let Some(known) = self.known.borrow().get(cluster) {
            return Rc::clone(known);
        }
        let slot = metrics.slot(cluster);
        // The name the worker's stats keep, shared rather than copied. Only the clusters the
        // worker keeps apart (`MAX_CLUSTERS` names of up to `MAX_NAME` bytes, see `metrics`) are
        // remembered: past them (a route that takes its cluster from a request header can name
        // any number), a request finds its cluster's facts again each time, and nothing is kept.
        let kept = metrics.name(slot).cloned();
        let known = Rc::new(Known {
            name: kept.clone().unwrap_or_else(|| Rc::from(cluster)),
            row: self.policy.row_of(cluster),
            slot,
            breaker_key: Rc::from(self.keys.breaker(cluster)),
        });
        if let Some(name) = kept {
            self.known.borrow_mut().insert(name, Rc::clone(&known));
        }
        known
    }
}
