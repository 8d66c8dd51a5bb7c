//! The tokio runtime behind the test upstreams and the HTTP client.
//!
//! # Why one shared runtime
//! Tests are plain `#[test]` functions on threads of their own. The upstream servers run as tasks
//! on one process-wide multi-threaded runtime (its two threads are enough for a loopback server on
//! a two-core machine), and the blocking client calls enter it with `block_on`. Nothing here may
//! be called from inside that runtime: these are blocking APIs for test threads.

use std::future::Future;
use std::sync::OnceLock;

use tokio::runtime::Runtime;

/// The process-wide runtime, started on first use.
pub(crate) fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("breakwater-envoy-io")
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("cannot start the tokio runtime for the test upstream: {e}"))
    })
}

/// Runs `future` to completion from a test thread.
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    runtime().block_on(future)
}
