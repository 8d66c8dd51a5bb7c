//! POLICY.md holds to the filter: its field tables list exactly the fields the filter accepts
//! (taken from the JSON Schema that the raw policy types generate, not from a list written by
//! hand), each with a description in the schema and a paragraph of its own; the defaults it
//! states are the filter's; and every policy it shows is one the filter accepts, the example
//! files as they are.

use breakwater::policy::{Effective, Policy, Rule};
use breakwater_cli::{paths, schema, validate};
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;

/// The header row of the tables that document fields.
const FIELD_TABLE: &str = "| field | type | default | range | meaning |";

/// The example policies POLICY.md must show, one per common need.
const SHOWN: [&str; 4] = [
    "gateway.json",
    "flaky-dependency.json",
    "payments.json",
    "shadow-canary.json",
];

fn read(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn policy_md() -> String {
    read(&paths::root().join("POLICY.md"))
}

/// One row of a field table.
#[derive(Debug)]
struct Row {
    path: String,
    default: String,
}

/// The rows of every field table, in order. A row must name one field in backticks and fill
/// its type, default and meaning.
fn documented(md: &str) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut lines = md.lines();
    while let Some(line) = lines.next() {
        if line.trim() != FIELD_TABLE {
            continue;
        }
        lines.next(); // | --- | ... |
        for line in lines.by_ref() {
            let Some(inner) = line
                .trim()
                .strip_prefix('|')
                .and_then(|l| l.strip_suffix('|'))
            else {
                break;
            };
            let cells: Vec<&str> = inner.split('|').map(str::trim).collect();
            let [field, kind, default, _range, meaning] = cells[..] else {
                panic!("a field row has 5 cells (no `|` inside them): {line}");
            };
            let path = field
                .strip_prefix('`')
                .and_then(|f| f.strip_suffix('`'))
                .filter(|f| !f.contains('`'))
                .unwrap_or_else(|| panic!("the first cell is one field in backticks: {line}"));
            for (what, cell) in [("type", kind), ("default", default), ("meaning", meaning)] {
                assert!(!cell.is_empty(), "{path}: the {what} is missing: {line}");
            }
            rows.push(Row {
                path: path.to_owned(),
                default: default.to_owned(),
            });
        }
    }
    rows
}

/// A schema with its `$ref` followed.
fn resolve<'a>(root: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let name = reference.trim_start_matches("#/$defs/");
            &root["$defs"][name]
        }
        None => schema,
    }
}

/// The object schema (one with `properties`) that a property holds, through `$ref` and the
/// alternatives of `anyOf` (a part that `null` turns off); `items` says whether to look
/// through `additionalProperties` too (`clusters` and `routes`).
fn object_of<'a>(root: &'a Value, property: &'a Value, items: bool) -> Option<&'a Value> {
    let mut candidates = vec![property];
    if let Some(Value::Array(alternatives)) = property.get("anyOf") {
        candidates.extend(alternatives);
    }
    // A part that `null` turns off: `if null ... else <value>`.
    candidates.extend(property.get("else"));
    if items {
        candidates.extend(property.get("additionalProperties"));
    }
    candidates
        .into_iter()
        .map(|c| resolve(root, c))
        .find(|c| c.get("properties").is_some())
}

/// Every field under `object`, as dotted paths after `prefix`, with its description.
fn walk(root: &Value, object: &Value, prefix: &str, into: &mut Vec<(String, Option<String>)>) {
    let Some(Value::Object(properties)) = object.get("properties") else {
        return;
    };
    for (name, property) in properties {
        let path = format!("{prefix}{name}");
        let description = property["description"].as_str().map(str::to_owned);
        into.push((path.clone(), description));
        if let Some(inner) = object_of(root, property, false) {
            walk(root, inner, &format!("{path}."), into);
        }
    }
}

/// The fields the filter accepts, from the schema the raw policy types generate: the top
/// level (`default`, `clusters`, `routes`), then the fields of a scope and of a route scope,
/// as paths inside their scope (`retry.budget.window`).
struct Accepted {
    top: Vec<(String, Option<String>)>,
    scope: Vec<(String, Option<String>)>,
    route: Vec<(String, Option<String>)>,
}

impl Accepted {
    fn from_schema() -> Accepted {
        let root = schema::generate();
        let mut accepted = Accepted {
            top: Vec::new(),
            scope: Vec::new(),
            route: Vec::new(),
        };
        let top = root["properties"].as_object().expect("the policy's fields");
        for (name, property) in top {
            let description = property["description"].as_str().map(str::to_owned);
            accepted.top.push((name.clone(), description));
            // A top-level value (`max_worker_buffer`) has no fields of its own.
            let Some(inner) = object_of(&root, property, true) else {
                continue;
            };
            let into = if name == "routes" {
                &mut accepted.route
            } else {
                &mut accepted.scope
            };
            if into.is_empty() {
                walk(&root, inner, "", into);
            }
        }
        assert!(
            accepted.top.len() == 7 && accepted.scope.len() > 30 && !accepted.route.is_empty(),
            "the walk found the fields: {:?}",
            accepted.top
        );
        accepted
    }

