//! The worker's retries: their due-time queue ([`super::queue`]) driven by the root context's
//! tick, dispatched HTTP calls, and the hand-back of the final response to the waiting client
//! stream.
//!
//! # Flow
//! The stream pauses its failed response and hands its exchange here ([`schedule`]). When the
//! retry is due, the tick checks the breaker again and dispatches the request copy to the same
//! cluster with `x-breakwater-attempt: N` and `per_try_timeout` as the call's timeout. The call's
//! response (or its failure: an error from `dispatch_http_call`, a synthesized 503/504, or a
//! callback with no headers) is judged like the first attempt: another retry, or the end, where
//! the stream's held response is resumed, as it is or with that attempt's response written into
//! its place (see [`relay::deliver`]).
//!
//! # Refused dispatches
//! Envoy may refuse a dispatch at once: `InternalFailure` when `AsyncClient::send` fails inline
//! (no healthy upstream, the cluster's own circuit breaker overflowing), `BadArgument` when the
//! cluster is gone. Nothing reached the upstream, so it is no retry: `retries_total` counts only
//! dispatched calls, the refusal is counted as a skipped retry (reason `refused`) and its budget
//! goes back. It still uses one of `max_attempts` and is judged as a connection failure (which
//! decides whether to retry again, and counts for the breaker when every attempt counts), so a
//! cluster that keeps refusing is not retried forever. It changes nothing the client gets: if the
//! retries stop there, the client gets the last response that did arrive, and with
//! `count_retries: false` the breaker hears that response's outcome.
//!
//! # Timer and roots
//! Each root context serves the retries of its own streams: its tick period points at their
//! earliest due retry, or at the worker's flush of batched counts if that is nearer and runs on
//! this root (see [`super::worker`]), and is 0 while neither waits ([`super::timer`]). A stream's
//! callback that queues a retry sets its root's timer (proxy-wasm-cpp-host sets the timer of the
//! calling context's root), and the root
//! dispatches the retry from its tick, so the call belongs to that root too. A root outlives its
//! streams: after a reconfiguration the old root keeps ticking until its last stream ends, so a
//! retry queued under an older configuration is still served. A root must never dispatch another
//! root's retry: Envoy cancels a root's calls when it goes away with its last stream, and the
//! other root's client would wait for an answer that never comes.
//!
//! # Clients that leave
//! A stream that ends while its retry waits removes it ([`cancel`]): nothing is dispatched, the
//! budget goes back, and its root's timer moves to the next waiting retry (or turns off). A response that arrives for a stream that is gone is dropped without touching
//! the stream (`set_effective_context` on a finished context would fail).

use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, MapType};

use crate::core::outcome::{parse_status, Outcome};
use crate::core::pairs::Pairs;
use crate::core::retry::Stop;
use crate::core::Millis;

use super::config::Config;
use super::host::{self, Clock};
use super::judge::Next;
use super::memory::{self, Lease};
use super::metrics::{Counter, SkipReason};
use super::outbound;
use super::queue::{Job, Last, Stage};
use super::relay;
use super::reply::{self, Reply};
use super::timer;
use super::worker::{FlushTimer, Worker, FLUSH_AFTER};

/// Queues a retry of the stream `context_id` and arms its root's timer (a stream's callback sets
/// the timer of its own root).
pub fn schedule(w: &mut Worker, context_id: u32, job: Job, now: Millis) {
    let root = job.root;
    w.retries.insert_waiting(context_id, job);
    timer::arm(w, root, now);
}

/// The stream `context_id` ended while its retry waited or flew (the client left): drops the
/// retry and gives back what it held. An attempt of this request has failed already, so the
/// request is over with that failure: a full outage whose clients give up before their first
/// retry still opens the breaker.
pub fn cancel(w: &mut Worker, context_id: u32, now: Millis) {
    if let Some(mut job) = remove(w, context_id, now) {
        if job.exchange.inconclusive {
            // As if the request had ended on that reset: no outcome (its answer may have been a
            // large, healthy response), and a departure is no dropped response.
            job.exchange.abandon(w, now);
        } else {
            let outcome = job.outcome;
            job.exchange.finish(w, &outcome, None, &mut Clock::at(now));
        }
    }
}

/// Envoy ended the stream `context_id` on its own while its response was held for a retry (the
/// held response's upstream failed mid-body, and Envoy answered the client directly): drops the
/// retry, and the request is over with `outcome`, what the client got.
pub fn ended_by_envoy(w: &mut Worker, context_id: u32, outcome: &Outcome, now: Millis) {
    if let Some(mut job) = remove(w, context_id, now) {
        job.exchange.inconclusive = false;
        job.exchange.finish(w, outcome, None, &mut Clock::at(now));
    }
}

