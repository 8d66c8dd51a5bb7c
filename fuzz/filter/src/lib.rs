//! Pieces of the filter fuzz target that are not the target itself.

pub mod feedback;
pub mod policy;
