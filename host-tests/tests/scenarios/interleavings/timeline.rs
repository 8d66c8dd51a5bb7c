//! The breaker's history, read from its transition log lines.

use std::time::Duration;

use breakwater_host_tests::World;

/// Phases of the breaker from its transition log lines, in order: half-open epochs and the
/// spans when it was not closed, each `[start, end)` (`None`: still going).
#[derive(Default, Debug)]
pub struct Timeline {
    pub half_open: Vec<(Duration, Option<Duration>)>,
    pub not_closed: Vec<(Duration, Option<Duration>)>,
}

fn end_last(spans: &mut [(Duration, Option<Duration>)], at: Duration) {
    if let Some(last) = spans.last_mut().filter(|s| s.1.is_none()) {
        last.1 = Some(at);
    }
}

pub fn timeline(w: &World) -> Timeline {
    let mut t = Timeline::default();
    for line in w.logs() {
        let m = &line.message;
        if m.contains("entering HALF_OPEN") {
            t.half_open.push((line.at, None));
        } else if m.contains("' OPEN after") {
            end_last(&mut t.half_open, line.at);
            if t.not_closed.last().is_none_or(|s| s.1.is_some()) {
                t.not_closed.push((line.at, None));
            }
        } else if m.ends_with("' closed") {
            end_last(&mut t.half_open, line.at);
            end_last(&mut t.not_closed, line.at);
        }
    }
    t
}

pub fn within(at: Duration, (start, end): (Duration, Option<Duration>)) -> bool {
    at >= start && end.is_none_or(|e| at < e)
}
