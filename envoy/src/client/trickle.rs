//! A client that sends its request body slowly, piece by piece, while it reads whatever response
//! comes, whenever it comes: a slow upload, over a raw socket.
//!
//! # Why not the hyper client
//! hyper's client reads the response only after it has sent the whole request, and stops sending
//! once a response arrives. A proxy must cope with both orders: an upstream (or Envoy itself) may
//! answer while the body is still on its way, and the client may go on sending. Here the writer
//! and the reader are independent: the writer sends the head, then the body in `chunks` pieces
//! `pause` apart (framed by `content-length` or as `transfer-encoding: chunked`), whatever the
//! reader has seen; the reader reads the response off the socket byte by byte until it is whole
//! or the connection ends. A client that gives up closes the connection after a set time if no
//! response has come.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;

use super::raw::{self, RawResponse};
use super::{ClientError, REQUEST_TIMEOUT};
use crate::runtime::block_on;

/// How the request body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `content-length` with the whole body's length, announced up front.
    ContentLength,
    /// `transfer-encoding: chunked`, one HTTP chunk per piece, then the last (empty) chunk.
    Chunked,
}

/// A request whose body goes out slowly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    pub method: String,
    /// The path with its query.
    pub path: String,
    /// Extra headers (`host` and the framing header are added).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Pieces the body is sent in (at least one when there is a body).
    pub pieces: usize,
    /// The wait before each piece after the first (the first goes right after the head).
    pub pause: Duration,
    pub framing: Framing,
    /// Closes the connection this long after the head went out, unless the response has come
    /// whole by then.
    pub give_up_after: Option<Duration>,
}

