//! The account: `GET /3.0/` (API root), `GET /3.0/ping`, and the OAuth metadata of the one
//! account a sandbox holds.

use serde_json::{Value, json};

use crate::members::Status;
use crate::state::Shared;

/// The account id of the sandbox account.
pub(crate) const ACCOUNT_ID: &str = "8d3a3db4d97663a9074efcc16";
/// The login (user) id of its owner.
pub(crate) const LOGIN_ID: &str = "88888888";
/// The account name.
pub(crate) const ACCOUNT_NAME: &str = "ml-connector Sandbox";
/// The owner's email.
pub(crate) const EMAIL: &str = "owner@sandbox.example.com";

/// GET /3.0/.
pub(crate) fn root(shared: &Shared) -> Value {
    let subscribers: usize = shared
        .lock()
        .lists
        .values()
        .map(|l| l.members.values().filter(|m| m.status == Status::Subscribed).count())
        .sum();
    json!({
        "account_id": ACCOUNT_ID,
        "login_id": LOGIN_ID,
        "account_name": ACCOUNT_NAME,
        "email": EMAIL,
        "first_name": "Sandbox",
        "last_name": "Owner",
        "username": "sandbox-owner",
        "avatar_url": "",
        "role": "owner",
        "member_since": "2020-01-01T00:00:00+00:00",
        "pricing_plan_type": "monthly",
        "first_payment": "2020-01-01T00:00:00+00:00",
        "account_timezone": "UTC",
        "account_industry": "Software and Web App",
        "contact": {"company": "Sandbox Inc.", "addr1": "675 Ponce de Leon Ave NE", "addr2": "Suite 5000",
                    "city": "Atlanta", "state": "GA", "zip": "30308", "country": "US"},
        "pro_enabled": false,
        "last_login": "2020-01-01T00:00:00+00:00",
        "total_subscribers": subscribers,
        "industry_stats": {"open_rate": 0, "bounce_rate": 0, "click_rate": 0},
        "_links": [],
    })
}

/// GET /oauth2/metadata for a valid token (`api_endpoint` has no `/3.0`).
pub(crate) fn metadata(shared: &Shared) -> Value {
    json!({
        "dc": shared.config.dc,
        "role": "owner",
        "accountname": ACCOUNT_NAME,
        "user_id": LOGIN_ID,
        "login": {"email": EMAIL, "avatar": "", "login_id": LOGIN_ID, "login_name": EMAIL, "login_email": EMAIL},
        "login_url": shared.base_url,
        "api_endpoint": shared.base_url,
    })
}
