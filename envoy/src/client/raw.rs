//! An HTTP/1.1 response read off a raw socket, whole or cut short: framed by `content-length`,
//! by chunks, or by the connection's end; the reader stops at the first of the response's end and
//! the connection's.

use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::net::tcp::OwnedReadHalf;

/// How the response ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Whole, as its framing said.
    Complete,
    /// The connection closed (FIN) first; for a response without framing that is its end.
    Closed,
    /// The connection was reset first.
    Reset,
}

/// A response read off the socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawResponse {
    pub status: u16,
    /// Lower-case names, in order.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
    pub ended: Ended,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads until the response is whole or the connection ends.
pub(super) async fn receive(
    mut reader: OwnedReadHalf,
    start: Instant,
) -> (Option<RawResponse>, Option<Duration>) {
    let mut bytes = Vec::new();
    let mut buffer = [0u8; 4096];
    let mut head_after = None;
    let ended = loop {
        if let Some(head) = parse_head(&bytes) {
            head_after.get_or_insert_with(|| start.elapsed());
            if let Some(body) = whole_body(&head, &bytes[head.end..]) {
                return (Some(head.into_response(body, Ended::Complete)), head_after);
            }
        }
        match reader.read(&mut buffer).await {
            Ok(0) => break Ended::Closed,
            Ok(n) => bytes.extend_from_slice(&buffer[..n]),
            Err(_) => break Ended::Reset,
        }
    };
    let response = parse_head(&bytes).map(|head| {
        head_after.get_or_insert_with(|| start.elapsed());
        let rest = &bytes[head.end..];
        let body = match head.framing {
            BodyFraming::Chunked => dechunk(rest).map_or_else(|| rest.to_vec(), |(b, _)| b),
            _ => rest.to_vec(),
        };
        head.into_response(body, ended)
    });
    (response, head_after)
}

/// How the response body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyFraming {
    Length(usize),
    Chunked,
    /// Until the connection closes.
    Close,
}

/// A parsed response head.
struct Head {
    /// Where the body starts.
    end: usize,
    status: u16,
    headers: Vec<(String, String)>,
    framing: BodyFraming,
}

impl Head {
    fn into_response(self, body: Vec<u8>, ended: Ended) -> RawResponse {
        RawResponse {
            status: self.status,
            headers: self.headers,
            body,
            ended,
        }
    }
}

/// The head of an HTTP/1.1 response once it is all there.
fn parse_head(bytes: &[u8]) -> Option<Head> {
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let text = String::from_utf8_lossy(&bytes[..end]);
    let mut lines = text.split("\r\n");
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let value = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v);
    let framing = if value("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        BodyFraming::Chunked
    } else if let Some(length) = value("content-length").and_then(|v| v.parse().ok()) {
        BodyFraming::Length(length)
    } else if status == 204 || status == 304 {
        BodyFraming::Length(0)
    } else {
        BodyFraming::Close
    };
    Some(Head {
        end,
        status,
        headers,
        framing,
    })
}

/// The whole body, once `rest` holds all of it.
fn whole_body(head: &Head, rest: &[u8]) -> Option<Vec<u8>> {
    match head.framing {
        BodyFraming::Length(length) => (rest.len() >= length).then(|| rest[..length].to_vec()),
        BodyFraming::Chunked => dechunk(rest).filter(|(_, done)| *done).map(|(b, _)| b),
        BodyFraming::Close => None,
    }
}

/// Decodes a chunked body: the data so far and whether the last chunk came.
fn dechunk(mut rest: &[u8]) -> Option<(Vec<u8>, bool)> {
    let mut body = Vec::new();
    loop {
        let Some(line_end) = rest.windows(2).position(|w| w == b"\r\n") else {
            return Some((body, false));
        };
        let size_text = String::from_utf8_lossy(&rest[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        let data = &rest[line_end + 2..];
        if size == 0 {
            return Some((body, data.windows(2).any(|w| w == b"\r\n")));
        }
        if data.len() < size + 2 {
            body.extend_from_slice(&data[..size.min(data.len())]);
            return Some((body, false));
        }
        body.extend_from_slice(&data[..size]);
        rest = &data[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_response_is_whole_by_its_length_or_its_last_chunk() {
        let text = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nab";
        let head = parse_head(text).expect("a head");
        assert_eq!(head.status, 200);
        assert_eq!(whole_body(&head, &text[head.end..]), None, "one byte short");
        let text = b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nabc";
        let head = parse_head(text).expect("a head");
        assert_eq!(whole_body(&head, &text[head.end..]), Some(b"abc".to_vec()));

        let chunked =
            b"HTTP/1.1 503 x\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n";
        let head = parse_head(chunked).expect("a head");
        assert_eq!(
            whole_body(&head, &chunked[head.end..]),
            None,
            "no last chunk yet"
        );
        let mut done = chunked.to_vec();
        done.extend_from_slice(b"0\r\n\r\n");
        assert_eq!(
            whole_body(&head, &done[head.end..]),
            Some(b"abcde".to_vec())
        );
    }
}
