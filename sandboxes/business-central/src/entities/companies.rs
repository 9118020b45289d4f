//! `companies`: read-only, addressed by id or by the alternate key `name` [EDMX]. Recorded
//! payloads carry no `@odata.etag` for companies, so none is rendered.

use serde_json::{Map, Value};

use crate::clock::fmt_ms;
use crate::entities::Company;
use crate::odata::Row;

/// The platform version recorded payloads report (BC 2025 wave 1).
pub(crate) const SYSTEM_VERSION: &str = "26.0.30643.32100";
/// The user id recorded for records the system created.
const SYSTEM_USER: &str = "00000000-0000-0000-0000-000000000001";

/// A company as `GET companies` renders it.
pub(crate) fn row(company: &Company) -> Row {
    let mut view = Map::new();
    view.insert("id".into(), Value::from(company.id.clone()));
    view.insert("systemVersion".into(), Value::from(SYSTEM_VERSION));
    view.insert("timestamp".into(), Value::from(company.timestamp));
    view.insert("name".into(), Value::from(company.name.clone()));
    view.insert("displayName".into(), Value::from(""));
    view.insert("businessProfileId".into(), Value::from(""));
    view.insert("systemCreatedAt".into(), Value::from(fmt_ms(company.created)));
    view.insert("systemCreatedBy".into(), Value::from(SYSTEM_USER));
    view.insert("systemModifiedAt".into(), Value::from(fmt_ms(company.created)));
    view.insert("systemModifiedBy".into(), Value::from(SYSTEM_USER));
    Row { view, etag: None }
}
