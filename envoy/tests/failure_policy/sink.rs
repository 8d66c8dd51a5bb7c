//! Exhausting a Breakwater VM's memory: the only way found to make the real filter trap.
//!
//! # Why memory
//! Breakwater is written never to trap on input (fuzzing found no input that does), and a
//! test must not patch it. But every VM has a memory cap: proxy-wasm-cpp-host caps a V8 VM at
//! 1 GiB (`PROXY_WASM_HOST_MAX_WASM_MEMORY_SIZE_BYTES`, `--wasm_max_mem_pages`), and Breakwater
//! keeps a copy of each retry-eligible request body (up to `max_request_body`, at most 16 MiB)
//! until the request ends. A copy of a body just over 8 MiB grows to a 16 MiB allocation, so
//! some 64 such requests in flight at once on one worker need more than the VM may have; the
//! failed allocation aborts (`memory allocation of N bytes failed`), which is a wasm trap.
//!
//! # How
//! The [`Sink`] upstream reads each request whole and holds its response until released, so
//! the requests stay in flight together while their copies pile up. The client writes the same
//! shared body on every connection, so the test itself holds one copy.

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

/// An HTTP/1.1 upstream that answers `200` to every request, but only once released.
pub struct Sink {
    addr: SocketAddr,
    state: Arc<(Mutex<State>, Condvar)>,
}

impl Sink {
    pub fn start() -> Sink {
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
                thread::spawn(move || serve(connection, &state));
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
fn serve(connection: TcpStream, state: &(Mutex<State>, Condvar)) {
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
        if writer
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            .is_err()
        {
            return;
        }
    }
}

/// `PUT path` with `body` on its own connection to `addr`, in a thread; the thread returns the
/// response's status, or `None` when Envoy closed the connection without one.
pub fn put(addr: SocketAddr, path: String, body: Arc<Vec<u8>>) -> JoinHandle<Option<u16>> {
    thread::spawn(move || {
        let mut stream = TcpStream::connect(addr).ok()?;
        stream.set_read_timeout(Some(IO_TIMEOUT)).ok()?;
        stream.set_write_timeout(Some(IO_TIMEOUT)).ok()?;
        let head = format!(
            "PUT {path} HTTP/1.1\r\nhost: flood\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        // Envoy may answer and close while the body is still going out (the VM failed): the
        // write then fails, and the answer may still be there to read.
        let _ = stream
            .write_all(head.as_bytes())
            .and_then(|()| stream.write_all(&body));
        let mut status_line = String::new();
        BufReader::new(stream).read_line(&mut status_line).ok()?;
        status_line.split_whitespace().nth(1)?.parse().ok()
    })
}
