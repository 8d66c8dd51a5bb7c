//! What a local reply looks like: Envoy does not relay the status, headers and body it was given
//! as they are. `sendLocalReply` builds the response with `Utility::prepareLocalReply` and sends
//! it with `Utility::encodeLocalReply` (`source/common/http/utility.cc`), the same for the
//! filter's `proxy_send_local_response` (Envoy's wasm `Context::sendLocalResponse` calls
//! `sendLocalReply`), the router's own replies, and the replies sent past the filter
//! (`DownstreamFilterManager::sendDirectLocalReply`, `source/common/http/filter_manager.cc`).
//!
//! # Steps
//! 1. The headers start as `:status`, then the extra headers (the filter's, added with
//!    `addCopy`, so repeated names stay repeated).
//! 2. The connection manager's `local_reply_config` rewrites the reply
//!    (`LocalReplyImpl::rewrite`, `source/common/local_reply/local_reply.cc`): a mapper may
//!    change the status, the body and add headers, a body format may reformat the body and name
//!    its content type (`text/plain` by default). The stream's `response.code` becomes the
//!    rewritten status. The harness runs a test's hook here ([`LocalReplyEdit`]); without one,
//!    nothing changes.
//! 3. A gRPC request (one with `:path` and a `content-type` of `application/grpc` or
//!    `application/grpc+…`: `Grpc::Common::isGrpcRequestHeaders`, `source/common/grpc/common.cc`)
//!    gets a trailers-only reply: `:status` 200, `content-type: application/grpc`, `grpc-status`
//!    unless the headers already carry one (the filter's own `grpc_status` argument if it gave
//!    one in 0..=16, else the HTTP status mapped by `Grpc::Utility::httpToGrpcStatus`: 400 → 13,
//!    401 → 16, 403 → 7, 404 → 12, 429/502/503/504 → 14, anything else → 2), `grpc-message` the
//!    body percent-encoded (`PercentEncoding::encode`: bytes below `' '`, from `'~'` up, and
//!    `%`, as `%XX`), no `content-length`, and no body: the headers end the stream.
//! 4. Otherwise a body gets `content-length` and, if there is no `content-type` (or the rewrite
//!    changed the body without setting a content type of its own), the body format's content
//!    type; an empty body loses both headers, even ones the filter gave.
//! 5. A `HEAD` request gets the headers alone, ending the stream (its `content-length` stays).
//!
//! Whether a request is gRPC or `HEAD` is decided from its headers as they reached Envoy,
//! before any filter ran (`FilterManager::requestHeadersInitialized`,
//! `source/common/http/filter_manager.h`).

use crate::headers::Message;
use crate::HeaderMap;

/// A local reply as the connection manager's `local_reply_config` sees it: the test's hook
/// ([`crate::WorldBuilder::local_reply_config`]) may change the status, the headers, the body
/// and the body's content type, as Envoy's response mappers and body format do.
pub struct LocalReplyEdit<'a> {
    /// The request headers as the filter left them.
    pub request_headers: &'a HeaderMap,
    /// Envoy's `response.code_details` for the reply.
    pub details: &'a str,
    /// Envoy's `response.flags` so far.
    pub flags: u64,
    /// The reply's HTTP status (a mapper's `status_code` changes it).
    pub status: u16,
    /// The reply's headers so far: `:status` and the extra headers (a mapper's
    /// `headers_to_add` adds to them). `:status` is set from [`LocalReplyEdit::status`].
    pub headers: &'a mut HeaderMap,
    /// The body (a mapper's `body`, or a `body_format`, changes it).
    pub body: Vec<u8>,
    /// The content type of the body format: `text/plain` unless the hook changes it.
    pub content_type: String,
}

/// The hook a test installs as the connection manager's `local_reply_config`.
pub(crate) type LocalReplyHook = Box<dyn FnMut(&mut LocalReplyEdit<'_>)>;

/// What Envoy knows of the request when it builds a local reply.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RequestKind {
    pub grpc: bool,
    pub head: bool,
}

