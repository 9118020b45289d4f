//! End-to-end tests of the Business Central sandbox through real HTTP.

mod admin_http;
mod auth;
mod common;
mod conformance;
mod entities;
mod odata;
mod paging;
mod subscriptions;
mod throttle;
