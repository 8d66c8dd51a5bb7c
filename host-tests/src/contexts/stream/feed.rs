//! The request as the client sends it over time, and the part of it the filter has been handed.
//!
//! A request is its headers and a list of arrivals: body chunks, each reaching Envoy at its
//! own instant, the last one carrying the end of stream (or followed by the trailers). The
//! builder's `.body(..)` is one chunk that comes with the headers; `.body_chunk(..)`,
//! `.stream_body(..)` and `.end_stream_after(..)` spread the body over time.
//!
//! # How Envoy hands the pieces to the filter (`source/common/http/filter_manager.cc`)
//! - Each chunk that reaches Envoy goes to the filter at once, in its own `on_http_request_body`
//!   (`FilterManager::decodeData`), `end_of_stream` set on the last one unless trailers follow.
//!   An end of stream that comes alone is an empty chunk: `on_http_request_body(0, true)`.
//! - While the filter holds the headers (ABI 0.2 turns their `Pause` into
//!   `StopAllIterationAndWatermark`), chunks are buffered without calling it
//!   (`handleDataIfStopAll`); when it continues, it gets everything buffered in one body
//!   callback (`ActiveStreamFilterBase::commonContinue`, `doData`), then the trailers.
//! - A filter that paused in its body callback (`StopIterationAndBuffer`) is still called for
//!   each later chunk, with the whole buffer so far (Envoy's wasm `Context::decodeData` adds the
//!   chunk to the decoding buffer first, `addDecodedData`), and for the trailers; returning
//!   `Continue` from one of those resumes the request (`commonHandleAfterDataCallback`,
//!   `commonHandleAfterTrailersCallback`).
//! - Once the response has ended at Envoy, a chunk that still comes is dropped before any filter
//!   sees it: `FilterManager::decodeData` and `decodeTrailers` return at once when
//!   `state_.local_complete_` is set, and that flag is set when the last frame of the response
//!   enters the encoder chain (`commonEncodePrefix`), "prior to filter processing": so also when
//!   the filter holds that response. The filter then never sees the request's end of stream.
//!   While the response is still open (its head came, its end did not), chunks keep reaching
//!   the filter and the upstream.
//! - Measured on Envoy 1.40 (`envoy/tests/faults/real_traffic/early_reply.rs` and
//!   `no_healthy_upstream.rs`, summed up in `envoy/README.md`): after an upstream's early 503
//!   that the filter holds, and after Envoy's own `no healthy upstream` 503 (UH), Envoy's codec
//!   goes on reading the client's body pieces but not one `proxy_on_request_body` follows. The
//!   UH reply comes while the router decodes the headers, so the filter never sees even the
//!   piece that came with them ([`crate::clusters`]). Pinned by
//!   `tests/conformance/streamed_body.rs` and `tests/conformance/clusters.rs`.

use super::{flow, pump_request};
use crate::error::Failure;
use crate::observe::StreamId;
use crate::vm::{Core, Vm};

/// The chunks due with the headers reach the filter, each in its own body callback, right after
/// the headers callback.
pub(crate) fn with_headers(core: &Core, vm: &mut Vm, id: StreamId) -> Result<(), Failure> {
    let due: Vec<usize> = {
        let state = core.state.borrow();
        let arrivals = &state.streams[id.0].feed.arrivals;
        (0..arrivals.len())
            .filter(|i| arrivals[*i].after.is_zero())
            .collect()
    };
    for index in due {
        if receive(core, id, index) {
            flow::hand_request(core, vm, id)?;
        }
    }
    Ok(())
}

/// A later chunk of the request (or its end) reaches Envoy and goes to the filter.
pub(crate) fn request_chunk(
    core: &Core,
    vm: &mut Vm,
    id: StreamId,
    index: usize,
) -> Result<(), Failure> {
    if !receive(core, id, index) {
        return Ok(());
    }
    pump_request(core, vm, id)
}

/// Arrival `index` reaches Envoy: it waits for the filter, or is dropped if the response already
/// ended (`FilterManager::decodeData` on `local_complete_`, see the module docs).
fn receive(core: &Core, id: StreamId, index: usize) -> bool {
    let mut state = core.state.borrow_mut();
    let s = &mut state.streams[id.0];
    if s.finished() {
        return false;
    }
    if s.response_ended || s.req.aborted {
        s.feed.dropped += 1;
        state.trace(|| format!("{id}: request chunk {index} dropped, the response has ended"));
        return false;
    }
    s.feed.arrive(index);
    true
}