impl RequestKind {
    /// Read from the request headers as they reached Envoy.
    pub fn of(headers: &HeaderMap) -> Self {
        RequestKind {
            grpc: headers.get_bytes(":path").is_some() && grpc_content_type(headers),
            head: headers.get(":method") == Some("HEAD"),
        }
    }
}

/// `content-type` is `application/grpc` or starts with `application/grpc+` (so `grpc-web` is not).
fn grpc_content_type(headers: &HeaderMap) -> bool {
    const GRPC: &[u8] = b"application/grpc";
    match headers.get_bytes("content-type") {
        Some(value) => value
            .strip_prefix(GRPC)
            .is_some_and(|rest| rest.is_empty() || rest.first() == Some(&b'+')),
        None => false,
    }
}

/// The reply to build: what `sendLocalReply` was given.
pub(crate) struct Given<'a> {
    pub status: u16,
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
    /// The `grpc_status` the filter passed, if it is a known gRPC status (0..=16); Envoy maps
    /// anything else (the SDKs pass -1) to none.
    pub grpc_status: Option<u32>,
    pub details: &'a str,
    pub flags: u64,
}

/// The response Envoy sends, and the status the stream's `response.code` gets.
pub(crate) fn prepare(
    given: &Given<'_>,
    request: &HeaderMap,
    kind: RequestKind,
    hook: Option<&mut LocalReplyHook>,
) -> (Message, u16) {
    let mut headers = HeaderMap::new();
    headers.add(":status", &given.status.to_string());
    for (name, value) in given.headers {
        headers.add(name, value);
    }
    let content_type_before = headers.get_bytes("content-type").map(<[u8]>::to_vec);
    let mut edit = LocalReplyEdit {
        request_headers: request,
        details: given.details,
        flags: given.flags,
        status: given.status,
        headers: &mut headers,
        body: given.body.to_vec(),
        content_type: "text/plain".into(),
    };
    if let Some(hook) = hook {
        hook(&mut edit);
    }
    let LocalReplyEdit {
        status,
        body,
        content_type,
        ..
    } = edit;
    headers.replace(":status", &status.to_string());
    let custom_content_type = headers.get_bytes("content-type") != content_type_before.as_deref();
    if kind.grpc {
        return (
            grpc(headers, &body, &content_type, status, given, kind),
            status,
        );
    }
    if body.is_empty() {
        headers.remove("content-length");
        headers.remove("content-type");
    } else {
        headers.replace("content-length", &body.len().to_string());
        let changed = body != given.body;
        if headers.get_bytes("content-type").is_none() || (changed && !custom_content_type) {
            headers.replace("content-type", &content_type);
        }
    }
    let body = if kind.head { Vec::new() } else { body };
    let message = Message {
        headers,
        body,
        trailers: HeaderMap::new(),
    };
    (message, status)
}

/// The trailers-only reply to a gRPC request (step 3 of the module docs).
fn grpc(
    mut headers: HeaderMap,
    body: &[u8],
    content_type: &str,
    status: u16,
    given: &Given<'_>,
    kind: RequestKind,
) -> Message {
    headers.replace(":status", "200");
    headers.replace("content-type", "application/grpc");
    if headers.get_bytes("grpc-status").is_none() {
        let code = given.grpc_status.unwrap_or_else(|| http_to_grpc(status));
        headers.replace("grpc-status", &code.to_string());
    }
    if !body.is_empty() && !kind.head {
        // A JSON body format ends its text with a newline, which a header cannot carry.
        let text = match body.strip_suffix(b"\n") {
            Some(trimmed) if content_type == "application/json" => trimmed,
            _ => body,
        };
        headers.replace("grpc-message", &percent_encode(text));
    }
    headers.remove("content-length");
    Message {
        headers,
        body: Vec::new(),
        trailers: HeaderMap::new(),
    }
}

/// `Grpc::Utility::httpToGrpcStatus` (`source/common/grpc/status.cc`).
pub(crate) fn http_to_grpc(status: u16) -> u32 {
    match status {
        400 => 13,                   // INTERNAL
        401 => 16,                   // UNAUTHENTICATED
        403 => 7,                    // PERMISSION_DENIED
        404 => 12,                   // UNIMPLEMENTED
        429 | 502 | 503 | 504 => 14, // UNAVAILABLE
        _ => 2,                      // UNKNOWN
    }
}

