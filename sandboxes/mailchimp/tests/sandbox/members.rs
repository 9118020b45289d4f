//! Members: identity, the status machine and compliance, validation, merge fields, tags,
//! pagination and partial responses, batch subscribe.

use sandbox_mailchimp::SandboxConfig;
use serde_json::{Value, json};

use crate::common::{Env, hash};

fn sub(email: &str) -> Value {
    json!({"email_address": email, "status_if_new": "subscribed"})
}

#[tokio::test]
async fn post_creates_then_member_exists() {
    let env = Env::new().await;
    let members = format!("/lists/{}/members", env.list);
    let (status, member) =
        env.post(&members, json!({"email_address": "Ann@Example.com", "status": "subscribed"})).await;
    assert_eq!(status, 200);
    assert_eq!(member["id"], hash("ann@example.com"));
    assert_eq!(member["email_address"], "Ann@Example.com");
    assert_eq!(member["status"], "subscribed");
    assert_eq!(member["source"], "API - Generic");
    assert_eq!(member["list_id"], env.list.as_str());
    assert_eq!(member["merge_fields"], json!({"FNAME": "", "LNAME": "", "ADDRESS": "", "PHONE": "", "BIRTHDAY": ""}));
    for field in
        ["unique_email_id", "contact_id", "web_id", "email_type", "stats", "tags", "tags_count", "last_changed"]
    {
        assert!(member.get(field).is_some(), "{field}");
    }
    let (status, body) = env.post(&members, json!({"email_address": "ann@example.com", "status": "pending"})).await;
    assert_eq!(status, 400);
    assert_eq!(body["title"], "Member Exists");
    assert_eq!(body["detail"], "ann@example.com is already a list member. Use PUT to insert or update list members.");
    // The path also accepts the email address.
    let (status, by_email) = env.get(&format!("{members}/Ann@Example.com")).await;
    assert_eq!((status, by_email["id"].clone()), (200, member["id"].clone()));
}

#[tokio::test]
async fn put_uses_status_if_new_only_for_new_members() {
    let env = Env::new().await;
    let path = env.member_path("bo@example.com");
    let (status, created) = env.put(&path, sub("bo@example.com")).await;
    assert_eq!((status, created["status"].as_str()), (200, Some("subscribed")));

    // Replaying with another status_if_new and no status leaves the status alone.
    let (_, again) = env
        .put(
            &path,
            json!({"email_address": "bo@example.com", "status_if_new": "pending", "merge_fields": {"FNAME": "Bo"}}),
        )
        .await;
    assert_eq!(again["status"], "subscribed");
    assert_eq!(again["merge_fields"]["FNAME"], "Bo");

    let (_, changed) = env
        .put(&path, json!({"email_address": "bo@example.com", "status_if_new": "subscribed", "status": "unsubscribed"}))
        .await;
    assert_eq!(changed["status"], "unsubscribed");
    assert_eq!(changed["unsubscribe_reason"], "N/A (Unsubscribed by an admin)");

    let (status, body) = env.put(&path, json!({"email_address": "bo@example.com"})).await;
    assert_eq!(status, 400);
    assert_eq!(body["errors"], json!([{"field": "", "message": "Required fields were not provided: status_if_new"}]));
}

#[tokio::test]
async fn put_hash_must_match_the_email() {
    let env = Env::new().await;
    env.put(&env.member_path("a@example.com"), sub("a@example.com")).await;
    let (status, body) = env.put(&env.member_path("other@example.com"), sub("new@example.com")).await;
    assert_eq!((status, body["title"].as_str()), (400, Some("Invalid Resource")));
    assert_eq!(body["errors"][0]["field"], "email_address");
    let (status, body) = env.put(&env.member_path("other@example.com"), sub("a@example.com")).await;
    assert_eq!((status, body["title"].as_str()), (400, Some("Member Exists")));
}

