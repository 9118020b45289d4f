//! Audience members: identity (MD5 of the lowercased email), the status machine with its
//! compliance rules, the member endpoints, tags, and what a person does to their own
//! subscription (unsubscribe, bounce, re-subscribe, edit, change email, be forgotten).
//!
//! The rules that make the real service hard are kept: a person's own unsubscribe, a bounce or a
//! compliance review blocks `subscribed` through the API (`pending` is the way back, except for
//! bounces); a forgotten contact may only come back as `pending`; `PUT` without `status` never
//! changes an existing member's status; `DELETE` archives.

use jiff::Timestamp;
use serde_json::{Map, Value, json};

use crate::errors::ApiError;
use crate::lists::List;
use crate::merge_fields::{apply_values, render_values};
use crate::query::{Page, Query};
use crate::util::{iso, now, parse_time, short_id, subscriber_hash, valid_email};
use crate::validate::{Checker, Kind, body_object, enum_message};
use crate::webhooks::{self, MemberEvent, Outgoing, Source};

/// Statuses a client may write (POST/PUT).
pub(crate) const WRITE_STATUSES: &[&str] = &["subscribed", "unsubscribed", "cleaned", "pending", "transactional"];
/// Statuses PATCH accepts (no `transactional`), in the order of the observed error message.
pub(crate) const PATCH_STATUSES: &[&str] = &["subscribed", "unsubscribed", "cleaned", "pending"];
/// Statuses a member can have (filters accept them all).
pub(crate) const READ_STATUSES: &[&str] =
    &["subscribed", "unsubscribed", "cleaned", "pending", "transactional", "archived"];

/// A member's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    Subscribed,
    Unsubscribed,
    Cleaned,
    Pending,
    Transactional,
    Archived,
}

impl Status {
    pub(crate) fn parse(text: &str) -> Option<Status> {
        Some(match text {
            "subscribed" => Status::Subscribed,
            "unsubscribed" => Status::Unsubscribed,
            "cleaned" => Status::Cleaned,
            "pending" => Status::Pending,
            "transactional" => Status::Transactional,
            "archived" => Status::Archived,
            _ => return None,
        })
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Status::Subscribed => "subscribed",
            Status::Unsubscribed => "unsubscribed",
            Status::Cleaned => "cleaned",
            Status::Pending => "pending",
            Status::Transactional => "transactional",
            Status::Archived => "archived",
        }
    }
}

/// Why the API may not subscribe a member (the compliance state).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Hold {
    /// The person unsubscribed themselves: `pending` (double opt-in) is the way back.
    PersonUnsubscribed,
    /// The address bounced (cleaned): no way back through the API.
    Bounced,
    /// Unsubscribed through the API on an account that does not allow re-subscribing.
    ApiUnsubscribed,
}

/// One audience member.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Member {
    /// Creation order, the default listing order.
    pub seq: u64,
    /// The address as given (the key is the hash of its lowercase form).
    pub email: String,
    /// The id webhooks carry as `data[id]`.
    pub unique_email_id: String,
    /// The contact id (also accepted in member paths).
    pub contact_id: String,
    /// The numeric id of the web app.
    pub web_id: u64,
    /// `html` or `text`.
    pub email_type: String,
    /// Where the member is in the status machine.
    pub status: Status,
    /// Set while the member is in a compliance state.
    pub hold: Option<Hold>,
    /// Merge values by tag (only those set).
    pub merges: Map<String, Value>,
    /// Interest id → opted in.
    pub interests: Map<String, Value>,
    /// The member's language code.
    pub language: String,
    /// VIP flag.
    pub vip: bool,
    /// `latitude`, `longitude` as given.
    pub location: Map<String, Value>,
    /// GDPR marketing permissions as given.
    pub marketing_permissions: Vec<Value>,
    /// Where the member signed up from.
    pub ip_signup: String,
    /// When the member signed up through a form (`""` for API adds).
    pub timestamp_signup: String,
    /// Where the member confirmed from.
    pub ip_opt: String,
    /// When the member opted in (set on subscribing).
    pub timestamp_opt: String,
    /// (tag id, name, date added).
    pub tags: Vec<(u64, String, String)>,
    /// How the member was added ("API - Generic", "Admin Add", "Hosted Signup Form").
    pub source: String,
    /// Bumped by every change.
    pub last_changed: Timestamp,
    /// Why the member is unsubscribed (shown only while unsubscribed).
    pub unsubscribe_reason: String,
}

