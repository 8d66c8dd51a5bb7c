//! The HTTP context: one per client request.
//!
//! # Request
//! Client `x-breakwater-*` headers are removed (a client cannot steer the filter). The route's
//! cluster (`xds.cluster_name`) and name (`xds.route_name`) select the effective policy. The
//! cluster's breaker admits the request, admits it as a half-open probe, or rejects it with the
//! fallback, and the upstream is not contacted. A request that may be retried is copied as it
//! passes (headers, then the body up to `max_request_body` and the worker's byte budget, see
//! [`super::copy`]): the filter never holds the request back to copy it. A request answered before
//! its body ended is not retried: Envoy passes no more of the body to the filters after a
//! response, so the copy could never be completed.
//!
//! # Response
//! The first attempt's response is classified. A failure that will be retried is paused here and
//! the request moves to the worker's retry queue ([`super::retries`]); otherwise the outcome goes to
//! the breaker and the response flows on untouched. When the retries end, the held response is
//! resumed (see [`super::relay::deliver`]); if a retry's response was written into its place,
//! the held body and trailers that then pass this context's callbacks are replaced by the
//! retry's. The filter's fallback at admission comes back through the response callbacks too,
//! and passes through. A gRPC request is judged by its `grpc-status` instead, once known: at the
//! response headers (trailers-only), at the trailers, or at the stream's end ([`super::grpc`]);
//! its fallback is a gRPC reply.

use std::rc::Rc;
use std::time::Duration;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, MapType};

use crate::core::breaker::{Admission, Breaker, Events, Phase, Quiet};
use crate::core::outcome::grpc::AtHeaders;
use crate::core::outcome::{Cause, Outcome};
use crate::core::pairs::Pairs;
use crate::core::retry::eligible;
use crate::core::Millis;
use crate::policy::{BreakerMode, BreakerPolicy, Effective};

use super::config::Config;
use super::copy::{Dropped, Limits, RequestCopy, Shape};
use super::exchange::Exchange;
use super::grpc;
use super::host::{self, Clock, HostRng};
use super::judge::Next;
use super::metrics::Counter;
use super::queue::{Job, Last, Stage as JobStage};
use super::relay;
use super::reply::send_fallback;
use super::retries;
use super::shared;
use super::timer;
use super::worker::{self, Worker};

/// What the breaker's admission said, read inside the compare-and-swap loop.
#[derive(Debug, Clone, Copy)]
struct Gate {
    admission: Admission,
    events: Events,
    phase: Phase,
}

/// Where the stream is, as the filter sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Not judged (no configuration, no cluster): everything passes.
    PassThrough,
    /// Sent upstream; the first response will be judged.
    Forwarded,
    /// The filter replied itself (fallback); its reply passes through.
    Replied,
    /// Retries own the response now; whatever comes back here passes through.
    Retrying,
    /// A gRPC response whose status comes in the trailers: judged there, or when the stream
    /// ends first (see [`super::grpc`]).
    AwaitingStatus,
    /// Judged; the rest passes through.
    Done,
}

/// One client request.
pub struct Stream {
    id: u32,
    /// The root context that created this stream; it serves the stream's retries.
    root: u32,
    config: Option<Rc<Config>>,
    stage: Stage,
    exchange: Option<Box<Exchange>>,
    /// A gRPC request (`content-type: application/grpc…`): judged by its gRPC status, and
    /// answered with a gRPC fallback.
    grpc: bool,
}

impl Stream {
    pub fn new(id: u32, root: u32, config: Option<Rc<Config>>) -> Stream {
        Stream {
            id,
            root,
            config,
            stage: Stage::PassThrough,
            exchange: None,
            grpc: false,
        }
    }

