//! Shared data: the breaker and the budget of each cluster, as all workers of the proxy see them.
//!
//! # Keys
//! `breakwater/v3/<state scope>/breaker/<cluster>` and `…/budget/<cluster>`. Istio sets no
//! `vm_id`, so every WasmPlugin of a proxy shares one namespace: the state scope keeps two
//! Breakwater plugins apart, and the format version keeps an old and a new release apart during
//! an upgrade (the bytes carry their own version too).
//!
//! The state scope is the policy's `state_scope` when it sets one, else Envoy's root id, else
//! the plugin name (`root::scope`). Not the plugin name first: Istio writes Envoy's plugin name
//! from the WasmPlugin's namespace and name, and from Istio 1.30 appends
//! `~istio-translated-wasmplugin` to it, so an istiod upgrade would start every breaker afresh
//! under a new key. The root id is the WasmPlugin's `pluginName`, which Istio passes through
//! unchanged, and which the resource's author chose.
//!
//! # Updates
//! A read-modify-write is a compare-and-swap loop with a bound ([`MAX_ATTEMPTS`]): under
//! contention another worker's write wins and we retry on its result; past the bound the update is
//! given up and reported, never spun on. Envoy's CAS rules: cas 0 overwrites unconditionally, a
//! non-zero cas that does not match fails, a non-zero cas on an absent key inserts. So an absent
//! key is written with [`ABSENT_CAS`], never 0, or two workers creating it at once would silently
//! overwrite each other.
//!
//! # Bad bytes
//! Bytes that do not decode (garbage, another version) are replaced by a fresh state; the caller
//! learns it through [`Loaded::error`] to log it and count it once.

use proxy_wasm::hostcalls;
use proxy_wasm::types::Status;

use crate::core::breaker::Breaker;
use crate::core::budget::Budget;

/// Attempts of one read-modify-write before it is given up.
pub const MAX_ATTEMPTS: u32 = 16;

/// The cas used to insert an absent key: any non-zero value inserts, and this one is the last the
/// host's counter would reach, so it is never mistaken for a live entry's cas.
const ABSENT_CAS: u32 = u32::MAX;

/// The key layout version. v2: times are on Envoy's monotonic clock (v1 stored wall-clock
/// times), so a filter of each release keeps its own state while both run during an upgrade.
/// v3: the version comes first and the state scope replaces the plugin name.
const KEY_VERSION: &str = "v3";

/// A state kept in shared data.
pub trait Stored: Sized {
    fn fresh() -> Self;
    fn decode_bytes(bytes: &[u8]) -> Result<Self, String>;
    fn encode_into(&self, out: &mut Vec<u8>);
}

impl Stored for Breaker {
    fn fresh() -> Self {
        Breaker::new()
    }
    fn decode_bytes(bytes: &[u8]) -> Result<Self, String> {
        Breaker::decode(bytes).map_err(|e| e.to_string())
    }
    fn encode_into(&self, out: &mut Vec<u8>) {
        self.encode(out)
    }
}

impl Stored for Budget {
    fn fresh() -> Self {
        Budget::default()
    }
    fn decode_bytes(bytes: &[u8]) -> Result<Self, String> {
        Budget::decode(bytes).map_err(|e| e.to_string())
    }
    fn encode_into(&self, out: &mut Vec<u8>) {
        self.encode(out)
    }
}

/// The shared-data keys of one state scope.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(scope: &str) -> Keys {
        Keys {
            prefix: format!("breakwater/{KEY_VERSION}/{scope}/"),
        }
    }

    pub fn breaker(&self, cluster: &str) -> String {
        self.key("breaker/", cluster)
    }

    pub fn budget(&self, cluster: &str) -> String {
        self.key("budget/", cluster)
    }

    /// Built by hand: the breaker's key is made on every request, and `format!` costs about
    /// 700 wasm instructions more than copying three strings (measured with the fuel example).
    fn key(&self, kind: &str, cluster: &str) -> String {
        let mut key = String::with_capacity(self.prefix.len() + kind.len() + cluster.len());
        key.push_str(&self.prefix);
        key.push_str(kind);
        key.push_str(cluster);
        key
    }
}

