//! Counting host calls: every import a module calls, by name and by the callback it ran in.
//!
//! A host call crosses the wasm boundary, which in Envoy costs far more than the few wasm
//! instructions around it (V8's trampoline, Envoy's host function, often a lock or a copy), so
//! the count per request is a figure of its own beside fuel, and as deterministic.
//!
//! # How
//! Each VM's store gets (`crate::vm`) a linker of its own whose every function counts the call
//! and then runs the function the harness registered (`abi::add_to_linker`), unchanged. Imports
//! the harness does not provide are left out, so instantiation fails on them as before. Calls
//! the host makes into the module (`proxy_on_memory_allocate` while it copies a value out) are
//! exports, not imports, and are not counted.

use crate::observe::Callback;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Host calls so far, by the callback they were made in and the import called.
#[derive(Debug, Default, Clone)]
pub(crate) struct HostCallLedger {
    pub total: u64,
    pub by_callback: BTreeMap<Option<Callback>, BTreeMap<Arc<str>, u64>>,
}

impl HostCallLedger {
    pub fn charge(&mut self, callback: Option<Callback>, import: &Arc<str>) {
        self.total += 1;
        let imports = self.by_callback.entry(callback).or_default();
        match imports.get_mut(&**import) {
            Some(n) => *n += 1,
            None => {
                imports.insert(Arc::clone(import), 1);
            }
        }
    }

    pub fn report(&self) -> HostCallReport {
        let by_callback = self
            .by_callback
            .iter()
            .map(|(callback, imports)| {
                let imports = imports
                    .iter()
                    .map(|(name, n)| (name.to_string(), *n))
                    .collect();
                (*callback, imports)
            })
            .collect();
        HostCallReport {
            total: self.total,
            by_callback,
        }
    }
}

/// Host calls (imports the module called) so far, in all and per callback.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostCallReport {
    /// Every import call of every VM.
    pub total: u64,
    /// By the callback they were made in (`None`: outside any callback the harness made), then
    /// by import name.
    pub by_callback: BTreeMap<Option<Callback>, BTreeMap<String, u64>>,
}

impl HostCallReport {
    /// Calls of each import, over every callback.
    pub fn by_import(&self) -> BTreeMap<String, u64> {
        let mut all = BTreeMap::new();
        for imports in self.by_callback.values() {
            for (name, n) in imports {
                *all.entry(name.clone()).or_default() += n;
            }
        }
        all
    }

    /// What was called since `earlier`: every count minus its count in `earlier`, zeros left out.
    pub fn since(&self, earlier: &HostCallReport) -> HostCallReport {
        let by_callback = self
            .by_callback
            .iter()
            .map(|(callback, imports)| {
                let before = earlier.by_callback.get(callback);
                let imports = imports
                    .iter()
                    .filter_map(|(name, n)| {
                        let was = before.and_then(|b| b.get(name)).copied().unwrap_or(0);
                        (*n > was).then(|| (name.clone(), n - was))
                    })
                    .collect::<BTreeMap<_, _>>();
                (*callback, imports)
            })
            .filter(|(_, imports)| !imports.is_empty())
            .collect();
        HostCallReport {
            total: self.total - earlier.total,
            by_callback,
        }
    }
}