    /// Gates a new request; returns the action for `on_http_request_headers`. `end_of_stream`:
    /// the headers are the whole request.
    fn admit(&mut self, w: &mut Worker, config: Rc<Config>, end_of_stream: bool) -> Action {
        // Read only where admission needs the time: a breaker that is not quiet, a budget batch
        // or the flush timer to write, slow calls to time.
        let mut clock = Clock::default();
        // One buffer as the host wrote it: no allocation per header on the request path.
        let headers = host::header_pairs(MapType::HttpRequestHeaders);
        let Some(name) = host::property_str(host::path::CLUSTER_NAME).filter(|c| !c.is_empty())
        else {
            strip_steering(&headers, &Shape::of(&headers, None));
            return Action::Continue;
        };
        // The route's name matters only to a policy with route overrides; each property read is a
        // host call on every request.
        let route = if config.policy.names_routes() {
            host::property_str(host::path::ROUTE_NAME).unwrap_or_default()
        } else {
            String::new()
        };
        let known = config.cluster(&name, &mut w.metrics);
        let cluster = Rc::clone(&known.name);
        let entry = config.policy.locate_in(known.row, &route);
        let effective = config.policy.at(entry);
        // One pass over the headers says all the request path needs of them.
        let key = effective.retry.as_ref();
        let shape = Shape::of(&headers, key.and_then(|r| r.idempotency_header.as_deref()));
        strip_steering(&headers, &shape);
        self.grpc = shape.grpc;
        let slot = known.slot;
        w.metrics.add_later(slot, Counter::Requests, 1);
        timer::flush_later(w, self.root, &mut clock);

        let mut permit = None;
        if let Some(policy) = effective.breaker.as_ref() {
            let key = &*known.breaker_key;
            let first = shared::read(key);
            let quiet = Quiet::of(first.bytes.as_deref());
            let closed = || shared::peek::<Breaker>(&first)?.admit_closed(policy);
            // `stepped`: the breaker's state machine ran (its events and errors are to report).
            let (updated, stepped) = match quiet.and_then(|q| q.admit(policy)).or_else(closed) {
                // Closed (with nothing in its window: from the bytes alone): admitted, nothing to
                // write, no clock, nothing to report.
                Some(admission) => {
                    let gate = Gate {
                        admission,
                        events: Events::default(),
                        phase: Phase::Closed,
                    };
                    let updated = shared::Updated {
                        value: Some(gate),
                        error: None,
                    };
                    (updated, false)
                }
                None => {
                    let now = clock.now();
                    let rng = &mut w.rng;
                    let updated = shared::update_from::<Breaker, _>(key, first, |b| {
                        let step = b.admit(policy, now, rng);
                        let gate = Gate {
                            admission: step.value,
                            events: step.events,
                            phase: b.phase(),
                        };
                        (gate, step.changed)
                    });
                    (updated, true)
                }
            };
            let gate = updated.value;
            if let Some(gate) = gate {
                // The kill switch leaves the shared state alone; the gauge says "open" while it
                // is on, and the real phase again once it is off.
                let shown = if policy.mode == BreakerMode::ForcedOpen {
                    Phase::Open
                } else {
                    gate.phase
                };
                w.metrics.sync_state(slot, shown.gauge());
            }
            let shadow_rejected = gate.is_some_and(|g| g.events.would_reject().is_some());
            if stepped {
                let events = shared::Updated {
                    value: gate.map(|g| g.events),
                    error: updated.error,
                };
                w.observe(&cluster, key, events);
            }
            match gate.map(|g| g.admission) {
                Some(Admission::Rejected(rejection)) => {
                    fallback(self.grpc, policy, rejection.phase, rejection.retry_after);
                    w.metrics.add(&cluster, Counter::Rejected, 1);
                    self.stage = Stage::Replied;
                    return Action::Pause;
                }
                Some(Admission::Admitted(p)) => {
                    if shadow_rejected {
                        w.metrics.add(&cluster, Counter::ShadowRejected, 1);
                    }
                    permit = Some(p);
                }
                // Shared data too contended to decide: a closed breaker lets the request through
                // unrecorded; one that is open or half-open does not (the request could not take
                // a probe slot, and must not become an unbounded extra probe).
                None => {
                    if let Some((phase, retry_after)) =
                        contended_rejection(&mut w.rng, policy, key, clock.now())
                    {
                        w.metrics.state(&cluster, phase.gauge());
                        fallback(self.grpc, policy, phase, retry_after);
                        w.metrics.add(&cluster, Counter::Rejected, 1);
                        self.stage = Stage::Replied;
                        return Action::Pause;
                    }
                }
            }
        }

        if let Some(budget) = effective.retry.as_ref().and_then(|r| r.budget.as_ref()) {
            w.count_request(&config.keys, &cluster, slot, budget, &mut clock);
        }
        let length = shape.length;
        let copied = copy_limits(&config, effective, &shape).and_then(|limits| {
            limits
                .map(|limits| RequestCopy::start(headers, length, end_of_stream, limits))
                .transpose()
        });
        let (copy, dropped) = match copied {
            Ok(copy) => (copy, None),
            Err(dropped) => (None, Some(dropped)),
        };
        // Slow calls time the first attempt from here; otherwise the start is known only if the
        // clock was read anyway, and derived when a failure needs it (see `judge`).
        let times_attempts = effective
            .breaker
            .as_ref()
            .is_some_and(|b| b.slow_call.is_some());
        let started = if times_attempts {
            Some(clock.now())
        } else {
            clock.read()
        };
        self.exchange = Some(Box::new(Exchange {
            config: Rc::clone(&config),
            root: self.root,
            cluster,
            route,
            entry,
            breaker_key: Rc::clone(&known.breaker_key),
            slot,
            permit,
            started,
            attempt_started: started.unwrap_or_default(),
            attempts: 1,
            previous_delay: None,
            copy,
            dropped,
            inconclusive: false,
            answered: false,
            withdrawal: None,
            reported: false,
            responded: None,
        }));
        self.stage = Stage::Forwarded;
        Action::Continue
    }

