//! The phase driver: sets each phase's upstream behaviour, keeps the clients going, shows the live
//! view and the breakers' transitions (the filter's own log lines), and reports what each phase
//! did.

use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::load::{Counts, Load, LoadShape};
use crate::phases::{Condition, Phase, Until, MAX_OVERTIME};
use crate::stage::{Breaker, Breakers, Stage, State};
use crate::view::{progress_line, View};
use crate::DemoError;

/// How often the view is refreshed.
const TICK: Duration = Duration::from_millis(200);

/// What one phase did.
#[derive(Debug, Clone, PartialEq)]
pub struct PhaseReport {
    pub name: &'static str,
    /// How long it ran (its duration, or longer while it waited for its goal).
    pub elapsed: Duration,
    /// Whether its goal was reached (always, for a phase that only waits for its duration).
    pub reached: bool,
    /// The requests sent during the phase and what became of them, per cluster in the order of
    /// `load::CLUSTERS`.
    pub counts: [Counts; 2],
    /// Requests that reached each upstream during the phase (retries and probes included).
    pub upstream_hits: [u64; 2],
    /// Breakwater's metrics at the start and at the end of the phase.
    pub before: Breakers,
    pub after: Breakers,
}

impl PhaseReport {
    /// How much a counter of `cluster` grew during the phase.
    pub fn delta(&self, cluster: &str, metric: impl Fn(&Breaker) -> u64) -> u64 {
        match (self.before.get(cluster), self.after.get(cluster)) {
            (Some(b), Some(a)) => metric(a).saturating_sub(metric(b)),
            _ => 0,
        }
    }

    pub fn end_state(&self, cluster: &str) -> State {
        self.after.get(cluster).map_or(State::Closed, |b| b.state)
    }
}

/// What the whole run did.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub phases: Vec<PhaseReport>,
    /// Breakwater's metrics at the end.
    pub breakers: Breakers,
    /// Connections each Envoy worker accepted.
    pub connections_per_worker: Vec<u64>,
    /// Ctrl-C ended the run early.
    pub interrupted: bool,
}

/// Runs `phases` against `stage` with `shape` load, until done or `stop` is set.
pub fn drive(
    stage: &Stage,
    phases: &[Phase],
    shape: LoadShape,
    view: &mut View,
    stop: &AtomicBool,
) -> Result<Report, DemoError> {
    Condition::Healthy.apply(&stage.reviews);
    let mut events = LogEvents::default();
    events.skip_existing(stage);
    let load = Load::start(stage.envoy.listener(), shape, phases.len());
    let started = Instant::now();
    let mut reports = Vec::new();
    let mut interrupted = false;
    for (index, phase) in phases.iter().enumerate() {
        phase.catalog.apply(&stage.catalog);
        load.set_phase(index);
        view.line("")?;
        view.line(&format!(
            "== phase {}/{}: {} ({}s) - catalog {} - {}",
            index + 1,
            phases.len(),
            phase.name,
            phase.duration.as_secs(),
            phase.catalog.describe(),
            phase.story
        ))?;
        let at = Progress { index, started };
        match run_phase(stage, phase, at, &load, view, &mut events, stop) {
            Ok(report) => reports.push(report),
            // Ctrl-C reaches Envoy too (same process group): it may be gone already.
            Err(_) if stop.load(Ordering::Relaxed) => {}
            Err(e) => return Err(e),
        }
        if stop.load(Ordering::Relaxed) {
            interrupted = true;
            break;
        }
    }
    // Answers that arrived after their phase ended belong to it.
    let finals = load.stop();
    for (report, counts) in reports.iter_mut().zip(finals) {
        report.counts = counts;
    }
    let workers = stage.envoy.config().concurrency;
    let stats = match stage.envoy.stats() {
        Ok(stats) => stats,
        Err(_) if interrupted => Default::default(),
        Err(e) => return Err(e.into()),
    };
    let connections_per_worker = (0..workers)
        .map(|w| stats.number_or_zero(&breakwater_envoy::worker_stat(w, "downstream_cx_total")))
        .collect();
    Ok(Report {
        phases: reports,
        breakers: Breakers::from_stats(&stats),
        connections_per_worker,
        interrupted,
    })
}

