//! Part 2b: the same failure scenarios for gRPC. A tonic server behind an h2c cluster, tonic
//! clients over HTTP/2 in a closed loop, and three contenders:
//!
//! - **Breakwater**: the failure policy's breaker; gRPC calls are never retried by the filter.
//! - **Envoy native**: the route's gRPC retries (`retry_on: unavailable,reset,connect-failure`,
//!   3 retries, the same backoff as part 2) and outlier detection (Envoy counts gRPC statuses as
//!   HTTP ones: UNAVAILABLE is a 503), limits lifted as in part 2.
//! - **Breakwater + Envoy's gRPC retries**: the breaker, with the retries delegated to the
//!   route's retry policy (no ejection): what POLICY.md recommends for gRPC today.
//!
//! Flaky: 30% of calls fail with UNAVAILABLE before any message (seeded). Outage: every call
//! fails with UNAVAILABLE, then the server answers again. Measured as in part 2 ([`failure`]):
//! the client's success rate and amplification, and the server's calls per second after the
//! trip. A call succeeds when tonic reports OK with its answer.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use breakwater_envoy::grpc::{Answer, Behaviour, Call, Code, GrpcServer, UNARY_PATH};
use breakwater_envoy::{Envoy, EnvoyConfig, NativeResilience, WasmFilter};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::{Channel, Endpoint};
use tonic_prost::ProstCodec;

use crate::analysis::{self, Outage, Poll};
use crate::failure::{self, explaining_stats, tripped, Flaky, Plan, FLAKY_RATIO, SLICE};
use crate::load::{Load, Sample, BREAKER_HEADER};
use crate::setups::{native_tuned_for_failures, Modules, CLUSTER, FAILURE_POLICY};
use crate::BenchResult;

/// The flaky server's seed.
const SEED: u64 = 0x6e_5eed;
/// A call that takes longer than this counts as failed.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
const POLL_EVERY: Duration = Duration::from_millis(50);

/// Who protects the gRPC calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrpcResilience {
    Breakwater,
    EnvoyNative,
    BreakwaterWithEnvoyRetries,
}

impl GrpcResilience {
    pub const ALL: [GrpcResilience; 3] = [
        GrpcResilience::Breakwater,
        GrpcResilience::EnvoyNative,
        GrpcResilience::BreakwaterWithEnvoyRetries,
    ];

    pub fn key(self) -> &'static str {
        match self {
            GrpcResilience::Breakwater => "breakwater",
            GrpcResilience::EnvoyNative => "envoy_native",
            GrpcResilience::BreakwaterWithEnvoyRetries => "breakwater_with_envoy_retries",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            GrpcResilience::Breakwater => "Breakwater (breaker; gRPC not retried)",
            GrpcResilience::EnvoyNative => "Envoy native (3 gRPC retries + outlier detection)",
            GrpcResilience::BreakwaterWithEnvoyRetries => {
                "Breakwater + Envoy's gRPC retries (3, no ejection)"
            }
        }
    }

    /// Envoy's route retries for gRPC, as part 2's native contender.
    fn native() -> NativeResilience {
        NativeResilience {
            retry_on: "unavailable,reset,connect-failure".to_string(),
            ..native_tuned_for_failures()
        }
    }

    pub fn config(self, server: SocketAddr, modules: &Modules) -> EnvoyConfig {
        let base = EnvoyConfig::new()
            .concurrency(2)
            .without_access_log()
            .h2c_cluster(CLUSTER, server);
        let breakwater = WasmFilter::new(&modules.breakwater).configuration(FAILURE_POLICY);
        match self {
            GrpcResilience::Breakwater => base.filter(breakwater),
            GrpcResilience::EnvoyNative => base.native_resilience(Self::native()),
            GrpcResilience::BreakwaterWithEnvoyRetries => {
                base.filter(breakwater).native_resilience(NativeResilience {
                    // Retries only: an ejection would hide the outage from the breaker.
                    consecutive_5xx: u32::MAX,
                    ..Self::native()
                })
            }
        }
    }

    fn trip_stat(self) -> &'static str {
        match self {
            GrpcResilience::EnvoyNative => "outlier_detection.ejections_active",
            _ => "breaker_state",
        }
    }
}

/// Closed-loop tonic clients, one HTTP/2 connection each, one unary call at a time.
fn grpc_load(addr: SocketAddr, connections: usize, epoch: Instant) -> Load {
    Load::start_with("bench-grpc-load", addr, connections, epoch, caller)
}

async fn connect(addr: SocketAddr) -> Option<Channel> {
    let endpoint = Endpoint::from_shared(format!("http://{addr}")).ok()?;
    endpoint.connect().await.ok()
}

/// One client's loop: a call, its sample, the next call; reconnects after a transport error.
async fn caller(addr: SocketAddr, epoch: Instant, stop: Arc<AtomicBool>) -> Vec<Sample> {
    let mut samples = Vec::new();
    let mut channel: Option<Channel> = None;
    while !stop.load(Ordering::Relaxed) {
        let ready = match channel.as_ref() {
            Some(c) => c.clone(),
            None => match connect(addr).await {
                Some(c) => channel.insert(c).clone(),
                None => {
                    samples.push(failed(epoch, Duration::ZERO));
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                }
            },
        };
        let sent = Instant::now();
        let mut grpc = tonic::client::Grpc::new(ready);
        let call = async {
            grpc.ready().await.ok()?;
            let path = PathAndQuery::from_static(UNARY_PATH);
            let codec = ProstCodec::<Call, Answer>::default();
            Some(
                grpc.unary(tonic::Request::new(Call::new("bench")), path, codec)
                    .await,
            )
        };
        let sample = match tokio::time::timeout(CALL_TIMEOUT, call).await {
            Ok(Some(Ok(_))) => Sample {
                at: epoch.elapsed(),
                status: 200,
                fallback: false,
                latency: sent.elapsed(),
            },
            Ok(Some(Err(status))) => Sample {
                at: epoch.elapsed(),
                // Any gRPC error: a failed call, as a 503 is for HTTP.
                status: 503,
                fallback: status.metadata().contains_key(BREAKER_HEADER),
                latency: sent.elapsed(),
            },
            _ => {
                channel = None;
                failed(epoch, sent.elapsed())
            }
        };
        samples.push(sample);
    }
    samples
}

