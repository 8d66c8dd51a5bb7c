//! `validate`: a policy file or the policies inside WasmPlugin manifests, checked by the very
//! code the filter runs in `on_configure` ([`Policy::parse`]).
//!
//! A file is a policy when it is JSON that is not a manifest; otherwise it is read as YAML (or
//! JSON) manifests and every `WasmPlugin` in it is checked, with its `pluginConfig` converted the
//! way Istio converts it (see [`crate::istio`]).

use crate::istio::{self, ManifestError};
use crate::versions::{self, IstioVersion};
use breakwater::policy::{Policy, Problem};
use std::fmt::Write as _;
use std::path::Path;

/// One policy checked: where it came from and what the filter would say.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    /// `None` for a policy file, the WasmPlugin's `namespace/name` for a manifest.
    pub plugin: Option<String>,
    /// Ok: the policy would be accepted, with these warnings; Err: it would be refused.
    pub verdict: Result<Vec<Problem>, Vec<Problem>>,
    /// What the reader should know, such as "no pluginConfig" or a `failStrategy` that gives up
    /// on a failed VM.
    pub notes: Vec<&'static str>,
    /// Why the Istio stated with `--istio` would refuse the WasmPlugin (a field value it does
    /// not know yet); empty without a stated version.
    pub istio_refuses: Vec<&'static str>,
}

impl Checked {
    /// The filter accepts the policy, and the stated Istio (if any) the manifest.
    pub fn is_valid(&self) -> bool {
        self.verdict.is_ok() && self.istio_refuses.is_empty()
    }

    pub fn warnings(&self) -> &[Problem] {
        self.verdict.as_ref().map_or(&[], Vec::as_slice)
    }
}

/// Why a file could not be checked at all.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("cannot read it: {0}")]
    Read(#[from] std::io::Error),
    #[error("{0}")]
    Manifest(#[from] ManifestError),
    #[error("it is neither a policy (JSON) nor a manifest with a WasmPlugin")]
    NoPolicy,
}

/// What the filter says about `json` as its configuration. A blank configuration is `{}`, as
/// in the filter.
pub fn check_policy(json: &[u8]) -> Result<Vec<Problem>, Vec<Problem>> {
    let json: &[u8] = if json.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        json
    };
    Policy::parse(json)
        .map(|parsed| parsed.warnings)
        .map_err(|errors| errors.0)
}

/// Checks the policy file or the manifests in `path`.
pub fn check_file(path: &Path) -> Result<Vec<Checked>, FileError> {
    check_file_for(path, None)
}

/// Checks the policy file or the manifests in `path`, the manifests also against the Istio
/// release `istio` (`--istio`), when given.
pub fn check_file_for(path: &Path, istio: Option<IstioVersion>) -> Result<Vec<Checked>, FileError> {
    let bytes = std::fs::read(path)?;
    check_bytes_for(&bytes, istio)
}

/// Checks a policy or manifests given as bytes.
pub fn check_bytes(bytes: &[u8]) -> Result<Vec<Checked>, FileError> {
    check_bytes_for(bytes, None)
}

/// Checks a policy or manifests given as bytes, the manifests also against `istio`.
pub fn check_bytes_for(
    bytes: &[u8],
    istio: Option<IstioVersion>,
) -> Result<Vec<Checked>, FileError> {
    let text = String::from_utf8_lossy(bytes);
    let json = serde_json::from_slice::<serde_json::Value>(bytes).ok();
    let is_manifest = json
        .as_ref()
        .is_some_and(|value| value.get("kind").is_some() && value.get("apiVersion").is_some());
    if !is_manifest && (json.is_some() || text.trim_start().starts_with('{')) {
        // A policy file: the very bytes the filter would get (a JSON syntax error included).
        return Ok(vec![Checked {
            plugin: None,
            verdict: check_policy(bytes),
            notes: Vec::new(),
            istio_refuses: Vec::new(),
        }]);
    }
    let plugins = istio::wasm_plugins(&istio::documents(&text)?)?;
    if plugins.is_empty() {
        return Err(FileError::NoPolicy);
    }
    plugins
        .iter()
        .map(|plugin| {
            let config = plugin.plugin_config()?;
            let mut notes = Vec::new();
            if config.is_none() {
                notes.push("no pluginConfig: the filter runs with every default");
            }
            notes.extend(strategy_note(plugin.spec_str("failStrategy")));
            let (istio_refuses, version_notes) = match istio {
                Some(istio) => versions::needs(plugin, istio),
                None => (Vec::new(), Vec::new()),
            };
            notes.extend(version_notes);
            Ok(Checked {
                plugin: Some(plugin.id()),
                notes,
                istio_refuses,
                verdict: check_policy(config.as_deref().unwrap_or("{}").as_bytes()),
            })
        })
        .collect()
}

