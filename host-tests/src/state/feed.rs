//! The request as the client sends it over time: its body's arrivals, what of them reached Envoy
//! and what the filter has been handed, and what passed the filter on to the router. Only data:
//! how Envoy hands the pieces to the filter is [`crate::stream::feed`].

use std::time::Duration;

/// The next part of one direction (the request's, or the response's) to hand the filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    Headers,
    Body,
    Trailers,
    Done,
}

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
