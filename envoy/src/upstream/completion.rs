//! The order in which the upstream's replies went out, and failures decided at that moment.
//!
//! # Why completion order
//! A breaker that counts consecutive failures sees outcomes in the order responses come back,
//! not the order requests arrived: with many requests in flight and varied latencies the two
//! differ. A test that claims "there never were `n` failures in a row" must therefore look at
//! the completion order, which [`Completions::log`] keeps.
//!
//! # Why decide at completion
//! [`Plan`](super::Plan) decides a request's fate when it arrives. Failures decided when the
//! reply is due instead ([`Completions::fail_at_completion`]) can honour a cap on consecutive
//! failures in completion order: "about 10% fail at random, never more than 3 in a row" holds by
//! construction, so a breaker that opens on such an upstream opened on its own error, never on
//! the luck of the draw.

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use super::plan::Reply;

/// One reply as it went out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// The request's path with its query.
    pub path: String,
    /// What the upstream did (after any failure decided at completion).
    pub reply: Reply,
}

/// Failures decided when the reply is due.
#[derive(Debug)]
struct AtCompletion {
    ratio: f64,
    reply: Reply,
    /// The most failures in a row this ever gives, in completion order.
    max_run: usize,
    rng: StdRng,
    /// Failures in a row so far.
    run: usize,
}

/// The completion log and the failures decided at completion.
#[derive(Debug, Default)]
pub struct Completions {
    at_completion: Option<AtCompletion>,
    log: Vec<Completion>,
}

impl Completions {
    /// From now on, each reply that would succeed fails with `reply` instead, with probability
    /// `ratio` (clamped to 0..=1), unless the last `max_run` replies all failed (`reply` must be
    /// a failure).
    pub fn fail_at_completion(&mut self, ratio: f64, reply: Reply, max_run: usize, seed: u64) {
        self.at_completion = Some(AtCompletion {
            ratio: ratio.clamp(0.0, 1.0),
            reply,
            max_run,
            rng: StdRng::seed_from_u64(seed),
            run: 0,
        });
    }

    /// Stops deciding failures at completion.
    pub fn no_failures_at_completion(&mut self) {
        self.at_completion = None;
    }

    /// The reply for `path` now that it is due (`planned` is what the plan decided on arrival),
    /// logged in completion order.
    pub fn complete(&mut self, path: &str, planned: Reply) -> Reply {
        let reply = match &mut self.at_completion {
            Some(c) => {
                let fails =
                    planned.is_success() && c.run < c.max_run && c.rng.random::<f64>() < c.ratio;
                let reply = if fails { c.reply } else { planned };
                // Every failure counts in the run, a planned one too.
                c.run = if reply.is_success() { 0 } else { c.run + 1 };
                reply
            }
            None => planned,
        };
        self.log.push(Completion {
            path: path.to_string(),
            reply,
        });
        reply
    }

    /// Every completion so far, in order.
    pub fn log(&self) -> &[Completion] {
        &self.log
    }

    pub fn clear(&mut self) {
        self.log.clear();
    }
}

/// The longest run of consecutive replies in `log` for which `failed` holds.
pub fn longest_run(log: &[Completion], failed: impl Fn(&Completion) -> bool) -> usize {
    let (mut longest, mut run) = (0, 0);
    for completion in log {
        run = if failed(completion) { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    longest
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(completions: &mut Completions, n: usize) -> Vec<Reply> {
        (0..n)
            .map(|i| completions.complete(&format!("/{i}"), Reply::Status(200)))
            .collect()
    }

    #[test]
    fn without_failures_at_completion_the_planned_reply_goes_out_and_is_logged() {
        let mut completions = Completions::default();
        assert_eq!(completions.complete("/a", Reply::Reset), Reply::Reset);
        assert_eq!(
            completions.log(),
            [Completion {
                path: "/a".to_string(),
                reply: Reply::Reset
            }]
        );
    }

    #[test]
    fn failures_at_completion_never_exceed_the_run_cap() {
        let mut completions = Completions::default();
        // Nine in ten would fail, but never more than three in a row.
        completions.fail_at_completion(0.9, Reply::Status(503), 3, 5);
        let replies = run(&mut completions, 2000);
        let failed = |c: &Completion| c.reply == Reply::Status(503);
        assert_eq!(longest_run(completions.log(), failed), 3);
        let failures = replies.iter().filter(|r| **r == Reply::Status(503)).count();
        assert!(failures > 1000, "the ratio still shows: {failures} of 2000");
    }

    #[test]
    fn the_ratio_is_roughly_honoured_below_the_cap() {
        let mut completions = Completions::default();
        completions.fail_at_completion(0.1, Reply::Status(503), 3, 9);
        let failures = run(&mut completions, 5000)
            .iter()
            .filter(|r| **r == Reply::Status(503))
            .count();
        assert!(
            (400..600).contains(&failures),
            "about a tenth of 5000 fail, got {failures}"
        );
    }

    #[test]
    fn a_planned_failure_is_left_alone_but_counts_in_the_run() {
        let mut completions = Completions::default();
        completions.fail_at_completion(1.0, Reply::Status(503), 2, 1);
        assert_eq!(
            completions.complete("/a", Reply::Reset),
            Reply::Reset,
            "only replies that would succeed are turned into failures"
        );
        assert_eq!(
            completions.complete("/b", Reply::Status(200)),
            Reply::Status(503)
        );
        assert_eq!(
            completions.complete("/c", Reply::Status(200)),
            Reply::Status(200),
            "the reset and the 503 make the cap's two failures in a row"
        );
        assert_eq!(
            completions.complete("/d", Reply::Status(200)),
            Reply::Status(503),
            "a success starts the run again"
        );
    }

    #[test]
    fn the_longest_run_is_counted_in_log_order() {
        let log: Vec<Completion> = [503, 200, 503, 503, 503, 200, 503]
            .iter()
            .map(|&s| Completion {
                path: "/".to_string(),
                reply: Reply::Status(s),
            })
            .collect();
        assert_eq!(longest_run(&log, |c| c.reply == Reply::Status(503)), 3);
        assert_eq!(longest_run(&[], |_| true), 0);
    }
}