impl Member {
    fn new(seq: u64, email: &str, source: &str) -> Member {
        Member {
            seq,
            email: email.trim().to_string(),
            unique_email_id: short_id("unique-email", seq),
            contact_id: crate::util::md5_hex(&format!("contact:{}", email.trim().to_lowercase())),
            web_id: 500_000 + seq,
            email_type: "html".into(),
            status: Status::Pending,
            hold: None,
            merges: Map::new(),
            interests: Map::new(),
            language: String::new(),
            vip: false,
            location: Map::new(),
            marketing_permissions: Vec::new(),
            ip_signup: String::new(),
            timestamp_signup: String::new(),
            ip_opt: String::new(),
            timestamp_opt: String::new(),
            tags: Vec::new(),
            source: source.into(),
            last_changed: now(),
            unsubscribe_reason: String::new(),
        }
    }

    /// As the API returns it.
    pub(crate) fn render(&self, list: &List) -> Value {
        let merges = render_values(&list.merge_fields, &self.merges);
        let name = |tag: &str| merges.get(tag).and_then(Value::as_str).unwrap_or("").trim().to_string();
        let full_name = [name("FNAME"), name("LNAME")].into_iter().filter(|s| !s.is_empty()).collect::<Vec<_>>();
        let number = |key: &str| self.location.get(key).cloned().unwrap_or(json!(0));
        let mut out = json!({
            "id": subscriber_hash(&self.email),
            "email_address": self.email,
            "unique_email_id": self.unique_email_id,
            "contact_id": self.contact_id,
            "full_name": full_name.join(" "),
            "web_id": self.web_id,
            "email_type": self.email_type,
            "status": self.status.as_str(),
            "consents_to_one_to_one_messaging": true,
            "merge_fields": merges,
            "stats": {"avg_open_rate": 0, "avg_click_rate": 0},
            "ip_signup": self.ip_signup,
            "timestamp_signup": self.timestamp_signup,
            "ip_opt": self.ip_opt,
            "timestamp_opt": self.timestamp_opt,
            "member_rating": 2,
            "last_changed": iso(self.last_changed),
            "language": self.language,
            "vip": self.vip,
            "email_client": "",
            "location": {"latitude": number("latitude"), "longitude": number("longitude"), "gmtoff": 0, "dstoff": 0,
                         "country_code": "", "timezone": "", "region": ""},
            "marketing_permissions": self.marketing_permissions,
            "source": self.source,
            "tags_count": self.tags.len(),
            "tags": self.tags.iter().map(|(id, name, _)| json!({"id": id, "name": name})).collect::<Vec<_>>(),
            "list_id": list.id,
            "_links": [],
        });
        if self.status == Status::Unsubscribed {
            out["unsubscribe_reason"] = Value::from(self.unsubscribe_reason.clone());
        }
        if !self.interests.is_empty() {
            out["interests"] = Value::Object(self.interests.clone());
        }
        out
    }
}

/// Who makes a write and how it is recorded.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WriteCtx {
    /// The webhook source of the change.
    pub source: Source,
    /// The member `source` of members created by this write.
    pub origin: &'static str,
    /// `skip_merge_validation=true`.
    pub skip_merge_validation: bool,
    /// See [`crate::SandboxConfig::resubscribe_after_api_unsubscribe`].
    pub resubscribe_after_api_unsubscribe: bool,
}

/// A member write body, type-checked.
#[derive(Clone, Debug, Default)]
pub(crate) struct MemberInput {
    /// `email_address`, trimmed.
    pub email: Option<String>,
    /// `status`: the new status, for new and existing members.
    pub status: Option<Status>,
    /// `status_if_new` (PUT): the status of a new member only.
    pub status_if_new: Option<Status>,
    /// `email_type`.
    pub email_type: Option<String>,
    /// `merge_fields`, checked against the list later.
    pub merge_fields: Option<Value>,
    /// `interests`.
    pub interests: Option<Map<String, Value>>,
    /// `language`.
    pub language: Option<String>,
    /// `vip`.
    pub vip: Option<bool>,
    /// `location` (latitude, longitude).
    pub location: Option<Map<String, Value>>,
    /// `marketing_permissions`.
    pub marketing_permissions: Option<Vec<Value>>,
    /// `ip_signup`.
    pub ip_signup: Option<String>,
    /// `timestamp_signup`.
    pub timestamp_signup: Option<String>,
    /// `ip_opt`.
    pub ip_opt: Option<String>,
    /// `timestamp_opt`.
    pub timestamp_opt: Option<String>,
    /// `tags` (POST and batch subscribe only).
    pub tags: Option<Vec<String>>,
}

