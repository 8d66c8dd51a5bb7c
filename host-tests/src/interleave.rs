//! How the harness orders work that real Envoy workers would do at the same time.
//!
//! # Model
//! Envoy's workers run in parallel; within one worker everything is sequential (one event loop,
//! one VM). The harness runs one thing at a time, so it must pick an order wherever real workers
//! could overlap:
//! - **Simultaneous events.** When events of several VMs are due at the same virtual instant,
//!   the interleaving picks which VM goes next. Events of one VM keep their order.
//! - **Preemption at shared state.** Just before a VM touches process-wide state
//!   (`get_shared_data`, `set_shared_data`, queue calls), the interleaving may run a whole event
//!   of another, idle VM that is due at the same instant. That is how a worker's read and its
//!   compare-and-swap write can be split by another worker's write, as on real threads.
//!
//! [`Interleaving::fifo`] (the default) always picks the oldest event and never preempts, so a
//! test that does not care gets the obvious order. [`Interleaving::seeded`] explores at random;
//! [`Interleaving::from_choices`] takes its decisions from a list, which is what a proptest
//! strategy generates and shrinks (shrinking toward zeros means toward FIFO).

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// A deterministic source of scheduling decisions; see the module docs.
#[derive(Debug)]
pub struct Interleaving {
    source: Source,
    preemption: bool,
}

#[derive(Debug)]
enum Source {
    Fifo,
    Seeded(Box<StdRng>),
    Choices { choices: Vec<u8>, next: usize },
}

impl Default for Interleaving {
    fn default() -> Self {
        Self::fifo()
    }
}

impl Interleaving {
    /// Oldest event first, no preemption.
    pub fn fifo() -> Self {
        Interleaving {
            source: Source::Fifo,
            preemption: false,
        }
    }

    /// Random but reproducible decisions, preemption on.
    pub fn seeded(seed: u64) -> Self {
        Interleaving {
            source: Source::Seeded(Box::new(StdRng::seed_from_u64(seed))),
            preemption: true,
        }
    }

    /// Decisions taken from `choices` in order (each reduced modulo the number of options;
    /// 0 is the FIFO choice), FIFO once they run out. Preemption on.
    pub fn from_choices(choices: impl Into<Vec<u8>>) -> Self {
        Interleaving {
            source: Source::Choices {
                choices: choices.into(),
                next: 0,
            },
            preemption: true,
        }
    }

    /// Turns preemption at shared-state calls on or off.
    pub fn with_preemption(mut self, on: bool) -> Self {
        self.preemption = on;
        self
    }

    /// Which of `options` (≥ 1) candidates goes next; 0 is the oldest.
    pub(crate) fn pick(&mut self, options: usize) -> usize {
        if options <= 1 {
            return 0;
        }
        match &mut self.source {
            Source::Fifo => 0,
            Source::Seeded(rng) => rng.random_range(0..options),
            Source::Choices { choices, next } => {
                let choice = choices.get(*next).copied().unwrap_or(0);
                *next += 1;
                usize::from(choice) % options
            }
        }
    }

    /// Whether to let one of `candidates` (≥ 1) run first, and which.
    pub(crate) fn preempt(&mut self, candidates: usize) -> Option<usize> {
        if !self.preemption || candidates == 0 {
            return None;
        }
        match self.pick(candidates + 1) {
            0 => None,
            n => Some(n - 1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_always_picks_the_oldest_and_never_preempts() {
        let mut fifo = Interleaving::fifo();
        assert_eq!(fifo.pick(4), 0);
        assert_eq!(fifo.preempt(3), None);
    }

    #[test]
    fn choices_are_used_in_order_then_fall_back_to_fifo() {
        let mut il = Interleaving::from_choices(vec![3, 1, 2]);
        assert_eq!(il.pick(2), 1, "3 mod 2");
        assert_eq!(
            il.preempt(2),
            Some(0),
            "choice 1 of 3 options is the first candidate"
        );
        assert_eq!(il.preempt(2), Some(1));
        assert_eq!(il.pick(5), 0, "exhausted choices mean FIFO");
    }

    #[test]
    fn the_same_seed_makes_the_same_decisions() {
        let mut a = Interleaving::seeded(7);
        let mut b = Interleaving::seeded(7);
        let da: Vec<usize> = (0..32).map(|_| a.pick(4)).collect();
        let db: Vec<usize> = (0..32).map(|_| b.pick(4)).collect();
        assert_eq!(da, db);
        assert!(da.iter().any(|&d| d != 0), "a seed explores beyond FIFO");
    }
}
