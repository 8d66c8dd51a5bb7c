//! Shared data and queues belong to the VM id (proxy-wasm-cpp-host `src/shared_data.cc`,
//! `src/shared_queue.cc`), and go when the last VM of that VM id goes (`src/vm_id_handle.cc`,
//! `deleteByVmId`); a plugin's removal shuts its roots down (`WasmBase::startShutdown`).

use super::common::{fixture, result};
use breakwater_host_tests::{ms, HarnessError, Plugin, PluginId, Reply, VmId, World};

/// A world whose primary plugin has VM id `vm_id`, with an upstream `c`.
fn world(vm_id: &str) -> World {
    let mut world = fixture().vm_id(vm_id).build().expect("starts");
    world.upstream("c", Reply::ok());
    world
}

/// Runs `script` in a request of the primary plugin; answers what `command` gave.
fn primary(world: &mut World, script: &str, command: &str) -> String {
    let s = world
        .request(0)
        .cluster("c")
        .header("x-fixture-request", script)
        .send();
    result(&world.response(s).expect("answered"), command)
}

/// What `plugin` logged, in order.
fn logged_by(world: &World, plugin: PluginId) -> Vec<String> {
    world
        .logs()
        .into_iter()
        .filter(|l| l.plugin == plugin)
        .map(|l| l.message)
        .collect()
}

#[test]
fn plugins_with_different_vm_ids_do_not_see_each_others_keys() {
    let mut world = world("a");
    let b = world
        .add_plugin(
            Plugin::fixture()
                .plugin_name("other")
                .vm_id("b")
                .configuration("shared-set k from-b"),
        )
        .expect("the second plugin starts");
    assert_eq!(world.plugin_vms(b), vec![VmId::Worker(0)]);
    assert_eq!(
        primary(&mut world, "shared-get k", "shared-get k"),
        "missing",
        "the primary (VM id a) does not see what VM id b wrote"
    );
    assert_eq!(
        primary(&mut world, "shared-set k from-a 0", "shared-set k from-a 0"),
        "Ok"
    );
    assert_eq!(
        world.shared_data_in("b", "k").map(|v| v.text()),
        Some("from-b".into())
    );
    assert_eq!(
        world.shared_data("k").map(|v| v.text()),
        Some("from-a".into()),
        "the same key, another namespace"
    );
    assert_eq!(
        primary(&mut world, "property plugin_vm_id", "property plugin_vm_id"),
        "a"
    );
}

#[test]
fn plugins_with_the_same_vm_id_share_their_keys() {
    let mut world = world("");
    world
        .add_plugin(Plugin::fixture().configuration("shared-set k from-c"))
        .expect("starts");
    assert!(
        primary(&mut world, "shared-get k", "shared-get k").starts_with("from-c@"),
        "Istio's plugins all have the empty VM id: one namespace"
    );
}

#[test]
fn removing_every_vm_of_a_vm_id_deletes_its_keys_and_queues() {
    let mut world = world("a");
    let b = world
        .add_plugin(
            Plugin::fixture()
                .vm_id("b")
                .configuration("shared-set k from-b; queue q; tick 10"),
        )
        .expect("starts");
    assert_eq!(
        primary(&mut world, "enqueue-to b q hello", "enqueue-to b q hello"),
        "Ok",
        "a queue is reached through its VM id"
    );
    world.settle();
    assert!(logged_by(&world, b)
        .iter()
        .any(|m| m.ends_with("got hello")));

    world.remove_plugin(b).expect("removed");
    let after: Vec<String> = logged_by(&world, b);
    assert_eq!(
        after.last().map(String::as_str),
        Some("root done 1"),
        "its root got on_done (and on_delete)"
    );
    assert!(world.plugin_vms(b).is_empty(), "its VMs are gone");
    assert_eq!(
        world.shared_data_in("b", "k"),
        None,
        "no VM of VM id b is left: its shared data went with the last one"
    );
    assert_eq!(
        primary(&mut world, "enqueue-to b q again", "enqueue-to b q again"),
        "missing",
        "and its queues"
    );
    let logged = logged_by(&world, b).len();
    world.advance(ms(50));
    assert_eq!(
        logged_by(&world, b).len(),
        logged,
        "a removed plugin never ticks again"
    );

    let again = world
        .add_plugin(Plugin::fixture().vm_id("b").configuration("shared-get k"))
        .expect("starts");
    assert_eq!(
        logged_by(&world, again).last().map(String::as_str),
        Some("config shared-get k=missing"),
        "a new plugin of VM id b starts from nothing"
    );
}

#[test]
fn a_vm_ids_keys_stay_while_another_vm_of_that_id_lives() {
    let mut world = world("a");
    let first = world
        .add_plugin(
            Plugin::fixture()
                .vm_id("b")
                .configuration("shared-set k kept"),
        )
        .expect("starts");
    let second = world
        .add_plugin(Plugin::fixture().vm_id("b").plugin_name("second"))
        .expect("starts");
    world.remove_plugin(first).expect("removed");
    assert_eq!(
        world.shared_data_in("b", "k").map(|v| v.text()),
        Some("kept".into()),
        "the second plugin's VMs still hold VM id b"
    );
    world.remove_plugin(second).expect("removed");
    assert_eq!(world.shared_data_in("b", "k"), None);

    let same_as_primary = world
        .add_plugin(
            Plugin::fixture()
                .vm_id("a")
                .configuration("shared-set j kept"),
        )
        .expect("starts");
    world.remove_plugin(same_as_primary).expect("removed");
    assert!(
        primary(&mut world, "shared-get j", "shared-get j").starts_with("kept@"),
        "the primary's VMs hold VM id a"
    );
}

#[test]
fn a_reconfiguration_of_the_primary_leaves_other_plugins_alone() {
    let mut world = world("a");
    let b = world
        .add_plugin(Plugin::fixture().vm_id("b").configuration("log b"))
        .expect("starts");
    let before = logged_by(&world, b);
    assert!(world.reconfigure("log new"));
    assert_eq!(
        logged_by(&world, b),
        before,
        "plugin b was not reconfigured"
    );
    assert_eq!(world.root_context_id(0), Some(2), "the primary was");
}

#[test]
fn a_plugin_its_canary_rejects_is_not_added_and_the_primary_cannot_be_removed() {
    let mut world = World::builder()
        .fixture()
        .vm_id("a")
        .build()
        .expect("starts");
    let rejected = world.add_plugin(Plugin::fixture().vm_id("b").configuration("reject"));
    assert!(matches!(
        rejected,
        Err(HarnessError::ConfigureRejected {
            vm: VmId::Canary(_),
            ..
        })
    ));
    assert_eq!(
        world.logs_containing("config=reject").len(),
        1,
        "only its canary ran: no main-thread or worker VM started"
    );
    assert!(matches!(
        world.remove_plugin(PluginId::PRIMARY),
        Err(HarnessError::Invalid(_))
    ));
}
