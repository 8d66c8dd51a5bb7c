//! One case as it runs: its requests, their tickets and waiting retries, the events still to
//! come, and what the filter must have done at each.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::time::Duration;

use breakwater_host_tests::{ms, StreamId, StreamState, World};
use proptest::prelude::*;

use super::model::{Model, Phase, Ticket};
use super::setup::{observed, Dispatch, Drawn, MAX_ATTEMPTS, MAX_TIMEOUT_MS, TIMEOUT_MS, WORKERS};
use crate::common::{is_fallback, module_now};

#[derive(Debug, Clone, Copy)]
pub enum Event {
    Admit(usize),
    /// The first attempt of request `.0` is answered.
    Answer(usize),
    /// Attempt `.1` (a retry) of request `.0` is answered.
    Retried(usize, usize),
    BodyEnds(usize),
    Leave(usize),
}

/// Attempt `n`'s latency for request `i`: see the module docs' "Instants". A retry also carries
/// `1 + i` ns: it starts at a timer's instant, which bears another request's µs.
fn latency(r: &Drawn, i: usize, n: usize) -> Duration {
    let tag = 1 + i as u64;
    let retry = if n > 1 { tag } else { 0 };
    ms(r.answers[n - 1].1) + Duration::from_micros(tag) + Duration::from_nanos(retry)
}

