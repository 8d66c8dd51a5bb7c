//! Many cluster names: a route that takes its cluster from a request header, or clusters that
//! come and go (preview namespaces, revisions), can name any number of clusters. A worker keeps
//! its stats and budget batches apart for the first 1,024 names it meets; later names share the
//! stats of `_other`, their budgets are written unbatched, and the worker's memory stops growing.

use std::ops::Range;

use breakwater_host_tests::{ms, Reply, UpstreamRequest, World};
use serde_json::json;

use crate::common::{budget_key, flush, policy, stat, world};

/// The clusters a worker keeps apart (the filter's `MAX_CLUSTERS`).
const KEPT: usize = 1_024;
const KIB: u64 = 1 << 10;

fn name(i: usize) -> String {
    format!("svc-{i:05}.preview.svc.cluster.local")
}

/// One healthy GET to each cluster of `range` on worker 0, each run to its end.
fn one_each(w: &mut World, range: Range<usize>) {
    for i in range {
        let cluster = name(i);
        w.upstream(&cluster, Reply::ok());
        w.request(0).cluster(&cluster).send();
        w.run_until_idle();
    }
}

#[test]
fn past_1024_cluster_names_stats_go_to_other_and_the_workers_memory_stops_growing() {
    let mut w = world(1, &policy(json!({}), json!({ "base_delay": "10ms" })));
    one_each(&mut w, 0..KEPT);
    flush(&mut w);
    let full = w.memory_bytes(0).expect("the worker has a memory");
    one_each(&mut w, KEPT..4 * KEPT);
    flush(&mut w);
    let after = w.memory_bytes(0).expect("the worker has a memory");
    println!(
        "worker memory: {full} bytes at {KEPT} clusters, {after} after {}",
        4 * KEPT
    );
    assert!(
        after <= full + 64 * KIB,
        "3,072 more cluster names grow the worker by at most a page: {full} -> {after}"
    );
    let requests = |cluster: &str| w.counter(&stat(cluster, "requests_total"));
    assert_eq!(requests(&name(0)), Some(1));
    assert_eq!(
        requests(&name(KEPT - 1)),
        Some(1),
        "the last name kept apart"
    );
    assert_eq!(requests(&name(KEPT)), None, "the first name past the table");
    assert_eq!(
        requests("_other"),
        Some(3 * KEPT as u64),
        "every request past the table is counted under _other"
    );
    assert_eq!(
        w.gauge(&stat("_other", "breaker_state")),
        None,
        "clusters counted together have no one breaker state to show"
    );
    // Each cluster keeps its own breaker and budget in shared data, kept apart or not.
    for i in [0, KEPT - 1, KEPT, 4 * KEPT - 1] {
        assert!(
            w.shared_data(budget_key(&name(i))).is_some(),
            "{}'s budget was written",
            name(i)
        );
    }
}

#[test]
fn a_cluster_past_the_table_still_retries_within_its_own_budget() {
    let mut w = world(
        1,
        &policy(
            json!({}),
            json!({ "base_delay": "10ms", "budget": { "ratio": 0.5, "min_per_second": 0 } }),
        ),
    );
    one_each(&mut w, 0..KEPT);
    let late = name(KEPT + 7);
    // Two healthy requests fund one retry (a ratio of 0.5, no floor): unbatched, they reach the
    // budget at once.
    w.upstream(&late, |request: &UpstreamRequest| {
        if request.path() == "/fail" && request.header("x-breakwater-attempt").is_none() {
            Reply::status(503)
        } else {
            Reply::ok()
        }
    });
    for _ in 0..2 {
        w.request(0).cluster(&late).send();
        w.run_until_idle();
    }
    let retried = w.request(0).path("/fail").cluster(&late).send();
    w.advance(ms(100));
    assert_eq!(
        w.response(retried).map(|r| r.status),
        Some(200),
        "retried once"
    );
    flush(&mut w);
    assert_eq!(w.counter(&stat("_other", "retries_total")), Some(1));
    assert_eq!(w.counter(&stat(&late, "retries_total")), None);
}

#[test]
fn a_name_longer_than_512_bytes_is_never_kept_apart() {
    let mut w = world(1, &policy(json!({}), json!({ "base_delay": "10ms" })));
    let long = format!("{}.svc.cluster.local", "x".repeat(600));
    w.upstream(&long, Reply::ok());
    for _ in 0..3 {
        w.request(0).cluster(&long).send();
        w.run_until_idle();
    }
    one_each(&mut w, 0..1);
    flush(&mut w);
    assert_eq!(w.counter(&stat(&long, "requests_total")), None);
    assert_eq!(w.counter(&stat("_other", "requests_total")), Some(3));
    assert_eq!(
        w.counter(&stat(&name(0), "requests_total")),
        Some(1),
        "a long name takes no place from the names kept apart"
    );
    assert!(
        w.shared_data(budget_key(&long)).is_some(),
        "the long-named cluster's budget is its own"
    );
}
