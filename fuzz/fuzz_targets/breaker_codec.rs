//! The breaker's shared-data decoder on arbitrary bytes (bytes in shared data may be anything:
//! another version, another plugin's key, corruption). Never a panic; whatever decodes
//! re-encodes to exactly the same bytes (the encoding is canonical, so a worker that reads and
//! writes back an unchanged state never changes the bytes another worker compares against), and
//! the layout agrees with its documentation.

#![no_main]

use breakwater::core::breaker::Breaker;
use breakwater_fuzz::breaker_bytes::{self, Fields};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let Ok(breaker) = Breaker::decode(bytes) else {
        return;
    };
    let mut encoded = Vec::new();
    breaker.encode(&mut encoded);
    assert_eq!(
        encoded, bytes,
        "decode then encode must give back the same bytes"
    );
    assert_eq!(Breaker::decode(&encoded).as_ref(), Ok(&breaker));
    let fields = Fields::read(&encoded).expect("the documented layout reads every encoding");
    let phase = match fields.phase {
        breaker_bytes::CLOSED => breakwater::core::breaker::Phase::Closed,
        breaker_bytes::OPEN => breakwater::core::breaker::Phase::Open,
        breaker_bytes::HALF_OPEN => breakwater::core::breaker::Phase::HalfOpen,
        other => panic!("decoded a breaker with phase byte {other}"),
    };
    assert_eq!(breaker.phase(), phase, "the phase byte is the phase");
    assert_eq!(breaker.epoch(), fields.epoch, "bytes 3..11 are the epoch");
});
