//! How many simulated requests per second of real time the harness drives.
//!
//! ```sh
//! cargo run -p breakwater-host-tests --example throughput
//! cargo run -p breakwater-host-tests --example throughput -- breakwater 20000
//! ```
//!
//! The first argument picks the module (`fixture`, the default, or `breakwater`), the second
//! the number of requests. Four workers take the requests in turn, each request goes upstream
//! and back (a 200 after 1 ms of virtual time), and the figure printed is requests per second of
//! wall-clock time, module compilation excluded, with the filter's fuel per request.

use breakwater_host_tests::{ms, Reply, World};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let module = args.next().unwrap_or_else(|| "fixture".into());
    let requests: usize = args.next().map_or(Ok(20_000), |n| n.parse())?;
    let builder = match module.as_str() {
        "breakwater" => World::builder().breakwater().configuration("{}"),
        _ => World::builder().fixture(),
    };
    let mut world = builder.workers(4).build()?;
    world.upstream("backend", Reply::ok().body("ok").after(ms(1)));
    let start = Instant::now();
    for batch in 0..requests / 100 {
        for i in 0..100 {
            world
                .request((batch + i) % 4)
                .path("/item")
                .cluster("backend")
                .enqueue();
        }
        world.advance(ms(2));
    }
    let elapsed = start.elapsed();
    let fuel = world.fuel();
    let done = fuel.finished_streams;
    println!(
        "{module}: {done} requests in {:.2} s of real time = {:.0} simulated requests/s; \
         {} fuel per request (all callbacks, ticks included)",
        elapsed.as_secs_f64(),
        done as f64 / elapsed.as_secs_f64(),
        fuel.per_request().unwrap_or(0),
    );
    Ok(())
}
