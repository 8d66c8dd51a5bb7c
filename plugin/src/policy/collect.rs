//! Reading the raw policy out of the JSON tree, reporting every problem at once.
//!
//! # Why not serde's derives
//!
//! A derived `Deserialize` stops at the first error, and a user who fixes one typo per Envoy
//! rejection would need as many rounds as typos. This reader walks the [`Node`] tree instead and
//! records each problem with its path. For every field it accepts exactly what the derives in
//! [`super::raw`] accept (a property test holds the two together), so the raw types stay the one
//! description of the JSON's shape.
//!
//! # Shape only
//!
//! Here a field is checked for its JSON type only (a number, a string, an object with known
//! fields). What a value means ("1.5s", a status code, a range) is checked in `check`.

use super::json::{show, Node};
use super::names::{seen_before, NameMap};
use super::problem::{At, Report, TOP_LEVEL};
use super::raw::*;
use super::suggest::unknown_field;

/// A raw type that can be read from a JSON tree.
pub(crate) trait FromNode: Sized {
    /// Reads `node`, or records at `at` everything wrong with it and returns `None`.
    fn from_node(node: &Node, at: &mut At) -> Option<Self>;
}

/// Reads the whole policy; what could not be read is left out and reported.
pub(crate) fn policy(node: &Node, report: &mut Report) -> RawPolicy {
    let mut at = At::new(report, TOP_LEVEL);
    let Node::Object(entries) = node else {
        at.problem(show(node), "is not a policy, must be a JSON object");
        return RawPolicy::default();
    };
    let mut fields = Fields::new(entries);
    let policy = RawPolicy {
        default: fields.read("default", &mut at, |node, at| {
            at.scope("default".into(), |at| RawScope::from_node(node, at))
        }),
        clusters: fields.read("clusters", &mut at, |node, at| named(node, at, "clusters")),
        routes: fields.read("routes", &mut at, |node, at| named(node, at, "routes")),
    };
    fields.finish(&mut at);
    policy
}

/// `clusters` or `routes`: each entry is its own scope, `<kind>.<name>`.
fn named<T: FromNode>(node: &Node, at: &mut At, kind: &str) -> Option<Entries<T>> {
    let Node::Object(entries) = node else {
        at.problem(show(node), "is not an object of names");
        return None;
    };
    let mut read = Vec::new();
    let mut seen = NameMap::default();
    for (name, value) in entries {
        if seen_before(&mut seen, name) {
            at.field(name, |at| {
                at.problem(
                    show(value),
                    "is a second entry for this name, write each once",
                )
            });
        } else if let Some(scope) = at.scope(format!("{kind}.{name}"), |at| T::from_node(value, at))
        {
            read.push((name.clone(), scope));
        }
    }
    Some(Entries(read))
}

/// The fields of a JSON object as a struct reads them: known fields are looked up by name, the
/// rest are reported by [`Fields::finish`].
struct Fields<'n> {
    entries: &'n [(String, Node)],
    known: Vec<&'static str>,
}

impl<'n> Fields<'n> {
    fn new(entries: &'n [(String, Node)]) -> Self {
        Fields {
            entries,
            known: Vec::new(),
        }
    }

    fn of(node: &'n Node, at: &mut At) -> Option<Self> {
        match node {
            Node::Object(entries) => Some(Fields::new(entries)),
            other => {
                at.problem(show(other), "is not an object");
                None
            }
        }
    }

    /// Reads field `name` with `read` when it is present.
    fn read<T>(
        &mut self,
        name: &'static str,
        at: &mut At,
        read: impl FnOnce(&Node, &mut At) -> Option<T>,
    ) -> Option<T> {
        let node = self.find(name)?;
        at.field(name, |at| read(node, at))
    }

