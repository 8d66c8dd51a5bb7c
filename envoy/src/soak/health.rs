//! Is Envoy's wasm side healthy? What Envoy 1.40 shows about its VMs and a filter's failures, read
//! from `/stats` and the log, and the process's resident memory.
//!
//! # Signals (measured on Envoy 1.40 with two workers)
//! - `wasm.envoy.wasm.runtime.v8.active` / `.created`: V8 VMs alive and ever created. One module
//!   under two workers gives 4 alive (the main thread's, a configuration VM, one per worker) and 5
//!   created; each ECDS update creates 2 more while the number alive stays 4. Outside a rollout,
//!   a rise in `created` means a VM was replaced.
//! - `wasm.<plugin>.vm_reload_{success,failure,backoff}`: reloads of a failed VM (policy
//!   `FAIL_RELOAD`); they stay 0 while no VM fails.
//! - Envoy's log: a trapping VM is logged at level `error` by the `wasm` component, as
//!   `Function: proxy_on_request_headers failed: Uncaught RuntimeError: unreachable` (a Rust
//!   panic also logs its message at `error` first), and under `FAIL_CLOSED` each request that meets
//!   the dead VM gets a 503 of Envoy's own with details `wasm_fail_stream`. A healthy run logs no
//!   line at level `error` or `critical` at all.
//! - Breakwater's own `state_errors_total` (shared-data bytes that did not decode) and
//!   `state_contention_total` (compare-and-swap loops given up): the first is an error, the
//!   second a sign of heavy contention, shown but not an error.
//!
//! - A policy the filter refuses (at start-up or through ECDS) is logged at `error` and `critical`
//!   too: the filter's own lines (`breakwater: invalid policy: ...`, `policy rejected with ...`),
//!   then Envoy's `Wasm VM failed Failed to configure base Wasm plugin`, `Plugin breakwater failed
//!   to load` and `Plugin configured to fail closed failed to load` (once per worker). Those are
//!   counted apart as [`WasmHealth::refusal_lines`]: a refused rollout is the designed path, and a
//!   test that rolls one out allows them with [`WasmHealth::errors_besides_refusals_since`].
//!
//! No stat counts traps: after a trap under `FAIL_CLOSED` no `wasm.*` stat moved (measured with a
//! module that panics on a header); the log line is the record.

use std::fs;
use std::io;

use crate::admin::{Stats, WASM_CUSTOM_PREFIX};

const VMS_ACTIVE: &str = "wasm.envoy.wasm.runtime.v8.active";
const VMS_CREATED: &str = "wasm.envoy.wasm.runtime.v8.created";
/// What V8 says when a wasm VM traps.
const TRAP_TEXT: &str = "Uncaught RuntimeError";
/// The messages of a refused plugin configuration: the filter's, then Envoy's.
const REFUSAL_TEXTS: [&str; 5] = [
    "breakwater: invalid policy: ",
    "breakwater: policy rejected with ",
    "Failed to configure base Wasm plugin",
    "] Plugin breakwater failed to load",
    "] Plugin configured to fail closed failed to load",
];

/// The wasm health signals at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WasmHealth {
    /// V8 VMs alive.
    pub vms_active: u64,
    /// V8 VMs created since Envoy started.
    pub vms_created: u64,
    /// Reloads of failed VMs of any plugin, whatever their outcome.
    pub vm_reloads: u64,
    /// Breakwater's `state_errors_total`, over all clusters.
    pub state_errors: u64,
    /// Breakwater's `state_contention_total`, over all clusters.
    pub state_contention: u64,
    /// Envoy log lines at level `error` or `critical`, other than refusal lines.
    pub error_lines: u64,
    /// Lines at level `error` or `critical` that report a refused plugin configuration.
    pub refusal_lines: u64,
    /// Log lines that report a wasm trap.
    pub traps: u64,
    /// The first line at level `error` or `critical`, for the report.
    pub first_error_line: Option<String>,
}

impl WasmHealth {
    /// Reads the signals from a `/stats` snapshot and Envoy's log text.
    pub fn read(stats: &Stats, log: &str) -> WasmHealth {
        let mut health = WasmHealth {
            vms_active: stats.number_or_zero(VMS_ACTIVE),
            vms_created: stats.number_or_zero(VMS_CREATED),
            ..WasmHealth::default()
        };
        for (name, value) in stats.values.iter() {
            let crate::admin::StatValue::Number(n) = value else {
                continue;
            };
            if name.starts_with("wasm.") && name.contains(".vm_reload_") {
                health.vm_reloads += n;
            } else if name.starts_with(WASM_CUSTOM_PREFIX) {
                if name.ends_with("state_errors_total") {
                    health.state_errors += n;
                } else if name.ends_with("state_contention_total") {
                    health.state_contention += n;
                }
            }
        }
        for line in log.lines() {
            let severe = line.contains("][error][") || line.contains("][critical][");
            if severe && REFUSAL_TEXTS.iter().any(|t| line.contains(t)) {
                health.refusal_lines += 1;
            } else if severe {
                health.error_lines += 1;
                if health.first_error_line.is_none() {
                    health.first_error_line = Some(line.to_string());
                }
            }
            if line.contains(TRAP_TEXT) {
                health.traps += 1;
            }
        }
        health
    }

