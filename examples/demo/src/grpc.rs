//! The `--grpc` story: a real tonic client calls a real tonic server through Envoy with
//! Breakwater, HTTP/2 on both sides, and the demo prints what the client library reports at each
//! step: the server's failures, the breaker's gRPC fallback while it is open (status, message,
//! retry hints), the probe that closes it, and a server stream that arrives whole.
//!
//! The story is driven by events, not by a clock: "down" lasts until the breaker opens, and
//! "recovering" until a probe gets through, whatever the policy's numbers.

use std::io::Write;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use breakwater_envoy::grpc::{
    answer_for, Answer, Behaviour, Call, Code, GrpcClient, GrpcServer, Response, Status,
};
use breakwater_envoy::metrics::stat;
use breakwater_envoy::{envoy_binary, Envoy, EnvoyConfig, WasmFilter};

use crate::stage::policy_path;
use crate::DemoError;

/// The gRPC server's cluster.
pub const CLUSTER: &str = "catalog";
/// Calls while the server is down or recovering before the story gives up.
const MAX_CALLS: usize = 400;
/// The pause between two calls while the story waits for the breaker.
const PAUSE: Duration = Duration::from_millis(100);

/// What the story saw, for the summary and the test.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GrpcReport {
    /// Healthy calls answered OK.
    pub healthy_ok: usize,
    /// Calls that got the server's UNAVAILABLE before the breaker opened.
    pub server_failures: usize,
    /// Calls answered by the breaker's gRPC fallback.
    pub fallbacks: usize,
    /// Calls the server received while the breaker was open.
    pub server_calls_while_open: u64,
    /// The probe got through and the breaker closed.
    pub closed: bool,
    /// Answers of the final server stream, all intact and in order.
    pub stream_answers: usize,
    /// The fallback as tonic reported it: code, message, and its breaker metadata.
    pub fallback_seen: Option<(Code, String, String)>,
}

fn say(out: &mut dyn Write, line: &str) -> Result<(), DemoError> {
    writeln!(out, "{line}")?;
    out.flush()?;
    Ok(())
}

fn is_fallback(status: &Status) -> bool {
    status.metadata().get("x-breakwater-breaker").is_some()
}

/// `x-breakwater-breaker`, `retry-after` and `grpc-retry-pushback-ms`, as the client got them.
fn hints(status: &Status) -> String {
    [
        "x-breakwater-breaker",
        "retry-after",
        "grpc-retry-pushback-ms",
    ]
    .iter()
    .filter_map(|name| {
        let value = status.metadata().get(*name)?.to_str().ok()?;
        Some(format!("{name}: {value}"))
    })
    .collect::<Vec<_>>()
    .join(", ")
}

fn describe(result: &Result<Response<Answer>, Status>) -> String {
    match result {
        Ok(answer) => format!("OK {:?}", answer.get_ref().text),
        Err(status) if is_fallback(status) => format!(
            "{:?} {:?} ({})",
            status.code(),
            status.message(),
            hints(status)
        ),
        Err(status) => format!("{:?} {:?}", status.code(), status.message()),
    }
}