/// Takes the job of the stream `context_id` out of the queue, with its call or its timer.
fn remove(w: &mut Worker, context_id: u32, now: Millis) -> Option<Job> {
    let job = w.retries.jobs.remove(&context_id)?;
    match job.stage {
        Stage::InFlight { token } => {
            // Its response, if it ever comes, finds no job and is dropped; the token goes now so
            // that a call Envoy cancels (its root went away) leaves nothing behind.
            w.retries.calls.remove(&token);
        }
        // The root's timer may point at this retry: point it at the next one, or turn it off.
        // The stream's callback acts on its own root's timer, which is this job's root.
        Stage::Waiting { .. } => timer::arm(w, job.root, now),
    }
    Some(job)
}

/// The root's tick: flushes the worker's batched counts (under `config`, the root's, if it has
/// one), dispatches its due retries and re-arms its timer.
pub fn tick(w: &mut Worker, root_id: u32, now: Millis, config: Option<&Config>) {
    if let Some(config) = config {
        w.flush(config, now);
        w.flush_timer = w.pending().then_some(FlushTimer {
            root: root_id,
            due: now.saturating_add(FLUSH_AFTER),
        });
    }
    for (id, job) in w.retries.take_due(root_id, now) {
        dispatch(w, root_id, id, job, now);
    }
    timer::arm(w, root_id, now);
}

fn dispatch(w: &mut Worker, root_id: u32, id: u32, mut job: Job, now: Millis) {
    let exchange = &mut job.exchange;
    let stop = if exchange.effective().breaker.is_some() && !exchange.breaker_closed(w) {
        Some(Stop::Breaker)
    } else if !exchange.may_start_attempt(now) {
        // The deadline is checked again here, not only when the retry was planned: a tick can
        // come late (Envoy's timers are coarse, and a busy worker runs them when it can).
        Some(Stop::Deadline)
    } else {
        None
    };
    if let Some(stop) = stop {
        let outcome = job.outcome;
        job.exchange
            .finish(w, &outcome, Some(stop), &mut Clock::at(now));
        relay::deliver(w, root_id, id, job, stop == Stop::Breaker, now);
        return;
    }
    let attempt = exchange.attempts + 1;
    let (Some(copy), Some(policy)) = (exchange.copy.as_ref(), exchange.effective().retry.as_ref())
    else {
        // Unreachable (a waiting job has its complete copy and a retry policy), but never leave
        // a client without a response.
        let outcome = job.outcome;
        job.exchange.finish(w, &outcome, None, &mut Clock::at(now));
        relay::deliver(w, root_id, id, job, false, now);
        return;
    };
    let headers = reply::call_headers(copy, attempt);
    let dispatched = outbound::dispatch(
        &exchange.cluster,
        &headers,
        &copy.body,
        &copy.trailers,
        policy.per_try_timeout,
    );
    exchange.attempts = attempt;
    match dispatched {
        Ok(token) => {
            job.exchange.attempt_started = now;
            job.exchange.spend_budget();
            w.metrics.add(&job.exchange.cluster, Counter::Retries, 1);
            job.stage = Stage::InFlight { token };
            w.retries.calls.insert(token, id);
            w.retries.jobs.insert(id, job);
        }
        Err(status) => {
            log::debug!(
                "breakwater: retry {attempt} to cluster '{}' was refused by the host ({status:?})",
                job.exchange.cluster
            );
            // Nothing reached the upstream: no retry to count, and its budget goes back. A
            // refusal is evidence (the cluster cannot be reached), whatever came before it.
            job.exchange.give_back_budget(w, now);
            job.exchange.inconclusive = false;
            w.metrics
                .skipped(&job.exchange.cluster, SkipReason::Refused);
            conclude(w, root_id, id, job, Outcome::dispatch_failed(), None, now);
        }
    }
}

