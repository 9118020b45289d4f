//! `cargo +nightly fuzz run template`: see `mlc_fuzz::template` for what is checked.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mlc_fuzz::template(data));
