//! The body of a [`Reply::Large`](super::Reply::Large): any number of bytes, made as hyper asks
//! for them.
//!
//! # Why generated
//! Tests of large responses (tens of MiB, several at once) must not make the test process hold
//! each one whole. The body hands hyper the same 64 KiB piece again and again (a `Bytes` clone
//! shares the piece), cut to length at the end, and announces its exact length so hyper writes a
//! `content-length`. The bytes follow a pattern, so a reader can tell a whole body from a cut one
//! by its length alone.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};

use super::serve::DropConnection;

/// The piece the body repeats.
const PIECE: usize = 64 * 1024;

/// A body of `left` more bytes, sent a piece at a time.
#[derive(Debug)]
pub(super) struct Generated {
    piece: Bytes,
    left: u64,
}

impl Generated {
    pub(super) fn new(len: usize) -> Generated {
        let piece: Vec<u8> = (0..PIECE).map(|i| b'a' + (i % 26) as u8).collect();
        Generated {
            piece: Bytes::from(piece),
            left: len as u64,
        }
    }
}

impl Body for Generated {
    type Data = Bytes;
    type Error = DropConnection;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, DropConnection>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        let n = usize::try_from(self.left).map_or(PIECE, |left| left.min(PIECE));
        self.left -= n as u64;
        Poll::Ready(Some(Ok(Frame::data(self.piece.slice(..n)))))
    }

    fn is_end_stream(&self) -> bool {
        self.left == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.left)
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;
    use crate::runtime::block_on;

    #[test]
    fn a_generated_body_has_exactly_its_length_and_announces_it() {
        for len in [0, 1, PIECE - 1, PIECE, 3 * PIECE + 17] {
            let body = Generated::new(len);
            assert_eq!(body.size_hint().exact(), Some(len as u64));
            let bytes = block_on(body.collect()).expect("never fails").to_bytes();
            assert_eq!(bytes.len(), len);
            assert!(bytes.iter().all(u8::is_ascii_lowercase));
        }
    }
}
