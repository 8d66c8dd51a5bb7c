//! The HTTP context: one per client request.
//!
//! # Request
//! Client `x-breakwater-*` headers are removed (a client cannot steer the filter). The route's
//! cluster (`xds.cluster_name`) and name (`xds.route_name`) select the effective policy. The
//! cluster's breaker admits the request, admits it as a half-open probe, or rejects it with the
//! fallback, and the upstream is not contacted. A request that may be retried is copied as it
//! passes (headers, then the body up to `max_request_body`): the filter never holds the request
//! back to copy it.
//!
//! # Response
//! The first attempt's response is classified. A failure that will be retried is paused here and
//! the request moves to the worker's retry queue ([`super::retries`]); otherwise the outcome goes to
//! the breaker and the response flows on untouched. The filter's own replies (fallback, the
//! retried response) come back through this context's response callbacks and pass through.

use std::rc::Rc;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, BufferType, MapType};

use crate::core::breaker::{Admission, Breaker, Events, Phase};
use crate::core::outcome::{Cause, Outcome};
use crate::core::pairs::Pairs;
use crate::core::retry::eligible;
use crate::policy::{BreakerMode, Effective};

use super::exchange::{Exchange, Next, RequestCopy};
use super::host;
use super::metrics::Counter;
use super::reply::send_fallback;
use super::retries::{self, Job, Last, Stage as JobStage};
use super::root::Config;
use super::shared;
use super::worker::{self, Worker};

/// What the breaker's admission said, read inside the compare-and-swap loop.
#[derive(Debug, Clone, Copy)]
struct Gate {
    admission: Admission,
    events: Events,
    phase: Phase,
    /// A success of this request will change nothing (`Breaker::success_is_noop`).
    quiet: bool,
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
    exchange: Option<Exchange>,
}

impl Stream {
    pub fn new(id: u32, root: u32, config: Option<Rc<Config>>) -> Stream {
        Stream {
            id,
            root,
            config,
            stage: Stage::PassThrough,
            exchange: None,
        }
    }

