#![no_main]
//! See driftline::fuzz_checks::decode.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| driftline::fuzz_checks::decode(data));
