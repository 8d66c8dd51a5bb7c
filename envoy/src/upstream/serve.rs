//! One connection of the test upstream: each request is recorded and answered as the plan says
//! (see [`super::plan`]), or as a health check.
//!
//! # Early replies
//! A [`Reply::Early`] answers before it reads the body. hyper keeps reading a request body that
//! its handler has not dropped, even after the response went out, so a task of its own reads
//! the body meanwhile and records the request once the body ends (or the connection does). The
//! connection stays usable for the next request when the body came whole.

use std::os::fd::AsFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Either, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use socket2::Socket;
use tokio::net::TcpStream;
use tokio::sync::{watch, Notify};

use super::generated::Generated;
use super::plan::{body_hash, Decision, Reply, BODY_BYTES_HEADER, BODY_HASH_HEADER};
use super::plan::{MID_BODY_DECLARED, MID_BODY_SENT};
use super::record::RecordedRequest;
use super::truncated::Truncated;
use super::{lock, Shared, UPSTREAM_HEADER};

/// Serves one connection: HTTP/1.1 with keep-alive, or HTTP/2 when the client opens with the
/// HTTP/2 preface (h2c, prior knowledge: an Envoy cluster with `http2_protocol_options`).
pub(super) async fn serve(stream: TcpStream, shared: Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    // A second handle on the socket lets a request's handler turn the close into a reset.
    let Ok(fd) = stream.as_fd().try_clone_to_owned() else {
        return;
    };
    let socket = Arc::new(Socket::from(fd));
    let go_away = Arc::new(Notify::new());
    let told = Arc::clone(&go_away);
    let service = service_fn(move |request| {
        handle(request, shared.clone(), socket.clone(), Arc::clone(&told))
    });
    let builder = auto::Builder::new(TokioExecutor::new());
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => return,
        _ = go_away.notified() => connection.as_mut().graceful_shutdown(),
    }
    let _ = connection.await;
}

/// Why the handler gave up the connection instead of answering; hyper then closes it.
#[derive(Debug, thiserror::Error)]
#[error("the test upstream was told to drop the connection")]
pub(super) struct DropConnection;

/// A whole body, one cut short ([`Reply::ResetMidBody`]), or a large one made as it goes
/// ([`Reply::Large`]).
type ReplyBody = Either<Full<Bytes>, Either<Truncated, Generated>>;

async fn handle(
    request: Request<Incoming>,
    shared: Arc<Shared>,
    socket: Arc<Socket>,
    go_away: Arc<Notify>,
) -> Result<Response<ReplyBody>, DropConnection> {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path_and_query().map_or_else(
        || parts.uri.path().to_string(),
        |pq| pq.as_str().to_string(),
    );
    if let Some(healthy) = health_check(&shared, &path) {
        let status = if healthy { 200 } else { 503 };
        return Ok(response(&shared.name, status, None).map(Either::Left));
    }
    let decision = lock(&shared.plan).decide_for(&path);
    if let Reply::Early(_) = decision.reply {
        return Ok(early(parts, body, path, decision, shared).await);
    }
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes().to_vec(),
        Err(_) => return Err(DropConnection),
    };
    let echo = echo_headers(&body);
    let gate = shared.gate.subscribe();
    record(&shared, &parts, &path, body, true, decision.reply);
    wait(gate, decision.delay).await;
    let reply = lock(&shared.completions).complete(&path, decision.reply);
    let retry_after = decision
        .retry_after
        .and_then(|v| HeaderValue::from_str(&v).ok());
    match reply {
        Reply::Status(status) | Reply::Early(status) => {
            Ok(response(&shared.name, status, retry_after).map(Either::Left))
        }
        Reply::Echo(status) => {
            let mut reply = response(&shared.name, status, retry_after);
            reply.headers_mut().extend(echo);
            Ok(reply.map(Either::Left))
        }
        Reply::Reset => {
            // Linger zero: closing the socket sends RST instead of FIN.
            let _ = socket.set_linger(Some(Duration::ZERO));
            Err(DropConnection)
        }
        Reply::Close => Err(DropConnection),
        Reply::ResetMidBody(status) => {
            // The reset comes when hyper drops the connection after the body fails.
            let _ = socket.set_linger(Some(Duration::ZERO));
            let mut part = format!("{} {status}\n", shared.name).into_bytes();
            part.resize(MID_BODY_SENT, b'.');
            let body = Truncated::new(Bytes::from(part), MID_BODY_DECLARED);
            Ok(response(&shared.name, status, retry_after)
                .map(|_| Either::Right(Either::Left(body))))
        }
        Reply::ResetAfterHead(status) => {
            let _ = socket.set_linger(Some(Duration::ZERO));
            let body = Truncated::new(Bytes::new(), MID_BODY_DECLARED);
            Ok(response(&shared.name, status, retry_after)
                .map(|_| Either::Right(Either::Left(body))))
        }
        Reply::Large(status, len) => {
            let body = Generated::new(len);
            Ok(response(&shared.name, status, retry_after)
                .map(|_| Either::Right(Either::Right(body))))
        }
        Reply::Never => std::future::pending().await,
        Reply::GoAway(status) => {
            // The connection's task starts the graceful shutdown: GOAWAY over HTTP/2.
            go_away.notify_one();
            Ok(response(&shared.name, status, retry_after).map(Either::Left))
        }
    }
}

