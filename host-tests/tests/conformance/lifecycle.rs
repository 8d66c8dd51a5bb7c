//! The plugin lifecycle: start order, the configuration canary, the main-thread VM,
//! reconfiguration (cpp-host `src/wasm.cc`; Envoy `source/extensions/common/wasm/wasm.cc`).

use super::common::{fixture, messages};
use breakwater_host_tests::{ms, Callback, HarnessError, Reply, VmId, World};

#[test]
fn a_vm_runs_initialize_then_creates_a_root_that_gets_vm_start_then_configure() {
    let world = fixture()
        .vm_configuration("vm-cfg")
        .configuration("log hello")
        .build()
        .expect("the plugin starts");
    assert_eq!(
        messages(&world),
        vec![
            "vm_start root=1 vm_config_size=6",
            "configure root=1 config=log hello",
            "hello"
        ],
        "on_vm_start sees the VM configuration size, on_configure the plugin configuration"
    );
    let fuel = world.fuel().by_callback;
    assert_eq!(fuel[&Callback::Initialize].calls, 1, "_initialize ran once");
    assert_eq!(fuel[&Callback::ContextCreate].calls, 1, "one root context");
}

#[test]
fn envoy_configures_a_canary_then_the_main_thread_vm_then_each_worker() {
    let world = World::builder()
        .fixture()
        .workers(2)
        .build()
        .expect("the plugin starts");
    let configured: Vec<VmId> = world
        .logs_containing("configure root=")
        .iter()
        .map(|l| l.vm)
        .collect();
    assert_eq!(
        configured,
        vec![
            VmId::Canary(0),
            VmId::Main,
            VmId::Worker(0),
            VmId::Worker(1)
        ]
    );
    assert_eq!(
        world.vms(),
        vec![VmId::Main, VmId::Worker(0), VmId::Worker(1)],
        "the canary is killed once it configured"
    );
}

#[test]
fn a_configuration_the_canary_rejects_fails_the_build() {
    let error = World::builder()
        .fixture()
        .configuration("reject")
        .build()
        .err()
        .expect("on_configure returned false");
    assert!(
        matches!(
            error,
            HarnessError::ConfigureRejected {
                vm: VmId::Canary(0),
                ..
            }
        ),
        "Envoy rejects the configuration on its canary: {error}"
    );
}

#[test]
fn without_a_canary_the_first_worker_to_reject_is_named() {
    let error = fixture()
        .configuration("reject")
        .build()
        .err()
        .expect("on_configure returned false");
    assert!(matches!(
        error,
        HarnessError::ConfigureRejected {
            vm: VmId::Worker(0),
            ..
        }
    ));
}

#[test]
fn reconfiguration_starts_a_new_root_in_every_vm_and_keeps_shared_data() {
    let mut world = World::builder()
        .fixture()
        .workers(2)
        .configuration("shared-set k kept")
        .build()
        .expect("the plugin starts");
    assert!(
        world.reconfigure("tick 50"),
        "the canary accepts the new policy"
    );
    assert_eq!(world.root_context_id(0), Some(2), "a fresh root context id");
    assert_eq!(
        world.tick_period(1),
        Some(ms(50)),
        "the new root set its period"
    );
    assert_eq!(world.tick_period(VmId::Main), Some(ms(50)));
    let restarted: Vec<VmId> = world
        .logs_containing("vm_start root=")
        .iter()
        .map(|l| l.vm)
        .collect();
    assert_eq!(
        restarted,
        vec![
            VmId::Canary(0),
            VmId::Main,
            VmId::Worker(0),
            VmId::Worker(1),
            VmId::Canary(1),
            VmId::Main,
            VmId::Worker(0),
            VmId::Worker(1)
        ],
        "on_vm_start runs again for each new root"
    );
    assert_eq!(
        world.logs_containing("root done 1").len(),
        3,
        "the old root of the main VM and of each worker is done at once: no stream uses it"
    );
    assert_eq!(
        world.shared_data("k").map(|v| v.text()),
        Some("kept".into()),
        "shared data survives reconfiguration"
    );
}

#[test]
fn a_rejected_reconfiguration_keeps_the_old_root_serving() {
    let mut world = World::builder()
        .fixture()
        .configuration("tick 100")
        .build()
        .expect("the plugin starts");
    assert!(!world.reconfigure("reject"), "the canary rejects it");
    assert_eq!(world.root_context_id(0), Some(1));
    assert_eq!(world.tick_period(0), Some(ms(100)));
    assert!(world.logs_containing("root done").is_empty());
}

#[test]
fn an_old_root_keeps_ticking_until_its_last_stream_ends() {
    let mut world = fixture().configuration("tick 10").build().expect("starts");
    world.upstream("c", Reply::ok().after(ms(100)));
    let s = world.request(0).cluster("c").send();
    assert!(world.reconfigure("tick 1000"));
    world.advance(ms(50));
    assert!(
        world.logs_containing("tick root=1").len() >= 5,
        "the old root still ticks while its stream is open"
    );
    assert!(world.logs_containing("root done 1").is_empty());
    world.advance(ms(60));
    assert!(world.response(s).is_some());
    let done = world.logs_containing("root done 1");
    assert_eq!(
        done.len(),
        1,
        "the old root is done when its last stream ends"
    );
    assert_eq!(done[0].at, ms(100));
    let late_ticks = world
        .logs_containing("tick root=1")
        .into_iter()
        .filter(|l| l.at > ms(100))
        .count();
    assert_eq!(late_ticks, 0, "a deleted root never ticks again");
}

#[test]
fn new_streams_attach_to_the_new_root() {
    let mut world = fixture().build().expect("starts");
    world.upstream("c", Reply::ok());
    assert!(world.reconfigure("log second"));
    let s = world
        .request(0)
        .cluster("c")
        .header("x-fixture-request", "tick 30")
        .send();
    assert!(world.response(s).is_some());
    assert_eq!(
        world.tick_period(0),
        Some(ms(30)),
        "a stream's tick period goes to its own root, the new one"
    );
}

#[test]
fn an_identical_reconfiguration_keeps_the_running_plugin() {
    let mut world = World::builder()
        .fixture()
        .workers(2)
        .configuration("tick 100")
        .build()
        .expect("the plugin starts");
    let configured = |world: &World| world.logs_containing("configure root=").len();
    assert_eq!(configured(&world), 4, "canary, main, two workers");
    assert!(
        world.reconfigure("tick 100"),
        "the configuration in effect stays in effect"
    );
    assert_eq!(
        configured(&world),
        4,
        "no canary and no on_configure: Envoy skips an update whose hash matches"
    );
    assert_eq!(world.root_context_id(0), Some(1), "the same root context");
    assert!(world.logs_containing("root done").is_empty());

    assert!(world.reconfigure("tick 50"), "a change is applied");
    assert_eq!(configured(&world), 8);
    assert_eq!(world.root_context_id(0), Some(2));
    assert!(world.reconfigure("tick 50"));
    assert_eq!(
        configured(&world),
        8,
        "again identical to the one in effect"
    );
    assert!(
        world.reconfigure("tick 100"),
        "the first configuration is no longer in effect"
    );
    assert_eq!(configured(&world), 12);
    assert_eq!(world.root_context_id(0), Some(3));

    assert!(!world.reconfigure("reject"));
    assert!(
        !world.reconfigure("reject"),
        "a rejected configuration never was in effect: the canary runs and rejects it again"
    );
    assert_eq!(
        world
            .logs_containing("configure root=1 config=reject")
            .len(),
        2,
        "two canaries (each a fresh VM, root 1)"
    );
}
