//! What the test upstream does with the next request.
//!
//! # Decision order
//! 1. A scripted reply, if any is queued ([`Plan::script`]): tests that need "fail twice, then
//!    succeed" get exactly that, independent of timing and of which Envoy worker sends what.
//! 2. Otherwise, if the request's path has had fewer than `n` requests, the failure reply of
//!    [`Plan::set_path_failures`]: "every request fails its first `n` attempts" for many
//!    concurrent requests with distinct paths, whatever order their attempts arrive in.
//! 3. Otherwise, with probability `ratio`, the failure reply of [`Plan::set_failures`]. The draw
//!    comes from an RNG seeded by the test, so a run is reproducible for a given order of arrivals.
//! 4. Otherwise the default reply (200 unless changed).
//!
//! The delay (fixed, or drawn from a seeded range) and the `Retry-After` option apply to every
//! reply. Failures decided only when the reply is due ([`super::completion`]) come on top.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// How the upstream answers one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reply {
    /// An HTTP response with this status.
    Status(u16),
    /// Closes the connection with a TCP reset (RST) instead of answering.
    Reset,
    /// Closes the connection gracefully (FIN) instead of answering.
    Close,
    /// Answers with this status and a `content-length` of [`MID_BODY_DECLARED`] bytes, sends the
    /// first [`MID_BODY_SENT`] of them, then resets the connection (RST): the upstream that dies
    /// mid-body.
    ResetMidBody(u16),
    /// Answers with this status and a `content-length` of [`MID_BODY_DECLARED`] bytes, then
    /// resets the connection (RST) before any byte of the body: the upstream that dies right
    /// after its head.
    ResetAfterHead(u16),
    /// Reads the request and never answers: the connection stays open until the peer closes it
    /// or the upstream stops listening. Only a timeout gets the caller out.
    Never,
    /// Answers with this status before reading any of the request body, then reads the body to
    /// its end (or until the connection ends) and records what came: the upstream that rejects a
    /// request early, while the client is still sending.
    Early(u16),
    /// Reads the whole request body, then answers with this status and says what it received in
    /// [`BODY_BYTES_HEADER`] and [`BODY_HASH_HEADER`].
    Echo(u16),
    /// Answers with this status and a body of this many bytes, made as it is sent (the upstream
    /// never holds it whole): a large download.
    Large(u16, usize),
    /// Answers with this status, then shuts its connection down gracefully: over HTTP/2 a
    /// GOAWAY (streams already open finish, new ones must go to a new connection), over
    /// HTTP/1.1 a `connection: close`. The upstream that is being restarted or drained.
    GoAway(u16),
}

/// The response header of a [`Reply::Echo`]: how many body bytes the request carried.
pub const BODY_BYTES_HEADER: &str = "x-upstream-body-bytes";
/// The response header of a [`Reply::Echo`]: [`body_hash`] of the request body.
pub const BODY_HASH_HEADER: &str = "x-upstream-body-hash";

/// A fingerprint of a body (64-bit FNV-1a, in hex): two bodies with the same length and hash are
/// taken to be the same bytes. Not cryptographic; it only has to catch a replay that lost or
/// reordered bytes.
pub fn body_hash(body: &[u8]) -> String {
    let hash = body.iter().fold(0xcbf2_9ce4_8422_2325_u64, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{hash:016x}")
}

/// The body length a [`Reply::ResetMidBody`] announces in `content-length`.
pub const MID_BODY_DECLARED: usize = 2048;
/// The body bytes a [`Reply::ResetMidBody`] sends before its reset.
pub const MID_BODY_SENT: usize = 1024;

impl Reply {
    /// Whether the reply is an HTTP response with a 2xx status.
    pub fn is_success(self) -> bool {
        matches!(self, Reply::Status(s) | Reply::Early(s) | Reply::Echo(s) | Reply::Large(s, _) if (200..300).contains(&s))
    }
}

/// The reply to one request, with what comes along with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub reply: Reply,
    /// How long to wait before replying (or resetting).
    pub delay: Duration,
    /// A `Retry-After` header value for a non-2xx response.
    pub retry_after: Option<String>,
}

/// Random failures: each request fails with probability `ratio`.
#[derive(Debug)]
struct Failures {
    ratio: f64,
    reply: Reply,
    rng: StdRng,
}

/// Per-path failures: the first `per_path` requests of each path fail with `reply`.
#[derive(Debug)]
struct PathFailures {
    per_path: usize,
    reply: Reply,
    seen: HashMap<String, usize>,
}

