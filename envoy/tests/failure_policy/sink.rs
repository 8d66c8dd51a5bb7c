//! A slow upstream and a raw uploading client, for requests that must stay in flight together.
//!
//! The [`Sink`] upstream reads each request whole and holds its response until released, so the
//! requests stay in flight together, with whatever the filter keeps for them. [`put`] sends one
//! upload on a connection of its own; the uploads of a flood write the same shared body, so the
//! test itself holds one copy.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// How long a flood connection waits for Envoy before giving up (a bound, not a timing).
const IO_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Default)]
struct State {
    /// Request bodies read whole.
    received: usize,
    /// Held responses may go.
    released: bool,
    /// The sink is dropped: the accept loop ends.
    stopped: bool,
}

/// The header the sink puts on every response, to tell its answers from Envoy's own.
pub const SINK_HEADER: &str = "x-upstream";

/// An HTTP/1.1 upstream that answers every request with one status, but only once released.
pub struct Sink {
    addr: SocketAddr,
    state: Arc<(Mutex<State>, Condvar)>,
}

impl Sink {
    /// A sink that answers `200`.
    pub fn start() -> Sink {
        Sink::replying(200)
    }

    /// A sink that answers `status` (with [`SINK_HEADER`]`: sink`).
    pub fn replying(status: u16) -> Sink {
        let listener = TcpListener::bind("127.0.0.1:0").expect("the sink binds a free port");
        let addr = listener.local_addr().expect("the sink's address");
        let state: Arc<(Mutex<State>, Condvar)> = Arc::default();
        let shared = Arc::clone(&state);
        thread::spawn(move || {
            for connection in listener.incoming().flatten() {
                if lock(&shared.0).stopped {
                    break;
                }
                let state = Arc::clone(&shared);
                thread::spawn(move || serve(connection, &state, status));
            }
        });
        Sink { addr, state }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Bodies read whole so far.
    pub fn received(&self) -> usize {
        lock(&self.state.0).received
    }

    /// Answers every held request, and every later one at once.
    pub fn release(&self) {
        let (state, released) = &*self.state;
        lock(state).released = true;
        released.notify_all();
    }
}

impl Drop for Sink {
    /// Lets every held connection finish and ends the accept loop (woken by one last
    /// connection of its own).
    fn drop(&mut self) {
        self.release();
        lock(&self.state.0).stopped = true;
        let _ = TcpStream::connect(self.addr);
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Serves one connection: requests one after another (Envoy reuses upstream connections).
fn serve(connection: TcpStream, state: &(Mutex<State>, Condvar), status: u16) {
    let mut writer = match connection.try_clone() {
        Ok(writer) => writer,
        Err(_) => return,
    };
    let mut reader = BufReader::new(connection);
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let mut length = 0usize;
        let mut line = String::new();
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        while length > 0 {
            let want = length.min(chunk.len());
            match reader.read(&mut chunk[..want]) {
                Ok(0) | Err(_) => return,
                Ok(n) => length -= n,
            }
        }
        let (state, released) = state;
        let mut s = lock(state);
        s.received += 1;
        while !s.released {
            s = released.wait(s).unwrap_or_else(PoisonError::into_inner);
        }
        drop(s);
        let response =
            format!("HTTP/1.1 {status} Sink\r\n{SINK_HEADER}: sink\r\ncontent-length: 2\r\n\r\nok");
        if writer.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

/// What a client got: the status, whether the sink sent it, and the filter's attempt count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    /// The response carries [`SINK_HEADER`]: the upstream answered (possibly relayed from a
    /// retry), not Envoy.
    pub from_sink: bool,
    /// `x-breakwater-attempts`: set when the request was retried.
    pub attempts: Option<u32>,
}

/// `PUT path` with `body` on its own connection to `addr`, in a thread; the thread returns the
/// response's head, or `None` when Envoy closed the connection without one.
pub fn put(addr: SocketAddr, path: String, body: Arc<Vec<u8>>) -> JoinHandle<Option<Answer>> {
    put_waiting(addr, path, body, IO_TIMEOUT)
}

/// [`put`], waiting at most `timeout` for each read and write.
pub fn put_waiting(
    addr: SocketAddr,
    path: String,
    body: Arc<Vec<u8>>,
    timeout: Duration,
) -> JoinHandle<Option<Answer>> {
    thread::spawn(move || {
        let mut stream = TcpStream::connect(addr).ok()?;
        stream.set_read_timeout(Some(timeout)).ok()?;
        stream.set_write_timeout(Some(timeout)).ok()?;
        let head = format!(
            "PUT {path} HTTP/1.1\r\nhost: flood\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        // Envoy may answer and close while the body is still going out: the write then fails,
        // and the answer may still be there to read.
        let _ = stream
            .write_all(head.as_bytes())
            .and_then(|()| stream.write_all(&body));
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let status = line.split_whitespace().nth(1)?.parse().ok()?;
        let mut answer = Answer {
            status,
            from_sink: false,
            attempts: None,
        };
        loop {
            line.clear();
            if reader.read_line(&mut line).ok()? == 0 {
                break;
            }
            let Some((name, value)) = line.trim_end().split_once(':') else {
                break;
            };
            if name.eq_ignore_ascii_case(SINK_HEADER) {
                answer.from_sink = value.trim() == "sink";
            } else if name.eq_ignore_ascii_case("x-breakwater-attempts") {
                answer.attempts = value.trim().parse().ok();
            }
        }
        Some(answer)
    })
}
