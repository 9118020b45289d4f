//! Audiences (lists): the container of members, merge fields, tags and webhooks, and the
//! `/lists` endpoints.

use std::collections::{HashMap, HashSet};

use jiff::Timestamp;
use serde_json::{Map, Value, json};

use crate::errors::ApiError;
use crate::members::{Member, Status};
use crate::merge_fields::{self, MergeField};
use crate::query::{Page, Query};
use crate::util::{iso, now, short_id};
use crate::validate::{Checker, Kind, body_object, pick};
use crate::webhooks::Webhook;

/// An audience and everything in it.
#[derive(Debug)]
pub(crate) struct List {
    /// The 10-hex-digit id.
    pub id: String,
    /// The numeric id of the web app.
    pub web_id: u64,
    /// Creation order, for listings.
    pub seq: u64,
    /// The audience name.
    pub name: String,
    /// When it was created.
    pub date_created: Timestamp,
    /// The writable settings (contact, campaign_defaults, permission_reminder, …).
    pub settings: Map<String, Value>,
    /// Its merge fields, in merge id order.
    pub merge_fields: Vec<MergeField>,
    /// The next merge id to hand out.
    pub next_merge_id: u64,
    /// Members by subscriber hash (archived ones included).
    pub members: HashMap<String, Member>,
    /// Hashes of permanently deleted (forgotten) contacts: they may only come back as `pending`.
    pub forgotten: HashSet<String>,
    /// The audience's tags: (id, name).
    pub tags: Vec<(u64, String)>,
    /// Its webhooks, in creation order.
    pub webhooks: Vec<Webhook>,
}

/// Settings a list may be created or patched with.
const SETTINGS: &[&str] = &[
    "contact",
    "permission_reminder",
    "use_archive_bar",
    "campaign_defaults",
    "notify_on_subscribe",
    "notify_on_unsubscribe",
    "email_type_option",
    "double_optin",
    "marketing_permissions",
];

impl List {
    /// A list with default settings and the default merge fields.
    pub(crate) fn new(id: String, name: &str, seq: u64) -> List {
        let settings = json!({
            "contact": {"company": "Sandbox Inc.", "address1": "675 Ponce de Leon Ave NE", "address2": "Suite 5000",
                        "city": "Atlanta", "state": "GA", "zip": "30308", "country": "US", "phone": ""},
            "permission_reminder": "You signed up on our website.",
            "use_archive_bar": true,
            "campaign_defaults": {"from_name": "Sandbox", "from_email": "sandbox@example.com", "subject": "",
                                  "language": "en"},
            "notify_on_subscribe": "",
            "notify_on_unsubscribe": "",
            "email_type_option": false,
            "double_optin": false,
            "marketing_permissions": false,
        });
        List {
            web_id: 100_000 + seq,
            id,
            seq,
            name: name.into(),
            date_created: now(),
            settings: settings.as_object().cloned().unwrap_or_default(),
            merge_fields: merge_fields::defaults(),
            next_merge_id: 6,
            members: HashMap::new(),
            forgotten: HashSet::new(),
            tags: Vec::new(),
            webhooks: Vec::new(),
        }
    }

    fn count(&self, status: Status) -> usize {
        self.members.values().filter(|m| m.status == status).count()
    }

    /// As the API returns it.
    pub(crate) fn render(&self) -> Value {
        let mut out = self.settings.clone();
        let members = self.count(Status::Subscribed);
        let extra = json!({
            "id": self.id,
            "web_id": self.web_id,
            "name": self.name,
            "date_created": iso(self.date_created),
            "list_rating": 0,
            "subscribe_url_short": format!("http://eepurl.com/{}", self.id.chars().take(6).collect::<String>()),
            "subscribe_url_long": format!("https://sandbox.us6.list-manage.com/subscribe?u=sandbox&id={}", self.id),
            "beamer_address": format!("us6-{}@inbound.mailchimp.com", self.id),
            "visibility": "prv",
            "has_welcome": false,
            "modules": [],
            "stats": {
                "member_count": members,
                "total_contacts": self.members.values().filter(|m| m.status != Status::Archived).count(),
                "unsubscribe_count": self.count(Status::Unsubscribed),
                "cleaned_count": self.count(Status::Cleaned),
                "member_count_since_send": members,
                "unsubscribe_count_since_send": self.count(Status::Unsubscribed),
                "cleaned_count_since_send": self.count(Status::Cleaned),
                "campaign_count": 0,
                "campaign_last_sent": "",
                "merge_field_count": self.merge_fields.len(),
                "avg_sub_rate": 0,
                "avg_unsub_rate": 0,
                "target_sub_rate": 0,
                "open_rate": 0,
                "click_rate": 0,
                "last_sub_date": "",
                "last_unsub_date": "",
            },
            "_links": [],
        });
        if let Value::Object(extra) = extra {
            out.extend(extra);
        }
        Value::Object(out)
    }

