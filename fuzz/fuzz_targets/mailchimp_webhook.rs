//! `cargo +nightly fuzz run mailchimp_webhook`: see `mlc_fuzz::mailchimp_webhook` for what is checked.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mlc_fuzz::mailchimp_webhook(data));