/// `x-answer`: status and latency (ns) of every attempt.
fn answer_header(r: &Drawn, i: usize) -> String {
    (1..=MAX_ATTEMPTS)
        .map(|n| {
            let status = if r.failed(n) { 503 } else { 200 };
            format!("{status} {}", latency(r, i, n).as_nanos())
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn send(w: &mut World, cluster: &str, r: &Drawn, i: usize) -> StreamId {
    let mut b = w
        .request(r.worker)
        .cluster(cluster)
        .header("x-id", &i.to_string())
        .header("x-answer", &answer_header(r, i));
    if let Some(body) = &r.body {
        b = b.body_chunks((1..=body.chunks).map(|k| (ms(k * body.every), vec![b'x'; 64])));
        if body.end_after.is_some() {
            b = b.end_stream_after(ms(body.end()));
        }
        if body.early {
            b = b.header("x-early", "1");
        }
    }
    if let Some(after) = r.leaves {
        b = b.disconnect_after(ms(after) + Duration::from_micros(1 + i as u64));
    }
    b.send()
}

/// One case's requests as they go.
pub struct Case<'a> {
    pub w: &'a mut World,
    pub cluster: String,
    pub attempts: usize,
    pub requests: &'a [Drawn],
    pub model: Model,
    pub streams: Vec<Option<StreamId>>,
    pub tickets: Vec<Ticket>,
    /// The attempt each request's waiting retry will be (0: none waits).
    pub waiting: Vec<usize>,
    pub events: BTreeMap<(Duration, usize), Event>,
    pub added: usize,
}

impl Case<'_> {
    pub fn push(&mut self, at: Duration, event: Event) {
        self.events.insert((at, self.added), event);
        self.added += 1;
    }

    /// Records request `i`'s final outcome in the model, and checks that the filter opened the
    /// breaker exactly when the model does, for an open time within the policy's bounds.
    pub fn record(&mut self, i: usize, failed: bool) -> Result<(), TestCaseError> {
        // A success may wait in its worker for the flush: the flush runs now.
        for worker in 0..WORKERS {
            self.w.fire_timer(worker);
        }
        let now = module_now(self.w);
        if !self.model.record(self.tickets[i], failed, now) {
            return Ok(());
        }
        let Phase::Open { until } = observed(self.w, &self.cluster) else {
            return Err(TestCaseError::fail(format!(
                "request {i}: the model opens the breaker, the filter did not ({:?})",
                observed(self.w, &self.cluster)
            )));
        };
        prop_assert!(
            until >= now + TIMEOUT_MS * 9 / 10 && until <= now + MAX_TIMEOUT_MS * 11 / 10,
            "an open time within the policy's bounds: {} ms",
            until.saturating_sub(now)
        );
        self.model.open(until);
        Ok(())
    }

    /// Whether the filter retries a failed attempt `n` of request `i` now: attempts are left, the
    /// body was whole when the first answer came, and the breaker is closed.
    pub fn retries(&self, i: usize, n: usize) -> bool {
        let r = &self.requests[i];
        r.failed(n) && n < self.attempts && r.complete_when_answered() && self.model.is_closed()
    }

    /// Attempt `n` of request `i` was answered: the final one reaches the client and is
    /// recorded, an earlier one is held while its retry waits.
    pub fn answered(&mut self, i: usize, n: usize) -> Result<(), TestCaseError> {
        let s = self.streams[i].expect("sent");
        let response = self.w.response(s);
        if self.retries(i, n) {
            prop_assert!(response.is_none(), "request {}: attempt {} is held", i, n);
            self.waiting[i] = n + 1;
            return Ok(());
        }
        let Some(response) = response else {
            return Err(TestCaseError::fail(format!(
                "request {i}: attempt {n} is final, its answer reaches the client at once ({:?})",
                self.w.stream_state(s)
            )));
        };
        let failed = self.requests[i].failed(n);
        // A retry wanted but stopped by the breaker (it opened while this one flew): an enforcing
        // breaker that would reject a new request now answers with its fallback instead.
        let breaker_stop = n > 1 && failed && n < self.attempts && !self.model.is_closed();
        self.record(i, failed)?;
        if breaker_stop && self.model.would_reject(module_now(self.w)) {
            prop_assert!(is_fallback(&response), "request {}: {:?}", i, response);
            return Ok(());
        }
        prop_assert_eq!(response.status, if failed { 503 } else { 200 });
        let attempts = (n > 1).then(|| n.to_string());
        prop_assert_eq!(
            response.header("x-breakwater-attempts"),
            attempts.as_deref(),
            "request {}: attempt {} is final ({:?})",
            i,
            n,
            response
        );
        Ok(())
    }

    /// Reads the retries the upstream saw since the last look, and schedules their answers; a
    /// waiting retry that ended without a dispatch (the breaker was no longer closed at its
    /// tick) must be of a request whose outcome no longer counts.
    pub fn dispatches(&mut self, log: &RefCell<Vec<Dispatch>>) -> Result<(), TestCaseError> {
        let seen: Vec<_> = log.borrow_mut().drain(..).collect();
        for d in seen {
            let i = d.request;
            prop_assert!(
                i < self.requests.len() && self.waiting[i] == d.attempt,
                "an unexpected retry: {:?}",
                d
            );
            self.waiting[i] = 0;
            let at = d.at + latency(&self.requests[i], i, d.attempt);
            prop_assert!(at > self.w.now(), "the answer of {:?} is still ahead", d);
            self.push(at, Event::Retried(i, d.attempt));
        }
        for i in 0..self.requests.len() {
            let s = self.streams[i].filter(|_| self.waiting[i] != 0);
            if s.is_some_and(|s| self.w.stream_state(s) == StreamState::Complete) {
                prop_assert!(
                    !self.model.is_current(self.tickets[i]),
                    "request {}: its retry was dropped while its outcome still counts",
                    i
                );
                self.waiting[i] = 0;
            }
        }
        Ok(())
    }

    pub fn handle(&mut self, event: Event) -> Result<(), TestCaseError> {
        match event {
            Event::Admit(i) => {
                let s = send(self.w, &self.cluster, &self.requests[i], i);
                self.streams[i] = Some(s);
                self.tickets[i] = self.model.admit(module_now(self.w));
                let fallback = self.w.response(s).is_some_and(|resp| is_fallback(&resp));
                prop_assert_eq!(
                    fallback,
                    self.tickets[i] == Ticket::Rejected,
                    "request {}: the filter's admission differs from the model's ({:?})",
                    i,
                    self.model.phase
                );
            }
            Event::Answer(i) if self.tickets[i] != Ticket::Rejected => self.answered(i, 1)?,
            Event::Retried(i, n) => self.answered(i, n)?,
            Event::Leave(i) if self.tickets[i] != Ticket::Rejected => {
                let s = self.streams[i].expect("sent");
                prop_assert_eq!(self.w.stream_state(s), StreamState::Disconnected);
                self.model.release(self.tickets[i]);
            }
            Event::BodyEnds(i) => {
                // Answered before its body ended, a request is over: Envoy dropped the rest of the
                // body, and the filter holds nothing for it.
                let r = &self.requests[i];
                let admitted = self.tickets[i] != Ticket::Rejected && r.leaves.is_none();
                if admitted && !r.complete_when_answered() {
                    let s = self.streams[i].expect("sent");
                    prop_assert_eq!(self.w.stream_state(s), StreamState::Complete);
                }
            }
            Event::Answer(_) | Event::Leave(_) => {}
        }
        Ok(())
    }
}
