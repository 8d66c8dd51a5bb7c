//! Problems and warnings: what is wrong with a policy, where, and which rule it breaks.
//!
//! Every problem names the scope it was found in (`default`, `clusters.<name>`,
//! `routes.<name>`, `routes.<name> with clusters.<name>` for a rule that only breaks when a
//! route meets a cluster, or `top level`), the JSON path inside that scope, the offending value
//! as JSON, and the rule, and renders as one log line:
//!
//! `circuit_breaker.half_open_attempts: 0 is out of range, must be 1..=1000 (at clusters.payments)`

use super::rule::Rule;
use std::fmt;

/// The scope of problems outside `default`, `clusters` and `routes` entries.
pub const TOP_LEVEL: &str = "top level";

/// One problem (or warning) in a policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}{rule} (at {scope})", Lead(.path, ": "), Lead(.value, " "))]
pub struct Problem {
    /// `default`, `clusters.<name>`, `routes.<name>`, `routes.<r> with clusters.<c>` or
    /// [`TOP_LEVEL`].
    pub scope: String,
    /// The JSON path inside the scope, such as `retry.methods[2]`; empty for the whole text.
    pub path: String,
    /// The offending value as compact JSON (cut when long); empty when there is none.
    pub value: String,
    /// The rule, worded to follow the value: `is out of range, must be 1..=1000`.
    pub rule: Rule,
}

/// Writes the text followed by a separator, or nothing when the text is empty.
struct Lead<'a>(&'a str, &'static str);

impl fmt::Display for Lead<'_> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        if self.0.is_empty() {
            Ok(())
        } else {
            write!(f, "{}{}", self.0, self.1)
        }
    }
}

/// Every problem of a policy that cannot be used. Renders one line per problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", Lines(.0))]
pub struct PolicyErrors(pub Vec<Problem>);

struct Lines<'a>(&'a [Problem]);

impl fmt::Display for Lines<'_> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        for (i, problem) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

/// Problems and warnings found so far, in the order found.
#[derive(Debug, Default)]
pub(crate) struct Report {
    pub problems: Vec<Problem>,
    pub warnings: Vec<Problem>,
    /// How many of the problems are about the JSON's shape (see [`At::shape`]).
    pub shape_problems: usize,
}

/// Whether one of `problems` in `scope` makes `field` (a path such as `retry.max_delay`)
/// unreliable: a problem at the field itself, inside it, or at an object that holds it. A rule
/// that relates several fields is not checked when one of them is unreliable, so that one
/// mistake is reported once, not again through every rule it touches.
pub(crate) fn taints(problems: &[Problem], scope: &str, field: &str) -> bool {
    problems
        .iter()
        .any(|p| p.scope == scope && (within(&p.path, field) || within(field, &p.path)))
}

/// Whether `path` is `outer` or lies inside it.
fn within(path: &str, outer: &str) -> bool {
    match path.strip_prefix(outer) {
        Some(rest) => outer.is_empty() || rest.is_empty() || rest.starts_with(['.', '[']),
        None => false,
    }
}

/// Where the walk is: a scope and a path inside it, with the report to write to.
pub(crate) struct At<'r> {
    report: &'r mut Report,
    scope: String,
    path: String,
}

impl<'r> At<'r> {
    pub fn new(report: &'r mut Report, scope: impl Into<String>) -> Self {
        At {
            report,
            scope: scope.into(),
            path: String::new(),
        }
    }

    /// Runs `f` one field deeper.
    pub fn field<R>(&mut self, name: &str, f: impl FnOnce(&mut Self) -> R) -> R {
        let mark = self.enter(name);
        let result = f(self);
        self.leave(mark);
        result
    }

    /// Runs `f` on an array element.
    pub fn index<R>(&mut self, i: usize, f: impl FnOnce(&mut Self) -> R) -> R {
        let mark = self.enter_index(i);
        let result = f(self);
        self.leave(mark);
        result
    }