    fn all(&self) -> impl Iterator<Item = &(String, Option<String>)> {
        self.top.iter().chain(&self.scope).chain(&self.route)
    }

    fn paths(&self) -> BTreeSet<String> {
        self.all().map(|(path, _)| path.clone()).collect()
    }
}

/// `value` at `path` (dotted) inside nested objects.
fn nest(path: &str, value: Value) -> Value {
    path.rsplit('.').fold(value, |inner, key| {
        Value::Object(Map::from_iter([(key.to_owned(), inner)]))
    })
}

#[test]
fn every_field_the_filter_accepts_is_documented_in_policy_md_and_nothing_else() {
    let accepted = Accepted::from_schema().paths();
    let rows = documented(&policy_md());
    let mut documented = BTreeSet::new();
    for row in &rows {
        assert!(
            documented.insert(row.path.clone()),
            "{} has two rows in POLICY.md",
            row.path
        );
    }
    let missing: Vec<_> = accepted.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "fields the filter accepts but POLICY.md does not document (add a table row and a \
         paragraph): {missing:?}"
    );
    let unknown: Vec<_> = documented.difference(&accepted).collect();
    assert!(
        unknown.is_empty(),
        "POLICY.md documents fields the filter does not accept: {unknown:?}"
    );
}

#[test]
fn every_field_has_a_description_in_the_schema() {
    let accepted = Accepted::from_schema();
    for (path, description) in accepted.all() {
        assert!(
            description.as_deref().is_some_and(|d| !d.trim().is_empty()),
            "{path} has no description in the schema: give its field in \
             plugin/src/policy/raw/mod.rs a doc comment and run \
             `cargo run -p breakwater-cli -- schema --write`"
        );
    }
}

#[test]
fn every_documented_field_has_a_paragraph_under_its_own_heading_or_its_parents() {
    let md = policy_md();
    let headings: Vec<&str> = md.lines().filter(|l| l.starts_with('#')).collect();
    for row in documented(&md) {
        // `default`, `clusters`, `routes`, `circuit_breaker` and `retry` are the sections.
        if !row.path.contains('.') {
            continue;
        }
        let mut ancestors = Vec::new();
        let mut path = row.path.as_str();
        while path.contains('.') {
            ancestors.push(path);
            path = path.rsplit_once('.').map_or(path, |(parent, _)| parent);
        }
        let found = ancestors.iter().any(|path| {
            let code = format!("`{path}`");
            headings.iter().any(|h| h.contains(&code))
        });
        assert!(
            found,
            "{}: POLICY.md needs a `### `{}`` paragraph (or one on its parent object)",
            row.path, row.path
        );
    }
}

#[test]
fn the_filter_knows_every_field_policy_md_documents() {
    // Straight through the filter's reader, not the schema: a documented field set to a value
    // of the wrong type is refused for its value, never as an unknown field.
    let accepted = Accepted::from_schema();
    let on_routes: BTreeSet<&str> = accepted.route.iter().map(|(p, _)| p.as_str()).collect();
    for row in documented(&policy_md()) {
        let path = row.path.as_str();
        let mut policies = Vec::new();
        if accepted.top.iter().any(|(p, _)| p == path) {
            policies.push(nest(path, json!({})));
        } else {
            policies.push(nest(&format!("default.{path}"), json!("?")));
        }
        if on_routes.contains(path) {
            policies.push(nest(&format!("routes.r.{path}"), json!("?")));
        }
        for policy in policies {
            let text = policy.to_string();
            if let Err(problems) = validate::check_policy(text.as_bytes()) {
                let unknown: Vec<_> = problems
                    .iter()
                    .filter(|p| matches!(p.rule, Rule::UnknownField { .. }))
                    .collect();
                assert!(unknown.is_empty(), "{text}: {unknown:?}");
            }
        }
    }
}

/// The effective policy of every cluster and route, for comparing policies.
fn effective(policy: &Value) -> Effective {
    let text = policy.to_string();
    let parsed = Policy::parse(text.as_bytes())
        .unwrap_or_else(|e| panic!("the filter refuses {text}:\n{e}"));
    parsed.policy.lookup("any-cluster", "any-route").clone()
}

