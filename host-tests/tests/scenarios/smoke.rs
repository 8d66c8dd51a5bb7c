use breakwater_host_tests::{ms, Reply};
use serde_json::json;

use crate::common::{stat, world};

#[test]
fn smoke() {
    let mut w = world(
        2,
        &json!({"default": {"retry": {"base_delay": "100ms", "max_delay": "1s"}, "circuit_breaker": {"failure_threshold": 3, "timeout": "2s"}}}),
    );
    w.upstream(
        "a",
        Reply::sequence([Reply::status(503), Reply::status(503), Reply::ok()]),
    );
    let s = w.request(0).path("/x").cluster("a").send();
    w.advance(ms(3000));
    let r = w.response(s).expect("a response");
    println!("{} {:?}", r.status, r.headers);
    for a in w.upstream_attempts("a") {
        println!("{:?}", a);
    }
    println!("{:?}", w.counter(&stat("a", "retries_total")));
    for l in w.logs() {
        println!("{l}");
    }
}