/// Which endpoint a body came to (the required fields and status enum differ).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    Post,
    Put,
    Patch,
    /// An item of batch subscribe (POST /lists/{id}).
    Batch,
}

/// Checks a member body: required fields, types, enums, then the email syntax.
pub(crate) fn parse_input(obj: &Map<String, Value>, mode: Mode) -> Result<MemberInput, ApiError> {
    let mut check = Checker::new();
    match mode {
        Mode::Post | Mode::Batch => check.require(obj, "", &["email_address", "status"]),
        Mode::Put => check.require(obj, "", &["email_address", "status_if_new"]),
        Mode::Patch => {}
    }
    let statuses = if mode == Mode::Patch { PATCH_STATUSES } else { WRITE_STATUSES };
    check.check_all(
        obj,
        "",
        &[
            ("email_address", Kind::Str),
            ("status", Kind::Enum(statuses)),
            ("email_type", Kind::Enum(&["html", "text"])),
            ("interests", Kind::Obj),
            ("language", Kind::Str),
            ("vip", Kind::Bool),
            ("location", Kind::Obj),
            ("marketing_permissions", Kind::Arr),
            ("ip_signup", Kind::Str),
            ("timestamp_signup", Kind::Str),
            ("ip_opt", Kind::Str),
            ("timestamp_opt", Kind::Str),
        ],
    );
    if mode == Mode::Put {
        check.check(obj, "", "status_if_new", Kind::Enum(WRITE_STATUSES));
    }
    if matches!(mode, Mode::Post | Mode::Batch) && check.check(obj, "", "tags", Kind::Arr) {
        for (i, tag) in obj["tags"].as_array().into_iter().flatten().enumerate() {
            if !tag.is_string() {
                check.error(format!("tags.{i}"), crate::validate::schema_message("string", tag));
            }
        }
    }
    if let Some(Value::Object(interests)) = obj.get("interests") {
        for (id, value) in interests {
            if !value.is_boolean() {
                check.error(format!("interests.{id}"), crate::validate::schema_message("boolean", value));
            } else {
                // The sandbox's audiences have no interest categories, so no id is valid.
                check.error("interests", format!("Invalid interest ID: '{id}'"));
            }
        }
    }
    if let Some(Value::Object(location)) = obj.get("location") {
        check.check_all(location, "location", &[("latitude", Kind::Num), ("longitude", Kind::Num)]);
    }
    check.finish()?;
    let text = |key: &str| obj.get(key).and_then(Value::as_str).map(str::to_string);
    let input = MemberInput {
        email: text("email_address").map(|e| e.trim().to_string()),
        status: text("status").and_then(|s| Status::parse(&s)),
        status_if_new: if mode == Mode::Put { text("status_if_new").and_then(|s| Status::parse(&s)) } else { None },
        email_type: text("email_type"),
        merge_fields: obj.get("merge_fields").cloned(),
        interests: obj.get("interests").and_then(Value::as_object).cloned(),
        language: text("language"),
        vip: obj.get("vip").and_then(Value::as_bool),
        location: obj.get("location").and_then(Value::as_object).cloned(),
        marketing_permissions: obj.get("marketing_permissions").and_then(Value::as_array).cloned(),
        ip_signup: text("ip_signup"),
        timestamp_signup: text("timestamp_signup"),
        ip_opt: text("ip_opt"),
        timestamp_opt: text("timestamp_opt"),
        tags: obj
            .get("tags")
            .filter(|_| matches!(mode, Mode::Post | Mode::Batch))
            .and_then(Value::as_array)
            .map(|tags| tags.iter().filter_map(Value::as_str).map(str::to_string).collect()),
    };
    if let Some(email) = &input.email
        && !valid_email(email)
    {
        return Err(ApiError::invalid_email());
    }
    Ok(input)
}

/// The key in a member path: a subscriber hash, an email address or a contact id.
pub(crate) fn resolve(list: &List, key: &str) -> String {
    if key.contains('@') {
        return subscriber_hash(key);
    }
    let lower = key.to_lowercase();
    if list.members.contains_key(&lower) {
        return lower;
    }
    list.members.iter().find(|(_, m)| m.contact_id == key).map(|(h, _)| h.clone()).unwrap_or(lower)
}

fn bump(seq: &mut u64) -> u64 {
    *seq += 1;
    *seq
}

