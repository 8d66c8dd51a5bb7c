//! The soak command, run for a few seconds through the very binary operators run for minutes,
//! so the command cannot rot.

use std::process::Command;

use breakwater_envoy::soak::report::HEADER;

#[test]
fn a_short_soak_passes_and_prints_its_table_and_verdict() {
    let output = Command::new(env!("CARGO_BIN_EXE_soak"))
        .args(["--seconds", "10", "--rate", "100", "--connections", "4"])
        .output()
        .expect("the soak binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the soak passed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines.contains(&HEADER), "the table's header:\n{stdout}");
    let rows = lines
        .iter()
        .filter(|l| {
            l.split_whitespace()
                .next()
                .and_then(|t| t.strip_suffix('s'))
                .is_some_and(|n| n.parse::<u64>().is_ok())
        })
        .count();
    assert!(rows >= 5, "a row every 2 s:\n{stdout}");
    assert!(stdout.contains(", 0 unanswered"), "the summary:\n{stdout}");
    let opened: u64 = stdout
        .split("breaker opened ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("the summary says how often the breaker opened");
    assert!(
        opened >= 1,
        "the outages opened the breaker, so its paths ran too:\n{stdout}"
    );
    assert_eq!(lines.last().copied(), Some("soak PASSED"), "{stdout}");
}

#[test]
fn the_soak_refuses_a_meaningless_rate() {
    let output = Command::new(env!("CARGO_BIN_EXE_soak"))
        .args(["--seconds", "10", "--rate", "0"])
        .output()
        .expect("the soak binary runs");
    assert_eq!(output.status.code(), Some(2), "a usage error");
    assert!(String::from_utf8_lossy(&output.stderr).contains("--rate must be a positive"));
}
