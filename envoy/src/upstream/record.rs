//! What reached the test upstream: every request with its headers and the reply it got.
//!
//! Tests count upstream attempts from here: a retried attempt carries `x-breakwater-attempt: N`
//! (N ≥ 2), so "three attempts reached the upstream" is three records for the path, two of them
//! with the header.
//!
//! A request is recorded once its body is read, before its reply: in arrival order, except a
//! [`Reply::Early`], which is answered first and recorded when its body has been read (or the
//! connection ended).

use std::collections::BTreeMap;

use super::plan::Reply;

/// The request header Breakwater puts on a retried attempt.
pub const ATTEMPT_HEADER: &str = "x-breakwater-attempt";

/// One request as the upstream received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    pub method: String,
    /// The path with its query.
    pub path: String,
    /// Header names in lower case, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Whether `body` is the whole body (it ended as its framing said); false when the
    /// connection ended first, which only a [`Reply::Early`] records (other replies read the whole
    /// body before they are recorded, or drop the connection unrecorded).
    pub body_complete: bool,
    /// How the upstream decided to answer it on arrival (a failure decided at completion shows
    /// in [`super::Upstream::completions`] only).
    pub reply: Reply,
}

impl RecordedRequest {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The attempt number from `x-breakwater-attempt`: `None` for a first attempt (no header),
    /// `Some(Err(value))` if the header is not a number.
    pub fn attempt(&self) -> Option<Result<u32, String>> {
        self.header(ATTEMPT_HEADER)
            .map(|v| v.trim().parse().map_err(|_| v.to_string()))
    }
}

/// Everything that reached one upstream, in arrival order.
///
/// Benchmarks only count: [`Record::count_only`] adds to the total without keeping a copy, so a
/// long load run neither grows memory nor pays for copying headers.
#[derive(Debug, Default, Clone)]
pub struct Record {
    requests: Vec<RecordedRequest>,
    /// Requests counted without a copy (see [`Record::count_only`]).
    uncopied: usize,
}

impl Record {
    pub fn push(&mut self, request: RecordedRequest) {
        self.requests.push(request);
    }

    /// Counts one request without keeping it.
    pub fn count_only(&mut self) {
        self.uncopied += 1;
    }

    pub fn clear(&mut self) {
        self.requests.clear();
        self.uncopied = 0;
    }

    /// The requests kept (every request unless some were only counted).
    pub fn requests(&self) -> &[RecordedRequest] {
        &self.requests
    }

    /// The requests kept, by value.
    pub fn into_requests(self) -> Vec<RecordedRequest> {
        self.requests
    }

    /// Every request that arrived, kept or only counted.
    pub fn total(&self) -> usize {
        self.requests.len() + self.uncopied
    }

    /// Requests with this method and path (the path with its query, compared exactly).
    pub fn count(&self, method: &str, path: &str) -> usize {
        self.requests
            .iter()
            .filter(|r| r.method.eq_ignore_ascii_case(method) && r.path == path)
            .count()
    }

    /// Request counts per (method, path).
    pub fn by_method_and_path(&self) -> BTreeMap<(String, String), usize> {
        let mut counts = BTreeMap::new();
        for r in &self.requests {
            *counts
                .entry((r.method.clone(), r.path.clone()))
                .or_insert(0) += 1;
        }
        counts
    }

    /// Request counts per value of `x-breakwater-attempt` (`None`: no header, a first attempt).
    pub fn by_attempt_header(&self) -> BTreeMap<Option<String>, usize> {
        let mut counts = BTreeMap::new();
        for r in &self.requests {
            let value = r.header(ATTEMPT_HEADER).map(str::to_string);
            *counts.entry(value).or_insert(0) += 1;
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, path: &str, attempt: Option<&str>) -> RecordedRequest {
        let mut headers = vec![("host".to_string(), "upstream".to_string())];
        if let Some(a) = attempt {
            headers.push((ATTEMPT_HEADER.to_string(), a.to_string()));
        }
        RecordedRequest {
            method: method.to_string(),
            path: path.to_string(),
            headers,
            body: Vec::new(),
            body_complete: true,
            reply: Reply::Status(200),
        }
    }

    #[test]
    fn counts_are_per_method_and_path() {
        let mut record = Record::default();
        record.push(request("GET", "/a", None));
        record.push(request("GET", "/a", Some("2")));
        record.push(request("POST", "/a", None));
        assert_eq!(record.total(), 3);
        assert_eq!(record.count("get", "/a"), 2, "methods compare in any case");
        assert_eq!(record.count("POST", "/a"), 1);
        assert_eq!(record.count("GET", "/b"), 0);
        assert_eq!(
            record
                .by_method_and_path()
                .get(&("GET".into(), "/a".into())),
            Some(&2)
        );
    }

    #[test]
    fn attempts_are_read_from_the_attempt_header() {
        let mut record = Record::default();
        record.push(request("GET", "/", None));
        record.push(request("GET", "/", Some("2")));
        record.push(request("GET", "/", Some("x")));
        let attempts: Vec<_> = record.requests().iter().map(|r| r.attempt()).collect();
        assert_eq!(
            attempts,
            vec![None, Some(Ok(2)), Some(Err("x".to_string()))]
        );
        assert_eq!(record.by_attempt_header().get(&None), Some(&1));
        assert_eq!(record.by_attempt_header().get(&Some("2".into())), Some(&1));
    }

    #[test]
    fn counted_requests_add_to_the_total_but_are_not_kept() {
        let mut record = Record::default();
        record.push(request("GET", "/a", None));
        record.count_only();
        record.count_only();
        assert_eq!(record.total(), 3, "counted requests are part of the total");
        assert_eq!(
            record.requests().len(),
            1,
            "only the pushed request is kept"
        );
        record.clear();
        assert_eq!(record.total(), 0, "clearing forgets the counted ones too");
    }

    #[test]
    fn header_lookup_ignores_case() {
        let r = request("GET", "/", Some("3"));
        assert_eq!(r.header("X-Breakwater-Attempt"), Some("3"));
        assert_eq!(r.header("missing"), None);
    }
}
