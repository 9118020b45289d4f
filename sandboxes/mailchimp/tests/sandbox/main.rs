//! End-to-end tests of the Mailchimp sandbox, through real HTTP.

mod common;

mod auth;
mod batches;
mod cli;
mod ecommerce;
mod faults;
mod members;
mod oauth;
mod webhooks;
