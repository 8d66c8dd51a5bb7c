//! Running wrk and reading its report.
//!
//! # Why wrk
//! wrk is a small C load generator that keeps a fixed number of connections busy and costs far
//! less CPU per request than anything this crate could write, which matters on two shared cores:
//! what the load generator burns is taken from Envoy. It is used for the overhead runs, where
//! every response is a 200; the failure scenarios need per-response timestamps and use
//! [`crate::load`] instead.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

/// What one wrk run reported.
#[derive(Debug, Clone, PartialEq)]
pub struct WrkReport {
    pub requests: u64,
    pub requests_per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Responses with a status of 400 or more (wrk's "Non-2xx or 3xx responses").
    pub non_2xx: u64,
    /// Connect, read, write and timeout errors, summed.
    pub socket_errors: u64,
}

/// Why wrk could not give a report.
#[derive(Debug, thiserror::Error)]
pub enum WrkError {
    #[error(
        "wrk is not installed ({0}); on Debian or Ubuntu: `sudo apt-get install wrk`, \
         elsewhere see https://github.com/wg/wrk"
    )]
    Missing(std::io::Error),
    #[error("wrk failed ({status}): {stderr}")]
    Failed { status: String, stderr: String },
    #[error("wrk's report has no {what}:\n{report}")]
    Unreadable { what: &'static str, report: String },
}

/// Checks that wrk can be run, with the install hint if not.
pub fn check_installed() -> Result<(), WrkError> {
    Command::new("wrk")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|_| ())
        .map_err(WrkError::Missing)
}

/// Runs `wrk` with one thread and `connections` connections against `http://addr/` for
/// `duration` and reads its report.
pub fn run(
    addr: SocketAddr,
    connections: usize,
    duration: Duration,
) -> Result<WrkReport, WrkError> {
    let output = Command::new("wrk")
        .args(["--threads", "1", "--latency", "--timeout", "10s"])
        .arg(format!("--connections={connections}"))
        .arg(format!("--duration={}s", duration.as_secs().max(1)))
        .arg(format!("http://{addr}/"))
        .stdin(Stdio::null())
        .output()
        .map_err(WrkError::Missing)?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        return Err(WrkError::Failed {
            status: output.status.to_string(),
            stderr: format!("{}{stdout}", String::from_utf8_lossy(&output.stderr)),
        });
    }
    parse(&stdout)
}

/// Reads wrk's text report (wrk 4.x with `--latency`).
pub fn parse(report: &str) -> Result<WrkReport, WrkError> {
    let missing = |what| WrkError::Unreadable {
        what,
        report: report.to_string(),
    };
    let mut requests = None;
    let mut rps = None;
    let mut p50 = None;
    let mut p99 = None;
    let mut non_2xx = 0;
    let mut socket_errors = 0;
    for line in report.lines().map(str::trim) {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("Requests/sec:") => rps = words.next().and_then(|w| w.parse().ok()),
            Some("50%") => p50 = words.next().and_then(milliseconds),
            Some("99%") => p99 = words.next().and_then(milliseconds),
            Some("Non-2xx") => {
                non_2xx = line
                    .rsplit(' ')
                    .next()
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(|| missing("count of non-2xx responses"))?
            }
            Some("Socket") => {
                // "Socket errors: connect 0, read 0, write 0, timeout 0"
                socket_errors = line
                    .split([' ', ','])
                    .filter_map(|w| w.parse::<u64>().ok())
                    .sum();
            }
            Some(first) if line.contains(" requests in ") => requests = first.parse().ok(),
            _ => {}
        }
    }
    Ok(WrkReport {
        requests: requests.ok_or_else(|| missing("request count"))?,
        requests_per_second: rps.ok_or_else(|| missing("Requests/sec"))?,
        p50_ms: p50.ok_or_else(|| missing("50% latency"))?,
        p99_ms: p99.ok_or_else(|| missing("99% latency"))?,
        non_2xx,
        socket_errors,
    })
}

/// A wrk duration (`812.00us`, `3.21ms`, `1.02s`, `1.50m`) in milliseconds.
fn milliseconds(text: &str) -> Option<f64> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().ok()?;
    let scale = match unit {
        "us" => 0.001,
        "ms" => 1.0,
        "s" => 1_000.0,
        "m" => 60_000.0,
        "h" => 3_600_000.0,
        _ => return None,
    };
    Some(value * scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real report of wrk 4.1.0 (Debian), healthy upstream.
    const HEALTHY: &str = "Running 1s test @ http://127.0.0.1:18081/
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     8.17ms    5.58ms  36.76ms   72.82%
    Req/Sec   510.10    112.21   666.00     80.00%
  Latency Distribution
     50%    6.84ms
     75%   10.93ms
     90%   16.55ms
     99%   25.50ms
  509 requests in 1.00s, 5.66MB read
Requests/sec:    507.34
Transfer/sec:      5.65MB
";

    /// A real report with failed responses and socket errors (the last line edited in).
    const FAILING: &str = "Running 1s test @ http://127.0.0.1:18081/nonexist
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.46ms    2.56ms  26.42ms   86.92%
    Req/Sec     1.37k   341.82     1.63k    81.82%
  Latency Distribution
     50%  812.00us
     75%    3.70ms
     90%    5.49ms
     99%    1.20s
  1509 requests in 1.10s, 766.29KB read
  Socket errors: connect 1, read 2, write 0, timeout 4
  Non-2xx or 3xx responses: 1509
Requests/sec:   1375.27
Transfer/sec:    698.38KB
";

    #[test]
    fn a_healthy_report_gives_rate_and_percentiles() {
        let report = parse(HEALTHY).expect("a real wrk report parses");
        assert_eq!(report.requests, 509);
        assert_eq!(report.requests_per_second, 507.34);
        assert_eq!(report.p50_ms, 6.84);
        assert_eq!(report.p99_ms, 25.5);
        assert_eq!(report.non_2xx, 0, "no Non-2xx line means none");
        assert_eq!(report.socket_errors, 0, "no Socket errors line means none");
    }

    #[test]
    fn failures_and_errors_are_counted_and_units_converted() {
        let report = parse(FAILING).expect("a real wrk report parses");
        assert_eq!(report.non_2xx, 1509);
        assert_eq!(report.socket_errors, 7, "connect + read + write + timeout");
        assert!(
            (report.p50_ms - 0.812).abs() < 1e-9,
            "us become ms: {}",
            report.p50_ms
        );
        assert_eq!(report.p99_ms, 1200.0, "s become ms");
    }

    #[test]
    fn a_report_without_its_rate_is_an_error_that_shows_the_report() {
        let cut = HEALTHY.replace("Requests/sec:    507.34\n", "");
        let error = parse(&cut).expect_err("the rate is required");
        let text = error.to_string();
        assert!(
            text.contains("Requests/sec"),
            "names what is missing: {text}"
        );
        assert!(text.contains("509 requests"), "shows the report: {text}");
    }

    #[test]
    fn durations_in_every_wrk_unit_convert_to_milliseconds() {
        assert_eq!(milliseconds("500.00us"), Some(0.5));
        assert_eq!(milliseconds("3.21ms"), Some(3.21));
        assert_eq!(milliseconds("2.00s"), Some(2000.0));
        assert_eq!(milliseconds("1.50m"), Some(90_000.0));
        assert_eq!(milliseconds("1.00h"), Some(3_600_000.0));
        assert_eq!(
            milliseconds("3.21parsecs"),
            None,
            "an unknown unit is refused"
        );
        assert_eq!(
            milliseconds("ms"),
            None,
            "a unit without a number is refused"
        );
    }
}