/// The upstream's behaviour, changed by the test at run time.
#[derive(Debug)]
pub struct Plan {
    default: Reply,
    script: VecDeque<Reply>,
    path_failures: Option<PathFailures>,
    failures: Option<Failures>,
    delay: Duration,
    /// A random extra delay on top of `delay`, if set.
    spread: Option<Spread>,
    retry_after: Option<String>,
}

/// A random extra delay, uniform in `0..=extra`, drawn from a seeded RNG.
#[derive(Debug)]
struct Spread {
    extra: Duration,
    rng: StdRng,
}

impl Default for Plan {
    fn default() -> Self {
        Plan {
            default: Reply::Status(200),
            script: VecDeque::new(),
            path_failures: None,
            failures: None,
            delay: Duration::ZERO,
            spread: None,
            retry_after: None,
        }
    }
}

impl Plan {
    /// The reply when nothing else applies.
    pub fn set_default(&mut self, reply: Reply) {
        self.default = reply;
    }

    /// Queues replies for the next requests, in order, ahead of everything else.
    pub fn script(&mut self, replies: impl IntoIterator<Item = Reply>) {
        self.script.extend(replies);
    }

    /// Each request (after the script) fails with `reply` with probability `ratio` (clamped to
    /// 0..=1), drawn from an RNG seeded with `seed`.
    pub fn set_failures(&mut self, ratio: f64, reply: Reply, seed: u64) {
        self.failures = Some(Failures {
            ratio: ratio.clamp(0.0, 1.0),
            reply,
            rng: StdRng::seed_from_u64(seed),
        });
    }

    /// The first `per_path` requests of each distinct path (after the script) fail with `reply`;
    /// later requests of that path go on to the ratio and the default. Paths count from this call.
    pub fn set_path_failures(&mut self, per_path: usize, reply: Reply) {
        self.path_failures = Some(PathFailures {
            per_path,
            reply,
            seen: HashMap::new(),
        });
    }

    /// Turns per-path failures off.
    pub fn clear_path_failures(&mut self) {
        self.path_failures = None;
    }

    /// Turns random failures off.
    pub fn clear_failures(&mut self) {
        self.failures = None;
    }

    /// A fixed delay before every reply (and no random spread).
    pub fn set_delay(&mut self, delay: Duration) {
        self.delay = delay;
        self.spread = None;
    }

    /// A delay drawn for each reply, uniform between `min` and `max` (ms resolution), from an RNG
    /// seeded with `seed`.
    pub fn set_delay_range(&mut self, min: Duration, max: Duration, seed: u64) {
        self.delay = min;
        self.spread = Some(Spread {
            extra: max.saturating_sub(min),
            rng: StdRng::seed_from_u64(seed),
        });
    }

    /// A `Retry-After` value to send with every non-2xx response, or none.
    pub fn set_retry_after(&mut self, value: Option<String>) {
        self.retry_after = value;
    }

    /// Decides the next request's fate, for a request whose path is not known (per-path failures
    /// count it under the empty path).
    pub fn decide(&mut self) -> Decision {
        self.decide_for("")
    }

    /// Decides the fate of the next request, for `path` (with its query).
    pub fn decide_for(&mut self, path: &str) -> Decision {
        let reply = if let Some(reply) = self.script.pop_front() {
            reply
        } else if let Some(reply) = self.path_failure(path) {
            reply
        } else if let Some(failures) = &mut self.failures {
            if failures.rng.random::<f64>() < failures.ratio {
                failures.reply
            } else {
                self.default
            }
        } else {
            self.default
        };
        let extra = self.spread.as_mut().map_or(Duration::ZERO, |spread| {
            let ms = u64::try_from(spread.extra.as_millis()).unwrap_or(u64::MAX);
            Duration::from_millis(spread.rng.random_range(0..=ms))
        });
        Decision {
            reply,
            delay: self.delay + extra,
            retry_after: self.retry_after.clone(),
        }
    }
}

