//! `cargo +nightly fuzz run pipeline_file`: see `mlc_fuzz::pipeline_file` for what is checked.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mlc_fuzz::pipeline_file(data));
