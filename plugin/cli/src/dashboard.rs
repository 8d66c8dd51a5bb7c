//! The Grafana dashboard's queries, taken apart: which metrics, labels and label values they
//! use, so that a test can hold them to what the filter really exports.
//!
//! The PromQL reader here knows just enough of the language to tell a metric from a function, a
//! keyword, a label or a number: selectors `{...}`, ranges `[...]`, groupings `by (...)`,
//! Grafana variables (`$cluster`, `$__rate_interval`) and Grafana's `label_values(metric,
//! label)`.

use serde_json::Value;
use std::collections::BTreeSet;

/// One PromQL expression of the dashboard and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// The panel's title, or `variable <name>`.
    pub place: String,
    pub expr: String,
}

/// Every query of a dashboard: panel targets (rows included) and query variables.
pub fn queries(dashboard: &Value) -> Vec<Query> {
    let mut found = Vec::new();
    collect_panels(&dashboard["panels"], &mut found);
    for variable in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if variable["type"] != "query" {
            continue;
        }
        let query = &variable["query"];
        let expr = query["query"].as_str().or(query.as_str());
        if let Some(expr) = expr {
            found.push(Query {
                place: format!("variable {}", variable["name"].as_str().unwrap_or("?")),
                expr: expr.to_string(),
            });
        }
    }
    found
}

fn collect_panels(panels: &Value, found: &mut Vec<Query>) {
    for panel in panels.as_array().into_iter().flatten() {
        let title = panel["title"].as_str().unwrap_or("(untitled)");
        for target in panel["targets"].as_array().into_iter().flatten() {
            if let Some(expr) = target["expr"].as_str() {
                found.push(Query {
                    place: title.to_string(),
                    expr: expr.to_string(),
                });
            }
        }
        collect_panels(&panel["panels"], found);
    }
}

/// What a query refers to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Uses {
    pub metrics: BTreeSet<String>,
    pub labels: BTreeSet<String>,
    /// `label="value"` matchers with a literal value (no variable).
    pub matchers: BTreeSet<(String, String)>,
    /// Metrics read through `rate`, `irate` or `increase`: they must be counters.
    pub rated: BTreeSet<String>,
}

const KEYWORDS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
    "sum",
    "min",
    "max",
    "avg",
    "count",
    "group",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "quantile",
    "count_values",
];
const GROUPINGS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];
const RATES: &[&str] = &["rate", "irate", "increase"];

/// The metrics, labels and literal matchers of `expr`.
pub fn uses(expr: &str) -> Uses {
    let mut uses = Uses::default();
    let chars: Vec<char> = expr.chars().collect();
    // The function (or "") that opened each enclosing parenthesis.
    let mut calls: Vec<String> = Vec::new();
    let mut last_word = String::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        if c == '"' || c == '\'' {
            i = skip_string(&chars, i).1;
        } else if c == '$' {
            i = skip_while(&chars, i + 1, |c| c.is_alphanumeric() || "_{}".contains(c));
        } else if c == '[' {
            i = skip_while(&chars, i, |c| c != ']') + 1;
        } else if c == '{' {
            i = matchers(&chars, i + 1, &mut uses);
        } else if c == '(' {
            if GROUPINGS.contains(&last_word.as_str()) {
                let end = skip_while(&chars, i, |c| c != ')');
                let list: String = chars[i + 1..end.min(chars.len())].iter().collect();
                uses.labels.extend(
                    list.split(',')
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .map(String::from),
                );
                i = end + 1;
            } else {
                calls.push(std::mem::take(&mut last_word));
                i += 1;
            }
            last_word.clear();
        } else if c == ')' {
            calls.pop();
            last_word.clear();
            i += 1;
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            i = skip_while(&chars, i, |c| c.is_alphanumeric() || c == '.');
        } else if c.is_alphabetic() || c == '_' || c == ':' {
            let end = skip_while(&chars, i, |c| c.is_alphanumeric() || c == '_' || c == ':');
            let word: String = chars[i..end].iter().collect();
            let next = chars[end..].iter().find(|c| !c.is_whitespace());
            if next != Some(&'(') && !KEYWORDS.contains(&word.as_str()) {
                if calls.last().is_some_and(|f| f == "label_values")
                    && next == Some(&')')
                    && uses_label_argument(&chars, i)
                {
                    uses.labels.insert(word.clone());
                } else {
                    if calls.last().is_some_and(|f| RATES.contains(&f.as_str())) {
                        uses.rated.insert(word.clone());
                    }
                    uses.metrics.insert(word.clone());
                }
            }
            last_word = word;
            i = end;
        } else {
            if !c.is_whitespace() {
                last_word.clear();
            }
            i += 1;
        }
    }
    uses
}

