//! Arbitrary bytes through parse, the full config and the content rules.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    common::check_message(data, common::direction(data));
});
