//! The breaker counts gRPC failures, whether the status comes trailers-only or after a message,
//! answers with a gRPC fallback while open, and closes on a good probe.

use crate::common::*;

/// Three failed calls open the breaker of [`policy`]; the server saw them all.
fn fail_three_times(client: &breakwater_envoy::grpc::GrpcClient, code: Code) {
    for i in 0..3 {
        let status = client
            .unary(Call::new(&format!("failing-{i}")), None)
            .expect_err("the server fails every call");
        assert_eq!(status.code(), code, "the server's own status: {status:?}");
        assert!(
            status.metadata().get("x-breakwater-breaker").is_none(),
            "admitted while closed: {status:?}"
        );
    }
}

#[test]
fn unavailable_trailers_only_opens_the_breaker_and_tonic_reads_the_grpc_fallback_until_it_closes() {
    let server = server();
    let envoy = envoy(&server, &policy(None), None);
    let client = client(&envoy);
    let ok = client
        .unary(Call::new("first"), None)
        .expect("a healthy call");
    assert_eq!(
        ok.get_ref(),
        &answer_for("first", 0),
        "the answer is intact"
    );

    server.behave(Behaviour::fail(Code::Unavailable));
    fail_three_times(&client, Code::Unavailable);
    let m = metrics(&envoy);
    assert_eq!(m.get("failures_total"), 3, "UNAVAILABLE counts by default");
    assert_eq!(m.get("breaker_opened_total"), 1);

    let rejected = client
        .unary(Call::new("while-open"), None)
        .expect_err("the fallback");
    assert_grpc_fallback(&rejected, Code::Unavailable, "open");
    assert_eq!(rejected.message(), "breakwater: circuit breaker open");
    let stream = client.stream(Call::stream("while-open", 3));
    let rejected = stream.end.expect_err("a stream gets the fallback too");
    assert_grpc_fallback(&rejected, Code::Unavailable, "open");
    assert!(stream.answers.is_empty());
    assert_eq!(server.unary_calls(), 4, "the server saw nothing while open");
    assert_eq!(server.stream_calls(), 0);
    assert_eq!(metrics(&envoy).get("rejected_total"), 2);

    server.behave(Behaviour::answer());
    let mut probe = None;
    wait_until("the breaker to admit a probe", || {
        match client.unary(Call::new("probe"), None) {
            Ok(answer) => probe = Some(answer),
            Err(status) => assert_grpc_fallback(&status, Code::Unavailable, "open"),
        }
        probe.is_some()
    });
    assert_eq!(probe.expect("admitted").get_ref(), &answer_for("probe", 0));
    let m = metrics(&envoy);
    assert_eq!(m.get("breaker_closed_total"), 1, "the good probe closed it");
    assert_eq!(m.state(), Some(0), "closed");
    let after = client
        .unary(Call::new("after"), None)
        .expect("closed again");
    assert_eq!(after.get_ref(), &answer_for("after", 0));
}

#[test]
fn a_status_after_a_message_counts_once_the_trailers_arrive() {
    let server = server();
    let envoy = envoy(&server, &policy(None), None);
    let client = client(&envoy);
    server.behave(Behaviour::FailAfterFirst {
        code: Code::Internal,
        message: "broke after one answer".into(),
    });
    let unary = client
        .unary(Call::new("unary"), None)
        .expect_err("INTERNAL in the trailers");
    assert_eq!(unary.code(), Code::Internal);
    assert_eq!(unary.message(), "broke after one answer");
    let stream = client.stream(Call::stream("stream", 5));
    assert_eq!(
        stream.answers,
        [answer_for("stream", 0)],
        "the answer before the failure arrives intact"
    );
    let end = stream.end.expect_err("INTERNAL in the trailers");
    assert_eq!(
        (end.code(), end.message()),
        (Code::Internal, "broke after one answer")
    );
    assert_eq!(
        metrics(&envoy).get("failures_total"),
        2,
        "both counted, at their trailers"
    );

    let third = client.unary(Call::new("third"), None).expect_err("fails");
    assert_eq!(third.code(), Code::Internal);
    assert_eq!(metrics(&envoy).get("breaker_opened_total"), 1);
    let rejected = client.unary(Call::new("open"), None).expect_err("fallback");
    assert_grpc_fallback(&rejected, Code::Unavailable, "open");
}

#[test]
fn resource_exhausted_with_pushback_reaches_the_client_and_counts_only_when_listed() {
    let server = server();
    server.behave(Behaviour::FailBefore {
        code: Code::ResourceExhausted,
        message: "slow down".into(),
        pushback_ms: Some(250),
    });
    let envoy_default = envoy(&server, &policy(None), None);
    let client_default = client(&envoy_default);
    for _ in 0..4 {
        let status = client_default
            .unary(Call::new("busy"), None)
            .expect_err("RESOURCE_EXHAUSTED");
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert_eq!(status.message(), "slow down");
        assert_eq!(
            meta(status.metadata(), "grpc-retry-pushback-ms"),
            Some("250"),
            "the server's pushback reaches the client untouched"
        );
    }
    let m = metrics(&envoy_default);
    assert_eq!(
        m.get("failures_total"),
        0,
        "a server shedding load is no failure by default"
    );
    assert_eq!(server.unary_calls(), 4);
    drop(envoy_default);

    let listed = policy(Some(serde_json::json!(["resource-exhausted"])));
    let envoy_listed = envoy(&server, &listed, None);
    let client_listed = client(&envoy_listed);
    fail_three_times(&client_listed, Code::ResourceExhausted);
    assert_eq!(metrics(&envoy_listed).get("breaker_opened_total"), 1);
    let rejected = client_listed
        .unary(Call::new("open"), None)
        .expect_err("fallback");
    assert_grpc_fallback(&rejected, Code::Unavailable, "open");
}

#[test]
fn the_fallback_carries_the_configured_grpc_status() {
    let server = server();
    server.behave(Behaviour::fail(Code::Unavailable));
    let mut configured = policy(None);
    configured["default"]["circuit_breaker"]["fallback"] = serde_json::json!({ "grpc_status": 8 });
    let envoy = envoy(&server, &configured, None);
    let client = client(&envoy);
    fail_three_times(&client, Code::Unavailable);
    let rejected = client.unary(Call::new("open"), None).expect_err("fallback");
    assert_grpc_fallback(&rejected, Code::ResourceExhausted, "open");
}
