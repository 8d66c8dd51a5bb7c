//! The targets, checked against one run. A target that is not met is reported as FAIL
//! with the figure that failed it; a figure that could not be measured fails its target too.

use crate::analysis::OutageSummary;
use crate::results::{Ratio, Report};
use crate::setups::{Resilience, FAILURE_POLICY_TIMEOUT};

/// A target of the issue and whether this run met it.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub name: &'static str,
    /// The figure compared, as printed.
    pub measured: String,
    pub limit: String,
    pub pass: bool,
}

impl Report {
    /// The targets, each checked against this run.
    pub fn targets(&self) -> Vec<Target> {
        let ratios = self.ratios();
        let at_least = |name, value: Option<f64>, limit: f64| Target {
            name,
            measured: value.map_or("not measured".to_string(), |v| format!("{v:.3}")),
            limit: format!("≥ {limit}"),
            pass: value.is_some_and(|v| v >= limit),
        };
        let bw = self.results_of(Resilience::Breakwater);
        let flaky = bw.map(|r| &r.flaky);
        let outage = bw.map(|r| &r.outage);
        let shed = outage.and_then(OutageSummary::shed_fraction);
        let recovery_limit = FAILURE_POLICY_TIMEOUT.as_secs_f64() + 1.0;
        let recovery = outage.and_then(|o| o.recovery_seconds);
        // The overhead targets are on the Envoy-CPU-per-request ratio, with the req/s ratio
        // beside it: req/s measures the whole loop (wrk, the upstream and Envoy share the
        // cores), so other load on the machine moves it far more than the filter's own cost.
        let overhead = |name, ratio: &Ratio, limit: f64| Target {
            name,
            measured: match ratio.cpu_value {
                Some(cpu) => format!("{cpu:.3} (req/s {})", number(ratio.value)),
                None => "not measured".to_string(),
            },
            limit: format!("≥ {limit}"),
            pass: ratio.cpu_value.is_some_and(|v| v >= limit),
        };
        vec![
            overhead(
                "overhead: Breakwater ÷ no-op (c/b), Envoy CPU per request",
                &ratios[0],
                0.95,
            ),
            overhead(
                "overhead: Breakwater `failure_rate` ÷ no-op (d/b), Envoy CPU per request",
                &ratios[1],
                0.90,
            ),
            at_least(
                "flaky 30%: Breakwater success rate",
                flaky.map(|f| f.success_rate),
                0.99,
            ),
            Target {
                name: "flaky 30%: Breakwater amplification",
                measured: flaky
                    .map_or("not measured".into(), |f| format!("{:.3}", f.amplification)),
                limit: "≤ 1.5".to_string(),
                pass: flaky.is_some_and(|f| f.amplification <= 1.5),
            },
            Target {
                name: "outage: Breakwater upstream req/s after the trip ÷ offered load",
                measured: match (shed, outage) {
                    (Some(s), Some(o)) => format!(
                        "{:.3}% ({:.2} of {:.0} req/s{})",
                        s * 100.0,
                        o.upstream_rps_after_trip,
                        o.offered_rps,
                        if o.tripped_after.is_none() {
                            ", never tripped"
                        } else {
                            ""
                        }
                    ),
                    _ => "not measured".to_string(),
                },
                limit: "≤ 1%".to_string(),
                pass: shed.is_some_and(|s| s <= 0.01)
                    && outage.is_some_and(|o| o.tripped_after.is_some()),
            },
            Target {
                name: "outage: Breakwater recovery after the upstream is back",
                measured: recovery.map_or("no success".to_string(), |r| format!("{r:.2} s")),
                limit: format!("≤ {recovery_limit:.0} s (`timeout` + 1 s)"),
                pass: recovery.is_some_and(|r| r <= recovery_limit),
            },
        ]
    }
}

/// A ratio as the targets print it.
fn number(value: Option<f64>) -> String {
    value.map_or("–".to_string(), |v| format!("{v:.3}"))
}
