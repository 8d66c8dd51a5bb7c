//! breakwater-envoy