/// The answer to a health check of `path`, if `path` is the health-check path.
fn health_check(shared: &Shared, path: &str) -> Option<bool> {
    let mut health = lock(&shared.health);
    let health = health.as_mut().filter(|h| h.path == path)?;
    health.checks += 1;
    Some(health.healthy)
}

/// Holds while the test holds replies, then waits `delay`.
async fn wait(mut gate: watch::Receiver<bool>, delay: Duration) {
    // The sender lives as long as the upstream.
    let _ = gate.wait_for(|held| !held).await;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
}

/// Records a request (or only counts it, see [`Upstream::keep_requests`]).
fn record(
    shared: &Shared,
    parts: &hyper::http::request::Parts,
    path: &str,
    body: Vec<u8>,
    body_complete: bool,
    reply: Reply,
) {
    if !shared.keep.load(Ordering::Relaxed) {
        lock(&shared.record).count_only();
        return;
    }
    let headers = parts
        .headers
        .iter()
        .map(|(n, v)| {
            let value = String::from_utf8_lossy(v.as_bytes()).into_owned();
            (n.as_str().to_string(), value)
        })
        .collect();
    lock(&shared.record).push(RecordedRequest {
        method: parts.method.as_str().to_string(),
        path: path.to_string(),
        headers,
        body,
        body_complete,
        reply,
    });
}

/// What a [`Reply::Echo`] says about the body it read.
fn echo_headers(body: &[u8]) -> hyper::HeaderMap {
    let mut headers = hyper::HeaderMap::new();
    headers.insert(BODY_BYTES_HEADER, HeaderValue::from(body.len()));
    if let Ok(hash) = HeaderValue::from_str(&body_hash(body)) {
        headers.insert(BODY_HASH_HEADER, hash);
    }
    headers
}

/// A [`Reply::Early`]: the response goes out without waiting for the body, which a task of its
/// own reads meanwhile and records once it ends (whole, or cut by the connection's end).
async fn early(
    parts: hyper::http::request::Parts,
    mut body: Incoming,
    path: String,
    decision: Decision,
    shared: Arc<Shared>,
) -> Response<ReplyBody> {
    let planned = decision.reply;
    let reader = {
        let shared = shared.clone();
        let path = path.clone();
        async move {
            let mut received = Vec::new();
            let complete = loop {
                match body.frame().await {
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            received.extend_from_slice(&data);
                        }
                    }
                    Some(Err(_)) => break false,
                    None => break true,
                }
            };
            record(&shared, &parts, &path, received, complete, planned);
        }
    };
    tokio::spawn(reader);
    wait(shared.gate.subscribe(), decision.delay).await;
    let status = match lock(&shared.completions).complete(&path, planned) {
        Reply::Early(status)
        | Reply::Status(status)
        | Reply::Echo(status)
        | Reply::Large(status, _) => status,
        // A failure decided at completion that is no status: the early answer stays a 503.
        _ => 503,
    };
    let retry_after = decision
        .retry_after
        .and_then(|v| HeaderValue::from_str(&v).ok());
    response(&shared.name, status, retry_after).map(Either::Left)
}

/// The response for `status` (an invalid status code becomes 500, saying so in the body).
fn response(name: &str, status: u16, retry_after: Option<HeaderValue>) -> Response<Full<Bytes>> {
    let (code, body) = match StatusCode::from_u16(status) {
        Ok(code) => (code, format!("{name} {status}\n")),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("{name}: {status} is not an HTTP status\n"),
        ),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = code;
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(name) {
        headers.insert(UPSTREAM_HEADER, value);
    }
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    if let Some(value) = retry_after.filter(|_| !code.is_success()) {
        headers.insert(RETRY_AFTER, value);
    }
    response
}
