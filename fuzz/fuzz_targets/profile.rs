#![no_main]
//! See driftline::fuzz_checks::profile.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| driftline::fuzz_checks::profile(data));
