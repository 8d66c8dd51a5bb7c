//! Faults in the real Envoy 1.40 (two workers) with the current `breakwater.wasm`: upstreams that
//! reset mid-body or never answer, clients that leave while their retries wait or are in flight
//! under load, policy rollouts through ECDS under load, a short run of the soak, and real traffic
//! (slow uploads answered early, many requests in flight, clients that give up); and where
//! Envoy's own machinery meets Breakwater's: which host a retry reaches on a hash-balanced cluster
//! and what outlier detection hears of it, and `CONNECT` tunnels. Each test checks that every
//! client got an answer (or that Envoy dealt with the one that left), that Envoy's and
//! Breakwater's counters agree with what happened, that nothing is left in flight, and that no
//! wasm error appeared.
//!
//! # Rules these tests keep
//! Nothing depends on how fast the machine is: waits poll with generous deadlines, an upstream
//! that must be caught mid-request never answers or is held (never merely slow), and no
//! assertion is about elapsed time, except in `real_traffic`, where slow clients and impatient
//! ones are the subject (its module docs say how its bounds are kept generous).

mod common;

mod connect;

mod disconnects;
mod host_selection;
mod mid_body;
mod real_traffic;
mod replies;
mod response_path;
mod rollout;
mod silent;
mod soak;
