//! Scenarios of the real filter (`breakwater.wasm`, built fresh) in the harness: each behaviour of
//! POLICY.md, with several workers sharing one breaker, in virtual time.

mod common;

mod smoke;
