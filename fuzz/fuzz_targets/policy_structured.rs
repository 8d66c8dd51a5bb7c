//! The policy validator on policy-shaped JSON (see `breakwater_fuzz::policy_json`): the fuzzer
//! spends its time on the rules instead of the JSON syntax. Same checks as `policy_parse`, and
//! a refusal must point into the document: every problem has a scope.

#![no_main]

use arbitrary::Unstructured;
use breakwater::policy::Policy;
use breakwater_fuzz::{checks, policy_json};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let mut u = Unstructured::new(bytes);
    let Ok(text) = policy_json(&mut u) else {
        return;
    };
    let parsed = Policy::parse(text.as_bytes());
    if std::env::var_os("BREAKWATER_FUZZ_TRACE").is_some() {
        // Shows how much of the corpus gets past validation.
        match &parsed {
            Ok(p) => eprintln!("accepted ({} warnings): {text}", p.warnings.len()),
            Err(e) => eprintln!("refused ({} problems): {text}", e.0.len()),
        }
    }
    match parsed {
        Ok(parsed) => checks::parsed(&parsed, policy_json::route_names()),
        Err(errors) => {
            assert!(!errors.0.is_empty(), "a refused policy names its problems");
            for problem in &errors.0 {
                assert!(
                    !problem.scope.is_empty(),
                    "every problem names its scope: {problem:?}"
                );
                assert!(
                    !problem.rule.to_string().is_empty(),
                    "every problem states its rule: {problem:?}"
                );
            }
        }
    }
});