/// A state as read, with what went wrong decoding it.
pub struct Loaded<T> {
    pub state: T,
    cas: Option<u32>,
    /// Set when the stored bytes did not decode and `state` is fresh.
    pub error: Option<String>,
}

/// The bytes under a key and their cas, as read: what a hot path may answer from without
/// decoding (see [`crate::core::breaker::Quiet`]), and what [`update_from`] then starts with.
pub struct Read {
    pub bytes: Option<Vec<u8>>,
    cas: Option<u32>,
}

/// Reads the bytes under `key` (one host call).
pub fn read(key: &str) -> Read {
    let (bytes, cas) = hostcalls::get_shared_data(key).unwrap_or((None, None));
    Read { bytes, cas }
}

/// The state `read` holds, if any bytes were stored and they decode (a hot path's look before
/// it decides whether to go the full way, which reports bytes that do not decode).
pub fn peek<T: Stored>(read: &Read) -> Option<T> {
    match read.bytes.as_deref() {
        None => Some(T::fresh()),
        Some(bytes) => T::decode_bytes(bytes).ok(),
    }
}

/// Reads a state; absent or undecodable bytes give a fresh one.
pub fn load<T: Stored>(key: &str) -> Loaded<T> {
    decode(read(key))
}

fn decode<T: Stored>(Read { bytes, cas }: Read) -> Loaded<T> {
    match bytes {
        None => Loaded {
            state: T::fresh(),
            cas,
            error: None,
        },
        Some(bytes) => match T::decode_bytes(&bytes) {
            Ok(state) => Loaded {
                state,
                cas,
                error: None,
            },
            Err(error) => Loaded {
                state: T::fresh(),
                cas,
                error: Some(error),
            },
        },
    }
}

/// Reads a state like [`load`], and replaces bytes that do not decode with the fresh state in
/// shared data too (one CAS write: if another worker wrote first, its bytes stand). A read-only
/// path that met garbage would otherwise leave it for every later read to log and count, as
/// long as nothing else writes the key.
pub fn load_repairing<T: Stored>(key: &str) -> Loaded<T> {
    let loaded = load::<T>(key);
    if loaded.error.is_some() {
        let mut buffer = Vec::new();
        loaded.state.encode_into(&mut buffer);
        let cas = loaded.cas.unwrap_or(ABSENT_CAS);
        let _ = hostcalls::set_shared_data(key, Some(&buffer), Some(cas));
    }
    loaded
}

/// The result of a bounded read-modify-write.
pub struct Updated<R> {
    /// What the last run of the closure returned; `None` if every attempt lost its write.
    pub value: Option<R>,
    /// Decode errors met on the way (to log and count once).
    pub error: Option<String>,
}

/// Runs `change` on the current state and writes the result if it says it changed, retrying on
/// a CAS conflict up to [`MAX_ATTEMPTS`] times. `change` returns its value and whether the state
/// changed; it must be a pure function of the state (it may run several times).
pub fn update<T: Stored, R>(key: &str, change: impl FnMut(&mut T) -> (R, bool)) -> Updated<R> {
    update_from(key, read(key), change)
}

/// [`update`], starting from `first`, the bytes just read under `key`.
pub fn update_from<T: Stored, R>(
    key: &str,
    first: Read,
    mut change: impl FnMut(&mut T) -> (R, bool),
) -> Updated<R> {
    let mut error = None;
    let mut buffer = Vec::new();
    let mut first = Some(first);
    for _ in 0..MAX_ATTEMPTS {
        let mut loaded = match first.take() {
            Some(read) => decode::<T>(read),
            None => load::<T>(key),
        };
        if loaded.error.is_some() {
            error = loaded.error.take();
        }
        let (value, changed) = change(&mut loaded.state);
        if !changed && error.is_none() {
            return Updated {
                value: Some(value),
                error,
            };
        }
        buffer.clear();
        loaded.state.encode_into(&mut buffer);
        let cas = loaded.cas.unwrap_or(ABSENT_CAS);
        match hostcalls::set_shared_data(key, Some(&buffer), Some(cas)) {
            Ok(()) => {
                return Updated {
                    value: Some(value),
                    error,
                }
            }
            Err(Status::CasMismatch) => continue,
            Err(_) => break,
        }
    }
    Updated { value: None, error }
}
