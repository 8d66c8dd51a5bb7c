//! The body of a [`Reply::ResetMidBody`](super::Reply::ResetMidBody): part of what its
//! `content-length` promised, then a failure that makes hyper drop the connection (a reset, since
//! the handler set linger zero on the socket first).
//!
//! # Why a pause between the part and the failure
//! hyper writes a body chunk into its buffer and flushes the buffer only once the body has nothing
//! more to give right now. Failing straight after the chunk would drop the connection with the
//! chunk still in hyper's buffer, and the peer would see a reset before any byte of the response.
//! So the body yields the chunk, then answers `Pending` once (waking itself at once), which makes
//! hyper flush the head and the chunk to the socket, and only then fails.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};

use super::serve::DropConnection;

/// Where the truncated body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// The part is still to be sent.
    Part,
    /// The part was handed to hyper; give it a chance to flush.
    Flush,
    /// Fail: hyper drops the connection.
    Fail,
}

/// A body that announces `declared` bytes, sends `part`, then fails.
#[derive(Debug)]
pub(super) struct Truncated {
    part: Bytes,
    declared: u64,
    step: Step,
}

impl Truncated {
    pub(super) fn new(part: Bytes, declared: usize) -> Truncated {
        Truncated {
            part,
            declared: declared as u64,
            step: Step::Part,
        }
    }
}

impl Body for Truncated {
    type Data = Bytes;
    type Error = DropConnection;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, DropConnection>>> {
        match self.step {
            Step::Part => {
                self.step = Step::Flush;
                let part = std::mem::take(&mut self.part);
                Poll::Ready(Some(Ok(Frame::data(part))))
            }
            Step::Flush => {
                self.step = Step::Fail;
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            Step::Fail => Poll::Ready(Some(Err(DropConnection))),
        }
    }

    fn is_end_stream(&self) -> bool {
        false
    }

    /// The announced length: hyper writes it as `content-length`.
    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.declared)
    }
}
