//! The live view: plain lines, safe in any terminal and in CI logs.
//!
//! On a terminal the progress line is rewritten in place (`\r`, then "erase to end of line");
//! anywhere else (a pipe, a CI log) a progress line is printed once a second instead. Events and
//! phase headers are always whole lines.

use std::io::{self, Write};
use std::time::{Duration, Instant};

use crate::load::Counts;
use crate::phases::Phase;
use crate::stage::Breakers;

/// How often a progress line is printed when the output is not a terminal.
const PLAIN_EVERY: Duration = Duration::from_secs(1);
const BAR: usize = 10;

/// Where the demo writes.
pub struct View<'a> {
    out: &'a mut dyn Write,
    /// Rewrite the progress line in place.
    tty: bool,
    /// A progress line is on screen without its newline (terminal only).
    pending: bool,
    last_plain: Option<Instant>,
}

impl<'a> View<'a> {
    pub fn new(out: &'a mut dyn Write, tty: bool) -> View<'a> {
        View {
            out,
            tty,
            pending: false,
            last_plain: None,
        }
    }

    /// Prints a whole line (after clearing a progress line in place).
    pub fn line(&mut self, text: &str) -> io::Result<()> {
        if self.pending {
            write!(self.out, "\r\x1b[K")?;
            self.pending = false;
        }
        writeln!(self.out, "{text}")?;
        self.out.flush()
    }

    /// Shows the progress line: in place on a terminal, else at most once a second.
    pub fn progress(&mut self, text: &str) -> io::Result<()> {
        if self.tty {
            write!(self.out, "\r{text}\x1b[K")?;
            self.pending = true;
            return self.out.flush();
        }
        if self.last_plain.is_none_or(|t| t.elapsed() >= PLAIN_EVERY) {
            self.last_plain = Some(Instant::now());
            writeln!(self.out, "{text}")?;
            self.out.flush()?;
        }
        Ok(())
    }

    /// Ends a phase with its final progress line, kept on screen.
    pub fn finish(&mut self, text: &str) -> io::Result<()> {
        self.last_plain = None;
        self.line(text)
    }

    /// Whether the output is a terminal.
    pub fn is_tty(&self) -> bool {
        self.tty
    }
}

/// The progress line of a phase: where it is, the catalog's numbers since the phase began, and
/// every breaker's state.
pub fn progress_line(
    phase: &Phase,
    elapsed: Duration,
    catalog: Counts,
    upstream_hits: u64,
    breakers: &Breakers,
) -> String {
    let total = phase.duration.as_secs_f64().max(0.001);
    let done = ((elapsed.as_secs_f64() / total) * BAR as f64).round() as usize;
    let done = done.min(BAR);
    let bar = format!("{}{}", "#".repeat(done), "-".repeat(BAR - done));
    let states: Vec<String> = breakers
        .0
        .iter()
        .map(|(cluster, b)| format!("{cluster} {}", b.state.label()))
        .collect();
    format!(
        "[{bar}] {:<10} {:>4.1}s  req {:>5}  2xx {:>5}  retried {:>4}  fallback {:>5}  upstream {:>5}  | {}",
        phase.name,
        elapsed.as_secs_f64(),
        catalog.requests,
        catalog.ok,
        catalog.retried,
        catalog.fallback,
        upstream_hits,
        states.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phases;
    use crate::stage::{Breaker, State};

    fn breakers(catalog: State) -> Breakers {
        let b = |state| Breaker {
            state,
            requests: 0,
            retries: 0,
            retry_successes: 0,
            retries_exhausted: 0,
            failures: 0,
            rejected: 0,
            opened: 0,
            half_opened: 0,
            closed: 0,
        };
        Breakers([("catalog", b(catalog)), ("reviews", b(State::Closed))].into())
    }

    #[test]
    fn the_progress_line_shows_the_phase_the_numbers_and_each_breaker() {
        let mut phase = phases::standard()[2].clone();
        phase.duration = Duration::from_secs(10);
        let counts = Counts {
            requests: 598,
            ok: 3,
            retried: 12,
            fallback: 560,
            ..Counts::default()
        };
        let line = progress_line(
            &phase,
            Duration::from_secs(5),
            counts,
            71,
            &breakers(State::Open),
        );
        assert_eq!(
            line,
            "[#####-----] down        5.0s  req   598  2xx     3  retried   12  fallback   560  \
             upstream    71  | catalog OPEN, reviews closed"
        );
    }

    #[test]
    fn without_a_terminal_progress_is_printed_at_most_once_a_second() {
        let mut out = Vec::new();
        let mut view = View::new(&mut out, false);
        view.progress("one").expect("writes");
        view.progress("two").expect("writes");
        view.line("event").expect("writes");
        view.finish("final").expect("writes");
        let text = String::from_utf8(out).expect("utf-8");
        assert_eq!(
            text, "one\nevent\nfinal\n",
            "no carriage returns, no escape codes"
        );
    }

    #[test]
    fn on_a_terminal_progress_is_rewritten_in_place_and_cleared_before_a_line() {
        let mut out = Vec::new();
        let mut view = View::new(&mut out, true);
        view.progress("one").expect("writes");
        view.progress("two").expect("writes");
        view.line("event").expect("writes");
        let text = String::from_utf8(out).expect("utf-8");
        assert_eq!(text, "\rone\x1b[K\rtwo\x1b[K\r\x1b[Kevent\n");
    }
}
