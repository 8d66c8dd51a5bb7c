//! The tonic server of the `Probe` service (see the parent module).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::codegen::{http, BoxFuture, BoxStream, Context, Poll, Service, StdError};
use tonic::metadata::MetadataValue;
use tonic::server::{Grpc, NamedService, ServerStreamingService};
use tonic::Status;
use tonic_prost::ProstCodec;

use super::{answer_for, Answer, Behaviour, Call, SERVICE, STREAM_PATH, UNARY_PATH};
use crate::runtime::{block_on, runtime};

/// What the server shares with its handlers.
#[derive(Debug)]
struct State {
    behaviour: Mutex<Behaviour>,
    /// Behaviours for the next calls, in order, before `behaviour`.
    script: Mutex<VecDeque<Behaviour>>,
    /// When each call arrived (while `keep_arrivals`).
    arrivals: Mutex<Vec<Instant>>,
    keep_arrivals: std::sync::atomic::AtomicBool,
    unary_calls: AtomicU64,
    stream_calls: AtomicU64,
}

/// A running gRPC server on loopback; stopped when dropped.
pub struct GrpcServer {
    addr: SocketAddr,
    state: Arc<State>,
    stop: Option<oneshot::Sender<()>>,
}

impl GrpcServer {
    /// Starts the server on a free loopback port, answering every call.
    pub fn start() -> std::io::Result<GrpcServer> {
        let listener = block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            behaviour: Mutex::new(Behaviour::answer()),
            script: Mutex::new(VecDeque::new()),
            arrivals: Mutex::new(Vec::new()),
            keep_arrivals: std::sync::atomic::AtomicBool::new(true),
            unary_calls: AtomicU64::new(0),
            stream_calls: AtomicU64::new(0),
        });
        let (stop, stopped) = oneshot::channel::<()>();
        let service = Probe(Arc::clone(&state));
        runtime().spawn(async move {
            let served = tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
                    let _ = stopped.await;
                })
                .await;
            if let Err(e) = served {
                eprintln!("gRPC test server stopped: {e}");
            }
        });
        Ok(GrpcServer {
            addr,
            state,
            stop: Some(stop),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What every call gets from now on.
    pub fn behave(&self, behaviour: Behaviour) {
        *lock(&self.state.behaviour) = behaviour;
    }

    /// The next calls get these behaviours, one each, before the one [`GrpcServer::behave`] set.
    pub fn script(&self, behaviours: impl IntoIterator<Item = Behaviour>) {
        lock(&self.state.script).extend(behaviours);
    }

    /// When each call (of either method) arrived, in order.
    pub fn arrivals(&self) -> Vec<Instant> {
        lock(&self.state.arrivals).clone()
    }

    /// Whether to note when each call arrives (on by default; a long load turns it off).
    pub fn keep_arrivals(&self, keep: bool) {
        self.state.keep_arrivals.store(keep, Ordering::Relaxed);
    }

    /// Calls of either method received so far.
    pub fn total_calls(&self) -> u64 {
        self.unary_calls() + self.stream_calls()
    }

    /// Calls of `Unary` received so far.
    pub fn unary_calls(&self) -> u64 {
        self.state.unary_calls.load(Ordering::SeqCst)
    }

    /// Calls of `Stream` received so far.
    pub fn stream_calls(&self) -> u64 {
        self.state.stream_calls.load(Ordering::SeqCst)
    }
}

impl Drop for GrpcServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Whether call `index` is one of the `ratio` that `seed` chooses (splitmix64 of the two).
fn chosen(seed: u64, index: u64, ratio: f64) -> bool {
    let mut z = seed ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    ((z >> 11) as f64 / (1u64 << 53) as f64) < ratio
}

/// A lock that a panicked test thread did not spoil.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// The service as tonic's router sees it.
#[derive(Clone)]
struct Probe(Arc<State>);

impl NamedService for Probe {
    const NAME: &'static str = SERVICE;
}

impl<B> Service<http::Request<B>> for Probe
where
    B: tonic::codegen::Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let state = Arc::clone(&self.0);
        let streaming = match request.uri().path() {
            UNARY_PATH => false,
            STREAM_PATH => true,
            _ => {
                let unknown = Status::unimplemented("no such method").into_http();
                return Box::pin(async move { Ok(unknown) });
            }
        };
        Box::pin(async move {
            let handler = Handler { state, streaming };
            let mut grpc = Grpc::new(ProstCodec::<Answer, Call>::default());
            Ok(grpc.server_streaming(handler, request).await)
        })
    }
}

