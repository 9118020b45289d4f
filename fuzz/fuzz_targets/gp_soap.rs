//! `cargo +nightly fuzz run gp_soap`: see `mlc_fuzz::gp_soap` for what is checked.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mlc_fuzz::gp_soap(data));
