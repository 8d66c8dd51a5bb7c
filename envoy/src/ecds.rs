//! Watching ECDS updates of the filter's config through Envoy's stats.
//!
//! # What Envoy 1.40 reports (measured)
//! Per ECDS-delivered HTTP filter named `breakwater`, under
//! `extension_config_discovery.http_filter.breakwater.`: `update_attempt` counts every file
//! read; an accepted config adds to `update_success`; a config the filter refuses
//! (`on_configure` returned false) adds to `update_rejected` and `config_fail`, and the previous
//! config keeps serving. `config_reload` grows on every attempt, refused ones included, so it
//! says nothing about success. `version_text` holds the accepted file's `version_info`.

use crate::admin::Stats;

/// The stats prefix of the `breakwater` filter's ECDS subscription.
pub const ECDS_STATS_PREFIX: &str = "extension_config_discovery.http_filter.breakwater.";

/// The ECDS counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EcdsCounters {
    pub update_attempt: u64,
    pub update_success: u64,
    pub update_rejected: u64,
    pub update_failure: u64,
    pub config_reload: u64,
    pub config_fail: u64,
}

impl EcdsCounters {
    pub fn read(stats: &Stats) -> EcdsCounters {
        let n = |name: &str| stats.number_or_zero(&format!("{ECDS_STATS_PREFIX}{name}"));
        EcdsCounters {
            update_attempt: n("update_attempt"),
            update_success: n("update_success"),
            update_rejected: n("update_rejected"),
            update_failure: n("update_failure"),
            config_reload: n("config_reload"),
            config_fail: n("config_fail"),
        }
    }

    /// Updates Envoy has finished with, one way or another.
    pub fn decided(&self) -> u64 {
        self.update_success + self.update_rejected + self.update_failure
    }
}

/// What became of one ECDS update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EcdsOutcome {
    /// Envoy built the new filter config and serves with it.
    Accepted,
    /// The config was refused (for a wasm filter: `on_configure` returned false); the previous
    /// one keeps serving.
    Rejected,
    /// The file could not be read or parsed.
    Failed,
}

impl EcdsOutcome {
    /// The outcome of the one update between two readings.
    pub fn between(before: EcdsCounters, after: EcdsCounters) -> EcdsOutcome {
        if after.update_success > before.update_success {
            EcdsOutcome::Accepted
        } else if after.update_rejected > before.update_rejected {
            EcdsOutcome::Rejected
        } else {
            EcdsOutcome::Failed
        }
    }
}