/// The root received the response of a dispatched retry.
pub fn call_response(
    w: &mut Worker,
    root_id: u32,
    token: u32,
    num_headers: usize,
    body_size: usize,
    now: Millis,
) {
    let Some(id) = w.retries.calls.remove(&token) else {
        return;
    };
    let Some(mut job) = w.retries.jobs.remove(&id) else {
        // The client went away while the retry was in flight.
        return;
    };
    // A reset call after an attempt that was answered: in Envoy 1.40 a real reset and a response
    // past the async client's buffer (32 MiB: Envoy drains it and resets the call) look the same
    // to the module. It is a failed attempt for the retries, and no evidence for the breaker.
    // Once any attempt was answered, every later reset is read this way.
    job.exchange.inconclusive = num_headers == 0 && job.exchange.answered;
    let headers = if num_headers == 0 {
        Pairs::default()
    } else {
        host::header_pairs(MapType::HttpCallResponseHeaders)
    };
    let text: Vec<(&str, &str)> = headers.iter_str().collect();
    let status = text
        .iter()
        .find(|(name, _)| *name == ":status")
        .and_then(|(_, value)| parse_status(value));
    let limit = job.exchange.config.policy.worker_buffer();
    // The previous retry's response, if one is held, is replaced by this one: its bytes are as
    // good as free (both are held for the moment this one is read).
    let replaced = match &job.last {
        Last::Reply(reply) => reply.held(),
        _ => 0,
    };
    let trailers = if num_headers == 0 {
        Pairs::default()
    } else {
        host::header_pairs(MapType::HttpCallResponseTrailers)
    };
    let size = body_size as u64 + (headers.as_bytes().len() + trailers.as_bytes().len()) as u64;
    let Some((body, lease)) = read_call_body(body_size, size, limit, replaced) else {
        // Too large to hold (or unreadable): the retry got an answer (its upstream is not at
        // fault), but the answer cannot be relayed.
        unrelayed(w, root_id, id, job, now);
        return;
    };
    let outcome = Outcome::from_call(&text, &body);
    job.exchange.answered |= outcome.is_reply();
    let reply = status.map(|status| Reply::from_call(status, &headers, body, trailers, lease));
    conclude(w, root_id, id, job, outcome, Some(reply), now);
}

/// Judges a retry's result: schedules the next one or delivers this one. `last` is `None` when
/// the attempt never left (the previous response stays the one to deliver).
fn conclude(
    w: &mut Worker,
    root_id: u32,
    id: u32,
    mut job: Job,
    outcome: Outcome,
    last: Option<Option<Reply>>,
    now: Millis,
) {
    let retry_after = match &last {
        Some(Some(reply)) => reply.header("retry-after").map(str::to_owned),
        _ => None,
    };
    if let Some(last) = last {
        // What the client gets if the retries stop here, and so the request's outcome. An
        // inconclusive reset replaces nothing: the client would get the last real answer.
        if !job.exchange.inconclusive {
            job.last = match last {
                Some(reply) => Last::Reply(reply),
                None => Last::Failed,
            };
            job.outcome = outcome;
        }
    }
    // This attempt's outcome decides whether to retry; an attempt that never left leaves the
    // request's outcome (the response its client will get) as it was.
    match job
        .exchange
        .after_attempt(w, &outcome, retry_after.as_deref(), &mut Clock::at(now))
    {
        Next::Retry { due } => {
            job.stage = Stage::Waiting { due };
            w.retries.insert_waiting(id, job);
        }
        Next::Final(stop) => {
            let breaker_stop = stop == Some(Stop::Breaker);
            let outcome = job.outcome;
            job.exchange.finish(w, &outcome, stop, &mut Clock::at(now));
            relay::deliver(w, root_id, id, job, breaker_stop, now);
        }
    }
}

/// The body of a call's response (`body_size` bytes; `size` with its headers), read into the
/// module if the worker's byte budget holds it once `replaced` bytes (the response it replaces)
/// are given back; `None` when it does not fit or the host hands over fewer bytes than it said.
fn read_call_body(
    body_size: usize,
    size: u64,
    limit: u64,
    replaced: u64,
) -> Option<(Vec<u8>, Lease)> {
    if memory::held().saturating_sub(replaced).saturating_add(size) > limit {
        return None;
    }
    let lease = Lease::take(size, limit.saturating_add(replaced))?;
    if body_size == 0 {
        return Some((Vec::new(), lease));
    }
    let body = hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, body_size)
        .ok()
        .flatten()?;
    (body.len() == body_size).then_some((body, lease))
}

/// A retry's response is too large for the worker's byte budget (or the host would not hand it
/// over whole): the retries stop, the client gets the response it would have got without this
/// retry, and the request reports no outcome to the breaker (a large response is no failure of
/// the upstream, and must never open it).
fn unrelayed(w: &mut Worker, root_id: u32, id: u32, mut job: Job, now: Millis) {
    job.exchange.inconclusive = true;
    let outcome = job.outcome;
    job.exchange.finish(w, &outcome, None, &mut Clock::at(now));
    relay::deliver(w, root_id, id, job, false, now);
}