/// What a WasmPlugin's `failStrategy` means for Breakwater, when it deserves a word
/// (examples/failure-policy.md).
fn strategy_note(strategy: Option<&str>) -> Option<&'static str> {
    match strategy {
        None | Some("FAIL_CLOSE") => Some(
            "failStrategy FAIL_CLOSE (Istio's default): a VM that traps answers 503 on its worker \
             until the proxy restarts; FAIL_RELOAD brings a new VM with the breakers it had \
             (FAIL_OPEN on an ingress gateway); see examples/failure-policy.md",
        ),
        Some("FAIL_RELOAD") | Some("FAIL_OPEN") => None,
        Some(_) => Some(
            "failStrategy is none of FAIL_CLOSE, FAIL_OPEN, FAIL_RELOAD: Istio will refuse the \
             WasmPlugin",
        ),
    }
}

/// The report for one file, one line per policy and one per problem or warning:
///
/// ```text
/// bad.yaml: WasmPlugin shop/breakwater-checkout: invalid, 1 problem
///   error: circuit_breaker.half_open_attempts: 0 is out of range, must be 1..=1000 (at default)
/// ```
pub fn render(file: &str, checked: &[Checked]) -> String {
    let mut out = String::new();
    for one in checked {
        let subject = match &one.plugin {
            Some(plugin) => format!("{file}: WasmPlugin {plugin}"),
            None => file.to_string(),
        };
        let (problems, warnings): (&[Problem], &[Problem]) = match &one.verdict {
            Ok(warnings) => (&[], warnings),
            Err(problems) => (problems, &[]),
        };
        let verdict = if one.is_valid() {
            "valid".to_string()
        } else {
            let n = problems.len() + one.istio_refuses.len();
            format!("invalid, {}", count(n, "problem"))
        };
        let _ = write!(out, "{subject}: {verdict}");
        if !warnings.is_empty() {
            let _ = write!(out, ", {}", count(warnings.len(), "warning"));
        }
        out.push('\n');
        for note in &one.notes {
            let _ = writeln!(out, "  note: {note}");
        }
        for refusal in &one.istio_refuses {
            let _ = writeln!(out, "  error: {refusal}");
        }
        for problem in problems {
            let _ = writeln!(out, "  error: {problem}");
        }
        for warning in warnings {
            let _ = writeln!(out, "  warning: {warning}");
        }
    }
    out
}

