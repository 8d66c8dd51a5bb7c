//! A small blocking HTTP/1.1 client for the tests: one connection per call, or many connections
//! held open at once; and [`send_h2`], one request over HTTP/2 (h2c).
//!
//! # Why connections are explicit
//! Envoy hands each downstream connection to one worker thread, and Breakwater's state must be
//! right across workers. [`send_concurrently`] opens all its connections before sending anything,
//! so they are open together and a listener with exact connection balance spreads them evenly
//! over the workers; each connection then carries its requests one after another (keep-alive).
//!
//! [`trickle`] is the other kind of client: one raw connection that sends its body slowly while
//! it reads whatever response comes ([`RawResponse`]), for slow uploads and clients that give up.

mod h2;
mod raw;
pub mod trickle;

pub use h2::send_h2;
pub use raw::{Ended, RawResponse};

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::runtime::{block_on, runtime};

/// How long one request may take before the client gives up. Generous: it only turns a hung test
/// into a failed one.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a request got no response.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("connecting to {addr}: {source}")]
    Connect {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("HTTP/1.1 handshake with {addr}: {source}")]
    Handshake {
        addr: SocketAddr,
        source: hyper::Error,
    },
    #[error("{method} {path} to {addr}: {source}")]
    Exchange {
        addr: SocketAddr,
        method: String,
        path: String,
        source: hyper::Error,
    },
    #[error("{method} {path} to {addr}: no response within {REQUEST_TIMEOUT:?}")]
    Timeout {
        addr: SocketAddr,
        method: String,
        path: String,
    },
    #[error("invalid request {method} {path}: {reason}")]
    Invalid {
        method: String,
        path: String,
        reason: String,
    },
}

/// A request to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// The path with its query.
    pub path: String,
    /// Extra headers; `host` is added when missing.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn new(method: &str, path: &str) -> Request {
        Request {
            method: method.to_string(),
            path: path.to_string(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn get(path: &str) -> Request {
        Request::new("GET", path)
    }

    pub fn post(path: &str, body: impl Into<Vec<u8>>) -> Request {
        Request::new("POST", path).body(body)
    }

    pub fn header(mut self, name: &str, value: &str) -> Request {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Request {
        self.body = body.into();
        self
    }

    fn to_hyper(&self, addr: SocketAddr) -> Result<hyper::Request<Full<Bytes>>, ClientError> {
        let invalid = |reason: String| ClientError::Invalid {
            method: self.method.clone(),
            path: self.path.clone(),
            reason,
        };
        let mut builder = hyper::Request::builder()
            .method(self.method.as_str())
            .uri(self.path.as_str());
        if !self
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("host"))
        {
            builder = builder.header("host", addr.to_string());
        }
        for (name, value) in &self.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        builder
            .body(Full::new(Bytes::from(self.body.clone())))
            .map_err(|e| invalid(e.to_string()))
    }
}

/// A response as the client received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// Header names in lower case, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// A response from hyper's head and the body read whole (header values that are not UTF-8
    /// are read lossily).
    pub(crate) fn of(parts: &hyper::http::response::Parts, body: Vec<u8>) -> Response {
        Response {
            status: parts.status.as_u16(),
            headers: parts
                .headers
                .iter()
                .map(|(n, v)| {
                    let value = String::from_utf8_lossy(v.as_bytes()).into_owned();
                    (n.as_str().to_string(), value)
                })
                .collect(),
            body,
        }
    }

    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One open HTTP/1.1 connection.
struct Connection {
    addr: SocketAddr,
    sender: http1::SendRequest<Full<Bytes>>,
}

impl Connection {
    async fn open(addr: SocketAddr) -> Result<Connection, ClientError> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|source| ClientError::Connect { addr, source })?;
        let _ = stream.set_nodelay(true);
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|source| ClientError::Handshake { addr, source })?;
        // The connection task ends when the sender is dropped or the peer closes.
        runtime().spawn(connection);
        Ok(Connection { addr, sender })
    }

    async fn send(&mut self, request: &Request) -> Result<Response, ClientError> {
        let addr = self.addr;
        let exchange = |source| ClientError::Exchange {
            addr,
            method: request.method.clone(),
            path: request.path.clone(),
            source,
        };
        let hyper_request = request.to_hyper(addr)?;
        let exchange_future = async {
            self.sender.ready().await.map_err(exchange)?;
            let response = self
                .sender
                .send_request(hyper_request)
                .await
                .map_err(exchange)?;
            let (parts, body) = response.into_parts();
            let body = body.collect().await.map_err(exchange)?.to_bytes().to_vec();
            Ok(Response::of(&parts, body))
        };
        tokio::time::timeout(REQUEST_TIMEOUT, exchange_future)
            .await
            .unwrap_or_else(|_| {
                Err(ClientError::Timeout {
                    addr,
                    method: request.method.clone(),
                    path: request.path.clone(),
                })
            })
    }
}

