//! The end-to-end tests: one binary (not one per file) so a clean `cargo test` links once and
//! stays small on disk. Each module is one suite; `common` and `reliability` are what they share.

mod common;
mod reliability;

mod alerts;
mod bad_configs;
mod bad_input;
mod bc_flow;
mod bench;
mod cli;
mod consent_invariants;
mod crash;
mod crash_points;
mod demo;
mod fault_storm;
mod fuzz;
mod gp_flow;
mod properties;
mod return_flow;
mod sandboxes;
mod schema;
mod secrets;
mod security;
mod serve;
mod serve_bc;
mod serve_load;