    /// Judges the first attempt's response, whose outcome this is. `end_of_stream`: its head
    /// ended it (nothing more of it will pass the filter).
    fn judge(&mut self, w: &mut Worker, outcome: Outcome, end_of_stream: bool) -> Action {
        let Some(mut exchange) = self.exchange.take() else {
            self.stage = Stage::Done;
            return Action::Continue;
        };
        exchange.answered = outcome.is_reply();
        // A success reads the clock only if the breaker needs it (a rate window, a slow-call
        // timer, a count to reset): the host call is saved on the healthy path.
        let mut clock = Clock::default();
        if exchange.copy.as_ref().is_some_and(|c| !c.complete) {
            // Answered before the client's body ended (an upstream that rejects early, Envoy's
            // own reply: no healthy upstream, an overflow). Envoy passes no more of the body to
            // the filters after that (measured in Envoy 1.40), so the copy can never be
            // completed, and a retry must carry every byte or not run.
            exchange.drop_copy(Dropped::Incomplete);
        }
        if !outcome.is_success() && exchange.copy.is_some() && exchange.started.is_none() {
            // A retry's deadline counts from the request's start, not read at admission.
            exchange.started = Some(host::request_start(clock.now()));
        }
        let retry_after = if outcome.is_success() {
            None
        } else {
            // Read on failures only: the router retrying too is what makes attempts multiply.
            if host::property_u64(host::path::ROUTER_ATTEMPTS).is_some_and(|n| n > 1) {
                w.metrics.add(&exchange.cluster, Counter::StackedRetries, 1);
            }
            host::header(MapType::HttpResponseHeaders, "retry-after")
        };
        match exchange.after_attempt(w, &outcome, retry_after.as_deref(), &mut clock) {
            Next::Retry { due } => {
                let job = Job {
                    root: self.root,
                    exchange,
                    stage: JobStage::Waiting { due },
                    last: Last::Held,
                    outcome,
                    held_body: !end_of_stream,
                    held_from_upstream: outcome.cause == Cause::Upstream,
                };
                retries::schedule(w, self.id, job, clock.now());
                self.stage = Stage::Retrying;
                Action::Pause
            }
            Next::Final(stop) => {
                exchange.finish(w, &outcome, stop, &mut clock);
                self.stage = Stage::Done;
                Action::Continue
            }
        }
    }

