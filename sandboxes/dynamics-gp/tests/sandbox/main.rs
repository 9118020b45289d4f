//! One test binary for these suites (fewer, smaller links on a clean build).

mod common;

mod admin_faults;
mod auth;
mod sba;
mod soap;