fn count(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_policy_is_judged_exactly_as_the_filter_judges_it() {
        let text = br#"{"clusters":{"payments":{"circuit_breaker":{"half_open_attempts":0}}}}"#;
        let [checked] = check_bytes(text).unwrap().try_into().expect("one policy");
        let Err(problems) = &checked.verdict else {
            panic!("refused by the filter, so refused here");
        };
        assert_eq!(
            problems,
            &Policy::parse(text).expect_err("the filter refuses it").0,
            "the same problems as Policy::parse"
        );
        assert_eq!(
            render("p.json", &[checked]),
            "p.json: invalid, 1 problem\n  error: circuit_breaker.half_open_attempts: 0 is out \
             of range, must be 1..=1000 (at clusters.payments)\n"
        );
    }

    #[test]
    fn a_blank_policy_is_every_default_as_in_the_filter() {
        assert_eq!(check_policy(b"  \n"), Ok(vec![]));
    }

    #[test]
    fn malformed_json_is_a_policy_problem_not_a_yaml_one() {
        let [checked] = check_bytes(b"{\"default\": ").unwrap().try_into().unwrap();
        assert!(
            !checked.is_valid(),
            "the filter refuses text that is not JSON"
        );
    }

    #[test]
    fn warnings_keep_a_policy_valid_and_are_listed() {
        let text = br#"{"default":{"circuit_breaker":{"failure_threshold":1}}}"#;
        let checked = check_bytes(text).unwrap();
        assert!(checked[0].is_valid());
        let report = render("w.json", &checked);
        assert!(
            report.starts_with("w.json: valid, 1 warning\n  warning: "),
            "{report}"
        );
    }

    #[test]
    fn every_wasm_plugin_of_a_manifest_is_checked_on_its_own() {
        let yaml = "
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: { name: good, namespace: a }
spec: { url: x, pluginConfig: { default: { retry: { max_attempts: 2 } } } }
---
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: { name: bad, namespace: a }
spec: { url: x, pluginConfig: { default: { retry: { max_attempts: 0, typo: 1 } } } }
---
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: { name: bare, namespace: a }
spec: { url: x }
";
        let checked = check_bytes(yaml.as_bytes()).unwrap();
        let verdicts: Vec<_> = checked
            .iter()
            .map(|c| (c.plugin.as_deref().unwrap(), c.is_valid()))
            .collect();
        assert_eq!(
            verdicts,
            [("a/good", true), ("a/bad", false), ("a/bare", true)]
        );
        let report = render("m.yaml", &checked);
        assert!(
            report.contains("m.yaml: WasmPlugin a/bad: invalid, 2 problems\n"),
            "{report}"
        );
        assert!(report.contains("  note: no pluginConfig"), "{report}");
    }

    #[test]
    fn a_fail_strategy_that_gives_up_on_a_failed_vm_gets_a_note() {
        let plugin = |strategy: &str| {
            let yaml = format!(
                "apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\n\
                 metadata: {{ name: p, namespace: a }}\n\
                 spec: {{ url: x, pluginConfig: {{ default: {{}} }}{strategy} }}\n"
            );
            check_bytes(yaml.as_bytes()).unwrap().remove(0)
        };
        for default in ["", ", failStrategy: FAIL_CLOSE"] {
            let checked = plugin(default);
            assert!(checked.is_valid(), "a note, not an error");
            assert_eq!(checked.notes.len(), 1, "{default:?}");
            assert!(
                checked.notes[0].contains("FAIL_RELOAD"),
                "{:?}",
                checked.notes
            );
        }
        for chosen in [", failStrategy: FAIL_RELOAD", ", failStrategy: FAIL_OPEN"] {
            assert_eq!(plugin(chosen).notes, Vec::<&str>::new(), "{chosen}");
        }
        let typo = plugin(", failStrategy: FAIL_RELAOD");
        assert!(
            typo.notes[0].contains("Istio will refuse"),
            "{:?}",
            typo.notes
        );
    }

    #[test]
    fn a_manifest_without_a_wasm_plugin_cannot_be_checked() {
        let error = check_bytes(b"apiVersion: v1\nkind: Service\n").expect_err("no plugin");
        assert!(matches!(error, FileError::NoPolicy), "{error}");
    }
}

#[cfg(test)]
mod version_tests {
    use super::*;

    const RELOADING: &str = "apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: { name: breakwater, namespace: istio-system }
spec:
  url: oci://registry.example.com/breakwater/breakwater:0.1.0
  pluginName: breakwater
  failStrategy: FAIL_RELOAD
";

    #[test]
    fn fail_reload_is_refused_for_an_istio_older_than_1_27_and_said_why() {
        let older = Some("1.26".parse().unwrap());
        let [checked] = check_bytes_for(RELOADING.as_bytes(), older)
            .unwrap()
            .try_into()
            .unwrap();
        assert!(!checked.is_valid(), "Istio 1.26 refuses the manifest");
        let report = render("m.yaml", &[checked]);
        assert!(
            report.starts_with("m.yaml: WasmPlugin istio-system/breakwater: invalid, 1 problem\n")
                && report.contains("error: failStrategy FAIL_RELOAD needs Istio 1.27 or later"),
            "{report}"
        );
        for fine in [
            None,
            Some("1.27".parse().unwrap()),
            Some("1.30.1".parse().unwrap()),
        ] {
            let [checked] = check_bytes_for(RELOADING.as_bytes(), fine)
                .unwrap()
                .try_into()
                .unwrap();
            assert!(checked.is_valid(), "{fine:?}: {checked:?}");
        }
        let open = RELOADING.replace("FAIL_RELOAD", "FAIL_OPEN");
        let [checked] = check_bytes_for(open.as_bytes(), older)
            .unwrap()
            .try_into()
            .unwrap();
        assert!(checked.is_valid(), "the FAIL_OPEN variant suits 1.26");
    }

    #[test]
    fn an_istio_older_than_the_oldest_checked_gets_a_note() {
        let open = RELOADING.replace("FAIL_RELOAD", "FAIL_OPEN");
        let [checked] = check_bytes_for(open.as_bytes(), Some("1.22".parse().unwrap()))
            .unwrap()
            .try_into()
            .unwrap();
        assert!(checked.is_valid());
        assert!(
            checked.notes.iter().any(|n| n.contains("older than 1.24")),
            "{checked:?}"
        );
    }
}