/// One call, unary or streaming: a unary call is a stream of one answer on the wire.
struct Handler {
    state: Arc<State>,
    streaming: bool,
}

impl ServerStreamingService<Call> for Handler {
    type Response = Answer;
    type ResponseStream = BoxStream<Answer>;
    type Future = BoxFuture<tonic::Response<Self::ResponseStream>, Status>;

    fn call(&mut self, request: tonic::Request<Call>) -> Self::Future {
        let counter = if self.streaming {
            &self.state.stream_calls
        } else {
            &self.state.unary_calls
        };
        let index = self.state.unary_calls.load(Ordering::SeqCst)
            + self.state.stream_calls.load(Ordering::SeqCst);
        counter.fetch_add(1, Ordering::SeqCst);
        if self.state.keep_arrivals.load(Ordering::Relaxed) {
            lock(&self.state.arrivals).push(Instant::now());
        }
        let scripted = lock(&self.state.script).pop_front();
        let behaviour = match scripted.unwrap_or_else(|| lock(&self.state.behaviour).clone()) {
            Behaviour::FailRatio { ratio, code, seed } if chosen(seed, index, ratio) => {
                Behaviour::fail(code)
            }
            Behaviour::FailRatio { .. } => Behaviour::answer(),
            other => other,
        };
        let call = request.into_inner();
        let count = if self.streaming { call.count } else { 1 };
        Box::pin(respond(behaviour, call.name, count))
    }
}

/// The response to a call of `name` asking for `count` answers.
async fn respond(
    behaviour: Behaviour,
    name: String,
    count: u32,
) -> Result<tonic::Response<BoxStream<Answer>>, Status> {
    let (interval, fail_after_first) = match behaviour {
        Behaviour::Answer { interval } => (interval, None),
        Behaviour::Delay(delay) => {
            tokio::time::sleep(delay).await;
            (Duration::ZERO, None)
        }
        Behaviour::FailBefore {
            code,
            message,
            pushback_ms,
        } => {
            let mut status = Status::new(code, message);
            if let Some(ms) = pushback_ms {
                if let Ok(value) = MetadataValue::try_from(ms.to_string()) {
                    status
                        .metadata_mut()
                        .insert("grpc-retry-pushback-ms", value);
                }
            }
            return Err(status);
        }
        Behaviour::FailAfterFirst { code, message } => {
            (Duration::ZERO, Some(Status::new(code, message)))
        }
        // Resolved to a failure or an answer when the call arrived.
        Behaviour::FailRatio { .. } => (Duration::ZERO, None),
    };
    let stream = async_stream(name, count, interval, fail_after_first);
    Ok(tonic::Response::new(stream))
}

/// `count` answers `interval` apart, then OK; or the first answer, then `fail`.
fn async_stream(
    name: String,
    count: u32,
    interval: Duration,
    fail: Option<Status>,
) -> BoxStream<Answer> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Answer, Status>>(4);
    tokio::spawn(async move {
        for seq in 0..count {
            if seq > 0 && !interval.is_zero() {
                tokio::time::sleep(interval).await;
            }
            if tx.send(Ok(answer_for(&name, seq))).await.is_err() {
                return;
            }
            if let Some(status) = fail {
                let _ = tx.send(Err(status)).await;
                return;
            }
        }
    });
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
}

#[cfg(test)]
mod tests {
    use super::chosen;

    #[test]
    fn a_seed_chooses_about_its_ratio_of_calls_and_always_the_same_ones() {
        let failed = (0..10_000).filter(|&i| chosen(7, i, 0.3)).count();
        assert!((2_800..=3_200).contains(&failed), "{failed} of 10000");
        let again = (0..10_000).filter(|&i| chosen(7, i, 0.3)).count();
        assert_eq!(failed, again, "the same seed, the same calls");
        assert_eq!((0..1_000).filter(|&i| chosen(7, i, 0.0)).count(), 0);
        assert_eq!((0..1_000).filter(|&i| chosen(7, i, 1.0)).count(), 1_000);
    }
}
