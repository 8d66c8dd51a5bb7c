//! Races between workers, made deterministic: simultaneous events and preemption at shared
//! state, chosen by an [`Interleaving`].

use super::common::{fixture, result};
use breakwater_host_tests::{ms, Interleaving, Reply, StreamId, World};
use proptest::prelude::*;

fn world(workers: usize, interleaving: Interleaving) -> World {
    let mut world = fixture()
        .workers(workers)
        .interleaving(interleaving)
        .build()
        .expect("starts");
    world.upstream("c", Reply::ok().after(ms(1)));
    world
}

/// Two workers increment one shared counter at the same instant.
fn two_increments(interleaving: Interleaving, command: &str) -> (World, [StreamId; 2]) {
    let mut world = world(2, interleaving);
    let streams = [0, 1].map(|worker| {
        world
            .request(worker)
            .cluster("c")
            .header("x-fixture-request", command)
            .enqueue()
    });
    world.run_until_idle();
    (world, streams)
}

fn counter(world: &World) -> String {
    world
        .shared_data("hits")
        .map(|v| v.text())
        .unwrap_or_default()
}

/// Worker 0 goes first (choice 0), is not preempted at its read (0), and is preempted by
/// worker 1's whole request at its write (1).
const PREEMPT_BETWEEN_READ_AND_WRITE: [u8; 3] = [0, 0, 1];

#[test]
fn a_racy_read_modify_write_loses_an_update_when_a_worker_is_preempted_between_them() {
    let (world, _) = two_increments(
        Interleaving::from_choices(PREEMPT_BETWEEN_READ_AND_WRITE),
        "racy-incr hits",
    );
    assert_eq!(counter(&world), "1", "worker 1's write was overwritten");
    assert!(
        world
            .trace()
            .iter()
            .any(|t| t.contains("worker 0 preempted in proxy_set_shared_data")),
        "the trace shows where the preemption happened: {:#?}",
        world.trace()
    );
}

#[test]
fn without_preemption_the_same_racy_increments_both_land() {
    let (world, _) = two_increments(Interleaving::fifo(), "racy-incr hits");
    assert_eq!(counter(&world), "2");
}

#[test]
fn a_compare_and_swap_increment_retries_and_loses_nothing_under_the_same_preemption() {
    let (world, [first, _]) = two_increments(
        Interleaving::from_choices(PREEMPT_BETWEEN_READ_AND_WRITE),
        "cas-incr hits",
    );
    assert_eq!(counter(&world), "2");
    assert_eq!(
        result(&world.response(first).expect("answered"), "cas-incr hits"),
        "2 tries=2",
        "worker 0's first write met a stale cas and retried"
    );
}

#[test]
fn simultaneous_arrivals_on_two_workers_run_in_the_order_chosen() {
    let (world, [first, second]) = two_increments(Interleaving::from_choices([1]), "cas-incr hits");
    let first_done = world.response(first).expect("answered");
    let second_done = world.response(second).expect("answered");
    assert_eq!(
        result(&second_done, "cas-incr hits"),
        "1 tries=1",
        "worker 1 went first"
    );
    assert_eq!(result(&first_done, "cas-incr hits"), "2 tries=1");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Four workers hit one cluster in randomized interleavings: every request is answered, and
    /// compare-and-swap increments of one shared counter never lose an update.
    #[test]
    fn four_workers_incrementing_one_counter_with_cas_lose_no_update(
        requests in prop::collection::vec((0usize..4, 0u64..3), 1..24),
        choices in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut world = world(4, Interleaving::from_choices(choices));
        let streams: Vec<StreamId> = requests
            .iter()
            .map(|(worker, at)| {
                world
                    .request(*worker)
                    .cluster("c")
                    .at(ms(*at))
                    .header("x-fixture-request", "cas-incr hits")
                    .enqueue()
            })
            .collect();
        world.run_until_idle();
        for s in &streams {
            let response = world.response(*s);
            prop_assert_eq!(response.map(|r| r.status), Some(200), "{} was answered", s);
        }
        prop_assert_eq!(counter(&world), requests.len().to_string());
        prop_assert_eq!(world.upstream_attempts("c").len(), requests.len());
    }
}
