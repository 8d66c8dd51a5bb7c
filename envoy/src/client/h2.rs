//! HTTP/2 without TLS (h2c, prior knowledge) to Envoy's listener: the protocol sidecars speak to
//! each other, for the tests of plain HTTP (not gRPC) over HTTP/2.

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;

use super::{ClientError, Request, Response, REQUEST_TIMEOUT};
use crate::runtime::{block_on, runtime};

/// Sends one request over a fresh HTTP/2 connection (its `:authority` is `addr`) and waits for
/// the whole response, trailers ignored.
pub fn send_h2(addr: SocketAddr, request: &Request) -> Result<Response, ClientError> {
    let exchange = |source| ClientError::Exchange {
        addr,
        method: request.method.clone(),
        path: request.path.clone(),
        source,
    };
    let mut builder = hyper::Request::builder()
        .method(request.method.as_str())
        .uri(format!("http://{addr}{}", request.path));
    for (name, value) in request.headers.iter().filter(|(n, _)| n != "host") {
        builder = builder.header(name.as_str(), value.as_str());
    }
    let hyper_request = builder
        .body(Full::new(Bytes::from(request.body.clone())))
        .map_err(|e| ClientError::Invalid {
            method: request.method.clone(),
            path: request.path.clone(),
            reason: e.to_string(),
        })?;
    block_on(async {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|source| ClientError::Connect { addr, source })?;
        let _ = stream.set_nodelay(true);
        let (mut sender, connection) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .map_err(|source| ClientError::Handshake { addr, source })?;
        runtime().spawn(connection);
        let exchanged = async {
            let response = sender.send_request(hyper_request).await.map_err(exchange)?;
            let (parts, body) = response.into_parts();
            let body = body.collect().await.map_err(exchange)?.to_bytes().to_vec();
            Ok(Response::of(&parts, body))
        };
        tokio::time::timeout(REQUEST_TIMEOUT, exchanged)
            .await
            .unwrap_or_else(|_| {
                Err(ClientError::Timeout {
                    addr,
                    method: request.method.clone(),
                    path: request.path.clone(),
                })
            })
    })
}