    /// What got worse since `before`, one sentence each; empty when nothing did. The number of
    /// VMs created is left out (an ECDS update creates VMs by design); see
    /// [`WasmHealth::vms_replaced_since`].
    pub fn errors_since(&self, before: &WasmHealth) -> Vec<String> {
        let mut errors = self.errors_besides_refusals_since(before);
        let refusals = self.refusal_lines.saturating_sub(before.refusal_lines);
        if refusals > 0 {
            errors.push(format!(
                "Envoy logged {refusals} line(s) of a refused plugin configuration"
            ));
        }
        errors
    }

    /// [`WasmHealth::errors_since`] for a run that refuses a configuration on purpose: the log
    /// lines of a refusal are allowed, every other error is not.
    pub fn errors_besides_refusals_since(&self, before: &WasmHealth) -> Vec<String> {
        let mut errors = Vec::new();
        let rise = |now: u64, then: u64| now.saturating_sub(then);
        if rise(self.traps, before.traps) > 0 {
            errors.push(format!(
                "Envoy logged {} wasm trap(s) ({TRAP_TEXT})",
                rise(self.traps, before.traps)
            ));
        }
        if rise(self.error_lines, before.error_lines) > 0 {
            errors.push(format!(
                "Envoy logged {} line(s) at level error or critical; the first: {}",
                rise(self.error_lines, before.error_lines),
                self.first_error_line.as_deref().unwrap_or("?")
            ));
        }
        if rise(self.vm_reloads, before.vm_reloads) > 0 {
            errors.push(format!(
                "{} VM reload(s) after a VM failure",
                rise(self.vm_reloads, before.vm_reloads)
            ));
        }
        if rise(self.state_errors, before.state_errors) > 0 {
            errors.push(format!(
                "Breakwater's state_errors_total rose by {}",
                rise(self.state_errors, before.state_errors)
            ));
        }
        errors
    }

    /// Whether VMs were created or went away since `before` (outside a rollout: a VM replaced).
    pub fn vms_replaced_since(&self, before: &WasmHealth) -> Option<String> {
        (self.vms_created != before.vms_created || self.vms_active != before.vms_active).then(
            || {
                format!(
                    "V8 VMs alive {} -> {}, created {} -> {}",
                    before.vms_active, self.vms_active, before.vms_created, self.vms_created
                )
            },
        )
    }
}

/// The resident memory of process `pid` in bytes (`VmRSS` in `/proc/<pid>/status`).
pub fn rss_bytes(pid: u32) -> io::Result<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    parse_vm_rss(&status).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("/proc/{pid}/status has no VmRSS line"),
        )
    })
}

