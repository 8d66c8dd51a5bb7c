//! Small, panic-free wrappers over the host calls the filter reads with: the clocks, randomness,
//! properties and header values.
//!
//! # Two clocks
//! Every duration the filter keeps (breaker open times and windows, retry due times, deadlines,
//! budget windows) is on the monotonic clock, [`now`]: WASI `clock_time_get` with the
//! `MONOTONIC` id, which proxy-wasm-cpp-host answers with `getMonotonicTimeNanoseconds`
//! (`wasi_unstable_clock_time_get` in `src/exports.cc`) and Envoy with its time source's
//! `monotonicTime()` (`Context::getMonotonicTimeNanoseconds` in
//! `source/extensions/common/wasm/context.cc`), a `std::chrono::steady_clock` (`RealTimeSource`
//! in `source/common/common/utility.h`): one clock for every worker of the process, so times
//! written to shared data by one worker mean the same to the others, and it never jumps when
//! the wall clock is stepped (NTP, an operator). The wall clock, [`unix_now`]
//! (`proxy_get_current_time_nanoseconds`, Envoy's `systemTime()`), is read only where a date is
//! involved: a `Retry-After` HTTP date.
//!
//! The SDK's convenience methods unwrap host results and decode header values as UTF-8 with
//! `unwrap`; a header value with obs-text bytes would then trap the VM. Everything here goes
//! through the `_bytes` host calls and decodes leniently.

use std::convert::Infallible;
use std::time::{Duration, UNIX_EPOCH};

use proxy_wasm::hostcalls;
use proxy_wasm::types::{MapType, Status};

use crate::core::pairs::Pairs;
use crate::core::Millis;

/// WASI's monotonic clock id (`CLOCKID_MONOTONIC`).
const CLOCK_MONOTONIC: i32 = 1;

#[link(wasm_import_module = "wasi_snapshot_preview1")]
extern "C" {
    /// WASI preview 1 `clock_time_get(id, precision, *time) -> errno`, in its wasm types.
    #[link_name = "clock_time_get"]
    fn wasi_clock_time_get(id: i32, precision: i64, time: i32) -> i32;
}

/// The monotonic clock in milliseconds (from an arbitrary start, the same for every worker of
/// the process); read once per callback. Every duration the filter keeps is measured on it.
/// A host without a monotonic clock (Envoy always has one) gets the wall clock instead, so
/// time still moves.
pub fn now() -> Millis {
    let mut nanos: u64 = 0;
    let out = std::ptr::addr_of_mut!(nanos) as usize;
    // SAFETY: `clock_time_get` writes one u64 at the address it is given, which is `nanos`, a
    // live, aligned local; wasm32 pointers are 32-bit, so the address fits the i32 argument.
    let errno = unsafe { wasi_clock_time_get(CLOCK_MONOTONIC, 1, out as i32) };
    if errno == 0 {
        nanos / 1_000_000
    } else {
        unix_now()
    }
}

/// The monotonic clock as one callback sees it: read on first use ([`Clock::now`]), then the
/// same reading. A healthy request's callbacks never ask: the clock is read only on the paths
/// that measure time (a breaker that is not quiet, a rate window, slow calls, retries, a batch
/// flush), each a host call saved on the others.
#[derive(Debug, Default)]
pub struct Clock(Option<Millis>);

impl Clock {
    /// A clock already read at `now` (a callback that needed the time anyway).
    pub fn at(now: Millis) -> Clock {
        Clock(Some(now))
    }

    /// The time of this callback, read from the host the first time it is asked.
    pub fn now(&mut self) -> Millis {
        *self.0.get_or_insert_with(now)
    }

    /// The reading, if something asked already.
    pub fn read(&self) -> Option<Millis> {
        self.0
    }
}

/// When this HTTP context's request started, on the monotonic clock that reads `now`: Envoy's
/// `request.time` (the wall-clock time the stream began, in Unix nanoseconds) taken from the
/// wall clock, and that span back from `now`. Two host calls, for the paths that need a
/// request's start and did not read the clock when it arrived (a retry's deadline). The span is
/// measured on the wall clock, so a step of the wall clock during the first attempt shifts the
/// start by the step (back: never later than `now`); without the property, the start is `now`.
pub fn request_start(now: Millis) -> Millis {
    let Some(start) = property_u64(path::REQUEST_TIME) else {
        return now;
    };
    let elapsed = unix_now().saturating_sub(start / 1_000_000);
    now.saturating_sub(elapsed)
}

/// The wall clock in milliseconds since the Unix epoch (`proxy_get_current_time_nanoseconds`):
/// only for dates, such as a `Retry-After` HTTP date; 0 if the host refuses.
pub fn unix_now() -> Millis {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(crate::core::millis)
        .unwrap_or(0)
}

/// Property paths as the host reads them: the segments joined by NUL bytes (ABI 0.2.1), written
/// out once here instead of serialized on every read as the SDK's `get_property` does.
pub mod path {
    pub const PLUGIN_NAME: &[u8] = b"plugin_name";
    pub const PLUGIN_ROOT_ID: &[u8] = b"plugin_root_id";
    pub const CLUSTER_NAME: &[u8] = b"xds\0cluster_name";
    pub const ROUTE_NAME: &[u8] = b"xds\0route_name";
    pub const RESPONSE_CODE: &[u8] = b"response\0code";
    /// When the stream began: wall-clock Unix nanoseconds, an 8-byte integer (measured in
    /// Envoy 1.40, in the response callbacks too).
    pub const REQUEST_TIME: &[u8] = b"request\0time";
    pub const RESPONSE_FLAGS: &[u8] = b"response\0flags";
    pub const RESPONSE_CODE_DETAILS: &[u8] = b"response\0code_details";
    /// Present once the upstream's last response byte has arrived (a duration).
    pub const BACKEND_LATENCY: &[u8] = b"response\0backend_latency";
    /// How many upstream attempts Envoy's router made for the stream (its own retries included).
    pub const ROUTER_ATTEMPTS: &[u8] = b"upstream\0request_attempt_count";
}

