//! One test binary for these suites (fewer, smaller links on a clean build).

mod common;

mod batches;
mod conformance;
mod connector;
mod consent;
mod webhooks;