#[tokio::test]
async fn unsubscribed_by_the_person_cannot_be_subscribed_but_may_be_pending() {
    let env = Env::new().await;
    let path = env.member_path("cy@example.com");
    env.put(&path, sub("cy@example.com")).await;
    env.admin.unsubscribe(&env.list, "cy@example.com");
    let (_, member) = env.get(&path).await;
    assert_eq!(member["status"], "unsubscribed");

    let body = json!({"email_address": "cy@example.com", "status_if_new": "subscribed", "status": "subscribed"});
    let (status, error) = env.put(&path, body).await;
    assert_eq!(status, 400);
    assert_eq!(error["title"], "Member In Compliance State");
    assert_eq!(
        error["detail"],
        "cy@example.com is in a compliance state due to unsubscribe, bounce, or compliance review and cannot be subscribed."
    );
    let (status, error) = env.patch(&path, json!({"status": "subscribed"})).await;
    assert_eq!((status, error["title"].as_str()), (400, Some("Member In Compliance State")));

    let (status, pending) = env.patch(&path, json!({"status": "pending"})).await;
    assert_eq!((status, pending["status"].as_str()), (200, Some("pending")));
    // Still held until the person confirms.
    assert_eq!(env.patch(&path, json!({"status": "subscribed"})).await.0, 400);
    env.admin.resubscribe(&env.list, "cy@example.com");
    assert_eq!(env.get(&path).await.1["status"], "subscribed");
    assert_eq!(env.patch(&path, json!({"status": "unsubscribed"})).await.0, 200);
    assert_eq!(env.patch(&path, json!({"status": "subscribed"})).await.0, 200, "API unsubscribes may be reversed");
}

#[tokio::test]
async fn api_unsubscribes_are_final_when_the_account_says_so() {
    let env = Env::with(SandboxConfig { resubscribe_after_api_unsubscribe: false, ..SandboxConfig::default() }).await;
    let path = env.member_path("dee@example.com");
    env.put(&path, sub("dee@example.com")).await;
    assert_eq!(env.patch(&path, json!({"status": "unsubscribed"})).await.0, 200);
    let (status, error) = env.patch(&path, json!({"status": "subscribed"})).await;
    assert_eq!((status, error["title"].as_str()), (400, Some("Member In Compliance State")));
    assert_eq!(env.patch(&path, json!({"status": "pending"})).await.0, 200);
}

#[tokio::test]
async fn cleaned_members_are_stuck() {
    let env = Env::new().await;
    let path = env.member_path("ed@example.com");
    env.put(&path, sub("ed@example.com")).await;
    env.admin.bounce(&env.list, "ed@example.com");
    assert_eq!(env.get(&path).await.1["status"], "cleaned");
    for status in ["subscribed", "pending"] {
        let (code, error) = env.patch(&path, json!({"status": status})).await;
        assert_eq!((code, error["title"].as_str()), (400, Some("Member In Compliance State")), "{status}");
    }
    let (status, error) = env.patch(&path, json!({"email_address": "ed2@example.com"})).await;
    assert_eq!(status, 400);
    assert_eq!(
        error["detail"],
        "This member's status is \"cleaned.\" You can only update email addresses for members with a status of \"subscribed.\""
    );
    assert_eq!(env.delete(&path).await.0, 400, "cleaned members cannot be archived");
}

#[tokio::test]
async fn forgotten_contacts_may_only_come_back_pending() {
    let env = Env::new().await;
    let path = env.member_path("fay@example.com");
    env.put(&path, sub("fay@example.com")).await;
    assert_eq!(env.post(&format!("{path}/actions/delete-permanent"), json!({})).await.0, 204);
    assert_eq!(env.get(&path).await.0, 404);
    let (status, error) = env.put(&path, sub("fay@example.com")).await;
    assert_eq!(status, 400);
    assert_eq!(error["title"], "Forgotten Email Not Subscribed");
    assert_eq!(
        error["detail"],
        "fay@example.com was permanently deleted and cannot be re-imported. The contact must re-subscribe to get back on the list."
    );
    let (status, member) =
        env.put(&path, json!({"email_address": "fay@example.com", "status_if_new": "pending"})).await;
    assert_eq!((status, member["status"].as_str()), (200, Some("pending")));
    assert_eq!(env.patch(&path, json!({"status": "subscribed"})).await.0, 400);

    // The admin path works the same.
    env.put(&env.member_path("gus@example.com"), sub("gus@example.com")).await;
    env.admin.forget(&env.list, "gus@example.com");
    let body = json!({"email_address": "gus@example.com", "status": "subscribed"});
    let (_, error) = env.post(&format!("/lists/{}/members", env.list), body).await;
    assert_eq!(error["title"], "Forgotten Email Not Subscribed");
}