/// Whether a member at `hash` may move to `target`.
fn check_status(
    list: &List,
    hash: &str,
    email: &str,
    current: Option<&Member>,
    target: Status,
) -> Result<(), ApiError> {
    if current.map(|m| m.status) == Some(target) {
        return Ok(());
    }
    let absent = current.is_none_or(|m| m.status == Status::Archived);
    if list.forgotten.contains(hash) && (target == Status::Subscribed || (absent && target != Status::Pending)) {
        return Err(ApiError::forgotten(email));
    }
    match (current.and_then(|m| m.hold), target) {
        (Some(_), Status::Subscribed) | (Some(Hold::Bounced), Status::Pending) => Err(ApiError::compliance(email)),
        _ => Ok(()),
    }
}

/// Moves a member to `target`, recording why (the compliance hold, the unsubscribe reason).
fn transition(member: &mut Member, target: Status, ctx: &WriteCtx) {
    if member.status == target {
        return;
    }
    match target {
        Status::Subscribed => {
            if member.timestamp_opt.is_empty() {
                member.timestamp_opt = iso(now());
            }
            member.unsubscribe_reason.clear();
            if ctx.source == Source::User {
                member.hold = None;
            }
        }
        Status::Unsubscribed => {
            member.unsubscribe_reason = if ctx.source == Source::User {
                "N/A (Unsubscribed by subscriber)".into()
            } else {
                "N/A (Unsubscribed by an admin)".into()
            };
            let hold = match ctx.source {
                Source::User => Some(Hold::PersonUnsubscribed),
                Source::Api if !ctx.resubscribe_after_api_unsubscribe => Some(Hold::ApiUnsubscribed),
                _ => None,
            };
            member.hold = member.hold.or(hold);
        }
        Status::Cleaned => member.hold = Some(Hold::Bounced),
        _ => {}
    }
    member.status = target;
}

/// Creates or updates the member at `hash`, fires the webhooks, and returns the member's hash
/// (new when its email changed). A new member needs `input.email` and `status`.
pub(crate) fn save(
    list: &mut List,
    seq: &mut u64,
    hash: &str,
    input: &MemberInput,
    status: Option<Status>,
    ctx: &WriteCtx,
    out: &mut Vec<Outgoing>,
) -> Result<String, ApiError> {
    let existing = list.members.get(hash).cloned();
    let email = existing.as_ref().map(|m| m.email.clone()).or_else(|| input.email.clone()).unwrap_or_default();
    let mut member = match &existing {
        Some(m) => m.clone(),
        None => Member::new(bump(seq), &email, ctx.origin),
    };
    // An archived member given a status comes back like a new one (required merge values too).
    let unarchiving = existing.as_ref().is_some_and(|m| m.status == Status::Archived) && status.is_some();
    let creating = existing.is_none() || unarchiving;

    // A different address (PATCH): only subscribed members may change it (reference §3.4).
    let mut new_hash = hash.to_string();
    if let Some(new_email) = &input.email
        && existing.is_some()
    {
        if new_email.to_lowercase() != member.email.to_lowercase() {
            if member.status != Status::Subscribed {
                return Err(ApiError::invalid_detail(format!(
                    "This member's status is \"{}.\" You can only update email addresses for members with a status \
                     of \"subscribed.\"",
                    member.status.as_str()
                )));
            }
            new_hash = subscriber_hash(new_email);
            if list.members.contains_key(&new_hash) {
                return Err(ApiError::member_exists(new_email));
            }
        }
        member.email = new_email.clone();
    }

    member.merges = apply_values(
        &list.merge_fields,
        &member.merges,
        input.merge_fields.as_ref(),
        creating,
        ctx.skip_merge_validation,
    )?;
    let target = status.or(if existing.is_none() { Some(Status::Pending) } else { None });
    if let Some(target) = target {
        check_status(list, hash, &email, existing.as_ref(), target)?;
    }

    if let Some(v) = &input.email_type {
        member.email_type = v.clone();
    }
    if let Some(v) = &input.interests {
        member.interests.extend(v.clone());
    }
    if let Some(v) = &input.language {
        member.language = v.clone();
    }
    if let Some(v) = input.vip {
        member.vip = v;
    }
    if let Some(v) = &input.location {
        member.location = v.clone();
    }
    if let Some(v) = &input.marketing_permissions {
        member.marketing_permissions = v.clone();
    }
    for (field, value) in [
        (&mut member.ip_signup, &input.ip_signup),
        (&mut member.timestamp_signup, &input.timestamp_signup),
        (&mut member.ip_opt, &input.ip_opt),
        (&mut member.timestamp_opt, &input.timestamp_opt),
    ] {
        if let Some(value) = value {
            *field = value.clone();
        }
    }
    if let Some(target) = target {
        transition(&mut member, target, ctx);
    }
    if let Some(tags) = &input.tags {
        let date = iso(now());
        for name in tags {
            let id = list.tag_id(name, bump(seq));
            if !member.tags.iter().any(|(t, _, _)| *t == id) {
                member.tags.push((id, name.clone(), date.clone()));
            }
        }
    }

    let profile_changed = existing.as_ref().is_some_and(|old| {
        old.merges != member.merges
            || old.email_type != member.email_type
            || old.interests != member.interests
            || old.language != member.language
    });
    if existing.as_ref() != Some(&member) {
        member.last_changed = now();
    }
    let old_email = existing.as_ref().map(|m| m.email.clone()).unwrap_or_default();
    let email_changed = new_hash != hash;
    let before = existing.as_ref().map(|m| m.status);
    let became = |s: Status| member.status == s && before != Some(s);
    let mut events = Vec::new();
    if became(Status::Subscribed) {
        events.push(MemberEvent::Subscribe);
    } else if became(Status::Unsubscribed) {
        events.push(MemberEvent::Unsubscribe { action: "unsub" });
    } else if became(Status::Cleaned) {
        events.push(MemberEvent::Cleaned);
    }
    if email_changed {
        events.push(MemberEvent::UpEmail { old_email });
        events.push(MemberEvent::Profile);
    } else if profile_changed && member.status == Status::Subscribed && !became(Status::Subscribed) {
        events.push(MemberEvent::Profile);
    }
    if email_changed {
        list.members.remove(hash);
    }
    list.members.insert(new_hash.clone(), member);
    for event in events {
        webhooks::member_event(list, &new_hash, event, ctx.source, out);
    }
    Ok(new_hash)
}