impl Plan {
    /// Counts a request of `path`; its failure reply while the path is within its first
    /// `per_path` requests.
    fn path_failure(&mut self, path: &str) -> Option<Reply> {
        let failures = self.path_failures.as_mut()?;
        let seen = failures.seen.entry(path.to_string()).or_insert(0);
        *seen += 1;
        (*seen <= failures.per_path).then_some(failures.reply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replies(plan: &mut Plan, n: usize) -> Vec<Reply> {
        (0..n).map(|_| plan.decide().reply).collect()
    }

    #[test]
    fn a_fresh_plan_answers_200() {
        let mut plan = Plan::default();
        assert_eq!(replies(&mut plan, 3), vec![Reply::Status(200); 3]);
    }

    #[test]
    fn scripted_replies_come_first_and_in_order() {
        let mut plan = Plan::default();
        plan.set_default(Reply::Status(204));
        plan.script([Reply::Status(503), Reply::Reset]);
        assert_eq!(
            replies(&mut plan, 3),
            vec![Reply::Status(503), Reply::Reset, Reply::Status(204)],
            "the script is consumed once, then the default applies"
        );
    }

    #[test]
    fn the_same_seed_fails_the_same_requests() {
        let run = || {
            let mut plan = Plan::default();
            plan.set_failures(0.5, Reply::Status(503), 7);
            replies(&mut plan, 64)
        };
        assert_eq!(run(), run(), "a seeded plan is reproducible");
    }

    #[test]
    fn the_failure_ratio_is_roughly_honoured() {
        let mut plan = Plan::default();
        plan.set_failures(0.25, Reply::Status(500), 42);
        let failed = replies(&mut plan, 4000)
            .into_iter()
            .filter(|r| *r == Reply::Status(500))
            .count();
        assert!(
            (800..1200).contains(&failed),
            "about a quarter of 4000 requests fail, got {failed}"
        );
    }

    #[test]
    fn per_path_failures_fail_each_paths_first_requests_in_any_interleaving() {
        let mut plan = Plan::default();
        plan.script([Reply::Status(418)]);
        plan.set_path_failures(2, Reply::Reset);
        let order = ["/a", "/b", "/a", "/c", "/b", "/a", "/b", "/c", "/c"];
        let got: Vec<Reply> = order.iter().map(|p| plan.decide_for(p).reply).collect();
        assert_eq!(
            got,
            vec![
                Reply::Status(418), // the script comes first (and does not count for /a)
                Reply::Reset,       // /b 1
                Reply::Reset,       // /a 1
                Reply::Reset,       // /c 1
                Reply::Reset,       // /b 2
                Reply::Reset,       // /a 2
                Reply::Status(200), // /b 3
                Reply::Reset,       // /c 2
                Reply::Status(200), // /c 3
            ]
        );
        plan.clear_path_failures();
        assert_eq!(plan.decide_for("/new").reply, Reply::Status(200));
    }

    #[test]
    fn ratios_zero_and_one_are_never_and_always() {
        let mut never = Plan::default();
        never.set_failures(0.0, Reply::Close, 1);
        assert!(replies(&mut never, 100).iter().all(|r| r.is_success()));
        let mut always = Plan::default();
        always.set_failures(1.0, Reply::Close, 1);
        assert!(replies(&mut always, 100).iter().all(|r| *r == Reply::Close));
    }

    #[test]
    fn a_delay_range_draws_each_delay_within_its_bounds() {
        let mut plan = Plan::default();
        plan.set_delay_range(Duration::from_millis(100), Duration::from_millis(200), 3);
        let delays: Vec<Duration> = (0..200).map(|_| plan.decide().delay).collect();
        assert!(delays
            .iter()
            .all(|d| (Duration::from_millis(100)..=Duration::from_millis(200)).contains(d)));
        assert!(
            delays.iter().any(|d| *d < Duration::from_millis(120))
                && delays.iter().any(|d| *d > Duration::from_millis(180)),
            "the range is used, not one point of it"
        );
        plan.set_delay(Duration::from_millis(5));
        assert_eq!(
            plan.decide().delay,
            Duration::from_millis(5),
            "a fixed delay ends the range"
        );
    }

    #[test]
    fn the_body_hash_tells_bodies_apart() {
        assert_eq!(body_hash(b""), "cbf29ce484222325", "FNV-1a's offset basis");
        assert_eq!(body_hash(b"a"), "af63dc4c8601ec8c");
        assert_ne!(body_hash(b"ab"), body_hash(b"ba"), "order matters");
    }

    #[test]
    fn delay_and_retry_after_come_with_every_reply() {
        let mut plan = Plan::default();
        plan.set_delay(Duration::from_millis(30));
        plan.set_retry_after(Some("2".to_string()));
        let decision = plan.decide();
        assert_eq!(decision.delay, Duration::from_millis(30));
        assert_eq!(decision.retry_after.as_deref(), Some("2"));
    }
}
