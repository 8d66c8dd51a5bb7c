//! Server-streaming calls: their messages arrive whole, they count once at their trailers, a long
//! stream is not a slow call, and a probe that is a long stream keeps its slot only until
//! `probe_timeout`.

use std::thread;
use std::time::Duration;

use serde_json::json;

use crate::common::*;

#[test]
fn a_server_stream_arrives_whole_and_counts_once_as_a_success() {
    let server = server();
    server.behave(Behaviour::Answer {
        interval: Duration::from_millis(20),
    });
    let envoy = envoy(&server, &policy(None), None);
    let client = client(&envoy);
    let stream = client.stream(Call::stream("s", 20));
    let expected: Vec<_> = (0..20).map(|seq| answer_for("s", seq)).collect();
    assert_eq!(stream.answers, expected, "every answer, in order, intact");
    let trailers = stream.end.expect("status OK in the trailers");
    assert!(trailers.get("x-breakwater-breaker").is_none());
    let m = flushed_metrics(&envoy);
    assert_eq!(m.get("requests_total"), 1);
    assert_eq!(m.get("failures_total"), 0);
}

/// `slow_call` at 200 ms, opening at a slow rate of 30% over at least 2 calls: four 600 ms
/// streams whose headers come at once are not slow (a long stream is not slow for lasting), while
/// two unary calls that take 600 ms to answer are (2 of 6), and open the breaker.
#[test]
fn a_long_stream_is_not_a_slow_call_but_a_slow_answer_is() {
    let server = server();
    let slow_policy = json!({ "default": {
        "circuit_breaker": {
            "failure_threshold": 0,
            "failure_rate": { "threshold": 1.0, "minimum_requests": 2, "window": "10s" },
            "slow_call": { "duration": "200ms", "rate_threshold": 0.3 },
            "timeout": "1s"
        },
        "retry": null
    }});
    let envoy = envoy(&server, &slow_policy, None);
    let client = client(&envoy);
    server.behave(Behaviour::Answer {
        interval: Duration::from_millis(200),
    });
    for i in 0..4 {
        let stream = client.stream(Call::stream(&format!("long-{i}"), 4));
        assert_eq!(stream.answers.len(), 4);
        stream.end.expect("OK");
    }
    assert_eq!(
        metrics(&envoy).get("breaker_opened_total"),
        0,
        "600 ms streams whose replies started at once are not slow"
    );
    server.behave(Behaviour::Delay(Duration::from_millis(600)));
    for i in 0..2 {
        client
            .unary(Call::new(&format!("slow-{i}")), None)
            .expect("slow but answered");
    }
    assert_eq!(
        flushed_metrics(&envoy).get("breaker_opened_total"),
        1,
        "answers 600 ms late are slow calls"
    );
}