/// GET /lists/{id}/members/{key}.
pub(crate) fn get(list: &List, key: &str) -> Result<Value, ApiError> {
    list.members.get(&resolve(list, key)).map(|m| m.render(list)).ok_or_else(ApiError::not_found)
}

/// GET /lists/{id}/members: filters, sort, page. Archived members only with `status=archived`.
pub(crate) fn collection(list: &List, query: &Query) -> Result<Value, ApiError> {
    let page = Page::from_query(query)?;
    let status = match query.get("status") {
        None | Some("") => None,
        Some(s) => {
            Some(Status::parse(s).ok_or_else(|| ApiError::invalid_field("status", enum_message(READ_STATUSES)))?)
        }
    };
    let time = |name: &str| -> Result<Option<Timestamp>, ApiError> {
        match query.get(name) {
            None | Some("") => Ok(None),
            Some(text) => parse_time(text).map(Some).ok_or_else(|| {
                ApiError::invalid_field(name, "Please provide a valid ISO 8601 date, e.g. 2015-10-21T15:41:36+00:00")
            }),
        }
    };
    let (since_changed, before_changed) = (time("since_last_changed")?, time("before_last_changed")?);
    let (since_opt, before_opt) = (time("since_timestamp_opt")?, time("before_timestamp_opt")?);
    let sort_field = query.get("sort_field").filter(|s| !s.is_empty());
    const SORT_FIELDS: &[&str] = &["timestamp_opt", "timestamp_signup", "last_changed"];
    if let Some(field) = sort_field
        && !SORT_FIELDS.contains(&field)
    {
        return Err(ApiError::invalid_field("sort_field", enum_message(SORT_FIELDS)));
    }
    let descending = match query.get("sort_dir") {
        None | Some("") | Some("ASC") => false,
        Some("DESC") => true,
        Some(_) => return Err(ApiError::invalid_field("sort_dir", enum_message(&["ASC", "DESC"]))),
    };
    let opt_time = |m: &Member| parse_time(&m.timestamp_opt);
    let mut members: Vec<&Member> = list
        .members
        .values()
        .filter(|m| match status {
            Some(s) => m.status == s,
            None => m.status != Status::Archived,
        })
        .filter(|m| since_changed.is_none_or(|t| m.last_changed > t))
        .filter(|m| before_changed.is_none_or(|t| m.last_changed < t))
        .filter(|m| since_opt.is_none_or(|t| opt_time(m).is_some_and(|o| o > t)))
        .filter(|m| before_opt.is_none_or(|t| opt_time(m).is_some_and(|o| o < t)))
        .filter(|m| query.get("email_type").is_none_or(|t| t.is_empty() || m.email_type == t))
        .filter(|m| query.get("unique_email_id").is_none_or(|u| u.is_empty() || m.unique_email_id == u))
        .filter(|m| !query.flag("vip_only") || m.vip)
        .collect();
    match sort_field {
        Some("last_changed") => members.sort_by_key(|m| (m.last_changed, m.seq)),
        Some("timestamp_opt") => members.sort_by(|a, b| (&a.timestamp_opt, a.seq).cmp(&(&b.timestamp_opt, b.seq))),
        Some("timestamp_signup") => {
            members.sort_by(|a, b| (&a.timestamp_signup, a.seq).cmp(&(&b.timestamp_signup, b.seq)))
        }
        _ => members.sort_by_key(|m| m.seq),
    }
    if descending {
        members.reverse();
    }
    let total = members.len();
    let items: Vec<Value> = page.slice(members).into_iter().map(|m| m.render(list)).collect();
    Ok(json!({"members": items, "list_id": list.id, "total_items": total, "_links": []}))
}