#[tokio::test]
async fn delete_archives_and_put_brings_back() {
    let env = Env::new().await;
    let path = env.member_path("hal@example.com");
    env.put(&path, sub("hal@example.com")).await;
    let (status, body) = env.delete(&path).await;
    assert_eq!((status, body), (204, Value::Null));
    assert_eq!(env.get(&path).await.1["status"], "archived");
    assert_eq!(env.delete(&path).await.0, 404);
    let members = format!("/lists/{}/members", env.list);
    assert_eq!(env.get(&members).await.1["total_items"], 0);
    assert_eq!(env.get(&format!("{members}?status=archived")).await.1["total_items"], 1);
    let (_, back) = env.put(&path, sub("hal@example.com")).await;
    assert_eq!(back["status"], "subscribed");
    assert_eq!(env.patch(&env.member_path("nobody@example.com"), json!({"vip": true})).await.0, 404);
}

#[tokio::test]
async fn member_bodies_are_validated_like_mailchimp() {
    let env = Env::new().await;
    let members = format!("/lists/{}/members", env.list);
    let (status, body) = env.post(&members, json!({"email_address": "x@example.com", "status": "active"})).await;
    assert_eq!(status, 400);
    assert_eq!(
        body["detail"],
        "The resource submitted could not be validated. For field-specific details, see the 'errors' array."
    );
    assert_eq!(
        body["errors"],
        json!([{"field": "status", "message": "Data presented is not one of the accepted values: subscribed, unsubscribed, cleaned, pending, transactional."}])
    );
    env.put(&env.member_path("x@example.com"), sub("x@example.com")).await;
    let (_, body) = env.patch(&env.member_path("x@example.com"), json!({"status": "transactional"})).await;
    assert_eq!(
        body["errors"][0]["message"],
        "Data presented is not one of the accepted values: subscribed, unsubscribed, cleaned, pending."
    );

    let (status, body) = env.post(&members, json!({"email_address": "not-an-email", "status": "subscribed"})).await;
    assert_eq!((status, body["title"].as_str()), (400, Some("Invalid Resource")));
    assert_eq!(body["detail"], "Please provide a valid email address.");

    let (_, body) = env.post(&members, json!({"status": "subscribed"})).await;
    assert_eq!(body["errors"][0]["message"], "Required fields were not provided: email_address");
    let (_, body) = env.post(&members, json!({"email_address": 42, "status": "subscribed"})).await;
    assert_eq!(body["errors"][0]["message"], "Schema describes string, integer found instead");

    let bad = json!({"email_address": "y@example.com", "status": "subscribed", "merge_fields": []});
    let (_, body) = env.post(&members, bad).await;
    assert_eq!(
        body["errors"],
        json!([{"field": "merge_fields", "message": "Schema describes object, array found instead"}])
    );
    let bad = json!({"email_address": "y@example.com", "status": "subscribed", "merge_fields": {"MMERGE10": "x"}});
    let (_, body) = env.post(&members, bad).await;
    assert_eq!(body["errors"], json!([{"field": "merge_fields.MMERGE10", "message": "This field does not exist"}]));

    let address = json!({"email_address": "y@example.com", "status": "subscribed",
                         "merge_fields": {"ADDRESS": {"addr1": "1 Main St", "city": "Springfield"}, "BIRTHDAY": "02/30x"}});
    let (status, body) = env.post(&members, address.clone()).await;
    assert_eq!(status, 400);
    assert_eq!(body["detail"], "Your merge fields were invalid.");
    assert_eq!(body["errors"][0], json!({"field": "ADDRESS", "message": "Please enter a complete address"}));
    let (status, member) = env.post(&format!("{members}?skip_merge_validation=true"), address).await;
    assert_eq!(status, 200);
    assert_eq!(member["merge_fields"]["ADDRESS"]["addr1"], "1 Main St");

    let full = json!({"email_address": "z@example.com", "status": "subscribed", "merge_fields": {
        "ADDRESS": {"addr1": "1 Main St", "city": "Springfield", "state": "IL", "zip": 62701}, "BIRTHDAY": "2/3"}});
    let (status, member) = env.post(&members, full).await;
    assert_eq!(status, 200);
    assert_eq!(member["merge_fields"]["ADDRESS"]["zip"], "62701");
    assert_eq!(member["merge_fields"]["BIRTHDAY"], "02/03");
}

