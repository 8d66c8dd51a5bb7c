//! The policy parser and validator on arbitrary bytes: never a panic; a refusal names at least
//! one problem and every problem prints; an accepted policy holds only values inside their
//! bounds, looks up consistently, and parses the same way twice.

#![no_main]

use breakwater::policy::Policy;
use breakwater_fuzz::checks;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let first = Policy::parse(bytes);
    match &first {
        Ok(parsed) => checks::parsed(parsed, breakwater_fuzz::policy_json::route_names()),
        Err(errors) => {
            assert!(!errors.0.is_empty(), "a refused policy names its problems");
            for problem in &errors.0 {
                assert!(
                    !problem.rule.to_string().is_empty(),
                    "every problem states its rule: {problem:?}"
                );
                assert!(!problem.to_string().is_empty());
            }
        }
    }
    assert_eq!(first, Policy::parse(bytes), "parsing is deterministic");
});