/// POST /lists/{id}/members: creates; an existing (non-archived) member is "Member Exists".
pub(crate) fn post(
    list: &mut List,
    seq: &mut u64,
    body: Option<&Value>,
    ctx: &WriteCtx,
    out: &mut Vec<Outgoing>,
) -> Result<Value, ApiError> {
    let input = parse_input(body_object(body)?, Mode::Post)?;
    let email = input.email.clone().unwrap_or_default();
    let hash = subscriber_hash(&email);
    if list.members.get(&hash).is_some_and(|m| m.status != Status::Archived) {
        return Err(ApiError::member_exists(&email));
    }
    let hash = save(list, seq, &hash, &input, input.status, ctx, out)?;
    Ok(list.members[&hash].render(list))
}

/// PUT /lists/{id}/members/{key}: add or update. `status_if_new` applies only to new (or
/// archived) members; `status`, when present, changes an existing one.
pub(crate) fn put(
    list: &mut List,
    seq: &mut u64,
    key: &str,
    body: Option<&Value>,
    ctx: &WriteCtx,
    out: &mut Vec<Outgoing>,
) -> Result<Value, ApiError> {
    let input = parse_input(body_object(body)?, Mode::Put)?;
    let email = input.email.clone().unwrap_or_default();
    let hash = resolve(list, key);
    let email_hash = subscriber_hash(&email);
    if hash != email_hash {
        let other = list.members.get(&email_hash).is_some_and(|m| m.status != Status::Archived);
        if !list.members.contains_key(&hash) && other {
            return Err(ApiError::member_exists(&email));
        }
        return Err(ApiError::invalid_field(
            "email_address",
            "The subscriber hash in the URL does not match the MD5 hash of the lowercase email_address.",
        ));
    }
    let existing = list.members.get(&hash).map(|m| m.status);
    let status = match existing {
        None | Some(Status::Archived) => input.status_if_new.or(input.status),
        Some(_) => input.status,
    };
    let hash = save(list, seq, &hash, &input, status, ctx, out)?;
    Ok(list.members[&hash].render(list))
}

/// PATCH /lists/{id}/members/{key}: updates an existing member (404 otherwise); may change the
/// email of a subscribed member.
pub(crate) fn patch(
    list: &mut List,
    seq: &mut u64,
    key: &str,
    body: Option<&Value>,
    ctx: &WriteCtx,
    out: &mut Vec<Outgoing>,
) -> Result<Value, ApiError> {
    let hash = resolve(list, key);
    if !list.members.contains_key(&hash) {
        return Err(ApiError::not_found());
    }
    let input = parse_input(body_object(body)?, Mode::Patch)?;
    let hash = save(list, seq, &hash, &input, input.status, ctx, out)?;
    Ok(list.members[&hash].render(list))
}

/// DELETE /lists/{id}/members/{key}: archives. Cleaned members cannot be archived through the
/// API; archiving twice is a 404.
pub(crate) fn archive(list: &mut List, key: &str, source: Source, out: &mut Vec<Outgoing>) -> Result<(), ApiError> {
    let hash = resolve(list, key);
    let member = list.members.get_mut(&hash).ok_or_else(ApiError::not_found)?;
    match member.status {
        Status::Archived => return Err(ApiError::not_found()),
        Status::Cleaned => {
            return Err(ApiError::invalid_detail(format!(
                "{} has been cleaned (bounced) and cannot be archived or deleted through the API.",
                member.email
            )));
        }
        _ => {}
    }
    let was_subscribed = member.status == Status::Subscribed;
    member.status = Status::Archived;
    member.last_changed = now();
    if was_subscribed {
        webhooks::member_event(list, &hash, MemberEvent::Unsubscribe { action: "delete" }, source, out);
    }
    Ok(())
}

