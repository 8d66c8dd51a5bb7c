//! One client request as the breaker and the retries see it, from admission to its final outcome.
//!
//! An [`Exchange`] starts in the request's HTTP context. If the first attempt fails in a way that
//! is retried, it moves into the worker's retry queue with the copy of the request and lives on
//! there until its last attempt; either way its final outcome is reported to the breaker exactly
//! once (`count_retries: false`: the breaker sits outside the retries) or every attempt is
//! (`count_retries: true`).
//!
//! This is the request's own state, and what reads only it and the request's bytes: the
//! worker's retry queue holds it, so it sits below the worker. Judging an attempt, which reports
//! to the breaker and draws on the worker's budget, randomness and metrics, is `judge`'s.

use std::rc::Rc;
use std::time::Duration;

use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, MapType};

use crate::core::breaker::Permit;
use crate::core::retry::deadline_allows;
use crate::core::Millis;
use crate::policy::{BreakerPolicy, Effective, Entry};

use super::config::Config;
use super::copy::{Dropped, RequestCopy};
use super::host;
use super::metrics::Slot;

/// The breaker and retry state of one client request.
#[derive(Debug)]
pub struct Exchange {
    pub config: Rc<Config>,
    /// The root context of the client's stream (whose timer runs the worker's flush for it).
    pub root: u32,
    pub cluster: Rc<str>,
    pub route: String,
    /// The request's entry in `config`'s policy, located once at admission.
    pub entry: Entry,
    /// The shared-data key of the cluster's breaker.
    pub breaker_key: Rc<str>,
    /// The cluster's metrics and budget batch in this worker.
    pub slot: Slot,
    /// The breaker's admission; `None` when the breaker is off for this request.
    pub permit: Option<Permit>,
    /// When the client request arrived; `None` while unknown: the clock is not read for a
    /// request that arrives at a quiet breaker, and the start is derived from Envoy's
    /// `request.time` when a failure needs it (a retry's deadline, [`super::host::request_start`]).
    pub started: Option<Millis>,
    /// When the current attempt started: read only where `slow_call` times it (the first
    /// attempt's then comes from the clock at admission) and at each retry's dispatch.
    pub attempt_started: Millis,
    /// Attempts made so far, the first included.
    pub attempts: u32,
    /// The delay before the current attempt (decorrelated jitter grows from it).
    pub previous_delay: Option<Duration>,
    /// The request copy; `None` when the request may not be retried.
    pub copy: Option<RequestCopy>,
    /// Why the copy was given up, if it was (the skip reason of a retry that then cannot run).
    pub dropped: Option<Dropped>,
    /// The latest attempt is no evidence about the upstream: a retry whose response could not be
    /// relayed (larger than the worker's byte budget), or a dispatched retry reset after an
    /// earlier attempt was answered. Envoy 1.40 drains a call's response past its async client
    /// buffer (32 MiB) and reports a plain reset, which the module cannot tell from a real one;
    /// a healthy upstream's large response must never open the breaker. If the request ends on
    /// such an attempt, the breaker hears nothing of it.
    pub inconclusive: bool,
    /// Some attempt of this request was answered (a reply, the upstream's or Envoy's): a reset
    /// after it may be a response Envoy dropped for its size (see `inconclusive`).
    pub answered: bool,
    /// The budget taken by the retry that is waiting or in flight.
    pub withdrawal: Option<crate::core::budget::Withdrawal>,
    /// The breaker has heard this request's final outcome, or its probe slot was given back.
    pub reported: bool,
    /// When the response headers came, for a response whose outcome comes later (a gRPC status
    /// in the trailers), if successes are timed: a slow call is timed to them, so a long-lived
    /// stream is not slow for lasting. `None`: timed to the outcome.
    pub responded: Option<Millis>,
}

impl Exchange {
    pub fn effective(&self) -> &Effective {
        self.config.policy.at(self.entry)
    }

    pub fn breaker_policy(&self) -> Option<&BreakerPolicy> {
        self.effective().breaker.as_ref()
    }

    pub fn count_retries(&self) -> bool {
        self.breaker_policy().is_some_and(|b| b.count_retries)
    }

    /// The retry that was waiting has been dispatched: its budget is spent for good.
    pub fn spend_budget(&mut self) {
        self.withdrawal = None;
    }

    /// A body chunk of `size` bytes passed (in the host's request body buffer); `end` when it
    /// ended the client's stream. Copied if the request is kept for retries, or the copy is given
    /// up whole.
    pub fn request_body(&mut self, size: usize, end: bool) {
        let Some(copy) = self.copy.as_mut() else {
            return;
        };
        if let Err(why) = copy.room_for(size) {
            self.drop_copy(why);
            return;
        }
        let chunk = if size == 0 {
            Some(Vec::new())
        } else {
            hostcalls::get_buffer(BufferType::HttpRequestBody, 0, size)
                .ok()
                .flatten()
        };
        let added = match chunk {
            Some(chunk) if chunk.len() == size => copy.add_body(&chunk, end),
            // A chunk the host would not hand over cannot be replayed exactly.
            _ => Err(Dropped::Unreadable),
        };
        if let Err(why) = added {
            self.drop_copy(why);
        }
    }

    /// Whether the breaker times calls (`slow_call`).
    pub fn times_calls(&self) -> bool {
        self.breaker_policy().is_some_and(|b| b.slow_call.is_some())
    }

    /// Whether `failure_on` or `retry_on` lists `status` by number (for a status below 500, the
    /// only way it can be acted on).
    pub fn lists_status(&self, status: u16) -> bool {
        let effective = self.effective();
        let breaker = effective.breaker.as_ref().map(|b| &b.failure_on);
        let retry = effective.retry.as_ref().map(|r| &r.retry_on);
        [breaker, retry]
            .into_iter()
            .flatten()
            .any(|m| m.codes.binary_search(&status).is_ok())
    }

    /// The client's request has fully arrived while its first attempt is under way: a slow call
    /// is timed from here, so a client that trickles its upload does not make the upstream look
    /// slow (the clock is read only when `slow_call` is on).
    pub fn request_received(&mut self) {
        if self.breaker_policy().is_some_and(|b| b.slow_call.is_some()) {
            self.attempt_started = host::now();
        }
    }

    /// The client's trailers arrived (they end its stream).
    pub fn request_trailers(&mut self) {
        let Some(copy) = self.copy.as_mut() else {
            return;
        };
        let trailers = host::header_pairs(MapType::HttpRequestTrailers);
        if let Err(why) = copy.add_trailers(trailers) {
            self.drop_copy(why);
        }
    }

    /// Whether an attempt starting at `now` can still finish (`per_try_timeout`) within the
    /// request's `deadline`.
    pub fn may_start_attempt(&self, now: Millis) -> bool {
        self.effective()
            .retry
            .as_ref()
            .is_some_and(|policy| deadline_allows(policy, self.started.unwrap_or(now), now))
    }

    /// Gives up the request copy: no retry of this request will run, for `why`.
    pub fn drop_copy(&mut self, why: Dropped) {
        self.copy = None;
        self.dropped.get_or_insert(why);
    }
}
