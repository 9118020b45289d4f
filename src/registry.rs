//! The connectors this binary ships. The engine knows none of them by name; this list is the
//! only place that does.

use std::sync::Arc;

use engine::connector::Registry;

pub fn connectors() -> Registry {
    let mut registry = Registry::new();
    registry.register(Arc::new(connector_jsonl::JsonlConnector));
    registry.register(Arc::new(connector_http::HttpConnector));
    registry.register(Arc::new(connector_mailchimp::MailchimpConnector));
    registry.register(Arc::new(connector_business_central::BusinessCentralConnector));
    registry.register(Arc::new(connector_dynamics_gp::DynamicsGpConnector));
    registry.register(Arc::new(inbox::InboxConnector));
    registry
}
