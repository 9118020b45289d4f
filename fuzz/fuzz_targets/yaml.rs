//! `cargo +nightly fuzz run yaml`: see `mlc_fuzz::yaml` for what is checked.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mlc_fuzz::yaml(data));
