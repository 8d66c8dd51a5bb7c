//! The filter's header handling, through the wasmtime harness that plays Envoy
//! (`breakwater-host-tests`): the real `breakwater.wasm` under an arbitrary valid policy, with
//! arbitrary requests (header names, values, bodies, trailers, methods, clusters, routes),
//! arbitrary upstream replies (statuses, headers such as `retry-after`, bodies, resets,
//! refusals, timeouts, delays), clients that leave, corrupt bytes in shared data,
//! reconfigurations and clock jumps.
//!
//! # What must hold
//! - The module never traps (an SDK panic or any other trap fails the operation that ran it).
//! - Every request gets exactly one response: once the world is idle each stream is complete,
//!   or was reset by an upstream that reset after its headers, or its client left on purpose.
//!   A stream still open means the filter lost it; a reset for any other reason means the
//!   filter answered twice.
//! - A client cannot steer the filter: no `x-breakwater-*` request header from a client
//!   reaches the upstream; a retry carries `x-breakwater-attempt: N` with 2 ≤ N ≤
//!   `max_attempts`, and replays the client's method, path and body.
//! - `x-breakwater-attempts` on a response counts the attempts the upstream saw.
//!
//! # Cost
//! Each input builds a fresh world (one to three worker VMs, no canary, no main-thread VM):
//! instantiating the module is most of the time. The compiled module is shared by every world
//! of the process (the harness caches it), so only the first input pays for compilation.

#![no_main]

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;
use std::sync::OnceLock;
use std::time::Duration;

use arbitrary::Arbitrary;
use breakwater_fuzz_filter::feedback;
use breakwater_fuzz_filter::policy::FilterPolicy;
use breakwater_host_tests::{
    AttemptKind, Interleaving, Reply, StreamId, StreamState, UpstreamRequest, World,
};
use libfuzzer_sys::fuzz_target;

/// The header that ties every upstream attempt to the client request it serves.
const ID: &str = "x-fuzz-id";
const CLUSTERS: [&str; 3] = [
    "payments",
    "partner-api",
    "outbound|8080||reviews.default.svc.cluster.local",
];

/// The current breakwater.wasm, built once per process with the stable toolchain.
fn module() -> &'static std::path::PathBuf {
    static MODULE: OnceLock<std::path::PathBuf> = OnceLock::new();
    MODULE.get_or_init(|| {
        // `cargo +nightly fuzz` runs us with the nightly toolchain in the environment; the
        // module must be built the way the tests build it (the repo's stable toolchain).
        for var in [
            "RUSTUP_TOOLCHAIN",
            "CARGO",
            "RUSTC",
            "RUSTC_WRAPPER",
            "RUSTFLAGS",
        ] {
            std::env::remove_var(var);
        }
        breakwater_wasm::breakwater().unwrap_or_else(|e| panic!("building breakwater.wasm: {e}"))
    })
}

#[derive(Arbitrary, Debug)]
struct HeaderPick {
    name: NamePick,
    value: ValuePick,
}

/// A header value: any text, or one of the values that change what the filter does.
#[derive(Arbitrary, Debug)]
enum ValuePick {
    Known(u8),
    Any(String),
}

/// Values that steer the filter: gRPC content types and statuses (read from headers and
/// trailers alike), and a few numbers.
const KNOWN_VALUES: [&str; 8] = [
    "application/grpc",
    "application/grpc+proto",
    "application/grpc-web",
    "0",
    "14",
    "2",
    "abc",
    "1",
];

