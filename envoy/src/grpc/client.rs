//! A blocking tonic client of the `Probe` service (see the parent module): what a gRPC
//! application sees of a call, status code and metadata included.

use std::net::SocketAddr;
use std::time::Duration;

use tonic::codegen::http::uri::PathAndQuery;
use tonic::metadata::MetadataMap;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status};
use tonic_prost::ProstCodec;

use super::{Answer, Call, STREAM_PATH, UNARY_PATH};
use crate::runtime::block_on;

/// A tonic channel to one address (HTTP/2 without TLS).
#[derive(Clone)]
pub struct GrpcClient {
    channel: Channel,
}

/// What a server-streaming call gave the client: the answers received, then the final status
/// (the trailers' metadata on OK) or the error.
#[derive(Debug)]
pub struct StreamResult {
    /// The response headers' metadata (empty when the call failed before them).
    pub headers: MetadataMap,
    pub answers: Vec<Answer>,
    pub end: Result<MetadataMap, Status>,
}

impl GrpcClient {
    /// Connects to `addr` (Envoy's listener, or a server directly).
    pub fn connect(addr: SocketAddr) -> Result<GrpcClient, tonic::transport::Error> {
        let endpoint = Endpoint::from_shared(format!("http://{addr}"))?;
        let channel = block_on(endpoint.connect())?;
        Ok(GrpcClient { channel })
    }

    fn request(call: Call, deadline: Option<Duration>) -> Request<Call> {
        let mut request = Request::new(call);
        if let Some(deadline) = deadline {
            request.set_timeout(deadline);
        }
        request
    }

    /// A unary call; `deadline` sets the call's deadline (`grpc-timeout`, which tonic's client
    /// and server honour).
    pub fn unary(
        &self,
        call: Call,
        deadline: Option<Duration>,
    ) -> Result<tonic::Response<Answer>, Status> {
        self.unary_with(call, deadline, &[])
    }

    /// A unary call with extra request metadata (`name`, `value` pairs, ASCII).
    pub fn unary_with(
        &self,
        call: Call,
        deadline: Option<Duration>,
        metadata: &[(&'static str, &str)],
    ) -> Result<tonic::Response<Answer>, Status> {
        let mut request = Self::request(call, deadline);
        for (name, value) in metadata {
            let value = value
                .parse()
                .map_err(|_| Status::invalid_argument(format!("metadata {name}: {value:?}")))?;
            request.metadata_mut().insert(*name, value);
        }
        let mut grpc = tonic::client::Grpc::new(self.channel.clone());
        block_on(async move {
            grpc.ready()
                .await
                .map_err(|e| Status::unknown(format!("channel not ready: {e}")))?;
            let path = PathAndQuery::from_static(UNARY_PATH);
            let codec = ProstCodec::<Call, Answer>::default();
            grpc.unary(request, path, codec).await
        })
    }

    /// A unary call that the client cancels after `after` if no reply came by then (the call's
    /// future is dropped, and tonic resets the stream), with no deadline sent to the server.
    /// `None` when it was cancelled.
    pub fn unary_cancelled_after(
        &self,
        call: Call,
        after: Duration,
    ) -> Option<Result<tonic::Response<Answer>, Status>> {
        let client = self.clone();
        block_on(async move {
            let mut grpc = tonic::client::Grpc::new(client.channel);
            let unary = async {
                grpc.ready()
                    .await
                    .map_err(|e| Status::unknown(format!("channel not ready: {e}")))?;
                let path = PathAndQuery::from_static(UNARY_PATH);
                let codec = ProstCodec::<Call, Answer>::default();
                grpc.unary(Request::new(call), path, codec).await
            };
            tokio::time::timeout(after, unary).await.ok()
        })
    }

    /// A server-streaming call, read to its end.
    pub fn stream(&self, call: Call) -> StreamResult {
        block_on(Self::read_stream(self.channel.clone(), call))
    }

    /// A server-streaming call that the client cancels after `after` (the call's future is
    /// dropped, and tonic resets the stream), whether its answers have started or not. `None`
    /// when it was cancelled.
    pub fn stream_cancelled_after(&self, call: Call, after: Duration) -> Option<StreamResult> {
        let channel = self.channel.clone();
        block_on(async move {
            tokio::time::timeout(after, Self::read_stream(channel, call))
                .await
                .ok()
        })
    }

    async fn read_stream(channel: Channel, call: Call) -> StreamResult {
        let mut grpc = tonic::client::Grpc::new(channel);
        let started = async {
            grpc.ready()
                .await
                .map_err(|e| Status::unknown(format!("channel not ready: {e}")))?;
            let path = PathAndQuery::from_static(STREAM_PATH);
            let codec = ProstCodec::<Call, Answer>::default();
            grpc.server_streaming(Self::request(call, None), path, codec)
                .await
        };
        let response = match started.await {
            Ok(response) => response,
            Err(status) => {
                return StreamResult {
                    headers: MetadataMap::new(),
                    answers: Vec::new(),
                    end: Err(status),
                }
            }
        };
        let headers = response.metadata().clone();
        let mut stream = response.into_inner();
        let mut answers = Vec::new();
        let end = loop {
            match stream.message().await {
                Ok(Some(answer)) => answers.push(answer),
                Ok(None) => break Ok(stream.trailers().await.ok().flatten().unwrap_or_default()),
                Err(status) => break Err(status),
            }
        };
        StreamResult {
            headers,
            answers,
            end,
        }
    }
}
