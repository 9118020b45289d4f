//! Helpers shared by the local sandboxes (Mailchimp, Business Central, Dynamics GP).
//!
//! Each sandbox used to carry its own copy of these pieces, and the copies had started to drift
//! in their comments only. They live here once so that a fix to, say, how a killed connection
//! resets reaches every sandbox. Only code that is the same in every user belongs here: each
//! sandbox keeps its own `Faults` settings, fault decisions and log entries, because those model
//! the service it imitates.

pub mod faults;
pub mod log;
pub mod net;
pub mod util;
