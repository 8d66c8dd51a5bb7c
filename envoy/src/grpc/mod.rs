//! A real gRPC peer for the end-to-end tests: a tonic server whose behaviour a test changes at
//! run time ([`GrpcServer`]), and a blocking tonic client ([`GrpcClient`]).
//!
//! # One service, written by hand
//! The service `breakwater.test.Probe` has two methods, `Unary` and `Stream` (server streaming),
//! over two prost messages derived by hand ([`Call`], [`Answer`]): no `.proto` file, no `protoc`.
//! The server routes by path and answers both methods with tonic's own server-streaming machinery
//! (`tonic::server::Grpc`), which writes exactly what a generated server writes: a unary reply is
//! a stream of one message on the wire, so the same code can also fail a unary call after its
//! message, with the status in the trailers, which a generated unary handler cannot do.
//!
//! # Behaviours
//! [`Behaviour`] says what every call gets until it is changed: success, a status before any
//! message (tonic sends it trailers-only), a status after one message (in the trailers), or a
//! delay before success. Every call is counted per method.

mod client;
mod server;

pub use client::{GrpcClient, StreamResult};
pub use server::GrpcServer;

use std::time::Duration;

pub use tonic::{Code, Response, Status};

/// The service's name, as it appears in the path.
pub const SERVICE: &str = "breakwater.test.Probe";
/// The path of the unary method.
pub const UNARY_PATH: &str = "/breakwater.test.Probe/Unary";
/// The path of the server-streaming method.
pub const STREAM_PATH: &str = "/breakwater.test.Probe/Stream";

/// A call: a name to echo and, for `Stream`, how many answers to send.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Call {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(uint32, tag = "2")]
    pub count: u32,
}

/// One answer: the call's name and its place in the stream (0 for a unary call).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Answer {
    #[prost(string, tag = "1")]
    pub text: String,
    #[prost(uint32, tag = "2")]
    pub seq: u32,
}

impl Call {
    pub fn new(name: &str) -> Call {
        Call {
            name: name.to_string(),
            count: 1,
        }
    }

    /// A `Stream` call asking for `count` answers.
    pub fn stream(name: &str, count: u32) -> Call {
        Call {
            name: name.to_string(),
            count,
        }
    }
}

/// The answer the server sends for answer `seq` of a call named `name`.
pub fn answer_for(name: &str, seq: u32) -> Answer {
    Answer {
        text: format!("answer {seq} to {name}"),
        seq,
    }
}

/// What every call to the server gets.
#[derive(Debug, Clone, PartialEq)]
pub enum Behaviour {
    /// Every answer asked for, then status OK. `interval` between two answers of a stream.
    Answer { interval: Duration },
    /// `code` with `message` before any answer (tonic sends it trailers-only), with
    /// `grpc-retry-pushback-ms` when `pushback_ms` is set.
    FailBefore {
        code: Code,
        message: String,
        pushback_ms: Option<i64>,
    },
    /// The first answer, then `code` in the trailers.
    FailAfterFirst { code: Code, message: String },
    /// Waits `delay`, then answers as [`Behaviour::Answer`].
    Delay(Duration),
    /// Fails a `ratio` of calls with `code` before any answer and answers the others, the calls
    /// chosen by `seed` and their order of arrival: the same seed fails the same calls.
    FailRatio { ratio: f64, code: Code, seed: u64 },
}

impl Behaviour {
    /// Answers at once.
    pub fn answer() -> Behaviour {
        Behaviour::Answer {
            interval: Duration::ZERO,
        }
    }

    /// `code` before any answer.
    pub fn fail(code: Code) -> Behaviour {
        Behaviour::FailBefore {
            code,
            message: format!("the server says {code:?}"),
            pushback_ms: None,
        }
    }
}