#[link(wasm_import_module = "env")]
extern "C" {
    // The SDK's own declaration, repeated (see `proxy_get_header_map_pairs` below).
    fn proxy_get_property(
        path_data: *const u8,
        path_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
    ) -> Status;
}

/// A property's bytes; `None` when absent or when the host refuses (the SDK's `get_property`
/// would panic on a status it does not expect).
pub fn property(path: &[u8]) -> Option<Vec<u8>> {
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    // SAFETY: as for `header_pairs`: the host writes a buffer it allocated through the module's
    // `proxy_on_memory_allocate`, owned here as a `Vec` of exactly that capacity.
    let status = unsafe { proxy_get_property(path.as_ptr(), path.len(), &mut data, &mut size) };
    if status != Status::Ok || data.is_null() {
        return None;
    }
    // SAFETY: see above.
    Some(unsafe { Vec::from_raw_parts(data, size, size) })
}

/// A property as UTF-8 text; `None` when absent, unreadable or not UTF-8.
pub fn property_str(path: &[u8]) -> Option<String> {
    String::from_utf8(property(path)?).ok()
}

/// A property that Envoy encodes as an 8-byte little-endian integer (`response.flags`).
pub fn property_u64(path: &[u8]) -> Option<u64> {
    let bytes = property(path)?;
    let array: [u8; 8] = bytes.get(..8)?.try_into().ok()?;
    Some(u64::from_le_bytes(array))
}

/// One header value of `map` as text; `None` when absent, not UTF-8, or when the host has no
/// such map now. The SDK's `get_map_value_bytes` panics on any status but `Ok` and `NotFound`,
/// and Envoy answers `BadArgument` for a map it no longer holds: the response headers once they
/// have passed (measured in Envoy 1.40: reading them from `on_http_response_trailers` trapped
/// the VM).
pub fn header(map: MapType, name: &str) -> Option<String> {
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    // SAFETY: the host writes a pointer and a size into the two out-parameters; the buffer was
    // allocated through the module's `proxy_on_memory_allocate`, as in `header_pairs`.
    let status =
        unsafe { proxy_get_header_map_value(map, name.as_ptr(), name.len(), &mut data, &mut size) };
    if status != Status::Ok {
        return None;
    }
    let bytes = if data.is_null() {
        Vec::new()
    } else {
        // SAFETY: see above.
        unsafe { Vec::from_raw_parts(data, size, size) }
    };
    String::from_utf8(bytes).ok()
}

#[link(wasm_import_module = "env")]
extern "C" {
    // The SDK's own declaration, repeated, for [`header`].
    fn proxy_get_header_map_value(
        map_type: MapType,
        key_data: *const u8,
        key_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
    ) -> Status;
    // The SDK's own declaration, repeated: its `get_map_bytes` copies every name and value into
    // a heap allocation of its own, and panics on a status it does not expect.
    fn proxy_get_header_map_pairs(
        map_type: MapType,
        return_map_data: *mut *mut u8,
        return_map_size: *mut usize,
    ) -> Status;
}

/// The headers of `map` as the host serialized them, in one buffer (see [`Pairs`]); empty when
/// the host has none or refuses.
pub fn header_pairs(map: MapType) -> Pairs {
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    // SAFETY: the host writes a pointer and a size into the two out-parameters. The buffer was
    // allocated through the module's `proxy_on_memory_allocate` (the SDK's export, a
    // `Vec<u8>::with_capacity(size)` that it forgets), so it is owned here as a `Vec` of that
    // capacity, exactly as the SDK's `get_map_bytes` takes it.
    let status = unsafe { proxy_get_header_map_pairs(map, &mut data, &mut size) };
    if status != Status::Ok || data.is_null() {
        return Pairs::default();
    }
    // SAFETY: see above.
    let bytes = unsafe { Vec::from_raw_parts(data, size, size) };
    Pairs::from_bytes(bytes)
}

/// The `:status` of a header map as a number.
pub fn status(map: MapType) -> Option<u16> {
    header(map, ":status")?.trim().parse().ok()
}

/// Randomness from the host's `random_get` (WASI), for jitter. Falls back to a splitmix sequence
/// seeded from the clock if the host ever refuses, rather than trapping.
#[derive(Debug, Default)]
pub struct HostRng {
    fallback: u64,
}

impl rand_core::TryRng for HostRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok((self.next() >> 32) as u32)
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(self.next())
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        for chunk in dst.chunks_mut(8) {
            let bytes = self.next().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
        Ok(())
    }
}

impl HostRng {
    fn next(&mut self) -> u64 {
        if let Ok(value) = getrandom::u64() {
            return value;
        }
        // splitmix64 over the clock: only used if random_get fails, which Envoy never does.
        self.fallback = self
            .fallback
            .wrapping_add(now())
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.fallback;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Whole seconds for a `retry-after` header, rounded up and at least 1.
pub fn retry_after_seconds(d: Duration) -> u64 {
    let ms = crate::core::millis(d);
    ms.div_ceil(1000).max(1)
}
