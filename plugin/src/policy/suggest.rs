//! The suggestion for an unknown field: a likely typo gets the field it was meant to be, anything
//! else the list of the fields the object may have (the wording is [`super::Rule`]'s).

/// Shared leading characters that make a field a likely meaning (`timeout_ms` → `timeout`).
const SHARED_PREFIX: usize = 4;

/// The field of `known` (the fields the object may have) that the unknown field `key` was likely
/// meant to be, if any (see [`super::Rule::UnknownField`]).
pub(crate) fn did_you_mean(key: &str, known: &[&'static str]) -> Option<&'static str> {
    let closest = known
        .iter()
        .map(|name| (distance(key, name), *name))
        .min_by_key(|(d, _)| *d)
        .filter(|(d, name)| likely_typo(key, name, *d));
    closest.map(|(_, name)| name)
}

/// A typo changes few characters for its length, or keeps the start of the word.
fn likely_typo(key: &str, name: &str, distance: usize) -> bool {
    let shorter = key.chars().count().min(name.chars().count());
    let shared = key
        .chars()
        .zip(name.chars())
        .take_while(|(a, b)| a == b)
        .count();
    distance <= (shorter / 3).max(1) || shared >= SHARED_PREFIX
}

/// Edit distance between two strings, by characters: insertions, deletions, substitutions and
/// swaps of two neighbours each count one (optimal string alignment).
fn distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    // Rows i-2, i-1 and i of the table; cell j is the distance between a[..i] and b[..j].
    let mut before: Vec<usize> = Vec::new();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut row = Vec::with_capacity(b.len() + 1);
        row.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            let at = |r: &[usize], k: usize| r.get(k).copied().unwrap_or(usize::MAX - 1);
            let substitute = at(&previous, j) + usize::from(ca != cb);
            let delete = at(&previous, j + 1) + 1;
            let insert = at(&row, j) + 1;
            let mut best = substitute.min(delete).min(insert);
            let swapped = i > 0 && j > 0 && a.get(i - 1) == Some(cb) && b.get(j - 1) == Some(ca);
            if swapped {
                best = best.min(at(&before, j - 1) + 1);
            }
            row.push(best);
        }
        before = std::mem::replace(&mut previous, row);
    }
    previous.last().copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Rule;

    /// The rule as the reader reports it.
    fn unknown_field(key: &str, known: &'static [&'static str]) -> String {
        let did_you_mean = did_you_mean(key, known);
        Rule::UnknownField {
            did_you_mean,
            known,
        }
        .to_string()
    }

    #[test]
    fn edit_distance_counts_single_character_edits() {
        assert_eq!(distance("max_attempt", "max_attempts"), 1, "one insertion");
        assert_eq!(
            distance("failure-threshold", "failure_threshold"),
            1,
            "one change"
        );
        assert_eq!(distance("retyr", "retry"), 1, "one swap");
        assert_eq!(distance("", "abc"), 3, "all insertions");
        assert_eq!(distance("abc", ""), 3, "all deletions");
        assert_eq!(distance("retry", "retry"), 0, "equal strings");
    }

    #[test]
    fn a_typo_gets_the_field_it_was_meant_to_be() {
        let known = &["circuit_breaker", "retry"];
        for typo in ["circuit_breakr", "retyr", "retries", "circuit-breaker"] {
            assert!(
                unknown_field(typo, known).contains("did you mean"),
                "{typo} is a likely typo"
            );
        }
        assert_eq!(
            unknown_field("circuit_breakr", known),
            "is set on an unknown field, did you mean circuit_breaker?"
        );
    }

    #[test]
    fn an_unrelated_name_gets_the_list_of_fields() {
        assert_eq!(
            unknown_field("breaker", &["circuit_breaker", "retry"]),
            "is set on an unknown field, must be one of circuit_breaker, retry"
        );
        assert_eq!(
            unknown_field("code", &["status", "headers", "body"]),
            "is set on an unknown field, must be one of status, headers, body",
            "two letters of four is not a typo"
        );
    }
}
