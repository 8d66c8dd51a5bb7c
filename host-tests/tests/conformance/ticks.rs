//! Tick timers: one period per root context, re-armed after each tick, fired in due-time order
//! across VMs (Envoy's `Wasm::setTimerPeriod` and `tickHandler`).

use super::common::fixture;
use breakwater_host_tests::{ms, Reply, VmId, World};
use std::time::Duration;

fn ticks(world: &World) -> Vec<(Duration, VmId)> {
    world
        .logs_containing("tick root=")
        .iter()
        .map(|l| (l.at, l.vm))
        .collect()
}

#[test]
fn a_root_ticks_every_period_from_when_it_set_it() {
    let mut world = fixture().configuration("tick 100").build().expect("starts");
    world.advance(ms(350));
    let at: Vec<Duration> = ticks(&world).into_iter().map(|(at, _)| at).collect();
    assert_eq!(at, vec![ms(100), ms(200), ms(300)]);
    assert_eq!(world.counter("fixture_ticks"), Some(3));
}

#[test]
fn ticks_of_several_vms_fire_in_due_time_order() {
    let mut world = fixture()
        .workers(3)
        .configuration("tick 30")
        .build()
        .expect("starts");
    world.upstream("c", Reply::ok());
    world
        .request(1)
        .cluster("c")
        .header("x-fixture-request", "tick 20")
        .send();
    world
        .request(2)
        .cluster("c")
        .header("x-fixture-request", "tick 50")
        .send();
    world.advance(ms(100));
    let w = VmId::Worker;
    assert_eq!(
        ticks(&world),
        vec![
            (ms(20), w(1)),
            (ms(30), w(0)),
            (ms(40), w(1)),
            (ms(50), w(2)),
            (ms(60), w(0)),
            (ms(60), w(1)),
            (ms(80), w(1)),
            (ms(90), w(0)),
            (ms(100), w(2)),
            (ms(100), w(1)),
        ],
        "time order; at the same instant, the timer armed first fires first"
    );
}

#[test]
fn a_new_period_re_arms_from_now_and_zero_stops_the_timer() {
    let mut world = fixture().configuration("tick 100").build().expect("starts");
    world.upstream("c", Reply::ok());
    world.advance(ms(150));
    world
        .request(0)
        .cluster("c")
        .header("x-fixture-request", "tick 30")
        .send();
    assert_eq!(world.tick_period(0), Some(ms(30)));
    world.advance(ms(70));
    let at: Vec<Duration> = ticks(&world).into_iter().map(|(at, _)| at).collect();
    assert_eq!(
        at,
        vec![ms(100), ms(180), ms(210)],
        "the 200 ms tick never comes"
    );
    world
        .request(0)
        .cluster("c")
        .header("x-fixture-request", "tick 0")
        .send();
    assert_eq!(world.tick_period(0), None);
    world.advance(ms(500));
    assert_eq!(ticks(&world).len(), 3, "period 0 stops the timer");
}

#[test]
fn the_main_thread_vm_ticks_like_a_worker() {
    let mut world = World::builder()
        .fixture()
        .configuration("tick 100")
        .build()
        .expect("starts");
    world.advance(ms(100));
    assert_eq!(
        ticks(&world),
        vec![(ms(100), VmId::Main), (ms(100), VmId::Worker(0))]
    );
    assert_eq!(world.tick_period(VmId::Main), Some(ms(100)));
    assert_eq!(
        world.counter("fixture_ticks"),
        Some(2),
        "a metric is one stat for the whole process"
    );
}