/// POST /lists/{id}/members/{key}/actions/delete-permanent (and an admin's "forget"): removes
/// the member for good; the address may only come back as `pending`.
pub(crate) fn forget(list: &mut List, key: &str, source: Source, out: &mut Vec<Outgoing>) -> Result<(), ApiError> {
    let hash = resolve(list, key);
    let member = list.members.get(&hash).ok_or_else(ApiError::not_found)?;
    if member.status == Status::Subscribed {
        webhooks::member_event(list, &hash, MemberEvent::Unsubscribe { action: "delete" }, source, out);
    }
    list.members.remove(&hash);
    list.forgotten.insert(hash);
    Ok(())
}

/// POST /lists/{id}/members/{key}/tags: `active` adds (creating unknown tags), `inactive`
/// removes.
pub(crate) fn post_tags(list: &mut List, seq: &mut u64, key: &str, body: Option<&Value>) -> Result<(), ApiError> {
    let hash = resolve(list, key);
    if !list.members.contains_key(&hash) {
        return Err(ApiError::not_found());
    }
    let obj = body_object(body)?;
    let mut check = Checker::new();
    check.require(obj, "", &["tags"]);
    check.check_all(obj, "", &[("tags", Kind::Arr), ("is_syncing", Kind::Bool)]);
    for (i, tag) in obj.get("tags").and_then(Value::as_array).into_iter().flatten().enumerate() {
        let prefix = format!("tags.{i}");
        match tag.as_object() {
            Some(tag) => {
                check.require(tag, &prefix, &["name", "status"]);
                check.check_all(tag, &prefix, &[("name", Kind::Str), ("status", Kind::Enum(&["active", "inactive"]))]);
            }
            None => check.error(prefix, crate::validate::schema_message("object", tag)),
        }
    }
    check.finish()?;
    let date = iso(now());
    let mut changed = false;
    for tag in obj["tags"].as_array().into_iter().flatten() {
        let name = tag["name"].as_str().unwrap_or_default();
        let active = tag["status"] == "active";
        let id = if active {
            list.tag_id(name, bump(seq))
        } else {
            list.tags.iter().find(|(_, n)| n == name).map_or(0, |t| t.0)
        };
        let member = list.members.get_mut(&hash).ok_or_else(ApiError::not_found)?;
        let has = member.tags.iter().any(|(t, _, _)| *t == id);
        if active && !has {
            member.tags.push((id, name.to_string(), date.clone()));
            changed = true;
        } else if !active && has {
            member.tags.retain(|(t, _, _)| *t != id);
            changed = true;
        }
    }
    if changed && let Some(member) = list.members.get_mut(&hash) {
        member.last_changed = now();
    }
    Ok(())
}

/// GET /lists/{id}/members/{key}/tags.
pub(crate) fn get_tags(list: &List, key: &str, query: &Query) -> Result<Value, ApiError> {
    let page = Page::from_query(query)?;
    let member = list.members.get(&resolve(list, key)).ok_or_else(ApiError::not_found)?;
    let tags: Vec<Value> =
        member.tags.iter().map(|(id, name, date)| json!({"id": id, "name": name, "date_added": date})).collect();
    let total = tags.len();
    Ok(json!({"tags": page.slice(tags), "total_items": total, "_links": []}))
}

/// The context of what a person does to their own subscription.
fn person() -> WriteCtx {
    WriteCtx {
        source: Source::User,
        origin: "Hosted Signup Form",
        skip_merge_validation: true,
        resubscribe_after_api_unsubscribe: true,
    }
}

/// The person unsubscribes (link in an email): compliance state, `unsubscribe` webhook.
pub(crate) fn person_unsubscribe(list: &mut List, key: &str, out: &mut Vec<Outgoing>) -> Result<(), ApiError> {
    let hash = resolve(list, key);
    let member = list.members.get_mut(&hash).ok_or_else(ApiError::not_found)?;
    if member.status == Status::Unsubscribed {
        member.hold = member.hold.or(Some(Hold::PersonUnsubscribed));
        return Ok(());
    }
    transition(member, Status::Unsubscribed, &person());
    member.last_changed = now();
    webhooks::member_event(list, &hash, MemberEvent::Unsubscribe { action: "unsub" }, Source::User, out);
    Ok(())
}

/// The address hard-bounces: cleaned, `cleaned` webhook (not filtered by source).
pub(crate) fn bounce(list: &mut List, key: &str, out: &mut Vec<Outgoing>) -> Result<(), ApiError> {
    let hash = resolve(list, key);
    let member = list.members.get_mut(&hash).ok_or_else(ApiError::not_found)?;
    let ctx = WriteCtx { source: Source::System, ..person() };
    let was = member.status;
    transition(member, Status::Cleaned, &ctx);
    member.last_changed = now();
    if was != Status::Cleaned {
        webhooks::member_event(list, &hash, MemberEvent::Cleaned, Source::System, out);
    }
    Ok(())
}

