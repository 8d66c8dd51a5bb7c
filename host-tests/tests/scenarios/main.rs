//! Scenarios of the real filter (`breakwater.wasm`, built fresh) in the harness: each behaviour of
//! POLICY.md, with several workers sharing one breaker, in virtual time.

mod common;

mod breaker_open;
mod budget;
mod churn;
mod completion_order;
mod cost;
mod disconnect;
mod failure_shapes;
mod flush;
mod grpc;
mod half_open;
mod interleavings;
mod memory;
mod mid_body;
mod passthrough;
mod reconfigure;
mod relay;
mod retry_basic;
mod retry_breaker;
mod retry_eligibility;
mod retry_limits;
mod scopes;
mod triggers;
mod vm_memory;
mod wall_clock;
