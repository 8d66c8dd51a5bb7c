//! Reading Envoy's `/stats/prometheus` output (the Prometheus text exposition format).
//!
//! Only what Envoy prints is supported: `# TYPE` lines, other comments, and samples
//! `name{label="value",...} value` (Envoy prints `{}` for a sample without labels). Label values
//! are unescaped (`\\`, `\"`, `\n`), which matters for Istio cluster names.

use std::collections::BTreeMap;

/// A line that is not valid exposition format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line} of the Prometheus output: {reason}: {text:?}")]
pub struct ParseError {
    pub line: usize,
    pub reason: &'static str,
    pub text: String,
}

/// One sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A parsed `/stats/prometheus` page.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Prometheus {
    pub samples: Vec<Sample>,
    /// Metric family name → type (`counter`, `gauge`, `histogram`, ...), from `# TYPE` lines.
    pub types: BTreeMap<String, String>,
}

impl Prometheus {
    pub fn parse(text: &str) -> Result<Prometheus, ParseError> {
        let mut page = Prometheus::default();
        for (index, raw) in text.lines().enumerate() {
            let line = raw.trim();
            let error = |reason| ParseError {
                line: index + 1,
                reason,
                text: raw.to_string(),
            };
            if line.is_empty() {
                continue;
            }
            if let Some(comment) = line.strip_prefix('#') {
                let mut words = comment.split_whitespace();
                if words.next() == Some("TYPE") {
                    let name = words.next().ok_or_else(|| error("TYPE without a name"))?;
                    let kind = words.next().ok_or_else(|| error("TYPE without a type"))?;
                    page.types.insert(name.to_string(), kind.to_string());
                }
                continue;
            }
            page.samples.push(parse_sample(line).map_err(error)?);
        }
        Ok(page)
    }

    /// All samples of metric `name`.
    pub fn samples<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |s| s.name == name)
    }

    /// The value of the sample of `name` whose labels are exactly `labels`.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let wanted: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.samples(name)
            .find(|s| s.labels == wanted)
            .map(|s| s.value)
    }

    /// The type Envoy declared for metric family `name`.
    pub fn type_of(&self, name: &str) -> Option<&str> {
        self.types.get(name).map(String::as_str)
    }
}

fn parse_sample(line: &str) -> Result<Sample, &'static str> {
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .ok_or("a sample without a value")?;
    let name = &line[..name_end];
    if name.is_empty() {
        return Err("a sample without a name");
    }
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(after_brace) = rest.strip_prefix('{') {
        let (parsed, after) = parse_labels(after_brace)?;
        labels = parsed;
        rest = after;
    }
    let value_text = rest
        .split_whitespace()
        .next()
        .ok_or("a sample without a value")?;
    let value = value_text
        .parse::<f64>()
        .map_err(|_| "a value that is not a number")?;
    Ok(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// Parses `k="v",k2="v2"}` and returns the labels and what follows the closing brace.
fn parse_labels(mut text: &str) -> Result<(BTreeMap<String, String>, &str), &'static str> {
    let mut labels = BTreeMap::new();
    loop {
        text = text.trim_start_matches([',', ' ']);
        if let Some(after) = text.strip_prefix('}') {
            return Ok((labels, after));
        }
        let eq = text.find('=').ok_or("a label without '='")?;
        let key = text[..eq].trim();
        let quoted = text[eq + 1..]
            .strip_prefix('"')
            .ok_or("a label value without quotes")?;
        let mut value = String::new();
        let mut chars = quoted.char_indices();
        let end = loop {
            match chars.next() {
                None => return Err("an unterminated label value"),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c)) => value.push(c),
                    None => return Err("an unterminated label value"),
                },
                Some((_, c)) => value.push(c),
            }
        };
        labels.insert(key.to_string(), value);
        text = &quoted[end + 1..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = r#"# TYPE envoy_cluster_upstream_rq_total counter
envoy_cluster_upstream_rq_total{envoy_cluster_name="a"} 12
# TYPE breakwater_retries_skipped_total counter
breakwater_retries_skipped_total{breakwater_cluster="outbound|8080||reviews.default.svc.cluster.local",reason="budget"} 6
# TYPE envoy_wasm_breakwater_vm_reload counter
envoy_wasm_breakwater_vm_reload{} 0
envoy_x_bucket{le="+Inf",q="a\"b\\c"} 3
"#;

    #[test]
    fn samples_types_and_labels_are_read() {
        let page = Prometheus::parse(PAGE).expect("Envoy's output parses");
        assert_eq!(
            page.value(
                "envoy_cluster_upstream_rq_total",
                &[("envoy_cluster_name", "a")]
            ),
            Some(12.0)
        );
        assert_eq!(
            page.value(
                "breakwater_retries_skipped_total",
                &[
                    (
                        "breakwater_cluster",
                        "outbound|8080||reviews.default.svc.cluster.local"
                    ),
                    ("reason", "budget")
                ]
            ),
            Some(6.0),
            "Istio cluster names survive as label values"
        );
        assert_eq!(
            page.value("envoy_wasm_breakwater_vm_reload", &[]),
            Some(0.0)
        );
        assert_eq!(
            page.type_of("breakwater_retries_skipped_total"),
            Some("counter")
        );
    }

    #[test]
    fn escaped_label_values_are_unescaped() {
        let page = Prometheus::parse(PAGE).expect("parses");
        assert_eq!(
            page.value("envoy_x_bucket", &[("le", "+Inf"), ("q", "a\"b\\c")]),
            Some(3.0)
        );
    }

    #[test]
    fn a_label_subset_does_not_match() {
        let page = Prometheus::parse(PAGE).expect("parses");
        assert_eq!(
            page.value("breakwater_retries_skipped_total", &[("reason", "budget")]),
            None,
            "labels must match exactly, so a test cannot read the wrong series"
        );
    }

    #[test]
    fn a_broken_line_is_reported_with_its_number() {
        let err = Prometheus::parse("a{b=\"c\"} 1\nbroken{x=\"y} 2\n").expect_err("unterminated");
        assert_eq!(err.line, 2);
        assert_eq!(err.reason, "an unterminated label value");
    }
}