/// The person signs up again through the form (or confirms double opt-in): subscribed, every
/// hold lifted, `subscribe` webhook. Creates the member when absent.
pub(crate) fn person_resubscribe(
    list: &mut List,
    seq: &mut u64,
    email: &str,
    out: &mut Vec<Outgoing>,
) -> Result<(), ApiError> {
    if !valid_email(email) {
        return Err(ApiError::invalid_email());
    }
    let hash = resolve(list, email);
    list.forgotten.remove(&hash);
    if let Some(member) = list.members.get_mut(&hash) {
        member.hold = None;
    }
    let input = MemberInput { email: Some(email.to_string()), ..MemberInput::default() };
    let creating = !list.members.contains_key(&hash);
    save(list, seq, &hash, &input, Some(Status::Subscribed), &person(), out)?;
    if creating && let Some(member) = list.members.get_mut(&hash) {
        member.timestamp_signup = iso(now());
    }
    Ok(())
}

/// The person edits their profile: merge values change, `profile` webhook.
pub(crate) fn person_edit_profile(
    list: &mut List,
    seq: &mut u64,
    key: &str,
    merges: &Value,
    out: &mut Vec<Outgoing>,
) -> Result<(), ApiError> {
    let hash = resolve(list, key);
    let status = list.members.get(&hash).ok_or_else(ApiError::not_found)?.status;
    let input = MemberInput { merge_fields: Some(merges.clone()), ..MemberInput::default() };
    save(list, seq, &hash, &input, None, &person(), out)?;
    if status != Status::Subscribed {
        // save() fires `profile` only for subscribed members; a person editing always does.
        webhooks::member_event(list, &hash, MemberEvent::Profile, Source::User, out);
    }
    Ok(())
}

/// The person changes their address: `upemail` then `profile` webhooks.
pub(crate) fn person_change_email(
    list: &mut List,
    seq: &mut u64,
    old: &str,
    new: &str,
    out: &mut Vec<Outgoing>,
) -> Result<(), ApiError> {
    if !valid_email(new) {
        return Err(ApiError::invalid_email());
    }
    let hash = resolve(list, old);
    let member = list.members.get_mut(&hash).ok_or_else(ApiError::not_found)?;
    let was = member.status;
    // The person can change their address whatever their status.
    member.status = Status::Subscribed;
    let input = MemberInput { email: Some(new.to_string()), ..MemberInput::default() };
    let result = save(list, seq, &hash, &input, None, &person(), out);
    let final_hash = result.as_ref().cloned().unwrap_or(hash);
    if let Some(member) = list.members.get_mut(&final_hash) {
        member.status = was;
    }
    result.map(|_| ())
}

/// The e-commerce side effect of a customer (reference §4.3): a new address becomes
/// `subscribed` (opted in) or `transactional`; an opt-in upgrades a transactional member; an
/// existing member's status is never downgraded or otherwise overwritten.
pub(crate) fn customer_member(
    list: &mut List,
    seq: &mut u64,
    email: &str,
    opt_in: bool,
    names: (Option<&str>, Option<&str>),
    ctx: &WriteCtx,
    out: &mut Vec<Outgoing>,
) {
    let hash = subscriber_hash(email);
    let current = list.members.get(&hash).map(|m| (m.status, m.hold));
    let target = match current {
        None | Some((Status::Archived, _)) => {
            if opt_in {
                Status::Subscribed
            } else {
                Status::Transactional
            }
        }
        Some((Status::Transactional, None)) if opt_in => Status::Subscribed,
        _ => return,
    };
    let mut merges = Map::new();
    for (tag, value) in [("FNAME", names.0), ("LNAME", names.1)] {
        if let Some(value) = value
            && current.is_none()
            && list.merge_fields.iter().any(|f| f.tag == tag)
        {
            merges.insert(tag.into(), Value::from(value));
        }
    }
    let input = MemberInput {
        email: Some(email.to_string()),
        merge_fields: (!merges.is_empty()).then_some(Value::Object(merges)),
        ..MemberInput::default()
    };
    let ctx = WriteCtx { skip_merge_validation: true, ..*ctx };
    // A forgotten or otherwise refused address simply gets no member.
    let _ = save(list, seq, &hash, &input, Some(target), &ctx, out);
}
