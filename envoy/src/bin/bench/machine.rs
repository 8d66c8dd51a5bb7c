//! Where the figures came from: the CPU, the kernel, the Envoy build, the load of the machine.

use std::fs;

use breakwater_envoy::install;

use crate::BenchResult;

/// The machine and the software under test.
#[derive(Debug, Clone, PartialEq)]
pub struct Machine {
    /// For example `2 × AMD EPYC, Linux 6.18.44, 7.8 GiB`.
    pub description: String,
    /// Envoy's `--version` line after `version: `.
    pub envoy_version: String,
}

/// The load average over the last minute (`/proc/loadavg`); `None` where there is none.
pub fn load_average() -> Option<f64> {
    parse_loadavg(&fs::read_to_string("/proc/loadavg").ok()?)
}

fn parse_loadavg(text: &str) -> Option<f64> {
    text.split_whitespace().next()?.parse().ok()
}

/// Linux's `USER_HZ`: the unit of the CPU times in `/proc/<pid>/stat` (100 on every
/// mainstream architecture; `getconf CLK_TCK`).
const USER_HZ: f64 = 100.0;

/// CPU time (user + system, all threads) that process `pid` has used so far, in seconds.
pub fn process_cpu_seconds(pid: u32) -> Option<f64> {
    parse_stat_cpu(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// `utime + stime` from a `/proc/<pid>/stat` line. The command name (in parentheses) may hold
/// spaces and parentheses, so fields are counted from the last `)`.
fn parse_stat_cpu(stat: &str) -> Option<f64> {
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3 of the line, utime 14 and stime 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / USER_HZ)
}

/// Describes this machine and the Envoy the bench runs.
pub fn describe() -> BenchResult<Machine> {
    let binary = install::envoy_binary()?;
    let version = install::check_version(&binary)?;
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown CPU".to_string(), |(_, m)| m.trim().to_string());
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|k| format!("Linux {}", k.trim()))
        .unwrap_or_else(|_| std::env::consts::OS.to_string());
    let memory = fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| parse_meminfo_gib(&m))
        .map_or(String::new(), |g| format!(", {g:.1} GiB"));
    Ok(Machine {
        description: format!("{cpus} × {model}, {kernel}{memory}"),
        envoy_version: envoy_version(&version),
    })
}

/// `envoy  version: 8e3f.../1.40.0/Clean/RELEASE/BoringSSL` → the part after `version: `.
fn envoy_version(output: &str) -> String {
    let line = output
        .lines()
        .find(|l| l.contains("version"))
        .unwrap_or(output);
    line.split_once("version:")
        .map_or(line, |(_, v)| v)
        .trim()
        .to_string()
}

fn parse_meminfo_gib(text: &str) -> Option<f64> {
    let kib: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kib / (1024.0 * 1024.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envoys_version_line_is_cut_after_version() {
        let out = "\nenvoy  version: 0d2e/1.40.0/Clean/RELEASE/BoringSSL\n";
        assert_eq!(envoy_version(out), "0d2e/1.40.0/Clean/RELEASE/BoringSSL");
    }

    #[test]
    fn the_one_minute_load_average_is_the_first_field() {
        assert_eq!(parse_loadavg("1.89 2.04 1.54 3/412 9999\n"), Some(1.89));
        assert_eq!(parse_loadavg(""), None);
    }

    #[test]
    fn cpu_time_is_user_plus_system_counted_from_the_last_parenthesis() {
        let stat = "14576 (a (b) c) R 14574 14574 16461 0 -1 4194304 98 0 0 0 250 50 0 0 20 0 1";
        assert_eq!(
            parse_stat_cpu(stat),
            Some(3.0),
            "(250 + 50) ticks at 100 Hz"
        );
        assert_eq!(
            parse_stat_cpu("14576 (cat) R 1 2"),
            None,
            "a short line is refused"
        );
    }

    #[test]
    fn memory_is_read_in_gib() {
        let gib = parse_meminfo_gib("MemTotal:        8388608 kB\nMemFree: 1 kB\n");
        assert_eq!(gib, Some(8.0));
    }
}
