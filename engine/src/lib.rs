//! The ml-connector engine.
//!
//! Integrations are data: a project file names the connections, pipeline files say how records
//! flow from a source entity to a target resource. This crate turns those files into compiled
//! pipelines and runs them.
//!
//! # Layout
//! - [`yaml`]: YAML → JSON plus a source map (JSON Pointer → line and column).
//! - [`config`]: the typed configuration model; its doc comments become the JSON Schema.
//! - [`schema`]: schema generation, completed by the registered connectors.
//! - [`load`]: project loading and every diagnostic (`file:line:col`).
//! - [`template`], [`select`]: minijinja templates and JSONPath, compiled at load time.
//! - [`pipeline`]: a compiled pipeline and the pure per-record mapping.
//! - [`mapping_test`]: `*.test.yaml` mapping tests.
//! - [`connector`]: the traits connectors implement; the engine knows none by name.
//! - [`state`]: the traits of the durable state (ledger, watermarks, runs).
//! - [`schedule`]: when `serve` runs a pipeline (interval, cron, or on events).
//! - [`executor`]: `plan` and `run`: source → filter → map → key → ledger → target.
//! - [`telemetry`]: process-wide counters of API calls, for summaries and metrics.

pub mod config;
pub mod connector;
pub mod cursor;
pub mod diagnostic;
pub mod executor;
pub mod failpoint;
pub mod hash;
pub mod load;
pub mod mapping_test;
pub mod pipeline;
pub mod schedule;
pub mod schema;
pub mod select;
pub mod state;
pub mod telemetry;
pub mod template;
pub mod yaml;
