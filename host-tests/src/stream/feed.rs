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

use super::{flow, pump_request, Part};
use crate::error::Failure;
use crate::observe::StreamId;
use crate::state::Core;
use crate::vm::Vm;
use std::time::Duration;

/// One piece of the request body reaching Envoy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Arrival {
    /// When, measured from the request headers.
    pub after: Duration,
    pub bytes: Vec<u8>,
    /// This piece ends the request (the trailers, if any, come with it).
    pub end: bool,
}

/// Builds the arrivals of a request from the test's chunks (offsets from the headers, in order),
/// an optional separate end of stream, and whether trailers follow. `None` chunks and no end
/// make a headers-only request (or trailers right after the headers).
pub(crate) fn arrivals(
    chunks: Vec<(Duration, Vec<u8>)>,
    end_after: Option<Duration>,
    trailers: bool,
) -> Result<Vec<Arrival>, String> {
    let mut last = Duration::ZERO;
    for (after, _) in &chunks {
        if *after < last {
            return Err(format!(
                "body chunks must come in time order: one at {after:?} follows one at {last:?}"
            ));
        }
        last = *after;
    }
    let mut arrivals: Vec<Arrival> = chunks
        .into_iter()
        .map(|(after, bytes)| Arrival {
            after,
            bytes,
            end: false,
        })
        .collect();
    match (end_after, arrivals.last_mut()) {
        (Some(end), _) if end < last => {
            return Err(format!(
                "end_stream_after({end:?}) comes before the last body chunk, at {last:?}"
            ))
        }
        (Some(end), _) => arrivals.push(Arrival {
            after: end,
            bytes: Vec::new(),
            end: true,
        }),
        (None, Some(chunk)) => chunk.end = true,
        (None, None) if trailers => arrivals.push(Arrival {
            after: Duration::ZERO,
            bytes: Vec::new(),
            end: true,
        }),
        (None, None) => {}
    }
    Ok(arrivals)
}

/// Where the request stands between the client and the filter.
#[derive(Debug, Default)]
pub(crate) struct Feed {
    pub arrivals: Vec<Arrival>,
    /// The client sends trailers (with the last arrival).
    pub trailers: bool,
    /// Bytes that reached Envoy and wait for the filter.
    pub waiting: Vec<u8>,
    /// The request's end reached Envoy.
    pub ended: bool,
    pub handed_headers: bool,
    /// The filter was handed the end (`end_of_stream` or the trailers).
    pub handed_end: bool,
    pub handed_trailers: bool,
    /// Arrivals Envoy dropped because the response had already ended.
    pub dropped: usize,
}

impl Feed {
    pub fn new(arrivals: Vec<Arrival>, trailers: bool) -> Feed {
        let ended = arrivals.is_empty();
        Feed {
            arrivals,
            trailers,
            ended,
            ..Feed::default()
        }
    }

    /// The headers carry `end_of_stream`: no body, no trailers.
    pub fn headers_only(&self) -> bool {
        self.arrivals.is_empty()
    }

    /// Arrival `index` reaches Envoy.
    pub fn arrive(&mut self, index: usize) {
        if let Some(arrival) = self.arrivals.get(index) {
            self.waiting.extend_from_slice(&arrival.bytes);
            self.ended |= arrival.end;
        }
    }

    /// The next part to hand the filter now, if any has arrived.
    pub fn next_part(&self) -> Option<Part> {
        if !self.handed_headers {
            Some(Part::Headers)
        } else if !self.waiting.is_empty() || (self.ended && !self.trailers && !self.handed_end) {
            Some(Part::Body)
        } else if self.ended && self.trailers && !self.handed_trailers {
            Some(Part::Trailers)
        } else {
            None
        }
    }

    /// Whether a body callback now carries `end_of_stream` (all arrived, no trailers follow).
    pub fn body_ends(&self) -> bool {
        self.ended && !self.trailers
    }
}

/// What of the request passed the filter on to Envoy's router.
#[derive(Debug, Default, Clone)]
pub(crate) struct Sent {
    pub headers: bool,
    pub body: Vec<u8>,
    /// Its end of stream passed.
    pub end: bool,
    /// When the router saw the whole request (`Filter::onRequestComplete`).
    pub complete_at: Option<Duration>,
}

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
/// ended (`FilterManager::decodeData` on `local_complete_`, see [`feed`]).
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_last_chunk_ends_the_request_unless_an_end_comes_later() {
        let chunks = vec![(ms(0), b"a".to_vec()), (ms(10), b"b".to_vec())];
        let ends: Vec<bool> = arrivals(chunks.clone(), None, false)
            .unwrap()
            .iter()
            .map(|a| a.end)
            .collect();
        assert_eq!(ends, vec![false, true]);
        let later = arrivals(chunks, Some(ms(30)), false).unwrap();
        assert_eq!(later.len(), 3, "an empty end frame at 30 ms");
        assert_eq!((later[2].after, later[2].bytes.len()), (ms(30), 0));
    }

    #[test]
    fn chunks_out_of_order_and_an_end_before_the_body_are_refused() {
        assert!(arrivals(vec![(ms(5), vec![1]), (ms(1), vec![2])], None, false).is_err());
        assert!(arrivals(vec![(ms(5), vec![1])], Some(ms(2)), false).is_err());
    }

    #[test]
    fn trailers_without_a_body_end_the_request_with_the_headers_instant() {
        let only = arrivals(Vec::new(), None, true).unwrap();
        assert_eq!(only.len(), 1);
        assert!(only[0].end && only[0].bytes.is_empty());
        assert!(arrivals(Vec::new(), None, false).unwrap().is_empty());
    }

    #[test]
    fn an_empty_end_frame_is_a_body_part_but_trailers_are_not() {
        let mut feed = Feed::new(arrivals(Vec::new(), Some(ms(5)), false).unwrap(), false);
        feed.handed_headers = true;
        assert_eq!(feed.next_part(), None, "nothing arrived yet");
        feed.arrive(0);
        assert_eq!(feed.next_part(), Some(Part::Body));
        let mut with_trailers = Feed::new(arrivals(Vec::new(), Some(ms(5)), true).unwrap(), true);
        with_trailers.handed_headers = true;
        with_trailers.arrive(0);
        assert_eq!(with_trailers.next_part(), Some(Part::Trailers));
    }
}
