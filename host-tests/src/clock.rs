//! The virtual clock: every world starts at the same realistic instant and only moves when the
//! test advances it, so no test depends on wall-clock time.
//!
//! `proxy_get_current_time_nanoseconds` and WASI's realtime clock answer Unix time
//! ([`START_UNIX_SECS`] plus the world's elapsed virtual time); WASI's monotonic clock answers
//! [`MONOTONIC_START`] plus the same elapsed time.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// 2026-01-01T00:00:00Z.
pub const START_UNIX_SECS: u64 = 1_767_225_600;

/// Where the monotonic clock starts: an arbitrary uptime, far from zero.
pub const MONOTONIC_START: Duration = Duration::from_secs(86_400);

/// Unix time in nanoseconds at `elapsed` into the world.
pub(crate) fn unix_nanos(elapsed: Duration) -> u64 {
    nanos(Duration::from_secs(START_UNIX_SECS) + elapsed)
}

/// Monotonic nanoseconds at `elapsed` into the world.
pub(crate) fn monotonic_nanos(elapsed: Duration) -> u64 {
    nanos(MONOTONIC_START + elapsed)
}

/// The Unix instant at `elapsed` into the world.
pub fn unix_time(elapsed: Duration) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(START_UNIX_SECS) + elapsed
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