    /// The stream ends (completed or abandoned): release whatever it still holds.
    fn end(&mut self) {
        if self.stage == Stage::AwaitingStatus {
            // A gRPC stream that ended before its status: judged now, unless its client left.
            if let Some(outcome) = grpc::ended() {
                let _ = worker::with(|w| self.judge(w, outcome, true));
            }
        }
        let stage = std::mem::replace(&mut self.stage, Stage::Done);
        let exchange = self.exchange.take();
        if stage != Stage::Retrying && exchange.as_ref().is_none_or(|e| e.reported) {
            return;
        }
        let now = host::now();
        let id = self.id;
        worker::with(|w| {
            relay::drop_relay(w, id);
            // A delivered retry has no job left: nothing to end, and no properties to read.
            if stage == Stage::Retrying && w.retries.pending(id) {
                match ended_by_upstream_failure() {
                    Some(outcome) => retries::ended_by_envoy(w, id, &outcome, now),
                    None => retries::cancel(w, id, now),
                }
            }
            if let Some(mut exchange) = exchange {
                exchange.abandon(w, now);
            }
        });
    }
}

/// The outcome of the stream's response: `:status`, and for a 5xx, a 4xx the policy lists by
/// number (lists hold only 400..=599), or a missing status, Envoy's response flags and code
/// details, which tell the upstream's reply from Envoy's or another filter's (a rate limiter's
/// listed 429 is not the upstream's). Any other status needs no more host calls, and a status
/// below 400 not even the policy lookup.
fn response_outcome(listed: impl Fn(u16) -> bool) -> Outcome {
    let status = host::status(MapType::HttpResponseHeaders);
    match status {
        Some(code) if code < 400 || (code < 500 && !listed(code)) => {
            Outcome::http(status, Cause::Upstream)
        }
        _ => {
            let flags = host::property_u64(host::path::RESPONSE_FLAGS).unwrap_or(0);
            let details = host::property_str(host::path::RESPONSE_CODE_DETAILS).unwrap_or_default();
            Outcome::from_response(status, flags, &details)
        }
    }
}

/// Whether Envoy ended this stream itself because its upstream failed, and what the client got
/// then (see [`Outcome::of_ended_stream`]); read only when a stream ends while its response is
/// held for a retry.
fn ended_by_upstream_failure() -> Option<Outcome> {
    let flags = host::property_u64(host::path::RESPONSE_FLAGS).unwrap_or(0);
    let details = host::property_str(host::path::RESPONSE_CODE_DETAILS).unwrap_or_default();
    let status = host::property_u64(host::path::RESPONSE_CODE)
        .and_then(|code| u16::try_from(code).ok())
        .filter(|&code| code != 0);
    Outcome::of_ended_stream(status, flags, &details)
}

/// The bounds of the request's copy if it may be retried (`Ok(None)`: the policy never retries
/// it; `Err`: it would, but this request cannot be replayed). The copy starts with the headers;
/// its body follows in `on_http_request_body`.
fn copy_limits(
    config: &Config,
    effective: &Effective,
    shape: &Shape<'_>,
) -> Result<Option<Limits>, Dropped> {
    let Some(policy) = effective.retry.as_ref().filter(|r| r.max_attempts > 1) else {
        return Ok(None);
    };
    let Some(method) = shape.method else {
        return Ok(None);
    };
    if eligible(policy, method, shape.keyed).is_err() {
        return Ok(None);
    }
    // A tunnel (CONNECT, an upgrade to websocket or h2c) is a stream, not a request to replay.
    if method == "CONNECT" || shape.upgrade {
        return Ok(None);
    }
    if method == "HEAD" {
        return Err(Dropped::Head);
    }
    if shape.grpc_family {
        // A retried response is relayed as Envoy's local reply, which Envoy turns into a
        // trailers-only gRPC error for a gRPC request: the real status and message would be lost.
        return Err(Dropped::Grpc);
    }
    Ok(Some(Limits {
        body: policy.max_request_body,
        worker: config.policy.worker_buffer(),
    }))
}

