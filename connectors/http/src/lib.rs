//! ml-connector's HTTP layer and the generic `http` target connector.
//!
//! - [`client`]: one way to build a `reqwest::Client` (timeouts, user agent), and
//!   [`client::send_with_retry`], which retries what a retry can fix (429, 408, 5xx, timeouts,
//!   broken connections) with exponential backoff, honouring `Retry-After`, and classifies the
//!   rest. Every connector that speaks HTTP uses it, so retry behaviour is the same everywhere.
//! - [`budget`]: a sliding-window request budget (Business Central's 6,000 requests per five
//!   minutes per user), shared by every run on a connection.
//! - [`HttpConnector`]: writes rendered records to any JSON REST endpoint (`PUT`/`POST`/`PATCH`
//!   a path per record), with bearer, basic or header authentication from the vault.

pub mod budget;
pub mod client;
mod connector;

pub use connector::{HttpAuth, HttpConnector, HttpSettings};
