//! proxy-wasm statuses (`WasmResult` in proxy-wasm-cpp-host's `proxy_wasm_common.h`): what a
//! host call answers the module. Plain numbers, shared by the host functions, the dispatched
//! calls and the faults a test injects.

pub const OK: u32 = 0;
pub const NOT_FOUND: u32 = 1;
pub const BAD_ARGUMENT: u32 = 2;
pub const INVALID_MEMORY_ACCESS: u32 = 6;
pub const EMPTY: u32 = 7;
pub const CAS_MISMATCH: u32 = 8;
pub const INTERNAL_FAILURE: u32 = 10;
pub const BROKEN_CONNECTION: u32 = 11;
pub const UNIMPLEMENTED: u32 = 12;