/// The breaker half-opens with one probe slot; the probe is a stream that lasts 3 s. Other calls
/// get the half-open fallback until `probe_timeout` (500 ms) reclaims the slot; the next call
/// then probes, succeeds and closes the breaker while the long stream still runs.
#[test]
fn a_probe_that_is_a_long_stream_keeps_its_slot_only_until_probe_timeout() {
    let server = server();
    let probe_policy = json!({ "default": {
        "circuit_breaker": {
            "failure_threshold": 3,
            "timeout": "1s",
            "max_timeout": "1s",
            "half_open_attempts": 1,
            "probe_timeout": "500ms"
        },
        "retry": null
    }});
    let envoy = envoy(&server, &probe_policy, None);
    let client = client(&envoy);
    server.behave(Behaviour::fail(Code::Unavailable));
    for _ in 0..3 {
        client.unary(Call::new("fail"), None).expect_err("fails");
    }
    assert_eq!(metrics(&envoy).get("breaker_opened_total"), 1);
    server.behave(Behaviour::Answer {
        interval: Duration::from_millis(1_000),
    });
    let streamer = client.clone();
    let long_stream = thread::spawn(move || {
        // Retried until the breaker half-opens and admits it as the probe.
        loop {
            let stream = streamer.stream(Call::stream("probe", 4));
            match &stream.end {
                Err(status) if status.metadata().get("x-breakwater-breaker").is_some() => {
                    thread::sleep(Duration::from_millis(20));
                }
                _ => return stream,
            }
        }
    });
    wait_until("the long stream to be admitted as the probe", || {
        server.stream_calls() == 1
    });
    let during = client
        .unary(Call::new("during"), None)
        .expect_err("slot taken");
    assert_grpc_fallback(&during, Code::Unavailable, "half-open");
    assert_eq!(
        during.message(),
        "breakwater: circuit breaker half-open, probes in flight"
    );
    let mut admitted = None;
    wait_until("probe_timeout to reclaim the long stream's slot", || {
        match client.unary(Call::new("second-probe"), None) {
            Ok(answer) => admitted = Some(answer),
            Err(status) => assert_grpc_fallback(&status, Code::Unavailable, "half-open"),
        }
        admitted.is_some()
    });
    assert_eq!(
        admitted.expect("admitted").get_ref(),
        &answer_for("second-probe", 0)
    );
    let m = metrics(&envoy);
    assert_eq!(
        m.get("probes_reclaimed_total"),
        1,
        "the stream's slot was reclaimed"
    );
    assert_eq!(
        m.get("breaker_closed_total"),
        1,
        "the second probe closed it"
    );
    assert_eq!(
        server.stream_calls(),
        1,
        "the long stream was still the only stream"
    );
    let stream = long_stream.join().expect("the streaming thread");
    assert_eq!(
        stream.answers.len(),
        4,
        "the long probe ran to its end, intact"
    );
    stream.end.expect("OK");
    assert_eq!(
        metrics(&envoy).get("failures_total"),
        3,
        "its late success counted no failure"
    );
}

/// A probe that is a long stream, cancelled by its client after its first answer (the filter is
/// waiting for the status in its trailers then), gives its slot back at once: the next call is
/// admitted as a probe long before `probe_timeout` (30 s, the default) and closes the breaker.
#[test]
fn a_cancelled_streaming_probe_gives_its_slot_back_at_once() {
    let server = server();
    let probe_policy = json!({ "default": {
        "circuit_breaker": {
            "failure_threshold": 3,
            "timeout": "1s",
            "max_timeout": "1s",
            "half_open_attempts": 1
        },
        "retry": null
    }});
    let envoy = envoy(&server, &probe_policy, None);
    let client = client(&envoy);
    server.behave(Behaviour::fail(Code::Unavailable));
    for _ in 0..3 {
        client.unary(Call::new("fail"), None).expect_err("fails");
    }
    // The probe: a stream of answers 2 s apart, which its client leaves after 500 ms.
    server.behave(Behaviour::Answer {
        interval: Duration::from_secs(2),
    });
    wait_until("a stream to be admitted as the probe", || {
        let before = server.stream_calls();
        if let Some(ended) =
            client.stream_cancelled_after(Call::stream("probe", 5), Duration::from_millis(500))
        {
            let status = ended.end.expect_err("only a fallback ends this early");
            assert!(
                status.metadata().get("x-breakwater-breaker").is_some(),
                "{status:?}"
            );
        }
        server.stream_calls() > before
    });
    server.behave(Behaviour::answer());
    let started = std::time::Instant::now();
    let answer = client
        .unary(Call::new("next"), None)
        .expect("admitted at once: the cancelled probe's slot came back");
    assert_eq!(answer.get_ref(), &answer_for("next", 0));
    assert!(started.elapsed() < Duration::from_secs(5));
    let m = metrics(&envoy);
    assert_eq!(m.get("breaker_closed_total"), 1);
    assert_eq!(
        m.get("probes_reclaimed_total"),
        0,
        "given back, not reclaimed"
    );
    assert_eq!(
        m.get("failures_total"),
        3,
        "the cancelled stream counted nothing"
    );
}
