//! Each VM's own linker, which counts every host call the module makes before serving it (see
//! [`crate::host_calls`] for why the count matters).

use super::HostState;
use std::sync::Arc;
use wasmtime::{Extern, Linker, Module, Store};

/// A linker for one store that counts every call of `module`'s imports, each then served by
/// `linker`'s own definition.
pub(crate) fn instrument(
    linker: &Linker<HostState>,
    store: &mut Store<HostState>,
    module: &Module,
) -> wasmtime::Result<Linker<HostState>> {
    let mut counted = Linker::<HostState>::new(module.engine());
    for import in module.imports() {
        let defined = counted.get_by_import(&mut *store, &import).is_some();
        let Some(Extern::Func(inner)) = linker.get_by_import(&mut *store, &import) else {
            continue;
        };
        if defined {
            // The module imports this function more than once: one definition serves all.
            continue;
        }
        let ty = inner.ty(&*store);
        let name: Arc<str> = Arc::from(import.name());
        counted.func_new(
            import.module(),
            import.name(),
            ty,
            move |mut caller, params, results| {
                let callback = caller.data().call.callback;
                if let Some(core) = caller.data().core.upgrade() {
                    core.state.borrow_mut().host_calls.charge(callback, &name);
                }
                inner.call(&mut caller, params, results)
            },
        )?;
    }
    Ok(counted)
}
