//! Modules written here byte by byte (with `wasm-encoder`), for what a real filter cannot show:
//! a missing import, a missing ABI export, calls Envoy forbids during `_initialize`, stdout.

use breakwater_host_tests::{HarnessError, LogLevel, World};
use std::path::PathBuf;
use wasm_encoder::{
    CodeSection, ConstExpr, DataSection, EntityType, ExportKind, ExportSection, Function,
    FunctionSection, ImportSection, MemorySection, MemoryType, Module, TypeSection, ValType,
};

/// An import and the constant arguments `_initialize` calls it with.
struct Call {
    module: &'static str,
    name: &'static str,
    args: Vec<i32>,
    returns: bool,
}

impl Call {
    fn new(module: &'static str, name: &'static str, args: &[i32], returns: bool) -> Self {
        Call {
            module,
            name,
            args: args.to_vec(),
            returns,
        }
    }
}

/// A module that imports `calls`, calls each from `_initialize`, holds the `(address, bytes)`
/// data segments, and (if `abi`) exports the ABI 0.2.1 marker.
fn module(name: &str, calls: &[Call], data: &[(i32, &[u8])], abi: bool) -> PathBuf {
    let mut types = TypeSection::new();
    let mut imports = ImportSection::new();
    for (i, call) in calls.iter().enumerate() {
        let params = vec![ValType::I32; call.args.len()];
        let results = if call.returns {
            vec![ValType::I32]
        } else {
            vec![]
        };
        types.ty().function(params, results);
        imports.import(
            call.module,
            call.name,
            EntityType::Function(u32::try_from(i).unwrap()),
        );
    }
    let imported = u32::try_from(calls.len()).unwrap();
    let unit = imported;
    types.ty().function([], []);
    let alloc_type = imported + 1;
    types.ty().function([ValType::I32], [ValType::I32]);

    let mut functions = FunctionSection::new();
    functions.function(unit); // _initialize
    functions.function(unit); // proxy_abi_version_0_2_1
    functions.function(alloc_type); // proxy_on_memory_allocate

    let mut code = CodeSection::new();
    let mut init = Function::new([]);
    for (i, call) in calls.iter().enumerate() {
        for arg in &call.args {
            init.instructions().i32_const(*arg);
        }
        init.instructions().call(u32::try_from(i).unwrap());
        if call.returns {
            init.instructions().drop();
        }
    }
    init.instructions().end();
    code.function(&init);
    let mut empty = Function::new([]);
    empty.instructions().end();
    code.function(&empty);
    let mut alloc = Function::new([]);
    alloc.instructions().i32_const(4096).end();
    code.function(&alloc);

    let mut memory = MemorySection::new();
    memory.memory(MemoryType {
        minimum: 1,
        maximum: None,
        memory64: false,
        shared: false,
        page_size_log2: None,
    });
    let mut exports = ExportSection::new();
    exports.export("memory", ExportKind::Memory, 0);
    exports.export("_initialize", ExportKind::Func, imported);
    if abi {
        exports.export("proxy_abi_version_0_2_1", ExportKind::Func, imported + 1);
    }
    exports.export("proxy_on_memory_allocate", ExportKind::Func, imported + 2);
    let mut datas = DataSection::new();
    for (address, bytes) in data {
        datas.active(0, &ConstExpr::i32_const(*address), bytes.iter().copied());
    }

    let mut module = Module::new();
    module
        .section(&types)
        .section(&imports)
        .section(&functions)
        .section(&memory)
        .section(&exports)
        .section(&code)
        .section(&datas);
    // Under target/tmp (cargo's scratch space for integration tests), not the system's /tmp,
    // where one file per test process would pile up.
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "breakwater-host-tests-{name}-{}.wasm",
        std::process::id()
    ));
    std::fs::write(&path, module.finish()).expect("the temp dir is writable");
    path
}

fn build(path: PathBuf) -> Result<World, HarnessError> {
    World::builder()
        .module(path)
        .canary(false)
        .main_thread_vm(false)
        .build()
}

#[test]
fn an_import_the_harness_does_not_provide_fails_instantiation_naming_it() {
    let path = module(
        "unknown-import",
        &[Call::new("env", "proxy_no_such_call", &[], true)],
        &[],
        true,
    );
    let error = build(path).err().expect("instantiation fails");
    assert!(
        matches!(&error, HarnessError::Instantiate { .. })
            && error.to_string().contains("proxy_no_such_call"),
        "the error names the import: {error}"
    );
}

#[test]
fn a_module_without_the_abi_version_export_is_refused() {
    let error = build(module("no-abi", &[], &[], false))
        .err()
        .expect("refused");
    assert!(
        error.to_string().contains("proxy_abi_version_0_2_1"),
        "{error}"
    );
}

#[test]
fn a_call_envoy_forbids_during_initialize_traps_naming_it() {
    let path = module(
        "early-tick",
        &[Call::new(
            "env",
            "proxy_set_tick_period_milliseconds",
            &[1],
            true,
        )],
        &[],
        true,
    );
    let error = build(path).err().expect("the VM fails");
    assert!(
        error
            .to_string()
            .contains("proxy_set_tick_period_milliseconds called during _initialize"),
        "{error}"
    );
}

#[test]
fn stdout_and_stderr_become_log_lines_without_their_newline() {
    // Two iovecs at 0 and 8 point into the text at 16: "hello\n" and "boom\n".
    let iovecs: Vec<u8> = [16u32, 6, 22, 5]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let calls = [
        Call::new("wasi_snapshot_preview1", "fd_write", &[1, 0, 1, 100], true),
        Call::new("wasi_snapshot_preview1", "fd_write", &[2, 8, 1, 100], true),
    ];
    let path = module(
        "stdio",
        &calls,
        &[(0, &iovecs), (16, b"hello\nboom\n")],
        true,
    );
    let world = build(path).expect("starts");
    let lines: Vec<(LogLevel, String)> = world
        .logs()
        .into_iter()
        .map(|l| (l.level, l.message))
        .collect();
    assert_eq!(
        lines,
        vec![
            (LogLevel::Info, "hello".into()),
            (LogLevel::Error, "boom".into())
        ],
        "stdout at info, stderr at error, as Envoy logs them"
    );
}

#[test]
fn proc_exit_fails_the_vm() {
    let path = module(
        "exit",
        &[Call::new(
            "wasi_snapshot_preview1",
            "proc_exit",
            &[3],
            false,
        )],
        &[],
        true,
    );
    let error = build(path).err().expect("the VM fails");
    assert!(error.to_string().contains("proc_exit(3)"), "{error}");
}