/// One keep-alive connection for a blocking caller, such as a load generator thread: its requests
/// go one after another on the same connection, so they are all served by the same Envoy worker.
///
/// After a failed request the connection is broken (HTTP/1.1 cannot go on); open a new session.
pub struct Session {
    connection: Connection,
}

impl Session {
    /// Opens a connection to `addr`.
    pub fn open(addr: SocketAddr) -> Result<Session, ClientError> {
        let connection = block_on(Connection::open(addr))?;
        Ok(Session { connection })
    }

    /// Sends `request` on this connection and waits for the whole response.
    pub fn send(&mut self, request: &Request) -> Result<Response, ClientError> {
        block_on(self.connection.send(request))
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("addr", &self.connection.addr)
            .finish_non_exhaustive()
    }
}

/// Sends one request on a fresh connection.
pub fn send(addr: SocketAddr, request: &Request) -> Result<Response, ClientError> {
    block_on(async {
        let mut connection = Connection::open(addr).await?;
        connection.send(request).await
    })
}

/// Opens `connections` connections to `addr` (all of them before any request), then sends
/// `requests_per_connection` requests on each, the connections in parallel and each one's
/// requests in turn. `make(connection, i)` builds request `i` of connection `connection`.
///
/// Returns the outcomes per connection, in order. A connection that failed to open fails the
/// whole call; a request that failed is an `Err` in its slot and ends its connection's turn
/// (HTTP/1.1 cannot go on after a broken exchange).
pub fn send_concurrently(
    addr: SocketAddr,
    connections: usize,
    requests_per_connection: usize,
    make: impl Fn(usize, usize) -> Request,
) -> Result<Vec<Vec<Result<Response, ClientError>>>, ClientError> {
    let requests: Vec<Vec<Request>> = (0..connections)
        .map(|c| (0..requests_per_connection).map(|i| make(c, i)).collect())
        .collect();
    block_on(async move {
        let mut opened = Vec::with_capacity(connections);
        for _ in 0..connections {
            opened.push(Connection::open(addr).await?);
        }
        let tasks: Vec<_> = opened
            .into_iter()
            .zip(requests)
            .map(|(mut connection, requests)| {
                runtime().spawn(async move {
                    let mut outcomes = Vec::with_capacity(requests.len());
                    for request in &requests {
                        let outcome = connection.send(request).await;
                        let failed = outcome.is_err();
                        outcomes.push(outcome);
                        if failed {
                            break;
                        }
                    }
                    outcomes
                })
            })
            .collect();
        let mut results = Vec::with_capacity(tasks.len());
        for task in tasks {
            match task.await {
                Ok(outcomes) => results.push(outcomes),
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                // Cancelled: only at runtime shutdown, which never happens while we wait.
                Err(_) => results.push(Vec::new()),
            }
        }
        Ok(results)
    })
}