/// Where the run is: the phase's index and when the first phase began.
#[derive(Debug, Clone, Copy)]
struct Progress {
    index: usize,
    started: Instant,
}

fn run_phase(
    stage: &Stage,
    phase: &Phase,
    at: Progress,
    load: &Load,
    view: &mut View,
    events: &mut LogEvents,
    stop: &AtomicBool,
) -> Result<PhaseReport, DemoError> {
    let begin = Instant::now();
    let hits_before = stage.upstream_hits();
    let before = stage.breakers()?;
    let mut breakers = before.clone();
    loop {
        thread::sleep(TICK);
        let elapsed = begin.elapsed();
        let stopping = stop.load(Ordering::Relaxed);
        if !stopping {
            breakers = stage.breakers()?;
        }
        for event in events.new_events(stage) {
            let t = at.started.elapsed().as_secs_f64();
            view.line(&format!("   t={t:.1}s  {event}"))?;
        }
        let catalog = load.counts(at.index)[0];
        let hits = stage.upstream_hits()[0] - hits_before[0];
        let line = progress_line(phase, elapsed, catalog, hits, &breakers);
        let reached = goal_reached(phase.until, &before, &breakers);
        let over = elapsed >= phase.duration;
        if stopping || (over && reached) || elapsed >= phase.duration + MAX_OVERTIME {
            view.finish(&line)?;
            if over && !reached {
                view.line(&format!(
                    "   (gave up waiting after {}s more: {})",
                    MAX_OVERTIME.as_secs(),
                    goal_text(phase.until)
                ))?;
            }
            let hits_after = stage.upstream_hits();
            return Ok(PhaseReport {
                name: phase.name,
                elapsed,
                reached,
                counts: load.counts(at.index),
                upstream_hits: [
                    hits_after[0] - hits_before[0],
                    hits_after[1] - hits_before[1],
                ],
                before,
                after: breakers.clone(),
            });
        }
        if over && view.is_tty() {
            view.progress(&format!("{line}  (waiting: {})", goal_text(phase.until)))?;
        } else {
            view.progress(&line)?;
        }
    }
}

fn goal_reached(until: Until, before: &Breakers, now: &Breakers) -> bool {
    match until {
        Until::Elapsed => true,
        Until::CatalogOpened => {
            let opened = |b: &Breakers| b.get("catalog").map_or(0, |c| c.opened);
            opened(now) > opened(before)
        }
        Until::AllClosed => now.all_closed(),
    }
}

fn goal_text(until: Until) -> &'static str {
    match until {
        Until::Elapsed => "",
        Until::CatalogOpened => "for the catalog's breaker to open",
        Until::AllClosed => "for every breaker to close",
    }
}

/// The breakers' transitions, as the filter logs them in Envoy's log.
#[derive(Debug, Default)]
struct LogEvents {
    /// How much of the log has been read (up to a line end).
    offset: usize,
}

impl LogEvents {
    fn skip_existing(&mut self, stage: &Stage) {
        let log = stage.envoy.log();
        self.offset = log.rfind('\n').map_or(0, |end| end + 1);
    }

    /// Breaker lines logged since the last call, without Envoy's prefix.
    fn new_events(&mut self, stage: &Stage) -> Vec<String> {
        let log = stage.envoy.log();
        let Some(fresh) = log.get(self.offset..) else {
            return Vec::new();
        };
        let Some(end) = fresh.rfind('\n') else {
            return Vec::new();
        };
        self.offset += end + 1;
        fresh[..end]
            .lines()
            .filter_map(|line| {
                line.find("circuit breaker '")
                    .map(|at| line[at..].to_string())
            })
            .collect()
    }
}