#[tokio::test]
async fn merge_fields_endpoints_and_required_values() {
    let env = Env::new().await;
    let base = format!("/lists/{}/merge-fields", env.list);
    let (_, list) = env.get(&base).await;
    let tags: Vec<&str> = list["merge_fields"].as_array().unwrap().iter().map(|f| f["tag"].as_str().unwrap()).collect();
    assert_eq!(tags, ["FNAME", "LNAME", "ADDRESS", "PHONE", "BIRTHDAY"]);
    assert_eq!(list["merge_fields"][2]["type"], "address");

    let (status, company) = env.post(&base, json!({"name": "Company", "type": "text", "required": true})).await;
    assert_eq!((status, company["tag"].as_str(), company["merge_id"].as_u64()), (200, Some("COMPANY"), Some(6)));
    let (status, body) = env.post(&base, json!({"name": "Firm", "type": "text", "tag": "company"})).await;
    assert_eq!((status, body["title"].as_str()), (400, Some("Invalid Resource")));
    let (status, body) = env.post(&base, json!({"name": "X", "type": "colour"})).await;
    assert_eq!(status, 400);
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("Data presented is not one of the accepted values: text,")
    );

    let path = env.member_path("req@example.com");
    let (status, body) = env.put(&path, sub("req@example.com")).await;
    assert_eq!(status, 400);
    assert_eq!(body["errors"], json!([{"field": "COMPANY", "message": "Please enter a value"}]));
    let ok =
        json!({"email_address": "req@example.com", "status_if_new": "subscribed", "merge_fields": {"COMPANY": "ACME"}});
    assert_eq!(env.put(&path, ok).await.0, 200);

    let field = format!("{base}/6");
    let (_, patched) = env.patch(&field, json!({"name": "Company name", "required": false})).await;
    assert_eq!((patched["name"].as_str(), patched["required"].as_bool()), (Some("Company name"), Some(false)));
    assert_eq!(env.delete(&field).await.0, 204);
    assert_eq!(env.get(&field).await.0, 404);
    assert!(env.get(&path).await.1["merge_fields"].get("COMPANY").is_none());
}

#[tokio::test]
async fn tags_are_added_created_and_removed() {
    let env = Env::new().await;
    let path = env.member_path("tag@example.com");
    env.put(&path, sub("tag@example.com")).await;
    let tags = json!({"tags": [{"name": "VIP", "status": "active"}, {"name": "ERP", "status": "active"}]});
    let (status, body) = env.post(&format!("{path}/tags"), tags).await;
    assert_eq!((status, body), (204, Value::Null));
    let (_, member) = env.get(&path).await;
    assert_eq!(member["tags_count"], 2);
    let names: Vec<&str> = member["tags"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["VIP", "ERP"]);
    env.post(&format!("{path}/tags"), json!({"tags": [{"name": "VIP", "status": "inactive"}]})).await;
    let (_, tags) = env.get(&format!("{path}/tags")).await;
    assert_eq!((tags["total_items"].as_u64(), tags["tags"][0]["name"].as_str()), (Some(1), Some("ERP")));
    let (status, body) = env.post(&format!("{path}/tags"), json!({"tags": [{"name": "X", "status": "on"}]})).await;
    assert_eq!((status, body["errors"][0]["field"].as_str()), (400, Some("tags.0.status")));
    assert_eq!(env.post(&format!("{}/tags", env.member_path("no@example.com")), json!({"tags": []})).await.0, 404);
}

#[tokio::test]
async fn pagination_filters_and_partial_responses() {
    let env = Env::new().await;
    for i in 0..25 {
        let email = format!("p{i:02}@example.com");
        env.put(&env.member_path(&email), sub(&email)).await;
    }
    let members = format!("/lists/{}/members", env.list);
    let (_, page) = env.get(&format!("{members}?count=10&offset=20")).await;
    assert_eq!((page["members"].as_array().unwrap().len(), page["total_items"].as_u64()), (5, Some(25)));
    assert_eq!(page["members"][0]["email_address"], "p20@example.com");
    let (_, default) = env.get(&members).await;
    assert_eq!(default["members"].as_array().unwrap().len(), 10);
    let (status, body) = env.get(&format!("{members}?count=1001")).await;
    assert_eq!((status, body["title"].as_str()), (400, Some("Invalid Resource")));
    assert_eq!(env.get(&format!("{members}?count=1000")).await.0, 200);

    let (_, partial) = env.get(&format!("{members}?count=2&fields=members.email_address,total_items")).await;
    assert_eq!(
        partial,
        json!({"members": [{"email_address": "p00@example.com"}, {"email_address": "p01@example.com"}], "total_items": 25})
    );
    let (_, excluded) =
        env.get(&format!("{members}?count=1&exclude_fields=members.merge_fields,members.stats,_links")).await;
    assert!(excluded["members"][0].get("merge_fields").is_none());
    assert!(excluded.get("_links").is_none());
    assert!(excluded["members"][0].get("email_address").is_some());
    let (status, body) = env.get(&format!("{members}?fields=members.nope")).await;
    assert_eq!((status, body["title"].as_str()), (422, Some("Requested Fields Invalid")));
    assert_eq!(body["detail"], "The fields requested from this resource are invalid.");

    // Timestamps have whole seconds: make the change land in a later one.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    env.patch(&env.member_path("p03@example.com"), json!({"status": "unsubscribed"})).await;
    let (_, unsubscribed) = env.get(&format!("{members}?status=unsubscribed")).await;
    assert_eq!(unsubscribed["members"][0]["email_address"], "p03@example.com");
    let (_, sorted) = env.get(&format!("{members}?sort_field=last_changed&sort_dir=DESC&count=1")).await;
    assert_eq!(sorted["members"][0]["email_address"], "p03@example.com");
    let (_, future) = env.get(&format!("{members}?since_last_changed=2100-01-01T00:00:00%2B00:00")).await;
    assert_eq!(future["total_items"], 0);
    let (_, past) = env.get(&format!("{members}?since_last_changed=2000-01-01T00:00:00%2B00:00")).await;
    assert_eq!(past["total_items"], 25);
    assert_eq!(env.get(&format!("{members}?status=gone")).await.0, 400);
}