#[test]
fn the_defaults_policy_md_states_are_the_filters() {
    let mut checked = 0;
    for row in documented(&policy_md()) {
        // Defaults written as one JSON value (`5`, `"60s"`, `["GET", ...]`); the others
        // ("off", "= `timeout`", ...) are prose.
        let Some(value) = row
            .default
            .strip_prefix('`')
            .and_then(|d| d.strip_suffix('`'))
            .filter(|d| !d.contains('`'))
            .and_then(|d| serde_json::from_str::<Value>(d).ok())
        else {
            continue;
        };
        // The field written at its stated default against its parent written empty: the same
        // policy exactly when the default is right (`{}` turns on a part that is off unless
        // written, in both).
        let parent = row.path.rsplit_once('.').map(|(parent, _)| parent);
        if ["max_worker_buffer", "special_clusters"].contains(&row.path.as_str()) {
            // A top-level value: it is not part of any one cluster's effective policy, so the
            // whole resolved policy is compared.
            let with = nest(&row.path, value).to_string();
            let parsed = Policy::parse(with.as_bytes()).expect("the stated default is valid");
            let empty = Policy::parse(b"{}").expect("{} is valid");
            assert_eq!(
                parsed.policy, empty.policy,
                "POLICY.md gives {} the default {}, which is not the filter's",
                row.path, row.default
            );
            checked += 1;
            continue;
        }
        let scopes = ["default", "services", "clusters", "routes"];
        let (with, without) = if scopes.contains(&row.path.as_str()) {
            (nest(&row.path, value), json!({}))
        } else {
            let base = parent.map_or("default".to_owned(), |p| format!("default.{p}"));
            (
                nest(&format!("default.{}", row.path), value),
                nest(&base, json!({})),
            )
        };
        assert_eq!(
            effective(&with),
            effective(&without),
            "POLICY.md gives {} the default {}, which is not the filter's",
            row.path,
            row.default
        );
        checked += 1;
    }
    assert!(checked >= 25, "most defaults are single values: {checked}");
}

/// The ```json blocks of POLICY.md, each with the `examples/policies/` file linked last before
/// it (since the previous block), if any.
fn json_blocks(md: &str) -> Vec<(Option<String>, String)> {
    let mut blocks = Vec::new();
    let mut linked: Option<String> = None;
    let mut lines = md.lines();
    while let Some(line) = lines.next() {
        if line.trim() == "```json" {
            let body: Vec<&str> = lines.by_ref().take_while(|l| l.trim() != "```").collect();
            blocks.push((linked.take(), body.join("\n")));
            continue;
        }
        let mut rest = line;
        while let Some(at) = rest.find("](examples/policies/") {
            let target = &rest[at + 2..];
            let end = target.find(')').unwrap_or(target.len());
            linked = Some(target[..end].to_owned());
            rest = &target[end..];
        }
    }
    blocks
}

#[test]
fn every_policy_in_policy_md_is_accepted_by_the_filter_and_the_schema() {
    let schema: Value = serde_json::from_str(&read(&paths::schema())).expect("JSON");
    let schema = jsonschema::validator_for(&schema).expect("a valid JSON Schema");
    let blocks = json_blocks(&policy_md());
    assert!(blocks.len() > SHOWN.len(), "the shape and the examples");
    for (linked, text) in &blocks {
        let name = linked.as_deref().unwrap_or("a policy");
        if let Err(problems) = validate::check_policy(text.as_bytes()) {
            panic!("POLICY.md shows {name}, which the filter refuses: {problems:#?}\n{text}");
        }
        let value: Value = serde_json::from_str(text).expect("JSON");
        let errors: Vec<String> = schema.iter_errors(&value).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{name} breaks the schema: {errors:#?}");
    }
}

#[test]
fn policy_md_shows_the_example_files_as_they_are_and_they_carry_no_warnings() {
    let blocks = json_blocks(&policy_md());
    let mut shown = Vec::new();
    for (linked, text) in &blocks {
        let Some(file) = linked else { continue };
        let path = paths::root().join(file);
        assert_eq!(
            text.trim(),
            read(&path).trim(),
            "POLICY.md shows {file} other than it is: copy the file into the block"
        );
        let warnings = validate::check_policy(text.as_bytes()).expect("accepted");
        assert!(warnings.is_empty(), "{file}: {warnings:#?}");
        shown.push(file.trim_start_matches("examples/policies/").to_owned());
    }
    for file in SHOWN {
        assert!(
            shown.iter().any(|s| s == file),
            "POLICY.md shows examples/policies/{file} after a link to it: {shown:?}"
        );
    }
    // The shape example is the one the policy tests parse.
    let contract = read(&paths::root().join("plugin/src/policy/tests/policy_md_example.json"));
    assert!(
        blocks
            .iter()
            .any(|(_, text)| text.trim() == contract.trim()),
        "POLICY.md's Shape example and plugin/src/policy/tests/policy_md_example.json differ"
    );
}
