//! What happens to traffic when the plugin fails, under Envoy's `failure_policy` FAIL_CLOSED,
//! FAIL_OPEN and FAIL_RELOAD (`examples/failure-policy.md` explains and recommends), and that the
//! real filter's breaker state outlives the VM that wrote it. Real Envoy 1.40, one worker.

mod common;
mod flood;
mod held;
mod sink;

mod breaker_survives;
mod policies;
