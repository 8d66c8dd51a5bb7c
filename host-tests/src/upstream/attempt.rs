//! The attempt record: what the harness keeps of every request that reached an upstream.
//!
//! Each request a cluster's script was asked about (one the filter let through, or a call it
//! dispatched) is recorded once, in order, with the [`Reply`] the script gave and whether that
//! answer reached Envoy; each cluster numbers its requests from 1 ([`UpstreamRequest::number`]).
//! Tests read the record ([`crate::World::upstream_attempts`], [`crate::World::attempts`]) to
//! count retries and see what each try carried; the harness finds an answer's attempt by its
//! index in the record, which never changes once given.

use super::script::{Reply, UpstreamRequest};
use std::collections::BTreeMap;
use std::ops::{Index, IndexMut};

/// One request that reached an upstream, with what the script answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub request: UpstreamRequest,
    pub reply: Reply,
    /// Whether the answer reached Envoy; false if the client or the filter gave up first.
    pub delivered: bool,
}

/// Every attempt so far, in order, and how many requests each cluster has received.
#[derive(Debug, Default)]
pub(crate) struct Attempts {
    list: Vec<Attempt>,
    per_cluster: BTreeMap<String, usize>,
}

impl Attempts {
    /// Counts a new request to `cluster` and answers its number (1 for the cluster's first).
    pub fn next_number(&mut self, cluster: &str) -> usize {
        let count = self.per_cluster.entry(cluster.to_string()).or_default();
        *count += 1;
        *count
    }

    /// Records a request and the script's reply, not yet delivered; answers its index.
    pub fn record(&mut self, request: UpstreamRequest, reply: Reply) -> usize {
        self.list.push(Attempt {
            request,
            reply,
            delivered: false,
        });
        self.list.len() - 1
    }

    /// Every attempt, in order.
    pub fn all(&self) -> &[Attempt] {
        &self.list
    }
}

impl Index<usize> for Attempts {
    type Output = Attempt;

    fn index(&self, attempt: usize) -> &Attempt {
        &self.list[attempt]
    }
}

impl IndexMut<usize> for Attempts {
    fn index_mut(&mut self, attempt: usize) -> &mut Attempt {
        &mut self.list[attempt]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(cluster: &str, number: usize) -> UpstreamRequest {
        UpstreamRequest::bare(cluster, number)
    }

    #[test]
    fn each_cluster_numbers_its_requests_from_one_and_the_record_keeps_their_order() {
        let mut attempts = Attempts::default();
        let numbers: Vec<usize> = ["a", "b", "a", "a", "b"]
            .iter()
            .map(|cluster| attempts.next_number(cluster))
            .collect();
        assert_eq!(numbers, vec![1, 1, 2, 3, 2], "one count per cluster");
        let first = attempts.record(request("a", 1), Reply::status(503));
        let second = attempts.record(request("b", 1), Reply::ok());
        assert_eq!(
            (first, second),
            (0, 1),
            "indices follow the order of recording"
        );
        assert!(
            !attempts[first].delivered,
            "recorded before any answer is delivered"
        );
        attempts[second].delivered = true;
        let clusters: Vec<&str> = attempts
            .all()
            .iter()
            .map(|a| a.request.cluster.as_str())
            .collect();
        assert_eq!(clusters, vec!["a", "b"]);
        assert!(attempts.all()[1].delivered);
    }
}