/// Runs the gRPC story, saying what happens on `out`.
pub fn run_grpc(policy: Option<&Path>, out: &mut dyn Write) -> Result<GrpcReport, DemoError> {
    let policy_path = policy_path(policy);
    let policy = std::fs::read_to_string(&policy_path).map_err(|source| DemoError::Policy {
        path: policy_path.clone(),
        source,
    })?;
    say(out, "building breakwater.wasm and finding Envoy 1.40")?;
    let wasm = breakwater_wasm::breakwater()?;
    envoy_binary().map_err(|e| DemoError::Envoy(e.into()))?;
    let server = GrpcServer::start().map_err(DemoError::Upstream)?;
    let envoy = Envoy::start(
        &EnvoyConfig::new()
            .h2c_cluster(CLUSTER, server.addr())
            .filter(WasmFilter::new(wasm).configuration(&policy)),
    )?;
    let client = GrpcClient::connect(envoy.listener())
        .map_err(|e| DemoError::Upstream(std::io::Error::other(e)))?;
    say(
        out,
        &format!(
            "Envoy on {} speaks HTTP/2 to the tonic client and h2c to the tonic server on {} \
             (cluster {CLUSTER}), policy {}",
            envoy.listener(),
            server.addr(),
            policy_path.display()
        ),
    )?;
    let mut report = GrpcReport::default();
    let mut calls = 0usize;
    let mut call = |client: &GrpcClient| {
        calls += 1;
        let result = client.unary(Call::new(&format!("call-{calls}")), None);
        (calls, result)
    };

    say(out, "\n== healthy: the server answers every call")?;
    for _ in 0..5 {
        let (n, result) = call(&client);
        if result.is_ok() {
            report.healthy_ok += 1;
        }
        say(out, &format!("  call {n:>3}: {}", describe(&result)))?;
    }

    say(
        out,
        "\n== down: the server fails every call with UNAVAILABLE until the breaker opens",
    )?;
    server.behave(Behaviour::fail(Code::Unavailable));
    for _ in 0..MAX_CALLS {
        let (n, result) = call(&client);
        say(out, &format!("  call {n:>3}: {}", describe(&result)))?;
        match &result {
            Err(status) if is_fallback(status) => {
                report.fallbacks += 1;
                report.fallback_seen =
                    Some((status.code(), status.message().to_string(), hints(status)));
                break;
            }
            Err(_) => report.server_failures += 1,
            Ok(_) => {}
        }
        thread::sleep(PAUSE);
    }

    say(
        out,
        "\n== open: the client gets the gRPC fallback at once; the server is left alone",
    )?;
    let before = server.total_calls();
    for _ in 0..3 {
        let (n, result) = call(&client);
        if result.as_ref().err().is_some_and(is_fallback) {
            report.fallbacks += 1;
        }
        say(out, &format!("  call {n:>3}: {}", describe(&result)))?;
    }
    report.server_calls_while_open = server.total_calls() - before;
    say(
        out,
        &format!(
            "  the server received {} of these calls",
            report.server_calls_while_open
        ),
    )?;

    say(
        out,
        "\n== recovering: the server answers again; after the open time one probe goes through",
    )?;
    server.behave(Behaviour::answer());
    let started = Instant::now();
    let mut waiting = 0usize;
    for _ in 0..MAX_CALLS {
        let (n, result) = call(&client);
        match &result {
            Ok(_) => {
                say(
                    out,
                    &format!(
                        "  ({waiting} more fallbacks in {:.1} s) call {n:>3}: {} - the probe closed the breaker",
                        started.elapsed().as_secs_f64(),
                        describe(&result)
                    ),
                )?;
                report.closed = true;
                break;
            }
            Err(status) if is_fallback(status) => {
                report.fallbacks += 1;
                waiting += 1;
            }
            Err(_) => say(out, &format!("  call {n:>3}: {}", describe(&result)))?,
        }
        thread::sleep(PAUSE);
    }

    say(
        out,
        "\n== a server stream of 5 answers through the closed breaker",
    )?;
    let stream = client.stream(Call::stream("stream", 5));
    let intact = stream
        .answers
        .iter()
        .enumerate()
        .all(|(i, a)| u32::try_from(i).is_ok_and(|seq| *a == answer_for("stream", seq)));
    if intact && stream.end.is_ok() {
        report.stream_answers = stream.answers.len();
    }
    say(
        out,
        &format!(
            "  {} answers, {}, then {}",
            stream.answers.len(),
            if intact {
                "in order and intact"
            } else {
                "NOT intact"
            },
            match &stream.end {
                Ok(_) => "status OK in the trailers".to_string(),
                Err(status) => format!("{:?} {:?}", status.code(), status.message()),
            }
        ),
    )?;

    let stats = envoy.stats()?;
    let metric = |name: &str| stats.number_or_zero(&stat(CLUSTER, name));
    say(
        out,
        &format!(
            "\nBreakwater on cluster {CLUSTER}: {} calls, {} failures counted, breaker opened {} \
             and closed {} time(s), {} calls answered by the fallback",
            metric("requests_total"),
            metric("failures_total"),
            metric("breaker_opened_total"),
            metric("breaker_closed_total"),
            metric("rejected_total"),
        ),
    )?;
    Ok(report)
}