impl Upload {
    /// `method path` with `body`, sent in one piece with `content-length`.
    pub fn new(method: &str, path: &str, body: impl Into<Vec<u8>>) -> Upload {
        Upload {
            method: method.to_string(),
            path: path.to_string(),
            headers: Vec::new(),
            body: body.into(),
            pieces: 1,
            pause: Duration::ZERO,
            framing: Framing::ContentLength,
            give_up_after: None,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Upload {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Sends the body in `pieces` pieces, `pause` apart.
    pub fn trickle(mut self, pieces: usize, pause: Duration) -> Upload {
        self.pieces = pieces.max(1);
        self.pause = pause;
        self
    }

    pub fn framing(mut self, framing: Framing) -> Upload {
        self.framing = framing;
        self
    }

    /// Leaves (closes the connection) `after` the head went out if no whole response came.
    pub fn give_up_after(mut self, after: Duration) -> Upload {
        self.give_up_after = Some(after);
        self
    }

    /// The request head, framing header included.
    fn head(&self, addr: SocketAddr) -> Vec<u8> {
        let mut head = format!("{} {} HTTP/1.1\r\nhost: {addr}\r\n", self.method, self.path);
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        match self.framing {
            Framing::ContentLength => {
                head.push_str(&format!("content-length: {}\r\n", self.body.len()));
            }
            Framing::Chunked => head.push_str("transfer-encoding: chunked\r\n"),
        }
        head.push_str("\r\n");
        head.into_bytes()
    }

    /// The body's pieces, as evenly sized as they can be.
    fn pieces(&self) -> Vec<&[u8]> {
        if self.body.is_empty() {
            return Vec::new();
        }
        let size = self.body.len().div_ceil(self.pieces.max(1));
        self.body.chunks(size).collect()
    }
}

/// What happened to an upload.
#[derive(Debug, Clone)]
pub struct Uploaded {
    /// The response, if a whole head came.
    pub response: Option<RawResponse>,
    /// When the response head came, from when the request head went out.
    pub head_after: Option<Duration>,
    /// Body bytes written to the socket (less than the body if writing failed).
    pub body_sent: usize,
    /// When the writer finished or stopped, from when the request head went out.
    pub body_done_after: Duration,
    /// Why writing stopped early, if it did (the peer closed or reset the connection).
    pub write_error: Option<String>,
    /// The client left without a whole response (see [`Upload::give_up_after`]).
    pub gave_up: bool,
}

/// Sends `upload` to `addr` on a fresh connection (see the module docs).
pub fn upload(addr: SocketAddr, upload: &Upload) -> Result<Uploaded, ClientError> {
    let timeout = || ClientError::Timeout {
        addr,
        method: upload.method.clone(),
        path: upload.path.clone(),
    };
    block_on(async {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|source| ClientError::Connect { addr, source })?;
        let _ = stream.set_nodelay(true);
        let (reader, writer) = stream.into_split();
        let start = Instant::now();
        let sending = send(writer, upload, addr, start);
        let receiving = raw::receive(reader, start);
        let give_up = tokio::time::sleep(upload.give_up_after.unwrap_or(REQUEST_TIMEOUT));
        let overall = tokio::time::sleep(REQUEST_TIMEOUT);
        tokio::pin!(sending, receiving, give_up, overall);
        let (mut sent, mut received) = (None, None);
        while sent.is_none() || received.is_none() {
            tokio::select! {
                done = &mut sending, if sent.is_none() => sent = Some(done),
                done = &mut receiving, if received.is_none() => received = Some(done),
                // Returning drops both halves: the connection closes.
                () = &mut give_up, if received.is_none() => {
                    if upload.give_up_after.is_none() {
                        return Err(timeout());
                    }
                    return Ok(Uploaded {
                        response: None,
                        head_after: None,
                        body_sent: sent.as_ref().map_or(0, |(s, _): &(Sent, _)| s.bytes),
                        body_done_after: start.elapsed(),
                        write_error: None,
                        gave_up: true,
                    });
                }
                () = &mut overall => return Err(timeout()),
            }
        }
        let (Some((sent, _writer)), Some((response, head_after))) = (sent, received) else {
            return Err(timeout());
        };
        Ok(Uploaded {
            response,
            head_after,
            body_sent: sent.bytes,
            body_done_after: sent.after,
            write_error: sent.error,
            gave_up: false,
        })
    })
}

/// What the writer did.
struct Sent {
    bytes: usize,
    after: Duration,
    error: Option<String>,
}

/// Writes the head and the pieces; returns the write half so the connection stays open until
/// the reader is done too.
async fn send(
    mut writer: OwnedWriteHalf,
    upload: &Upload,
    addr: SocketAddr,
    start: Instant,
) -> (Sent, OwnedWriteHalf) {
    let mut sent = Sent {
        bytes: 0,
        after: Duration::ZERO,
        error: None,
    };
    let result = async {
        writer.write_all(&upload.head(addr)).await?;
        for (i, piece) in upload.pieces().into_iter().enumerate() {
            if i > 0 {
                tokio::time::sleep(upload.pause).await;
            }
            match upload.framing {
                Framing::ContentLength => writer.write_all(piece).await?,
                Framing::Chunked => {
                    let mut framed = format!("{:x}\r\n", piece.len()).into_bytes();
                    framed.extend_from_slice(piece);
                    framed.extend_from_slice(b"\r\n");
                    writer.write_all(&framed).await?;
                }
            }
            sent.bytes += piece.len();
        }
        if upload.framing == Framing::Chunked {
            writer.write_all(b"0\r\n\r\n").await?;
        }
        Ok::<(), std::io::Error>(())
    }
    .await;
    sent.error = result.err().map(|e| e.to_string());
    sent.after = start.elapsed();
    (sent, writer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_is_cut_into_even_pieces() {
        let upload = Upload::new("PUT", "/", vec![7u8; 10_000]).trickle(10, Duration::ZERO);
        let pieces = upload.pieces();
        assert_eq!(pieces.len(), 10);
        assert!(pieces.iter().all(|p| p.len() == 1000));
        let odd = Upload::new("PUT", "/", vec![1u8; 10]).trickle(3, Duration::ZERO);
        assert_eq!(
            odd.pieces().iter().map(|p| p.len()).collect::<Vec<_>>(),
            [4, 4, 2]
        );
        assert!(Upload::new("GET", "/", Vec::new()).pieces().is_empty());
    }

    #[test]
    fn the_head_announces_the_framing() {
        let addr = SocketAddr::from(([127, 0, 0, 1], 80));
        let plain = Upload::new("PUT", "/x", b"abc".to_vec()).header("a", "b");
        assert_eq!(
            String::from_utf8(plain.head(addr)).unwrap(),
            "PUT /x HTTP/1.1\r\nhost: 127.0.0.1:80\r\na: b\r\ncontent-length: 3\r\n\r\n"
        );
        let chunked = Upload::new("POST", "/", b"abc".to_vec()).framing(Framing::Chunked);
        assert!(String::from_utf8(chunked.head(addr))
            .unwrap()
            .ends_with("transfer-encoding: chunked\r\n\r\n"));
    }
}