/// Whether the word at `start` is the second argument of `label_values(metric, label)`.
fn uses_label_argument(chars: &[char], start: usize) -> bool {
    chars[..start].iter().rev().find(|c| !c.is_whitespace()) == Some(&',')
}

fn skip_while(chars: &[char], from: usize, keep: impl Fn(char) -> bool) -> usize {
    let mut i = from;
    while chars.get(i).is_some_and(|&c| keep(c)) {
        i += 1;
    }
    i
}

/// The string literal starting at `start` (its quote): its text and the index after it.
fn skip_string(chars: &[char], start: usize) -> (String, usize) {
    let quote = chars[start];
    let mut text = String::new();
    let mut i = start + 1;
    while let Some(&c) = chars.get(i) {
        i += 1;
        match c {
            '\\' => {
                if let Some(&escaped) = chars.get(i) {
                    text.push(escaped);
                    i += 1;
                }
            }
            c if c == quote => break,
            c => text.push(c),
        }
    }
    (text, i)
}

/// Reads `name op "value", ...}` from `from`; returns the index after `}`.
fn matchers(chars: &[char], from: usize, uses: &mut Uses) -> usize {
    let mut i = from;
    loop {
        i = skip_while(chars, i, |c| c.is_whitespace() || c == ',');
        match chars.get(i) {
            None => return i,
            Some('}') => return i + 1,
            Some(_) => {}
        }
        let end = skip_while(chars, i, |c| c.is_alphanumeric() || c == '_');
        let name: String = chars[i..end].iter().collect();
        let op_end = skip_while(chars, end, |c| "=!~ ".contains(c));
        let op: String = chars[end..op_end]
            .iter()
            .filter(|c| !c.is_whitespace())
            .collect();
        let (value, after) = match chars.get(op_end) {
            Some('"') | Some('\'') => skip_string(chars, op_end),
            _ => (String::new(), op_end.max(end + 1)),
        };
        if !name.is_empty() {
            if name == "__name__" {
                uses.metrics.insert(value.clone());
            } else {
                uses.labels.insert(name.clone());
                if op == "=" && !value.contains('$') {
                    uses.matchers.insert((name, value));
                }
            }
        }
        i = after;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn metrics_labels_and_literal_matchers_are_told_apart() {
        let uses = uses(
            r#"sum by (breakwater_cluster) (rate(breakwater_retries_skipped_total{breakwater_cluster=~"$cluster", reason="budget"}[$__rate_interval]))
               / on (breakwater_cluster) group_left
               clamp_min(sum(increase(breakwater_requests_total[5m])), 1) > bool 0.5"#,
        );
        assert_eq!(
            uses.metrics,
            set(&[
                "breakwater_requests_total",
                "breakwater_retries_skipped_total"
            ])
        );
        assert_eq!(uses.labels, set(&["breakwater_cluster", "reason"]));
        assert_eq!(
            uses.matchers,
            BTreeSet::from([("reason".to_string(), "budget".to_string())]),
            "a variable is not a literal value"
        );
        assert_eq!(uses.rated, uses.metrics, "both read through rate/increase");
    }

    #[test]
    fn a_gauge_compared_or_aggregated_is_a_metric_but_not_rated() {
        let uses = uses("max by (breakwater_cluster) (2 * (breakwater_breaker_state == bool 1))");
        assert_eq!(uses.metrics, set(&["breakwater_breaker_state"]));
        assert!(uses.rated.is_empty());
    }

    #[test]
    fn label_values_names_a_metric_and_a_label() {
        let uses = uses("label_values(breakwater_requests_total, breakwater_cluster)");
        assert_eq!(uses.metrics, set(&["breakwater_requests_total"]));
        assert_eq!(uses.labels, set(&["breakwater_cluster"]));
    }

    #[test]
    fn queries_are_found_in_panels_rows_and_variables() {
        let dashboard = serde_json::json!({
            "panels": [
                { "title": "a", "targets": [{ "expr": "x" }] },
                { "type": "row", "title": "r", "panels": [{ "title": "b", "targets": [{ "expr": "y" }] }] }
            ],
            "templating": { "list": [
                { "type": "query", "name": "cluster", "query": { "query": "label_values(z, l)" } },
                { "type": "datasource", "name": "ds", "query": "prometheus" }
            ] }
        });
        let found: Vec<String> = queries(&dashboard).into_iter().map(|q| q.expr).collect();
        assert_eq!(found, ["x", "y", "label_values(z, l)"]);
    }
}