/// Envoy's `PercentEncoding::encode` with its default reserved `%`: bytes below `' '`, from
/// `'~'` up (so every non-ASCII byte), and `%` become `%XX` in upper-case hex.
pub(crate) fn percent_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if !(b' '..b'~').contains(&b) || b == b'%' {
            out.push_str(&format!("%{b:02X}"));
        } else {
            out.push(char::from(b));
        }
    }
    out
}

/// A plain local reply (no gRPC, no `HEAD`, no rewrite), as the `AsyncClient` behind a
/// dispatched call builds its own replies.
pub(crate) fn plain(status: u16, body: &[u8]) -> Message {
    let given = Given {
        status,
        headers: &[],
        body,
        grpc_status: None,
        details: "",
        flags: 0,
    };
    prepare(&given, &HeaderMap::new(), RequestKind::default(), None).0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn given<'a>(status: u16, headers: &'a [(String, String)], body: &'a [u8]) -> Given<'a> {
        Given {
            status,
            headers,
            body,
            grpc_status: None,
            details: "d",
            flags: 0,
        }
    }

    fn names(message: &Message) -> Vec<&str> {
        message.headers.iter().map(|(n, _)| n).collect()
    }

    #[test]
    fn a_body_gets_its_length_and_a_default_content_type_after_the_extra_headers() {
        let extra = [("x-a".to_string(), "1".to_string())];
        let (reply, code) = prepare(
            &given(503, &extra, b"oops"),
            &HeaderMap::new(),
            RequestKind::default(),
            None,
        );
        assert_eq!(code, 503);
        assert_eq!(
            names(&reply),
            vec![":status", "x-a", "content-length", "content-type"]
        );
        assert_eq!(reply.headers.get("content-type"), Some("text/plain"));
        assert_eq!(reply.body, b"oops");
    }

    #[test]
    fn an_empty_body_drops_length_and_content_type_even_the_filters() {
        let extra = [("content-type".to_string(), "application/json".to_string())];
        let (reply, _) = prepare(
            &given(204, &extra, b""),
            &HeaderMap::new(),
            RequestKind::default(),
            None,
        );
        assert_eq!(names(&reply), vec![":status"]);
    }

    #[test]
    fn grpc_status_follows_envoys_table() {
        let table = [
            (400, 13),
            (401, 16),
            (403, 7),
            (404, 12),
            (429, 14),
            (502, 14),
            (503, 14),
            (504, 14),
            (500, 2),
            (418, 2),
        ];
        for (http, grpc) in table {
            assert_eq!(http_to_grpc(http), grpc, "HTTP {http}");
        }
    }

    #[test]
    fn percent_encoding_escapes_controls_tilde_percent_and_non_ascii() {
        assert_eq!(
            percent_encode(b"no healthy upstream"),
            "no healthy upstream"
        );
        assert_eq!(percent_encode(b"a%b~c\n\xc3\xa9"), "a%25b%7Ec%0A%C3%A9");
    }

    #[test]
    fn only_application_grpc_and_its_plus_forms_with_a_path_are_grpc() {
        let kind = |pairs: &[(&str, &str)]| RequestKind::of(&pairs.iter().copied().collect());
        assert!(kind(&[(":path", "/s/m"), ("content-type", "application/grpc")]).grpc);
        assert!(
            kind(&[
                (":path", "/s/m"),
                ("content-type", "application/grpc+proto")
            ])
            .grpc
        );
        assert!(!kind(&[(":path", "/s/m"), ("content-type", "application/grpc-web")]).grpc);
        assert!(
            !kind(&[("content-type", "application/grpc")]).grpc,
            "no :path"
        );
        assert!(kind(&[(":method", "HEAD")]).head);
        assert!(!kind(&[(":method", "head")]).head, "Envoy compares exactly");
    }
}
