//! The random cases: requests, what the upstream answers each attempt, when clients leave; and
//! running one case in a fresh world of 4 workers.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use breakwater_host_tests::{ms, Interleaving, Reply, StreamId, UpstreamRequest, World};
use proptest::prelude::*;
use serde_json::{json, Value};

use crate::common::builder;

pub const C: &str = "c";
pub const WORKERS: usize = 4;
pub const MAX_ATTEMPTS: usize = 3;
/// Route timeout and `per_try_timeout`: odd.
pub const ROUTE_TIMEOUT_MS: u64 = 151;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    Get,
    Post,
    KeyedPost,
    /// An idempotent method with a body over `max_request_body`.
    BigPut,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Out {
    Ok,
    Fail,
    NotFound,
    Refuse,
    Reset,
    Hang,
    ResetAfterHeaders,
}

#[derive(Debug, Clone)]
pub struct Req {
    pub worker: usize,
    /// Arrives at `2 · slot` ms.
    pub slot: u64,
    pub kind: Kind,
    /// The upstream's answers to its attempts, each after an odd latency.
    pub outs: Vec<(Out, u64)>,
    /// The client leaves this many (odd) ms after arriving.
    pub leave: Option<u64>,
}

pub fn req() -> impl Strategy<Value = Req> {
    let kind = prop_oneof![
        4 => Just(Kind::Get), 2 => Just(Kind::Post), 2 => Just(Kind::KeyedPost), 1 => Just(Kind::BigPut)
    ];
    let out = prop_oneof![
        4 => Just(Out::Ok), 4 => Just(Out::Fail), 1 => Just(Out::NotFound), 1 => Just(Out::Refuse),
        1 => Just(Out::Reset), 1 => Just(Out::Hang), 1 => Just(Out::ResetAfterHeaders)
    ];
    let odd = (0u64..16).prop_map(|k| 2 * k + 1);
    let leave = prop::option::weighted(0.2, (0u64..40).prop_map(|k| 2 * k + 1));
    (
        0..WORKERS,
        0u64..30,
        kind,
        prop::collection::vec((out, odd), MAX_ATTEMPTS),
        leave,
    )
        .prop_map(|(worker, slot, kind, outs, leave)| Req {
            worker,
            slot,
            kind,
            outs,
            leave,
        })
}

fn reply((out, latency): (Out, u64)) -> Reply {
    let after = ms(latency);
    match out {
        Out::Ok => Reply::ok().body("ok").after(after),
        Out::Fail => Reply::status(503).after(after),
        Out::NotFound => Reply::status(404).after(after),
        Out::Refuse => Reply::refuse().after(after),
        Out::Reset => Reply::reset().after(after),
        Out::Hang => Reply::timeout(),
        Out::ResetAfterHeaders => Reply::ok().reset_after_headers().after(after),
    }
}

pub fn policy(breaker: Value) -> Value {
    let mut b = json!({ "timeout": "6ms", "max_timeout": "24ms", "probe_timeout": "10s" });
    if let (Some(b), Some(e)) = (b.as_object_mut(), breaker.as_object()) {
        b.extend(e.clone());
    }
    crate::common::policy(
        b,
        json!({
            "max_attempts": MAX_ATTEMPTS, "base_delay": "3ms", "max_delay": "3ms",
            "exponential_base": 1.0, "jitter": false, "per_try_timeout": "41ms", "deadline": "1s",
            "retry_on": ["5xx", "reset", "connect-failure", "timeout"], "max_request_body": 16,
            "budget": { "ratio": 0.2, "min_per_second": 2, "window": "1s" }
        }),
    )
}

/// Runs the requests to the end; answers the world and each request's stream.
pub fn run(policy: &Value, reqs: &[Req], choices: Vec<u8>) -> (World, Vec<StreamId>) {
    let mut w = builder(WORKERS, policy)
        .canary(false)
        .main_thread_vm(false)
        .route_timeout(Some(ms(ROUTE_TIMEOUT_MS)))
        .interleaving(Interleaving::from_choices(choices))
        .build()
        .expect("starts");
    let scripts: HashMap<String, Vec<(Out, u64)>> = reqs
        .iter()
        .enumerate()
        .map(|(i, r)| (format!("r{i}"), r.outs.clone()))
        .collect();
    let seen = Rc::new(RefCell::new(HashMap::<String, usize>::new()));
    w.upstream(C, move |request: &UpstreamRequest| {
        let id = request
            .header("x-request-id")
            .unwrap_or_default()
            .to_string();
        let mut seen = seen.borrow_mut();
        let n = seen.entry(id.clone()).or_default();
        *n += 1;
        let outs = &scripts[&id];
        reply(outs[(*n - 1).min(outs.len() - 1)])
    });
    let streams = reqs
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut b = w
                .request(r.worker)
                .cluster(C)
                .header("x-request-id", &format!("r{i}"))
                .at(ms(2 * r.slot));
            b = match r.kind {
                Kind::Get => b,
                Kind::Post => b.method("POST").body("new"),
                Kind::KeyedPost => b.method("POST").header("idempotency-key", &format!("k{i}")),
                Kind::BigPut => b.method("PUT").body(vec![b'x'; 32]),
            };
            if let Some(leave) = r.leave {
                b = b.disconnect_after(ms(leave));
            }
            b.enqueue()
        })
        .collect();
    w.run_until_idle();
    (w, streams)
}
