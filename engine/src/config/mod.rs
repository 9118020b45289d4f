//! The configuration model: the project file and pipeline files, as typed Rust structs.
//!
//! These structs are the single source of truth for three things: what the loader accepts, the
//! JSON Schema in `schemas/` (their doc comments become its descriptions), and the reference
//! documentation. Every struct rejects unknown keys, so a typo is an error, never a silently
//! ignored setting.

mod duration;
mod field;
mod pipeline;
mod project;
mod secret;

pub use duration::Duration;
pub use field::{FieldSpec, ForEachSpec};
pub use pipeline::{
    ClockConfig, CursorConfig, CursorKind, ErrorPolicy, PipelineConfig, RecordErrorAction, ScheduleConfig,
    SourceConfig, TargetConfig,
};
pub use project::{AlertsConfig, ConnectionConfig, Defaults, PROJECT_FILE, ProjectConfig, StateConfig};
pub use secret::SecretRef;
