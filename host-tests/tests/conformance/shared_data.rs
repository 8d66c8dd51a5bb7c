//! Shared data with cpp-host's compare-and-swap rules (`src/shared_data.cc`), and shared queues
//! (`src/shared_queue.cc`).

use super::common::{fixture, result};
use breakwater_host_tests::{Reply, Response, VmId, World};

fn world(workers: usize) -> World {
    let mut world = fixture()
        .workers(workers)
        .configuration("queue q")
        .build()
        .expect("starts");
    world.upstream("c", Reply::ok());
    world
}

fn run(world: &mut World, worker: usize, script: &str) -> Response {
    let s = world
        .request(worker)
        .cluster("c")
        .header("x-fixture-request", script)
        .send();
    world.response(s).expect("answered")
}

#[test]
fn cas_zero_always_writes_and_every_write_takes_a_fresh_cas() {
    let mut world = world(1);
    let r = run(
        &mut world,
        0,
        "shared-set k a 0; shared-get k; shared-set k b 0; shared-get k",
    );
    let results = r.header_values("x-fixture-result");
    assert_eq!(
        results,
        vec![
            "shared-set k a 0=Ok",
            "shared-get k=a@1",
            "shared-set k b 0=Ok",
            "shared-get k=b@2"
        ],
        "one process-wide counter, starting at 1"
    );
}

#[test]
fn a_non_zero_cas_that_does_not_match_is_a_mismatch_and_writes_nothing() {
    let mut world = world(1);
    let r = run(
        &mut world,
        0,
        "shared-set k a 0; shared-set k b 1; shared-set k c 1; shared-get k",
    );
    assert_eq!(result(&r, "shared-set k b 1"), "Ok", "cas 1 is current");
    assert_eq!(
        result(&r, "shared-set k c 1"),
        "CasMismatch",
        "cas 1 is stale now"
    );
    assert_eq!(result(&r, "shared-get k"), "b@2");
}

#[test]
fn a_non_zero_cas_on_an_absent_key_inserts_it() {
    let mut world = world(1);
    let r = run(&mut world, 0, "shared-set fresh v 99");
    assert_eq!(result(&r, "shared-set fresh v 99"), "Ok");
    let stored = world.shared_data("fresh").expect("inserted");
    assert_eq!((stored.text(), stored.cas), ("v".to_string(), 1));
}

#[test]
fn an_absent_key_reads_as_not_found() {
    let mut world = world(1);
    let r = run(&mut world, 0, "shared-get nothing");
    assert_eq!(result(&r, "shared-get nothing"), "missing");
}

#[test]
fn shared_data_is_one_store_for_every_worker() {
    let mut world = world(2);
    run(&mut world, 0, "shared-set k from-0 0");
    let r = run(&mut world, 1, "shared-get k");
    assert_eq!(result(&r, "shared-get k"), "from-0@1");
}

#[test]
fn garbage_planted_by_the_test_is_what_the_filter_reads() {
    let mut world = world(1);
    let cas = world.set_shared_data("k", b"\xffjunk");
    assert_eq!(cas, 1, "a host write takes a fresh cas too");
    let r = run(&mut world, 0, "shared-get k");
    assert_eq!(result(&r, "shared-get k"), "\u{fffd}junk@1");
}

#[test]
fn an_enqueued_item_reaches_the_root_that_registered_the_queue_last() {
    let mut world = world(2);
    let r = run(&mut world, 0, "enqueue q hello");
    assert_eq!(result(&r, "enqueue q hello"), "Ok");
    let got = world.logs_containing("got hello");
    assert_eq!(got.len(), 1);
    assert_eq!(
        (got[0].vm, got[0].context),
        (VmId::Worker(1), 1),
        "worker 1 registered `q` after worker 0: its root is told"
    );
}

#[test]
fn enqueueing_to_an_unknown_queue_finds_nothing() {
    let mut world = world(1);
    let r = run(&mut world, 0, "enqueue nope x");
    assert_eq!(result(&r, "enqueue nope x"), "missing");
}
