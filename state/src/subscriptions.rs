//! The webhook subscriptions `ml-connector serve` keeps alive, as last seen by its upkeep.
//!
//! Why they are in the state store: Business Central deletes a subscription three days after its
//! last renewal, silently. An operator must be able to see, without credentials or network,
//! when each one expires (`ml-connector status`, the `mlc_subscription_expiry_seconds` metric),
//! and that survives a restart of the service.

use rusqlite::params;
use serde::Serialize;

use crate::{Failure, SqliteStore};

/// One subscription (a Business Central webhook subscription, or a Mailchimp list webhook).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SubscriptionRecord {
    /// The remote system: `business-central` or `mailchimp`.
    pub system: String,
    /// The project connection it belongs to.
    pub connection: String,
    /// The pipelines' source entity it covers (`customers`), or the Mailchimp list id.
    pub entity: String,
    /// The remote system's name for it (`api/v2.0/companies(…)/customers`, a list id).
    pub resource: String,
    /// The remote system's id of the subscription or webhook.
    pub subscription_id: String,
    /// When it expires (RFC 3339), or `None` when it does not (Mailchimp webhooks).
    pub expires_at: Option<String>,
    /// When the upkeep last confirmed it (RFC 3339).
    pub checked_at: String,
}

impl SqliteStore {
    /// Records a subscription, replacing what was known about the same system, connection and
    /// entity (a recreated subscription has a new id).
    pub fn subscription_put(&self, record: &SubscriptionRecord) -> Result<(), engine::state::StateError> {
        self.with_conn("recording a subscription", |conn| {
            conn.prepare_cached(
                "INSERT INTO subscriptions
                     (system, connection, entity, resource, subscription_id, expires_at, checked_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (system, connection, entity) DO UPDATE SET
                     resource = excluded.resource,
                     subscription_id = excluded.subscription_id,
                     expires_at = excluded.expires_at,
                     checked_at = excluded.checked_at",
            )?
            .execute(params![
                record.system,
                record.connection,
                record.entity,
                record.resource,
                record.subscription_id,
                record.expires_at,
                record.checked_at
            ])?;
            Ok(())
        })
    }

    /// Forgets a subscription (no pipeline needs it any more). Returns whether one was known.
    pub fn subscription_remove(
        &self,
        system: &str,
        connection: &str,
        entity: &str,
    ) -> Result<bool, engine::state::StateError> {
        self.with_conn("forgetting a subscription", |conn| {
            let n = conn.execute(
                "DELETE FROM subscriptions WHERE system = ?1 AND connection = ?2 AND entity = ?3",
                params![system, connection, entity],
            )?;
            Ok(n > 0)
        })
    }

    /// Every recorded subscription, by system, connection and entity.
    pub fn subscriptions(&self) -> Result<Vec<SubscriptionRecord>, engine::state::StateError> {
        self.with_conn("listing subscriptions", |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT system, connection, entity, resource, subscription_id, expires_at, checked_at
                 FROM subscriptions ORDER BY system, connection, entity",
            )?;
            let rows = stmt.query_map([], |row| {
                Ok(SubscriptionRecord {
                    system: row.get(0)?,
                    connection: row.get(1)?,
                    entity: row.get(2)?,
                    resource: row.get(3)?,
                    subscription_id: row.get(4)?,
                    expires_at: row.get(5)?,
                    checked_at: row.get(6)?,
                })
            })?;
            rows.collect::<Result<Vec<_>, _>>().map_err(Failure::from)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(entity: &str, id: &str, expires: Option<&str>) -> SubscriptionRecord {
        SubscriptionRecord {
            system: "business-central".into(),
            connection: "bc".into(),
            entity: entity.into(),
            resource: format!("api/v2.0/companies(c)/{entity}"),
            subscription_id: id.into(),
            expires_at: expires.map(str::to_owned),
            checked_at: "2026-01-01T00:00:00Z".into(),
        }
    }

    #[test]
    fn a_recreated_subscription_replaces_the_old_row_and_removal_forgets_it() {
        let store = SqliteStore::open_in_memory().unwrap();
        store.subscription_put(&record("items", "a", Some("2026-01-04T00:00:00Z"))).unwrap();
        store.subscription_put(&record("customers", "b", Some("2026-01-04T00:00:00Z"))).unwrap();
        store.subscription_put(&record("customers", "c", Some("2026-01-05T00:00:00Z"))).unwrap();
        let all = store.subscriptions().unwrap();
        assert_eq!(all.iter().map(|r| r.subscription_id.as_str()).collect::<Vec<_>>(), ["c", "a"]);
        assert_eq!(all[0].expires_at.as_deref(), Some("2026-01-05T00:00:00Z"));
        assert!(store.subscription_remove("business-central", "bc", "items").unwrap());
        assert!(!store.subscription_remove("business-central", "bc", "items").unwrap());
        assert_eq!(store.subscriptions().unwrap().len(), 1);
    }
}
