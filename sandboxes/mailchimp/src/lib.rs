//! A strict local sandbox of the Mailchimp Marketing API v3.0.
//!
//! End-to-end tests of the Mailchimp connector need a Mailchimp that behaves like the real one,
//! including the parts that hurt: problem+json errors with the real titles and details, the
//! 10-connection limit, compliance states, e-commerce ordering rules, asynchronous batches and
//! signed webhooks. A sandbox that is kinder than the real service is a bug, so every rule here
//! follows the protocol reference (`shared/reference/mailchimp.md`).
//!
//! - [`Sandbox::start`] binds a port and serves the API under `/3.0`, OAuth under `/oauth2` and
//!   an unauthenticated admin API under `/_sandbox` (for tests running in other processes).
//! - [`Admin`] does in process what a person or the platform does in Mailchimp (unsubscribing,
//!   bouncing, editing a profile), inspects the state, the request log and webhook deliveries,
//!   and injects [`Faults`].
//!
//! Module map: `server` (router, auth, limiter, faults, request log), `net` (a listener whose
//! connections can be reset), `api` (routing of `/3.0` paths, shared by HTTP and `/batches`),
//! `errors`, `validate`, `query`, `lists`, `members`, `merge_fields`, `batch_subscribe`,
//! `ecommerce`, `batches`, `webhooks`, `oauth`, `account`, `admin`, `log`, `faults`, `state`,
//! `util`.

mod account;
mod admin;
mod api;
mod batch_subscribe;
mod batches;
mod config;
mod ecommerce;
mod errors;
mod faults;
mod lists;
mod log;
mod members;
mod merge_fields;
mod oauth;
mod query;
mod server;
mod state;
mod util;
mod validate;
mod webhooks;

pub use admin::Admin;
pub use config::{DEFAULT_API_KEY, SandboxConfig};
pub use faults::Faults;
pub use log::{Counters, LoggedRequest};
pub use server::{Sandbox, run_cli};
pub use webhooks::{Delivery, signature};
