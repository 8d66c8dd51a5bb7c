//! The `--grpc` story end to end: real Envoy, the real module, a real tonic server and client
//! over HTTP/2. It must come out as told: healthy calls answered, the server's UNAVAILABLE
//! counted until the breaker opens, the gRPC fallback as tonic reports it while the server is
//! left alone, a probe that closes the breaker, and a server stream that arrives whole.

use breakwater_demo::grpc::run_grpc;
use breakwater_envoy::grpc::Code;

#[test]
fn the_grpc_story_comes_out_as_told() {
    let mut out = Vec::new();
    let report = run_grpc(None, &mut out).expect("the gRPC story runs");
    let text = String::from_utf8(out).expect("utf-8 output");
    let fail = |why: &str| -> ! { panic!("{why}\n--- demo output ---\n{text}") };
    if report.healthy_ok != 5 {
        fail("every healthy call is answered");
    }
    // The demo policy opens after 5 consecutive failures.
    if report.server_failures != 5 {
        fail("the breaker opens on the fifth UNAVAILABLE");
    }
    let Some((code, message, hints)) = &report.fallback_seen else {
        fail("the client saw the fallback")
    };
    if *code != Code::Unavailable || message != "breakwater: circuit breaker open" {
        fail("tonic reports the fallback as UNAVAILABLE with the breaker's message");
    }
    if !(hints.contains("x-breakwater-breaker: open")
        && hints.contains("retry-after: ")
        && hints.contains("grpc-retry-pushback-ms: "))
    {
        fail("the fallback keeps its retry hints");
    }
    if report.server_calls_while_open != 0 {
        fail("the server is left alone while the breaker is open");
    }
    if !report.closed {
        fail("a probe closes the breaker once the server answers");
    }
    if report.stream_answers != 5 {
        fail("the server stream arrives whole");
    }
    if !text.contains("breaker opened 1 and closed 1 time(s)") {
        fail("the summary reads Breakwater's own counters");
    }
}