fn failed(epoch: Instant, latency: Duration) -> Sample {
    Sample {
        at: epoch.elapsed(),
        status: 0,
        fallback: false,
        latency,
    }
}

fn start(who: GrpcResilience, modules: &Modules) -> BenchResult<(GrpcServer, Envoy)> {
    let server = GrpcServer::start()?;
    server.keep_arrivals(false);
    let envoy = Envoy::start(&who.config(server.addr(), modules))
        .map_err(|e| format!("starting Envoy for gRPC {}: {e}", who.label()))?;
    Ok((server, envoy))
}

fn warm_up(envoy: &Envoy, plan: &Plan) -> BenchResult<()> {
    let load = grpc_load(envoy.listener(), plan.connections, Instant::now());
    thread::sleep(plan.warm_up);
    load.stop()?;
    Ok(())
}

fn flaky(who: GrpcResilience, modules: &Modules, plan: &Plan) -> BenchResult<Flaky> {
    let (server, envoy) = start(who, modules)?;
    warm_up(&envoy, plan)?;
    server.behave(Behaviour::FailRatio {
        ratio: FLAKY_RATIO,
        code: Code::Unavailable,
        seed: SEED,
    });
    let before = server.total_calls();
    let load = grpc_load(envoy.listener(), plan.connections, Instant::now());
    thread::sleep(plan.flaky);
    let samples = load.stop()?;
    let upstream_requests = usize::try_from(server.total_calls() - before).unwrap_or(usize::MAX);
    Flaky::of(
        &format!("gRPC {}", who.label()),
        &samples,
        upstream_requests,
        plan.flaky,
        &envoy,
    )
}

/// Polls the server's calls and the trip until `until` (from `epoch`).
fn poll_until(
    envoy: &Envoy,
    server: &GrpcServer,
    who: GrpcResilience,
    epoch: Instant,
    until: Duration,
    polls: &mut Vec<Poll>,
) -> BenchResult<()> {
    while epoch.elapsed() < until {
        let upstream = usize::try_from(server.total_calls()).unwrap_or(usize::MAX);
        let at = epoch.elapsed();
        polls.push(Poll {
            at,
            upstream,
            tripped: tripped(envoy, who.trip_stat())?,
        });
        thread::sleep(POLL_EVERY.min(until.saturating_sub(epoch.elapsed())));
    }
    Ok(())
}

fn outage(who: GrpcResilience, modules: &Modules, plan: &Plan) -> BenchResult<failure::OutageRun> {
    let (server, envoy) = start(who, modules)?;
    warm_up(&envoy, plan)?;
    let epoch = Instant::now();
    let load = grpc_load(envoy.listener(), plan.connections, epoch);
    let mut polls = Vec::new();
    let healthy_from = plan.healthy / 5;
    poll_until(&envoy, &server, who, epoch, plan.healthy, &mut polls)?;
    let failing_from = epoch.elapsed();
    server.behave(Behaviour::fail(Code::Unavailable));
    let until = failing_from + plan.outage;
    poll_until(&envoy, &server, who, epoch, until, &mut polls)?;
    let upstream_at_recovery = usize::try_from(server.total_calls()).unwrap_or(usize::MAX);
    let recovered_at = epoch.elapsed();
    server.behave(Behaviour::answer());
    let until = recovered_at + plan.after;
    poll_until(&envoy, &server, who, epoch, until, &mut polls)?;
    let samples = load.stop()?;
    let outage = Outage {
        failing_from,
        recovered_at,
        upstream_at_recovery,
        healthy_from,
        polls,
        samples,
    };
    Ok(failure::OutageRun {
        summary: analysis::summarize(&outage),
        timeline: analysis::timeline(&outage, SLICE),
        stats: explaining_stats(&envoy)?,
    })
}

/// Both scenarios for `who`.
pub fn run(who: GrpcResilience, modules: &Modules, plan: &Plan) -> BenchResult<failure::Results> {
    let flaky = flaky(who, modules, plan)?;
    eprintln!(
        "bench: gRPC flaky  {:<50} success {:.4}  amplification {:.3}  ({} calls, {} at the server)",
        who.label(),
        flaky.success_rate,
        flaky.amplification,
        flaky.client_requests,
        flaky.upstream_requests
    );
    let failure::OutageRun {
        summary: outage,
        timeline: outage_timeline,
        stats: outage_stats,
    } = outage(who, modules, plan)?;
    eprintln!(
        "bench: gRPC outage {:<50} tripped after {}  server {:.2} calls/s of {:.0} offered  recovery {}",
        who.label(),
        outage
            .tripped_after
            .map_or("never".to_string(), |t| format!("{t:.2} s")),
        outage.upstream_rps_after_trip,
        outage.offered_rps,
        outage
            .recovery_seconds
            .map_or("none".to_string(), |t| format!("{t:.2} s")),
    );
    Ok(failure::Results {
        flaky,
        outage,
        outage_stats,
        outage_timeline,
    })
}
