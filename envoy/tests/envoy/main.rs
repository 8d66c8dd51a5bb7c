//! End-to-end tests of the launcher, the test upstream and the operator configs, against the real
//! Envoy 1.40 with the no-op filter and two workers. Envoy is found or installed on first use;
//! these tests never skip.

mod common;

mod configs;
mod ecds;
mod install;
mod lifecycle;
mod properties;
mod slow_traffic;
mod stats;
mod traffic;
mod upstream;
