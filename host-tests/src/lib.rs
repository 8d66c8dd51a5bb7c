//! breakwater-host-tests