/// The `VmRSS:   1234 kB` line of a `/proc/<pid>/status` text, in bytes.
fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let mut fields = line["VmRSS:".len()..].split_whitespace();
    let kib: u64 = fields.next()?.parse().ok()?;
    match fields.next() {
        Some("kB") => Some(kib * 1024),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::admin::StatValue;

    fn stats(values: &[(&str, u64)]) -> Stats {
        let values: BTreeMap<String, StatValue> = values
            .iter()
            .map(|(n, v)| (n.to_string(), StatValue::Number(*v)))
            .collect();
        Stats { values }
    }

    const LOG: &str = "\
[2026-11-27 02:46:27.554][7497][info][wasm] [source/extensions/common/wasm/context.cc:1151] wasm log breakwater: policy loaded
[2026-11-27 02:46:28.001][7512][error][wasm] [source/extensions/common/wasm/wasm_vm.cc:38] Function: proxy_on_response_headers failed: Uncaught RuntimeError: unreachable
[2026-11-27 02:46:28.002][7512][critical][main] [source/server/server.cc:100] another
[2026-11-27 02:46:28.003][7512][warning][wasm] [source/extensions/common/wasm/context.cc:1151] wasm log breakwater: contention
";

    /// A refused ECDS update, as Envoy 1.40 logged it.
    const REFUSAL: &str = "\
[2026-11-27 02:59:24.226][23131][error][wasm] [source/extensions/common/wasm/context.cc:1157] wasm log breakwater: breakwater: invalid policy: circuit_breaker.half_open_attempts: 0 is out of range, must be 1..=1000 (at default)
[2026-11-27 02:59:24.226][23131][error][wasm] [source/extensions/common/wasm/context.cc:1157] wasm log breakwater: breakwater: policy rejected with 1 problem(s); configuration refused
[2026-11-27 02:59:24.226][23131][error][wasm] [source/extensions/common/wasm/wasm.cc:104] Wasm VM failed Failed to configure base Wasm plugin
[2026-11-27 02:59:24.226][23131][critical][wasm] [source/extensions/common/wasm/wasm.cc:626] Plugin breakwater failed to load
[2026-11-27 02:59:24.226][23137][critical][wasm] [source/extensions/common/wasm/wasm.cc:479] Plugin configured to fail closed failed to load
[2026-11-27 02:59:24.228][23131][warning][config] [source/extensions/config_subscription/filesystem/filesystem_subscription_impl.cc:81] Filesystem config update rejected: Unable to create Wasm plugin breakwater
";

    #[test]
    fn signals_are_read_from_stats_and_log() {
        let health = WasmHealth::read(
            &stats(&[
                (VMS_ACTIVE, 4),
                (VMS_CREATED, 5),
                ("wasm.breakwater.vm_reload_success", 1),
                ("wasm.breakwater.vm_reload_failure", 2),
                (
                    "wasmcustom.breakwater.breakwater_cluster=.=a;.;state_errors_total",
                    3,
                ),
                (
                    "wasmcustom.breakwater.breakwater_cluster=.=b;.;state_errors_total",
                    4,
                ),
                (
                    "wasmcustom.breakwater.breakwater_cluster=.=a;.;state_contention_total",
                    5,
                ),
                (
                    "wasmcustom.breakwater.breakwater_cluster=.=a;.;requests_total",
                    99,
                ),
            ]),
            LOG,
        );
        assert_eq!(health.vms_active, 4);
        assert_eq!(health.vms_created, 5);
        assert_eq!(health.vm_reloads, 3, "every reload outcome counts");
        assert_eq!(health.state_errors, 7, "summed over clusters");
        assert_eq!(health.state_contention, 5);
        assert_eq!(health.error_lines, 2, "critical and error, not warning");
        assert_eq!(health.traps, 1);
        assert!(health
            .first_error_line
            .as_deref()
            .is_some_and(|l| l.contains("proxy_on_response_headers")));
    }

    #[test]
    fn a_healthy_run_has_nothing_to_report() {
        let before = WasmHealth::read(&stats(&[(VMS_ACTIVE, 4), (VMS_CREATED, 5)]), "");
        let after = WasmHealth::read(
            &stats(&[
                (VMS_ACTIVE, 4),
                (VMS_CREATED, 5),
                (
                    "wasmcustom.breakwater.breakwater_cluster=.=a;.;state_contention_total",
                    5,
                ),
            ]),
            "[2026-11-27 02:46:27.554][7497][info][wasm] fine\n",
        );
        assert!(
            after.errors_since(&before).is_empty(),
            "contention is no error"
        );
        assert_eq!(after.vms_replaced_since(&before), None);
    }

    #[test]
    fn every_rise_is_named() {
        let before = WasmHealth::read(&stats(&[(VMS_ACTIVE, 4), (VMS_CREATED, 5)]), "");
        let after = WasmHealth::read(
            &stats(&[
                (VMS_ACTIVE, 4),
                (VMS_CREATED, 6),
                ("wasm.breakwater.vm_reload_success", 1),
                (
                    "wasmcustom.breakwater.breakwater_cluster=.=a;.;state_errors_total",
                    1,
                ),
            ]),
            LOG,
        );
        let errors = after.errors_since(&before);
        assert_eq!(errors.len(), 4, "{errors:?}");
        assert!(errors[0].contains("1 wasm trap"), "{errors:?}");
        assert!(errors[1].contains("2 line(s)"), "{errors:?}");
        assert!(errors[2].contains("1 VM reload"), "{errors:?}");
        assert!(
            errors[3].contains("state_errors_total rose by 1"),
            "{errors:?}"
        );
        assert_eq!(
            after.vms_replaced_since(&before).as_deref(),
            Some("V8 VMs alive 4 -> 4, created 5 -> 6")
        );
    }

    #[test]
    fn a_refused_configuration_is_counted_apart_and_allowed_only_on_request() {
        let before = WasmHealth::read(&stats(&[]), "");
        let after = WasmHealth::read(&stats(&[]), REFUSAL);
        assert_eq!(
            after.refusal_lines, 5,
            "error and critical lines, not the warning"
        );
        assert_eq!(after.error_lines, 0);
        assert!(after.errors_besides_refusals_since(&before).is_empty());
        assert_eq!(
            after.errors_since(&before),
            vec!["Envoy logged 5 line(s) of a refused plugin configuration".to_string()]
        );
        let with_trap = WasmHealth::read(&stats(&[]), &format!("{REFUSAL}{LOG}"));
        assert_eq!(
            with_trap.errors_besides_refusals_since(&before).len(),
            2,
            "a trap is never excused"
        );
    }

    #[test]
    fn resident_memory_is_read_in_bytes() {
        let status = "Name:\tenvoy\nVmPeak:\t  900 kB\nVmRSS:\t   81234 kB\nThreads:\t12\n";
        assert_eq!(parse_vm_rss(status), Some(81234 * 1024));
        assert_eq!(parse_vm_rss("VmRSS:\t12 MB\n"), None, "only kB is known");
        assert_eq!(parse_vm_rss("Name:\tx\n"), None);
    }

    #[test]
    fn this_process_has_a_resident_size() {
        let rss = rss_bytes(std::process::id()).expect("our own /proc status");
        assert!(rss > 0);
    }
}
