//! The virtual clocks: every world starts at the same realistic instant and time only moves when
//! the test advances it, so no test depends on the machine's clock.
//!
//! Envoy gives a module two clocks, and so does the harness:
//! - the **monotonic** clock, WASI `clock_time_get(MONOTONIC)`: proxy-wasm-cpp-host answers it
//!   with `getMonotonicTimeNanoseconds` (`wasi_unstable_clock_time_get` in `src/exports.cc`),
//!   which Envoy reads from its time source's `monotonicTime()` (`Context::
//!   getMonotonicTimeNanoseconds`, `source/extensions/common/wasm/context.cc`), a
//!   `std::chrono::steady_clock` (`RealTimeSource`, `source/common/common/utility.h`): one clock
//!   for the whole process, never stepped. Here it is [`MONOTONIC_START`] plus the world's
//!   virtual time, the same for every VM.
//! - the **wall** clock, `proxy_get_current_time_nanoseconds` and WASI `clock_time_get(REALTIME)`
//!   (Envoy's `systemTime()`, a `std::chrono::system_clock`), and the `request.time` property.
//!   Here it is [`START_UNIX_SECS`] plus virtual time, plus however far the test stepped it with
//!   [`World::step_wall_clock_forward`](crate::World::step_wall_clock_forward) or
//!   [`World::step_wall_clock_back`](crate::World::step_wall_clock_back), as NTP or an operator
//!   steps a real machine's clock. A step moves neither virtual time nor the monotonic clock,
//!   and runs no event: timers (ticks, timeouts) follow the monotonic clock, as Envoy's do.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// 2026-01-01T00:00:00Z.
pub const START_UNIX_SECS: u64 = 1_767_225_600;

/// Where the monotonic clock starts: an arbitrary uptime, far from zero.
pub const MONOTONIC_START: Duration = Duration::from_secs(86_400);

/// How far the wall clock was stepped from virtual time, in nanoseconds (positive: ahead).
pub(crate) type WallStep = i128;

/// Unix time in nanoseconds at `elapsed` into the world, the wall clock stepped by `step`
/// (clamped to what a u64 holds).
pub(crate) fn unix_nanos(elapsed: Duration, step: WallStep) -> u64 {
    let unix = i128::try_from((Duration::from_secs(START_UNIX_SECS) + elapsed).as_nanos())
        .unwrap_or(i128::MAX);
    u64::try_from(unix.saturating_add(step).max(0)).unwrap_or(u64::MAX)
}

/// Monotonic nanoseconds at `elapsed` into the world.
pub(crate) fn monotonic_nanos(elapsed: Duration) -> u64 {
    u64::try_from((MONOTONIC_START + elapsed).as_nanos()).unwrap_or(u64::MAX)
}

/// The Unix instant at `elapsed` into the world, the wall clock stepped by `step`.
pub(crate) fn unix_time(elapsed: Duration, step: WallStep) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(unix_nanos(elapsed, step))
}

/// A step of `by`, forward or back, in nanoseconds.
pub(crate) fn step(by: Duration, forward: bool) -> WallStep {
    let nanos = i128::try_from(by.as_nanos()).unwrap_or(i128::MAX);
    if forward {
        nanos
    } else {
        -nanos
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wall_step_moves_unix_time_and_never_the_monotonic_clock() {
        let at = Duration::from_secs(5);
        let hour = step(Duration::from_secs(3600), true);
        assert_eq!(
            unix_nanos(at, hour) - unix_nanos(at, 0),
            3_600_000_000_000,
            "an hour ahead"
        );
        assert_eq!(
            unix_nanos(at, 0) - unix_nanos(at, -hour),
            3_600_000_000_000,
            "an hour back"
        );
        assert_eq!(monotonic_nanos(at), (86_400 + 5) * 1_000_000_000);
        assert_eq!(unix_nanos(at, WallStep::MIN), 0, "clamped at the epoch");
    }
}