    /// Runs `f` in another scope, at its top.
    pub fn scope<R>(&mut self, scope: String, f: impl FnOnce(&mut Self) -> R) -> R {
        let outer_scope = std::mem::replace(&mut self.scope, scope);
        let outer_path = std::mem::take(&mut self.path);
        let result = f(self);
        self.scope = outer_scope;
        self.path = outer_path;
        result
    }

    /// Records a problem at the current path.
    pub fn problem(&mut self, value: String, rule: Rule) {
        self.record(false, value, rule);
    }

    /// Records a problem with the JSON's shape at the current path: an unknown or repeated
    /// field, or a value of the wrong JSON type. These are exactly what the serde derives of the
    /// raw types refuse (a property test holds the two together); every other problem breaks a
    /// rule about a value of the right type.
    pub fn shape(&mut self, value: String, rule: Rule) {
        self.report.shape_problems += 1;
        self.record(false, value, rule);
    }

    /// Records a warning at the current path.
    pub fn warning(&mut self, value: String, rule: Rule) {
        self.record(true, value, rule);
    }

    // The helpers below are called from every field's check; kept out of line so that each
    // call site stays a call (the `.wasm` must stay small).

    #[inline(never)]
    fn enter(&mut self, name: &str) -> usize {
        let mark = self.path.len();
        if !self.path.is_empty() {
            self.path.push('.');
        }
        self.path.push_str(name);
        mark
    }

    #[inline(never)]
    fn enter_index(&mut self, i: usize) -> usize {
        let mark = self.path.len();
        self.path.push('[');
        self.path.push_str(&i.to_string());
        self.path.push(']');
        mark
    }

    #[inline(never)]
    fn leave(&mut self, mark: usize) {
        self.path.truncate(mark);
    }

    #[inline(never)]
    fn record(&mut self, warning: bool, value: String, rule: Rule) {
        let problem = self.make(value, rule);
        let list = if warning {
            &mut self.report.warnings
        } else {
            &mut self.report.problems
        };
        list.push(problem);
    }

    fn make(&self, value: String, rule: Rule) -> Problem {
        Problem {
            scope: self.scope.clone(),
            path: self.path.clone(),
            value,
            rule,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(path: &str, value: &str) -> Problem {
        Problem {
            scope: "clusters.payments".into(),
            path: path.into(),
            value: value.into(),
            rule: Rule::OutOfRange {
                low: "1".into(),
                high: "1000".into(),
            },
        }
    }

    #[test]
    fn a_problem_renders_path_value_rule_and_scope() {
        assert_eq!(
            problem("circuit_breaker.half_open_attempts", "0").to_string(),
            "circuit_breaker.half_open_attempts: 0 is out of range, must be 1..=1000 \
             (at clusters.payments)"
        );
    }

    #[test]
    fn a_problem_without_path_or_value_renders_just_the_rule_and_scope() {
        assert_eq!(
            problem("", "").to_string(),
            "is out of range, must be 1..=1000 (at clusters.payments)"
        );
    }

    #[test]
    fn policy_errors_render_one_line_per_problem() {
        let errors = PolicyErrors(vec![problem("a", "1"), problem("b", "2")]);
        assert_eq!(errors.to_string().lines().count(), 2, "one line each");
    }

    #[test]
    fn a_problem_taints_the_field_itself_what_it_holds_and_what_holds_it() {
        let mut problems = vec![problem("retry.max_delay", "0")];
        assert!(taints(&problems, "clusters.payments", "retry.max_delay"));
        assert!(
            taints(&problems, "clusters.payments", "retry"),
            "the object holding it"
        );
        assert!(
            !taints(&problems, "clusters.payments", "retry.max_delay_x"),
            "not a prefix"
        );
        assert!(
            !taints(&problems, "default", "retry.max_delay"),
            "other scopes are clean"
        );
        problems.push(problem("retry.methods[1]", "\"G T\""));
        assert!(
            taints(&problems, "clusters.payments", "retry.methods"),
            "an element"
        );
    }
}
