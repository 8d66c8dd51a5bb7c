//! Clusters that Envoy cannot send to: one the route names but the cluster manager does not have
//! (never defined, removed, or still warming), and one whose every host fails its health checks.
//! A test sets them with [`World::cluster_absent`](crate::World::cluster_absent),
//! [`World::cluster_unhealthy`](crate::World::cluster_unhealthy) and brings them back with
//! [`World::cluster_ready`](crate::World::cluster_ready); every other cluster is ready and
//! answers through its script ([`crate::upstream`]).
//!
//! # A missing cluster (`source/common/router/router.cc`, `Filter::decodeHeaders`)
//! - When the request headers arrive, the connection manager picks the route and looks its
//!   cluster up (`ConnectionManagerImpl::ActiveStream::refreshCachedRoute` in
//!   `source/common/http/conn_manager_impl.cc`): a cluster it does not have leaves the stream
//!   without upstream cluster info, so `xds.cluster_name` has no answer (`XDSWrapper` in
//!   `source/extensions/filters/common/expr/context.cc` reads `upstreamClusterInfo()`): the
//!   filter's `get_property` gets `NotFound`. `xds.route_name` still answers.
//! - When the headers pass the filter, the router finds no thread-local cluster and answers
//!   with the route's `cluster_not_found_response_code` (503 by default), an empty body, flag
//!   NC (`NoClusterFound`) and details `cluster_not_found`, through `sendLocalReply`: the filter
//!   sees that 503 in its response callbacks. Nothing reaches any upstream.
//! - `proxy_http_call` to it is `BadArgument` at once (`Context::httpCall` in
//!   `source/extensions/common/wasm/context.cc`: `getThreadLocalCluster` finds nothing).
//!
//! # A cluster without a healthy host
//! - The route's cluster exists (`xds.cluster_name` answers), but when the headers pass the
//!   filter the router gets no connection pool (`Filter::createConnPool` fails, then
//!   `sendNoHealthyUpstreamResponse`): 503, body `no healthy upstream`, flag UH
//!   (`NoHealthyUpstream`), details `no_healthy_upstream`. Measured on Envoy 1.40
//!   (`envoy/tests/faults/real_traffic/no_healthy_upstream.rs`).
//! - `proxy_http_call` to it fails inline with `InternalFailure`: the `AsyncClient` runs the same
//!   router, whose local reply completes the request inside `send`, so `send` returns no
//!   request; the token is spent and no `proxy_on_http_call_response` ever comes.
//!
//! # Both answer before any body
//! The router decides while it decodes the request headers, so its reply comes before the first
//! body chunk reaches the filter, even a chunk that came with the headers: the codec hands the
//! headers on (and the router answers) before it hands on the body, and once the response has
//! ended Envoy passes no more of the request to the filters (see [`crate::stream::feed`]).
//! Measured on Envoy 1.40 for the UH reply: not one `proxy_on_request_body` after it, not even
//! for the piece that came with the head.

use crate::upstream::UpstreamFailure;

/// Why the router cannot send to a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unavailable {
    /// The cluster manager has no such cluster (never defined, removed, or warming).
    Absent,
    /// The cluster exists; none of its hosts is healthy.
    NoHealthyHost,
}

impl Unavailable {
    /// What the router answers a request routed to the cluster.
    pub fn failure(self) -> UpstreamFailure {
        match self {
            Unavailable::Absent => UpstreamFailure::ClusterNotFound,
            Unavailable::NoHealthyHost => UpstreamFailure::NoHealthyUpstream,
        }
    }
}
