//! Each worker VM's wasm linear memory (Envoy's V8 grows it on demand and never gives it back):
//! at rest, after a long healthy run, and under the largest load the byte budget admits, with
//! bounds that say it neither leaks nor grows past the budget.

use breakwater_host_tests::{ms, Reply, UpstreamRequest, World};
use serde_json::json;

use crate::common::{count, skipped, world, CLUSTER};

const MIB: u64 = 1 << 20;

fn memory(w: &World) -> [u64; 2] {
    [0, 1].map(|vm| w.memory_bytes(vm).expect("worker VMs have a memory"))
}

#[test]
fn a_worker_vms_memory_stays_flat_over_a_long_healthy_run_and_within_its_byte_budget_under_large_bodies(
) {
    let budget = 2 * MIB;
    let mut w = world(
        2,
        &json!({
            "max_worker_buffer": budget,
            "default": {
                "circuit_breaker": null,
                "retry": { "max_request_body": 600_000, "base_delay": "10ms", "budget": null }
            }
        }),
    );
    let at_rest = memory(&w);

    w.upstream(CLUSTER, Reply::ok().after(ms(1)));
    let send = |w: &mut World, n: usize| {
        for i in 0..n {
            w.request(i % 2).cluster(CLUSTER).send();
            w.run_until_idle();
        }
    };
    send(&mut w, 200);
    let warm = memory(&w);
    send(&mut w, 4_000);
    w.advance(ms(2_000));
    let soaked = memory(&w);
    assert_eq!(
        soaked, warm,
        "4,000 more healthy requests grow no worker's memory: nothing is kept per request"
    );

    // Uploads of 500 KB that fail and are retried, 8 at once per worker: only what the byte
    // budget admits is copied (three per worker), the others pass uncopied.
    w.upstream(CLUSTER, |request: &UpstreamRequest| {
        if request.header("x-breakwater-attempt").is_some() {
            Reply::ok().after(ms(50))
        } else {
            Reply::status(503).after(ms(50))
        }
    });
    let body = vec![b'x'; 500_000];
    for round in 0..4 {
        for i in 0..16 {
            w.request(i % 2)
                .method("PUT")
                .cluster(CLUSTER)
                .body(body.clone())
                .at(ms(round * 400))
                .enqueue();
        }
    }
    w.run_until_idle();
    assert!(
        count(&w, "retries_total") > 0 && skipped(&w, "memory") > 0,
        "the budget was full: some uploads were copied and retried, others passed uncopied"
    );
    let loaded = memory(&w);
    println!(
        "worker VM linear memory (bytes): at rest {at_rest:?}, after 200 requests {warm:?}, \
         after 4,200 {soaked:?}, after 64 retried 500 KB uploads with a {budget}-byte budget \
         {loaded:?}"
    );
    // The filter shows the largest worker's memory in a gauge, raised at each worker's flush.
    w.request(0).cluster(CLUSTER).send();
    w.request(1).cluster(CLUSTER).send();
    w.advance(ms(2_000));
    let now = memory(&w);
    assert_eq!(
        w.gauge("breakwater.wasm_memory_bytes"),
        now.into_iter().max(),
        "the memory gauge is the larger worker's linear memory once both have flushed"
    );
    assert_eq!(
        w.counter("breakwater.wasm_memory_total_bytes"),
        Some(now.iter().sum()),
        "the memory counter adds each worker's growth: the sum of their memories"
    );
    for vm in 0..2 {
        assert!(
            soaked[vm] <= at_rest[vm] + MIB,
            "a healthy run costs at most a MiB over rest: {soaked:?} vs {at_rest:?}"
        );
        assert!(
            loaded[vm] <= soaked[vm] + 3 * budget,
            "large bodies grow a worker's memory by at most a few times its byte budget (the \
             copies, a retry's response read in, the allocator's slack): {loaded:?} vs \
             {soaked:?}"
        );
    }
}