    /// Gates a new request; returns the action for `on_http_request_headers`.
    fn admit(&mut self, w: &mut Worker, config: Rc<Config>) -> Action {
        let now = host::now();
        // One buffer as the host wrote it: no allocation per header on the request path.
        let headers = host::header_pairs(MapType::HttpRequestHeaders);
        for name in headers
            .iter()
            .map(|(n, _)| n)
            .filter(|n| n.starts_with(b"x-breakwater-"))
        {
            if let Ok(name) = std::str::from_utf8(name) {
                let _ = hostcalls::remove_map_value(MapType::HttpRequestHeaders, name);
            }
        }
        let Some(cluster) = host::property_str(host::path::CLUSTER_NAME).filter(|c| !c.is_empty())
        else {
            return Action::Continue;
        };
        // The route's name matters only to a policy with route overrides; each property read is a
        // host call on every request.
        let route = if config.policy.names_routes() {
            host::property_str(host::path::ROUTE_NAME).unwrap_or_default()
        } else {
            String::new()
        };
        let effective = config.policy.lookup(&cluster, &route);
        w.metrics.add(&cluster, Counter::Requests, 1);

        let mut permit = None;
        let mut quiet_success = false;
        if let Some(policy) = effective.breaker.as_ref() {
            let key = config.keys.breaker(&cluster);
            let rng = &mut w.rng;
            let updated = shared::update::<Breaker, _>(&key, |b| {
                let step = b.admit(policy, now, rng);
                let quiet = match step.value {
                    Admission::Admitted(permit) => b.success_is_noop(policy, permit),
                    Admission::Rejected(_) => false,
                };
                let gate = Gate {
                    admission: step.value,
                    events: step.events,
                    phase: b.phase(),
                    quiet,
                };
                (gate, step.changed)
            });
            let gate = updated.value;
            if let Some(gate) = gate {
                w.metrics.init_state(&cluster, gate.phase.gauge());
                quiet_success = gate.quiet;
            }
            let shadow_rejected = gate.is_some_and(|g| g.events.would_reject().is_some());
            w.observe(
                &cluster,
                &key,
                shared::Updated {
                    value: gate.map(|g| g.events),
                    error: updated.error,
                },
            );
            match gate.map(|g| g.admission) {
                Some(Admission::Rejected(rejection)) => {
                    if policy.mode == BreakerMode::ForcedOpen {
                        // The kill switch leaves the shared state alone; the gauge says "open".
                        w.metrics.state(&cluster, Phase::Open.gauge());
                    }
                    send_fallback(policy, rejection.phase, rejection.retry_after);
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
                // Shared data too contended to decide: fail open, unrecorded.
                None => {}
            }
        }

        if let Some(budget) = effective.retry.as_ref().and_then(|r| r.budget.as_ref()) {
            w.count_request(&config.keys, &cluster, budget, now);
        }
        let copy = request_copy(effective, headers);
        self.exchange = Some(Exchange {
            config: Rc::clone(&config),
            cluster,
            route,
            permit,
            started: now,
            attempt_started: now,
            attempts: 1,
            previous_delay: None,
            copy,
            withdrawal: None,
            reported: false,
            quiet_success,
        });
        self.stage = Stage::Forwarded;
        Action::Continue
    }

    /// Judges the first attempt's response.
    fn judge(&mut self, w: &mut Worker) -> Action {
        let Some(mut exchange) = self.exchange.take() else {
            self.stage = Stage::Done;
            return Action::Continue;
        };
        let outcome = response_outcome();
        // A success that changes nothing in the breaker needs no clock (the host call is saved on
        // the success path); the request's start time stands in.
        let now = if outcome.is_success() && exchange.quiet_success {
            exchange.started
        } else {
            host::now()
        };
        let retry_after = if outcome.is_success() {
            None
        } else {
            host::header(MapType::HttpResponseHeaders, "retry-after")
        };
        match exchange.after_attempt(w, &outcome, retry_after.as_deref(), now) {
            Next::Retry { due } => {
                let job = Job {
                    root: self.root,
                    exchange,
                    stage: JobStage::Waiting { due },
                    last: Last::Held,
                    outcome,
                };
                retries::schedule(w, self.id, job, now);
                self.stage = Stage::Retrying;
                Action::Pause
            }
            Next::Final(stop) => {
                exchange.finish(w, &outcome, stop, now);
                self.stage = Stage::Done;
                Action::Continue
            }
        }
    }

    /// The stream ends (completed or abandoned): release whatever it still holds.
    fn end(&mut self) {
        let stage = std::mem::replace(&mut self.stage, Stage::Done);
        let exchange = self.exchange.take();
        if stage != Stage::Retrying && exchange.as_ref().is_none_or(|e| e.reported) {
            return;
        }
        let now = host::now();
        let id = self.id;
        worker::with(|w| {
            if stage == Stage::Retrying {
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

/// The outcome of the stream's response: `:status`, and for 5xx or a missing status Envoy's
/// response flags and code details (a 2xx–4xx needs no more host calls).
fn response_outcome() -> Outcome {
    let status = host::status(MapType::HttpResponseHeaders);
    match status {
        Some(code) if code < 500 => Outcome {
            status,
            cause: Cause::Upstream,
        },
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

/// A copy of the request if it may be retried; the body follows in `on_http_request_body`.
fn request_copy(effective: &Effective, headers: Pairs) -> Option<RequestCopy> {
    let policy = effective.retry.as_ref().filter(|r| r.max_attempts > 1)?;
    let method = std::str::from_utf8(headers.get(":method")?).ok()?;
    let has_key = policy
        .idempotency_header
        .as_deref()
        .is_some_and(|key| headers.get(key).is_some());
    eligible(policy, method, has_key).ok()?;
    // The SDK can only send UTF-8 names and values: a request it cannot replay is not retried.
    if !headers.is_utf8() {
        return None;
    }
    Some(RequestCopy {
        headers,
        body: Vec::new(),
        trailers: Vec::new(),
    })
}

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
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let Some(config) = self.config.clone() else {
            return Action::Continue;
        };
        worker::with(|w| self.admit(w, config)).unwrap_or(Action::Continue)
    }

    fn on_http_request_body(&mut self, body_size: usize, _end_of_stream: bool) -> Action {
        let Some(exchange) = self.exchange.as_mut() else {
            return Action::Continue;
        };
        let Some(copy) = exchange.copy.as_mut() else {
            return Action::Continue;
        };
        let limit = exchange
            .config
            .policy
            .lookup(&exchange.cluster, &exchange.route)
            .retry
            .as_ref()
            .map_or(0, |r| r.max_request_body);
        if (copy.body.len() + body_size) as u64 > limit {
            // Forwarded, but too large to keep for a retry.
            exchange.copy = None;
            return Action::Continue;
        }
        if let Ok(Some(chunk)) = hostcalls::get_buffer(BufferType::HttpRequestBody, 0, body_size) {
            copy.body.extend_from_slice(&chunk);
        }
        Action::Continue
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        let Some(exchange) = self.exchange.as_mut() else {
            return Action::Continue;
        };
        if exchange.copy.is_none() {
            return Action::Continue;
        }
        let trailers: Option<Vec<(String, String)>> = host::headers(MapType::HttpRequestTrailers)
            .into_iter()
            .map(|(name, value)| Some((name, value?)))
            .collect();
        match trailers {
            Some(trailers) => {
                if let Some(copy) = exchange.copy.as_mut() {
                    copy.trailers = trailers;
                }
            }
            // The SDK can only send UTF-8 values: a request it cannot replay is not retried.
            None => exchange.copy = None,
        }
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        if self.stage != Stage::Forwarded {
            return Action::Continue;
        }
        worker::with(|w| self.judge(w)).unwrap_or(Action::Continue)
    }
}