/// Removes the client's `x-breakwater-*` headers, if `shape` saw any: a client cannot steer the
/// filter.
fn strip_steering(headers: &Pairs, shape: &Shape<'_>) {
    if !shape.steered {
        return;
    }
    for (name, _) in headers.iter() {
        if name.starts_with(b"x-breakwater-") {
            if let Ok(name) = std::str::from_utf8(name) {
                let _ = hostcalls::remove_map_value(MapType::HttpRequestHeaders, name);
            }
        }
    }
}

/// Sends the breaker's fallback: a gRPC reply to a gRPC request.
fn fallback(is_grpc: bool, policy: &BreakerPolicy, phase: Phase, retry_after: Duration) {
    if is_grpc {
        grpc::send_fallback(policy, phase, retry_after);
    } else {
        send_fallback(policy, phase, retry_after);
    }
}

/// The fallback for a request whose admission was given up under contention, if the breaker (as
/// last read) is not closed: its phase and when to come back.
fn contended_rejection(
    rng: &mut HostRng,
    policy: &BreakerPolicy,
    key: &str,
    now: Millis,
) -> Option<(Phase, Duration)> {
    if policy.mode != BreakerMode::Enforce {
        return None;
    }
    let mut breaker = shared::load::<Breaker>(key).state;
    if breaker.is_closed() {
        return None;
    }
    // A dry run on a copy: the rejection a new request would get. Where it would be admitted (a
    // probe slot looked free, but taking it lost every write), the request waits like one that
    // found every slot taken.
    Some(match breaker.admit(policy, now, rng).value {
        Admission::Rejected(rejection) => (rejection.phase, rejection.retry_after),
        Admission::Admitted(_) => (Phase::HalfOpen, HALF_OPEN_RETRY_AFTER),
    })
}

/// The `retry-after` of a request turned away because no probe slot could be taken.
const HALF_OPEN_RETRY_AFTER: Duration = Duration::from_secs(1);

impl Context for Stream {
    fn on_done(&mut self) -> bool {
        self.end();
        true
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.end();
    }
}

impl HttpContext for Stream {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        #[cfg(feature = "test-trap")]
        super::trap::on_request_headers();
        let Some(config) = self.config.clone() else {
            return Action::Continue;
        };
        worker::with(|w| self.admit(w, config, end_of_stream)).unwrap_or(Action::Continue)
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        // Once the response is being judged, the body no longer matters (see `Stream::judge`).
        if let (Stage::Forwarded, Some(exchange)) = (self.stage, self.exchange.as_mut()) {
            exchange.request_body(body_size, end_of_stream);
            if end_of_stream {
                exchange.request_received();
            }
        }
        Action::Continue
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        if let (Stage::Forwarded, Some(exchange)) = (self.stage, self.exchange.as_mut()) {
            exchange.request_trailers();
            exchange.request_received();
        }
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        if self.stage != Stage::Forwarded {
            return Action::Continue;
        }
        let outcome = if self.grpc {
            match grpc::at_headers(end_of_stream) {
                AtHeaders::Known(outcome) => outcome,
                AtHeaders::Pending => {
                    grpc::await_status(self.exchange.as_deref_mut());
                    self.stage = Stage::AwaitingStatus;
                    return Action::Continue;
                }
            }
        } else {
            let exchange = self.exchange.as_ref();
            response_outcome(|status| exchange.is_some_and(|e| e.lists_status(status)))
        };
        worker::with(|w| self.judge(w, outcome, end_of_stream)).unwrap_or(Action::Continue)
    }

    // A held response comes back through these once it is resumed (see `relay::deliver`).

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let hold = self.stage == Stage::Retrying
            && worker::with(|w| relay::write_body(w, self.id, body_size, end_of_stream))
                .unwrap_or(false);
        if hold {
            Action::Pause
        } else {
            Action::Continue
        }
    }

    fn on_http_response_trailers(&mut self, _num_trailers: usize) -> Action {
        match self.stage {
            Stage::AwaitingStatus => {
                let outcome = grpc::at_trailers();
                worker::with(|w| self.judge(w, outcome, true)).unwrap_or(Action::Continue)
            }
            Stage::Retrying => {
                worker::with(|w| relay::write_trailers(w, self.id));
                Action::Continue
            }
            _ => Action::Continue,
        }
    }
}