#[tokio::test]
async fn email_changes_move_the_member() {
    let env = Env::new().await;
    let old = env.member_path("old@example.com");
    env.put(&old, sub("old@example.com")).await;
    let (status, moved) = env.patch(&old, json!({"email_address": "new@example.com"})).await;
    assert_eq!((status, moved["id"].clone()), (200, json!(hash("new@example.com"))));
    assert_eq!(env.get(&old).await.0, 404);
    assert_eq!(env.get(&env.member_path("new@example.com")).await.1["email_address"], "new@example.com");
}

#[tokio::test]
async fn batch_subscribe_reports_errors_per_member() {
    let env = Env::new().await;
    env.put(&env.member_path("old@example.com"), sub("old@example.com")).await;
    env.put(&env.member_path("held@example.com"), sub("held@example.com")).await;
    env.admin.unsubscribe(&env.list, "held@example.com");
    let body = json!({"members": [
        {"email_address": "new@example.com", "status": "subscribed", "merge_fields": {"FNAME": "N"}},
        {"email_address": "old@example.com", "status": "subscribed"},
        {"email_address": "bad", "status": "subscribed"},
        {"email_address": "held@example.com", "status": "subscribed"},
    ]});
    let (status, result) = env.post(&format!("/lists/{}", env.list), body.clone()).await;
    assert_eq!(status, 200);
    assert_eq!((result["total_created"].as_u64(), result["total_updated"].as_u64()), (Some(1), Some(0)));
    assert_eq!(result["error_count"], 3);
    assert_eq!(result["new_members"][0]["email_address"], "new@example.com");
    let errors = result["errors"].as_array().unwrap();
    assert_eq!(errors[0]["email_address"], "old@example.com");
    assert_eq!(errors[0]["error_code"], "ERROR_CONTACT_EXISTS");
    assert_eq!(errors[1]["error_code"], "ERROR_GENERIC");
    assert_eq!(errors[1]["error"], "Please provide a valid email address.");
    assert_eq!(
        (errors[2]["email_address"].as_str(), errors[2]["error_code"].as_str()),
        (Some("held@example.com"), Some("ERROR_CONTACT_EXISTS"))
    );

    let update = json!({"update_existing": true, "members": [
        {"email_address": "old@example.com", "status": "unsubscribed"},
        {"email_address": "held@example.com", "status": "subscribed"},
    ]});
    let (_, result) = env.post(&format!("/lists/{}", env.list), update).await;
    assert_eq!(
        (result["total_updated"].as_u64(), result["updated_members"][0]["status"].as_str()),
        (Some(1), Some("unsubscribed"))
    );
    assert_eq!(
        (result["errors"][0]["email_address"].as_str(), result["errors"][0]["error_code"].as_str()),
        (Some("held@example.com"), Some("ERROR_GENERIC"))
    );
    assert!(result["errors"][0]["error"].as_str().unwrap().contains("is in a compliance state"));

    let many: Vec<Value> =
        (0..501).map(|i| json!({"email_address": format!("m{i}@example.com"), "status": "subscribed"})).collect();
    let (status, _) = env.post(&format!("/lists/{}", env.list), json!({"members": many})).await;
    assert_eq!(status, 400);
}