    /// The value of field `name`, which is now known.
    #[inline(never)]
    fn find(&mut self, name: &'static str) -> Option<&'n Node> {
        self.known.push(name);
        let (_, node) = self.entries.iter().find(|(key, _)| key == name)?;
        Some(node)
    }

    /// Reads field `name` when it is present.
    fn get<T: FromNode>(&mut self, name: &'static str, at: &mut At) -> Option<T> {
        self.read(name, at, T::from_node)
    }

    /// Reports unknown fields and fields written twice.
    fn finish(self, at: &mut At) {
        // Only known fields can repeat: an unknown one is reported every time anyway.
        let mut seen: Vec<&str> = Vec::with_capacity(self.known.len());
        for (key, node) in self.entries {
            if !self.known.contains(&key.as_str()) {
                at.field(key, |at| {
                    at.problem(show(node), &unknown_field(key, &self.known))
                });
            } else if seen.contains(&key.as_str()) {
                at.field(key, |at| {
                    at.problem(show(node), "is a second value for this field, set it once")
                });
            } else {
                seen.push(key);
            }
        }
    }
}

/// Reads a struct: `build` takes its fields, then unknown and repeated fields are reported.
fn object<T>(node: &Node, at: &mut At, build: impl FnOnce(&mut Fields, &mut At) -> T) -> Option<T> {
    let mut fields = Fields::of(node, at)?;
    let value = build(&mut fields, at);
    fields.finish(at);
    Some(value)
}

impl FromNode for RawScope {
    fn from_node(node: &Node, at: &mut At) -> Option<Self> {
        object(node, at, |f, at| RawScope {
            circuit_breaker: f.get(CIRCUIT_BREAKER, at).unwrap_or_default(),
            retry: f.get("retry", at).unwrap_or_default(),
        })
    }
}

const CIRCUIT_BREAKER: &str = "circuit_breaker";

impl FromNode for RawRoute {
    fn from_node(node: &Node, at: &mut At) -> Option<Self> {
        object(node, at, |f, at| RawRoute {
            circuit_breaker: f.read(CIRCUIT_BREAKER, at, |node, at| match node {
                Node::Null => Some(Null),
                other => {
                    at.problem(
                        show(other),
                        "is not allowed on a route: breaker settings are per cluster \
                         (set them under clusters.<name>); a route may only set null to \
                         bypass the breaker",
                    );
                    None
                }
            }),
            retry: f.get("retry", at).unwrap_or_default(),
        })
    }
}

impl FromNode for RawBreaker {
    fn from_node(node: &Node, at: &mut At) -> Option<Self> {
        object(node, at, |f, at| RawBreaker {
            failure_threshold: f.get("failure_threshold", at),
            failure_rate: f.get("failure_rate", at).unwrap_or_default(),
            slow_call: f.get("slow_call", at).unwrap_or_default(),
            timeout: f.get("timeout", at),
            max_timeout: f.get("max_timeout", at),
            half_open_attempts: f.get("half_open_attempts", at),
            probe_timeout: f.get("probe_timeout", at),
            failure_on: f.get("failure_on", at),
            count_retries: f.get("count_retries", at),
            fallback: f.get("fallback", at),
            mode: f.get("mode", at),
        })
    }
}

impl FromNode for RawFailureRate {
    fn from_node(node: &Node, at: &mut At) -> Option<Self> {
        object(node, at, |f, at| RawFailureRate {
            threshold: f.get("threshold", at),
            minimum_requests: f.get("minimum_requests", at),
            window: f.get("window", at),
        })
    }
}

impl FromNode for RawSlowCall {
    fn from_node(node: &Node, at: &mut At) -> Option<Self> {
        object(node, at, |f, at| RawSlowCall {
            duration: f.get("duration", at),
            rate_threshold: f.get("rate_threshold", at),
        })
    }
}

impl FromNode for RawFallback {
    fn from_node(node: &Node, at: &mut At) -> Option<Self> {
        object(node, at, |f, at| RawFallback {
            status: f.get("status", at),
            headers: f.get("headers", at),
            body: f.get("body", at),
        })
    }
}

impl FromNode for RawRetry {
    fn from_node(node: &Node, at: &mut At) -> Option<Self> {
        object(node, at, |f, at| RawRetry {
            max_attempts: f.get("max_attempts", at),
            base_delay: f.get("base_delay", at),
            max_delay: f.get("max_delay", at),
            exponential_base: f.get("exponential_base", at),
            jitter: f.get("jitter", at),
            retry_on: f.get("retry_on", at),
            methods: f.get("methods", at),
            idempotency_header: f.get("idempotency_header", at).unwrap_or_default(),
            per_try_timeout: f.get("per_try_timeout", at),
            deadline: f.get("deadline", at),
            respect_retry_after: f.get("respect_retry_after", at),
            budget: f.get("budget", at).unwrap_or_default(),
            max_request_body: f.get("max_request_body", at),
        })
    }
}

impl FromNode for RawBudget {
    fn from_node(node: &Node, at: &mut At) -> Option<Self> {
        object(node, at, |f, at| RawBudget {
            ratio: f.get("ratio", at),
            min_per_second: f.get("min_per_second", at),
            window: f.get("window", at),
        })
    }
}