impl ValuePick {
    fn text(&self) -> String {
        match self {
            ValuePick::Known(i) => KNOWN_VALUES[usize::from(*i) % KNOWN_VALUES.len()].to_string(),
            ValuePick::Any(s) => s.clone(),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum NamePick {
    Known(u8),
    Any(String),
}

const KNOWN_NAMES: [&str; 16] = [
    "x-breakwater-attempt",
    "x-breakwater-attempts",
    "x-breakwater-breaker",
    "X-Breakwater-Anything",
    "idempotency-key",
    "retry-after",
    "content-length",
    "transfer-encoding",
    "connection",
    "te",
    "x-envoy-upstream-service-time",
    "x-request-id",
    "content-type",
    "expect",
    "grpc-status",
    "grpc-message",
];

impl HeaderPick {
    fn name(&self) -> String {
        match &self.name {
            NamePick::Known(i) => KNOWN_NAMES[usize::from(*i) % KNOWN_NAMES.len()].to_string(),
            // Envoy's codecs refuse pseudo-headers from clients and empty names.
            NamePick::Any(s) if s.is_empty() || s.starts_with(':') => format!("x-{s}"),
            NamePick::Any(s) => s.clone(),
        }
    }
}

#[derive(Arbitrary, Debug)]
struct RequestPick {
    worker: u8,
    method: MethodPick,
    path: String,
    headers: Vec<HeaderPick>,
    body: Vec<u8>,
    trailers: Vec<HeaderPick>,
    cluster: u8,
    route: u8,
    timeout_ms: Option<u16>,
    disconnect_after_ms: Option<u16>,
}

#[derive(Arbitrary, Debug)]
enum MethodPick {
    Get,
    Put,
    Post,
    Delete,
    Any(String),
}

#[derive(Arbitrary, Debug)]
enum ReplyPick {
    Status {
        status: u16,
        headers: Vec<HeaderPick>,
        body: Vec<u8>,
        trailers: Vec<HeaderPick>,
        reset_after_headers: bool,
        after_ms: u16,
    },
    Refuse,
    Reset,
    Timeout,
}

impl ReplyPick {
    fn reply(&self) -> Reply {
        match self {
            ReplyPick::Status {
                status,
                headers,
                body,
                trailers,
                reset_after_headers,
                after_ms,
            } => {
                // Envoy's codecs only pass three-digit statuses from an upstream.
                let mut r = Reply::status(100 + status % 900).body(body.clone());
                for h in headers {
                    r = r.header(&h.name(), &h.value.text());
                }
                for t in trailers {
                    r = r.trailer(&t.name(), &t.value.text());
                }
                if *reset_after_headers {
                    r = r.reset_after_headers();
                }
                r.after(Duration::from_millis(u64::from(*after_ms)))
            }
            ReplyPick::Refuse => Reply::refuse(),
            ReplyPick::Reset => Reply::reset(),
            ReplyPick::Timeout => Reply::timeout(),
        }
    }

    fn resets_after_headers(&self) -> bool {
        matches!(
            self,
            ReplyPick::Status {
                reset_after_headers: true,
                ..
            }
        )
    }

    /// The reply carries Breakwater's own response headers (an upstream behind another
    /// Breakwater, or one that imitates it).
    fn carries_breakwater_headers(&self) -> bool {
        match self {
            ReplyPick::Status { headers, .. } => headers
                .iter()
                .any(|h| h.name().to_ascii_lowercase().starts_with("x-breakwater-")),
            _ => false,
        }
    }

    fn scripted(&self) -> Scripted {
        Scripted {
            reply: self.reply(),
            resets_after_headers: self.resets_after_headers(),
            breakwater_headers: self.carries_breakwater_headers(),
        }
    }
}

/// One scripted reply and what the checks need to know about it.
#[derive(Clone)]
struct Scripted {
    reply: Reply,
    resets_after_headers: bool,
    breakwater_headers: bool,
}

/// What the scripts recorded.
#[derive(Default)]
struct Record {
    /// Every request the upstreams received.
    seen: Vec<UpstreamRequest>,
    /// Client streams whose request got a reply that resets after its headers.
    resets: BTreeSet<StreamId>,
    /// Fuzz ids of requests that got a reply carrying `x-breakwater-*` headers.
    spoofed: BTreeSet<String>,
}

#[derive(Arbitrary, Debug)]
enum Op {
    Request(RequestPick),
    Advance(u16),
    Jump(u32),
    Disconnect(u8),
    Upstream {
        cluster: u8,
        replies: Vec<ReplyPick>,
    },
    Corrupt {
        cluster: u8,
        budget: bool,
        bytes: Vec<u8>,
    },
    Reconfigure(FilterPolicy),
}

#[derive(Arbitrary, Debug)]
struct Input {
    policy: FilterPolicy,
    workers: u8,
    interleaving: Option<Vec<u8>>,
    /// What each cluster answers until an `Op::Upstream` changes it.
    replies: [Vec<ReplyPick>; 3],
    ops: Vec<Op>,
}

/// A cluster's script: the fuzzer's replies in turn (the last repeating), recording what the
/// checks need.
fn script(
    replies: Vec<Scripted>,
    record: Rc<RefCell<Record>>,
) -> impl FnMut(&UpstreamRequest) -> Reply {
    let mut next = 0usize;
    move |request: &UpstreamRequest| {
        let scripted = replies
            .get(next.min(replies.len().saturating_sub(1)))
            .cloned()
            .unwrap_or(Scripted {
                reply: Reply::ok(),
                resets_after_headers: false,
                breakwater_headers: false,
            });
        next += 1;
        let mut record = record.borrow_mut();
        record.seen.push(request.clone());
        if let AttemptKind::Stream { stream, .. } = request.kind {
            if scripted.resets_after_headers {
                record.resets.insert(stream);
            }
        }
        if scripted.breakwater_headers {
            record
                .spoofed
                .insert(request.header(ID).unwrap_or_default().to_string());
        }
        scripted.reply
    }
}

struct Sent {
    id: StreamId,
    method: String,
    path: String,
    body: Vec<u8>,
    max_attempts: u32,
    left_on_purpose: bool,
}

fn run(input: Input) {
    let policy = input.policy.json();
    let workers = usize::from(input.workers % 3) + 1;
    let mut builder = World::builder()
        .module(module())
        .workers(workers)
        .canary(false)
        .main_thread_vm(false)
        .configuration(policy.clone())
        .seed(7);
    if let Some(choices) = &input.interleaving {
        builder = builder.interleaving(Interleaving::from_choices(choices.clone()));
    }
    let mut world = builder
        .build()
        .unwrap_or_else(|e| panic!("a valid policy must start the plugin: {e}\n{policy}"));
    let record: Rc<RefCell<Record>> = Rc::default();
    for (cluster, replies) in CLUSTERS.iter().zip(&input.replies) {
        let replies = replies.iter().take(8).map(ReplyPick::scripted).collect();
        world.upstream(cluster, script(replies, record.clone()));
    }
    let mut effective = breakwater::policy::Policy::parse(policy.as_bytes())
        .expect("the harness policy is valid")
        .policy;
    let mut sent: Vec<Sent> = Vec::new();
    for op in input.ops.into_iter().take(48) {
        let outcome = match op {
            Op::Request(r) => {
                let n = sent.len();
                let cluster = CLUSTERS[usize::from(r.cluster) % CLUSTERS.len()];
                let route =
                    ["", "checkout-create", "payments", "anything"][usize::from(r.route % 4)];
                let method = match &r.method {
                    MethodPick::Get => "GET".to_string(),
                    MethodPick::Put => "PUT".to_string(),
                    MethodPick::Post => "POST".to_string(),
                    MethodPick::Delete => "DELETE".to_string(),
                    // Envoy's codecs only pass token methods.
                    MethodPick::Any(m)
                        if !m.is_empty() && m.bytes().all(|b| b.is_ascii_alphanumeric()) =>
                    {
                        m.clone()
                    }
                    MethodPick::Any(_) => "PATCH".to_string(),
                };
                let path = format!("/{}", r.path);
                let mut b = world
                    .request(usize::from(r.worker) % workers)
                    .method(&method)
                    .path(&path)
                    .cluster(cluster)
                    .route(route)
                    .header(ID, &n.to_string())
                    .body(r.body.clone());
                for h in &r.headers {
                    b = b.header(&h.name(), &h.value.text());
                }
                for t in &r.trailers {
                    b = b.trailer(&t.name(), &t.value.text());
                }
                if let Some(ms) = r.timeout_ms {
                    b = b.timeout(Duration::from_millis(u64::from(ms) + 1));
                }
                let left = r.disconnect_after_ms.is_some();
                if let Some(ms) = r.disconnect_after_ms {
                    b = b.disconnect_after(Duration::from_millis(u64::from(ms)));
                }
                let max_attempts = effective
                    .lookup(cluster, route)
                    .retry
                    .as_ref()
                    .map_or(1, |r| r.max_attempts);
                let result = b.try_send();
                if let Ok(id) = &result {
                    sent.push(Sent {
                        id: *id,
                        method,
                        path,
                        body: r.body,
                        max_attempts,
                        left_on_purpose: left,
                    });
                }
                result.map(|_| ())
            }
            Op::Advance(ms) => world.try_advance(Duration::from_millis(u64::from(ms))),
            Op::Jump(ms) => world.try_advance(Duration::from_millis(u64::from(ms % 600_000))),
            Op::Disconnect(i) => match sent.get_mut(usize::from(i)) {
                Some(s) => {
                    s.left_on_purpose = true;
                    world.try_disconnect(s.id)
                }
                None => Ok(()),
            },
            Op::Upstream { cluster, replies } => {
                let replies = replies.iter().take(8).map(ReplyPick::scripted).collect();
                let cluster = CLUSTERS[usize::from(cluster) % CLUSTERS.len()];
                world.upstream(cluster, script(replies, record.clone()));
                Ok(())
            }
            Op::Corrupt {
                cluster,
                budget,
                bytes,
            } => {
                let cluster = CLUSTERS[usize::from(cluster) % CLUSTERS.len()];
                let kind = if budget { "budget" } else { "breaker" };
                world.set_shared_data(format!("breakwater/breakwater/v2/{kind}/{cluster}"), bytes);
                Ok(())
            }
            Op::Reconfigure(p) => {
                let json = p.json();
                match world.try_reconfigure(json.clone()) {
                    Ok(true) => {
                        effective = breakwater::policy::Policy::parse(json.as_bytes())
                            .expect("the harness policy is valid")
                            .policy;
                        Ok(())
                    }
                    Ok(false) => panic!("a valid policy was refused on reconfiguration:\n{json}"),
                    Err(e) => panic!("reconfiguring failed: {e}"),
                }
            }
        };
        if let Err(failure) = outcome {
            panic!("the filter trapped:\n{failure}");
        }
    }
    if let Err(failure) = world.try_run_until_idle() {
        panic!("the world did not go idle (a request never got its response?):\n{failure}");
    }

    let record = record.borrow();
    let (seen, resets) = (&record.seen, &record.resets);
    feedback::observe(&world, sent.iter().map(|s| s.id), seen);
    if std::env::var_os("BREAKWATER_FUZZ_TRACE").is_some() {
        // What the run did, to see what the corpus covers (and to turn a crash into a test).
        eprintln!("policy {policy}");
        for s in &sent {
            let response = world.response(s.id);
            eprintln!(
                "{} {} -> {:?} status {:?} attempts {:?} breaker {:?}",
                s.method,
                s.path,
                world.stream_state(s.id),
                response.as_ref().map(|r| r.status),
                response
                    .as_ref()
                    .and_then(|r| r.header("x-breakwater-attempts").map(str::to_owned)),
                response
                    .as_ref()
                    .and_then(|r| r.header("x-breakwater-breaker").map(str::to_owned)),
            );
        }
        let calls = seen
            .iter()
            .filter(|r| matches!(r.kind, AttemptKind::Call { .. }))
            .count();
        eprintln!("upstream requests {} of which retries {calls}", seen.len());
    }
    for (n, s) in sent.iter().enumerate() {
        match world.stream_state(s.id) {
            StreamState::Complete => {
                let response = world
                    .response(s.id)
                    .expect("a complete stream has its response");
                // By design (README, "Headers"; host-tests scenario
                // `an_upstreams_own_breakwater_headers_pass_a_response_this_filter_did_not_touch`):
                // a response this filter did not retry passes the upstream's own
                // `x-breakwater-*` headers, so only responses without them are checked here.
                let spoofed = record.spoofed.contains(&n.to_string());
                if let Some(attempts) = response
                    .header("x-breakwater-attempts")
                    .filter(|_| !spoofed)
                {
                    let observed = seen
                        .iter()
                        .filter(|r| r.header(ID) == Some(n.to_string().as_str()))
                        .count();
                    assert_eq!(
                        attempts,
                        observed.to_string(),
                        "request {n}: x-breakwater-attempts must count the attempts the upstream saw"
                    );
                }
            }
            StreamState::Disconnected => assert!(
                s.left_on_purpose,
                "request {n}: disconnected, but its client never left"
            ),
            StreamState::Reset { details } => assert!(
                resets.contains(&s.id)
                    && details.starts_with("upstream_reset_after_response_started"),
                "request {n}: reset ({details}) without an upstream that reset: a second response?"
            ),
            other => panic!("request {n} never got a response: {other:?}"),
        }
    }
    for request in seen.iter() {
        let n: usize = match request.header(ID).and_then(|v| v.parse().ok()) {
            Some(n) => n,
            None => panic!("an upstream request without its fuzz id: {request:?}"),
        };
        let s = &sent[n];
        let steering: Vec<(&str, &[u8])> = request
            .headers
            .iter_bytes()
            .filter(|(name, _)| {
                name.starts_with("x-breakwater-") && *name != "x-breakwater-attempt"
            })
            .collect();
        assert!(
            steering.is_empty(),
            "request {n}: client headers {steering:?} reached the upstream"
        );
        let attempt: Vec<&str> = request.headers.get_all("x-breakwater-attempt");
        match request.kind {
            AttemptKind::Stream { .. } => {
                assert!(attempt.is_empty(), "request {n}: the client's x-breakwater-attempt {attempt:?} reached the upstream");
            }
            AttemptKind::Call { .. } => {
                let number: Option<u32> = match attempt.as_slice() {
                    [one] => one.parse().ok(),
                    _ => None,
                };
                assert!(
                    number.is_some_and(|k| (2..=s.max_attempts.max(2)).contains(&k)),
                    "request {n}: a retry must carry one x-breakwater-attempt in 2..=max_attempts, got {attempt:?}"
                );
                assert_eq!(
                    request.method(),
                    s.method,
                    "request {n}: a retry replays the method"
                );
                assert_eq!(
                    request.path(),
                    s.path,
                    "request {n}: a retry replays the path"
                );
                assert_eq!(
                    request.body, s.body,
                    "request {n}: a retry replays the body"
                );
            }
        }
    }
}

fuzz_target!(|input: Input| run(input));