    /// The id of the tag `name`, created when unknown.
    pub(crate) fn tag_id(&mut self, name: &str, seq: u64) -> u64 {
        if let Some((id, _)) = self.tags.iter().find(|(_, n)| n == name) {
            return *id;
        }
        let id = 10_000 + seq;
        self.tags.push((id, name.to_string()));
        id
    }
}

/// GET /lists.
pub(crate) fn list(lists: &[&List], query: &Query) -> Result<Value, ApiError> {
    let page = Page::from_query(query)?;
    let mut matching: Vec<&&List> = lists
        .iter()
        .filter(|l| {
            query.get("email").is_none_or(|email| {
                l.members.get(&crate::util::subscriber_hash(email)).is_some_and(|m| m.status != Status::Archived)
            })
        })
        .collect();
    matching.sort_by_key(|l| l.seq);
    let total = matching.len();
    let items: Vec<Value> = page.slice(matching).into_iter().map(|l| l.render()).collect();
    Ok(json!({
        "lists": items,
        "total_items": total,
        "constraints": {"may_create": true, "max_instances": 100, "current_total_instances": total},
        "_links": [],
    }))
}

/// Validates a POST /lists body (required: name, contact, permission_reminder,
/// campaign_defaults, email_type_option).
pub(crate) fn check_create(body: Option<&Value>) -> Result<(String, Map<String, Value>), ApiError> {
    let obj = body_object(body)?;
    let mut check = Checker::new();
    check.require(obj, "", &["name", "contact", "permission_reminder", "campaign_defaults", "email_type_option"]);
    check_settings(&mut check, obj);
    check.finish()?;
    Ok((obj["name"].as_str().unwrap_or_default().to_string(), pick(obj, SETTINGS)))
}

fn check_settings(check: &mut Checker, obj: &Map<String, Value>) {
    check.check_all(
        obj,
        "",
        &[
            ("name", Kind::Str),
            ("contact", Kind::Obj),
            ("permission_reminder", Kind::Str),
            ("use_archive_bar", Kind::Bool),
            ("campaign_defaults", Kind::Obj),
            ("notify_on_subscribe", Kind::Str),
            ("notify_on_unsubscribe", Kind::Str),
            ("email_type_option", Kind::Bool),
            ("double_optin", Kind::Bool),
            ("marketing_permissions", Kind::Bool),
        ],
    );
    if let Some(Value::Object(contact)) = obj.get("contact") {
        check.require(contact, "contact", &["company", "address1", "city", "state", "zip", "country"]);
    }
    if let Some(Value::Object(defaults)) = obj.get("campaign_defaults") {
        check.require(defaults, "campaign_defaults", &["from_name", "from_email", "subject", "language"]);
    }
}

/// Creates a list from a checked body.
pub(crate) fn create(seq: u64, name: &str, settings: Map<String, Value>) -> List {
    let mut list = List::new(short_id("list", seq), name, seq);
    list.settings.extend(settings);
    list
}

/// PATCH /lists/{id}: the name and settings given.
pub(crate) fn patch(list: &mut List, body: Option<&Value>) -> Result<Value, ApiError> {
    let obj = body_object(body)?;
    let mut check = Checker::new();
    check_settings(&mut check, obj);
    check.finish()?;
    if let Some(name) = obj.get("name").and_then(Value::as_str) {
        list.name = name.into();
    }
    list.settings.extend(pick(obj, SETTINGS));
    Ok(list.render())
}
