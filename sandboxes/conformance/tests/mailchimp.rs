//! The oracle against the real Mailchimp Marketing API document (the Ballerina copy, 3.0.85).

use std::path::Path;
use std::sync::OnceLock;
use std::time::Instant;

use conformance::Spec;
use serde_json::{Value, json};

const SPEC: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/specs/mailchimp/mailchimp-marketing-openapi-3.0.85-ballerina.json"
);

fn spec() -> &'static Spec {
    static SPEC_CELL: OnceLock<Spec> = OnceLock::new();
    SPEC_CELL.get_or_init(|| Spec::load(Path::new(SPEC)).expect("the Mailchimp spec loads").with_base_path("/3.0"))
}

const MEMBER: &str = "/3.0/lists/a1b2c3/members/0cc175b9c0f1b6a831c399e269772661";

fn member_body() -> Value {
    json!({
        "email_address": "ada@example.com",
        "status_if_new": "subscribed",
        "status": "subscribed",
        "merge_fields": {"FNAME": "Ada", "LNAME": "Lovelace", "AGE": 36,
                         "ADDRESS": {"addr1": "1 Main St", "city": "London", "state": "", "zip": "N1"}},
        "interests": {"9143cf3bd1": true},
        "language": "en",
        "vip": false,
        "tags": ["ignored-by-put"],
        "timestamp_signup": "2024-01-02T03:04:05+00:00"
    })
}

fn assert_violation(result: Result<(), Vec<String>>, expected: &[&str]) -> Vec<String> {
    let violations = result.expect_err("a violation was expected");
    for needle in expected {
        assert!(violations.iter().any(|v| v.contains(needle)), "no violation contains {needle:?}: {violations:#?}");
    }
    violations
}

#[test]
fn a_valid_member_put_passes() {
    assert_eq!(spec().check_request("PUT", MEMBER, "skip_merge_validation=true", Some(&member_body())), Ok(()));
}

#[test]
fn merge_field_values_may_be_strings_numbers_or_addresses() {
    // The Ballerina copy types merge field values as objects; the oracle corrects it.
    assert!(spec().patches().iter().any(|p| p.contains("merge_fields")), "{:?}", spec().patches());
    let body = json!({"email_address": "a@example.com", "status_if_new": "pending", "merge_fields": {"FNAME": "Ada"}});
    assert_eq!(spec().check_request("PUT", MEMBER, "", Some(&body)), Ok(()));
    let bad = json!({"email_address": "a@example.com", "status_if_new": "pending", "merge_fields": {"FNAME": true}});
    assert_violation(spec().check_request("PUT", MEMBER, "", Some(&bad)), &["request body /merge_fields/FNAME: true"]);
}

#[test]
fn a_member_put_without_status_if_new_fails_naming_it() {
    let mut body = member_body();
    body.as_object_mut().unwrap().remove("status_if_new");
    let violations = assert_violation(spec().check_request("PUT", MEMBER, "", Some(&body)), &["status_if_new"]);
    assert_eq!(
        violations,
        vec![r#"PUT /lists/{listId}/members/{subscriberHash}: request body: "status_if_new" is a required property"#]
    );
}

#[test]
fn wrong_types_and_enum_values_fail_with_their_pointer() {
    let mut body = member_body();
    body["status_if_new"] = json!("bogus");
    body["vip"] = json!("yes");
    body["interests"]["9143cf3bd1"] = json!(1);
    body["email_address"] = json!(42);
    let violations = assert_violation(
        spec().check_request("PUT", MEMBER, "", Some(&body)),
        &[
            r#"PUT /lists/{listId}/members/{subscriberHash}: request body /status_if_new: "bogus" is not one of ["subscribed","unsubscribed","cleaned","pending","transactional"]"#,
            r#"request body /vip: "yes" is not of type "boolean""#,
            r#"request body /interests/9143cf3bd1: 1 is not of type "boolean""#,
            r#"request body /email_address: 42 is not of type "string""#,
        ],
    );
    assert_eq!(violations.len(), 4, "{violations:#?}");
    // Not an object at all.
    assert_violation(spec().check_request("PUT", MEMBER, "", Some(&json!([1]))), &["request body: [1] is not of type"]);
}

#[test]
fn request_body_presence() {
    assert_violation(
        spec().check_request("PUT", MEMBER, "", None),
        &["PUT /lists/{listId}/members/{subscriberHash}: the request body is required"],
    );
    assert_violation(
        spec().check_request("GET", MEMBER, "", Some(&json!({"x": 1}))),
        &["GET /lists/{listId}/members/{subscriberHash}: the operation takes no request body"],
    );
    assert_eq!(spec().check_request("GET", MEMBER, "", Some(&json!({}))), Ok(()));
    assert_eq!(spec().check_request("DELETE", MEMBER, "", None), Ok(()));
    // The one optional body of the document.
    assert_eq!(spec().check_request("POST", "/3.0/campaigns/c1/actions/create-resend", "", None), Ok(()));
}

#[test]
fn unknown_paths_methods_and_base_paths_fail() {
    assert_eq!(
        spec().check_request("GET", "/3.0/lists/l1/membres", "", None),
        Err(vec!["GET /3.0/lists/l1/membres: no path of the OpenAPI document matches".to_owned()])
    );
    assert_eq!(spec().operation("GET", "/3.0/lists/l1/membres"), None);
    assert_violation(
        spec().check_request("POST", MEMBER, "", Some(&member_body())),
        &["method not allowed on /lists/{listId}/members/{subscriberHash} (allowed: DELETE, GET, PATCH, PUT)"],
    );
    assert_violation(spec().check_request("GET", "/lists/l1/members", "", None), &["not under the base path /3.0"]);
    assert_violation(spec().check_response("GET", "/3.0/nope", 200, None), &["no path"]);
    // An empty segment does not match a template.
    assert_eq!(spec().operation("GET", "/3.0/lists//members"), None);
}

#[test]
fn paths_resolve_to_the_most_specific_operation() {
    let op = |method: &str, path: &str| spec().operation(method, path).map(|o| (o.template, o.operation_id.unwrap()));
    let pair = |template: &str, id: &str| Some((template.to_owned(), id.to_owned()));
    assert_eq!(op("PUT", MEMBER), pair("/lists/{listId}/members/{subscriberHash}", "putListsIdMembersId"));
    assert_eq!(
        op("POST", &format!("{MEMBER}/tags")),
        pair("/lists/{listId}/members/{subscriberHash}/tags", "postListMemberTags")
    );
    // A member whose hash is literally "tags" is still the member.
    assert_eq!(
        op("GET", "/3.0/lists/l1/members/tags"),
        pair("/lists/{listId}/members/{subscriberHash}", "getListsIdMembersId")
    );
    assert_eq!(
        op("GET", "/3.0/lists/l1/members/h/notes/7"),
        pair("/lists/{listId}/members/{subscriberHash}/notes/{noteId}", "getListsIdMembersIdNotesId")
    );
    assert_eq!(op("POST", "/3.0/lists/l1/members"), pair("/lists/{listId}/members", "postListsIdMembers"));
    assert_eq!(
        op("PATCH", "/3.0/ecommerce/stores/s1/orders/o1"),
        pair("/ecommerce/stores/{storeId}/orders/{orderId}", "patchEcommerceStoresIdOrdersId")
    );
    assert_eq!(
        op("POST", "/3.0/ecommerce/stores/s1/orders"),
        pair("/ecommerce/stores/{storeId}/orders", "postEcommerceStoresIdOrders")
    );
    assert_eq!(
        op("GET", "/3.0/ecommerce/stores/s1/orders/o1/lines/l1?fields=id"),
        pair("/ecommerce/stores/{storeId}/orders/{orderId}/lines/{lineId}", "getEcommerceStoresIdOrdersIdLinesId")
    );
    // `/ecommerce/orders` (all stores) vs `/ecommerce/stores`: both literal.
    assert_eq!(op("GET", "/3.0/ecommerce/orders"), pair("/ecommerce/orders", "getEcommerceOrders"));
    assert_eq!(op("GET", "/3.0/ecommerce/stores/orders"), pair("/ecommerce/stores/{storeId}", "getEcommerceStoresId"));
    assert_eq!(op("GET", "/3.0"), pair("/", "getRoot"));
    assert_eq!(op("get", "/3.0/ping"), pair("/ping", "getPing"));
}

fn store() -> Value {
    json!({
        "id": "store-1", "list_id": "a1b2c3", "name": "Ada's Shop", "currency_code": "EUR",
        "platform": "ml-connector", "domain": "shop.example.com", "email_address": "shop@example.com",
        "money_format": "€", "primary_locale": "fr", "timezone": "Europe/Paris", "phone": "+33 1 23 45 67 89",
        "address": {"address1": "1 rue de la Paix", "city": "Paris", "postal_code": "75002", "country_code": "FR",
                    "latitude": 48.8686, "longitude": 2.3314},
        "is_syncing": true
    })
}

fn order() -> Value {
    json!({
        "id": "order-1001",
        "customer": {"id": "cust-42", "email_address": "ada@example.com", "opt_in_status": false,
                     "first_name": "Ada", "last_name": "Lovelace"},
        "currency_code": "EUR",
        "order_total": 129.5,
        "tax_total": 21.58,
        "discount_total": 0,
        "processed_at_foreign": "2024-03-01T10:00:00+01:00",
        "financial_status": "paid",
        "lines": [
            {"id": "l1", "product_id": "p1", "product_variant_id": "p1-red", "quantity": 2, "price": 49.75},
            {"id": "l2", "product_id": "p2", "product_variant_id": "p2", "quantity": 1, "price": 30, "discount": 0}
        ],
        "promos": [{"code": "SPRING", "amount_discounted": 0, "type": "fixed"}]
    })
}

#[test]
fn a_valid_store_post_passes_and_a_store_without_currency_fails() {
    assert_eq!(spec().check_request("POST", "/3.0/ecommerce/stores", "", Some(&store())), Ok(()));
    let mut bad = store();
    bad.as_object_mut().unwrap().remove("currency_code");
    bad["address"]["latitude"] = json!("48.8");
    assert_violation(
        spec().check_request("POST", "/3.0/ecommerce/stores", "", Some(&bad)),
        &[
            r#"POST /ecommerce/stores: request body: "currency_code" is a required property"#,
            r#"request body /address/latitude: "48.8" is not of type "number""#,
        ],
    );
}

#[test]
fn orders_need_lines_and_numeric_money() {
    let path = "/3.0/ecommerce/stores/store-1/orders";
    assert_eq!(spec().check_request("POST", path, "", Some(&order())), Ok(()));
    let mut without_lines = order();
    without_lines.as_object_mut().unwrap().remove("lines");
    let violations = assert_violation(spec().check_request("POST", path, "", Some(&without_lines)), &["lines"]);
    assert_eq!(
        violations,
        vec![r#"POST /ecommerce/stores/{storeId}/orders: request body: "lines" is a required property"#]
    );

    let mut bad = order();
    bad["order_total"] = json!("129.50");
    bad["lines"][1]["quantity"] = json!(1.5);
    bad["lines"][0].as_object_mut().unwrap().remove("product_variant_id");
    bad["customer"].as_object_mut().unwrap().remove("id");
    assert_violation(
        spec().check_request("POST", path, "", Some(&bad)),
        &[
            r#"request body /order_total: "129.50" is not of type "number""#,
            r#"request body /lines/1/quantity: 1.5 is not of type "integer""#,
            r#"request body /lines/0: "product_variant_id" is a required property"#,
            r#"request body /customer: "id" is a required property"#,
        ],
    );
}

#[test]
fn query_parameters_are_checked() {
    assert_violation(
        spec().check_request("GET", "/3.0/search-members", "", None),
        &["GET /search-members: required query parameter `query` is missing"],
    );
    assert_eq!(spec().check_request("GET", "/3.0/search-members", "?query=ada%40example.com", None), Ok(()));
    assert_eq!(spec().check_request("GET", "/3.0/search-members?query=ada", "", None), Ok(()));
    let members = "/3.0/lists/l1/members";
    assert_eq!(
        spec().check_request(
            "GET",
            members,
            "count=1000&offset=0&status=subscribed&fields=members.id,total_items&vip_only=false&unknown=1",
            None
        ),
        Ok(())
    );
    assert_violation(
        spec().check_request("GET", members, "count=5000&offset=x&status=gone&vip_only=yes", None),
        &[
            "GET /lists/{listId}/members: query parameter `count`: 5000 is greater than the maximum of 1000",
            r#"query parameter `offset`: "x" is not of type "integer""#,
            r#"query parameter `status`: "gone" is not one of"#,
            r#"query parameter `vip_only`: "yes" is not of type "boolean""#,
        ],
    );
}

fn member_response() -> Value {
    json!({
        "id": "0cc175b9c0f1b6a831c399e269772661",
        "email_address": "ada@example.com",
        "unique_email_id": "882e9bec19",
        "contact_id": "a6b5da1054c4b7bd16ae9cd12f6d0c9f",
        "full_name": "Ada Lovelace",
        "web_id": 123456789,
        "email_type": "html",
        "status": "subscribed",
        "consents_to_one_to_one_messaging": true,
        "merge_fields": {"FNAME": "Ada", "LNAME": "Lovelace", "PHONE": "", "BIRTHDAY": "12/10", "AGE": 36,
                         "ADDRESS": {"addr1": "", "addr2": "", "city": "", "state": "", "zip": "", "country": "US"}},
        "interests": {"9143cf3bd1": false},
        "stats": {"avg_open_rate": 0, "avg_click_rate": 0.25,
                  "ecommerce_data": {"total_revenue": 129.5, "number_of_orders": 1, "currency_code": "EUR"}},
        "ip_signup": "",
        "timestamp_signup": "",
        "ip_opt": "198.51.100.7",
        "timestamp_opt": "2024-01-02T03:04:05+00:00",
        "member_rating": 2,
        "last_changed": "2024-01-02T03:04:05+00:00",
        "language": "",
        "vip": false,
        "email_client": "",
        "location": {"latitude": 0, "longitude": 0, "gmtoff": 0, "dstoff": 0, "country_code": "", "timezone": "", "region": ""},
        "marketing_permissions": [{"marketing_permission_id": "7b6e8d5f", "text": "Email", "enabled": true}],
        "last_note": {"note_id": 1, "created_at": "2024-01-02T03:04:05+00:00", "created_by": "api", "note": "hi"},
        "source": "API - Generic",
        "tags_count": 1,
        "tags": [{"id": 101, "name": "vip"}],
        "list_id": "a1b2c3",
        "_links": [{"rel": "self", "href": "https://us6.api.mailchimp.com/3.0/lists/a1b2c3/members/0cc1", "method": "GET",
                    "targetSchema": "https://us6.api.mailchimp.com/schema/3.0/Definitions/Lists/Members/Response.json"}]
    })
}

#[test]
fn member_get_responses_are_checked() {
    assert_eq!(spec().check_response("GET", MEMBER, 200, Some(&member_response())), Ok(()));
    // Responses of PUT and PATCH share the schema.
    assert_eq!(spec().check_response("PUT", MEMBER, 200, Some(&member_response())), Ok(()));

    let mut bad = member_response();
    bad["member_rating"] = json!("2");
    bad["status"] = json!("deleted");
    bad["tags"][0]["id"] = json!("101");
    bad["_links"][0]["method"] = json!("FETCH");
    assert_violation(
        spec().check_response("GET", MEMBER, 200, Some(&bad)),
        &[
            r#"GET /lists/{listId}/members/{subscriberHash}: response 200 body /member_rating: "2" is not of type "integer""#,
            r#"response 200 body /status: "deleted" is not one of"#,
            r#"response 200 body /tags/0/id: "101" is not of type "integer""#,
            r#"response 200 body /_links/0/method: "FETCH" is not one of"#,
        ],
    );
    assert_violation(
        spec().check_response("GET", MEMBER, 200, None),
        &["GET /lists/{listId}/members/{subscriberHash}: response 200 has no body"],
    );
    assert_violation(
        spec().check_response("PUT", MEMBER, 201, Some(&member_response())),
        &[
            "PUT /lists/{listId}/members/{subscriberHash}: response status 201 is not documented (documented: 200, default)",
        ],
    );
}

#[test]
fn problem_json_errors_validate_against_default() {
    let problem = json!({
        "type": "https://mailchimp.com/developer/marketing/docs/errors/",
        "title": "Resource Not Found",
        "status": 404,
        "detail": "The requested resource could not be found.",
        "instance": "995c5cb0-3280-4a6e-808b-3b096d0bb219"
    });
    for (method, path, status) in [
        ("GET", MEMBER, 404),
        ("PUT", MEMBER, 400),
        ("POST", "/3.0/ecommerce/stores/s/orders", 400),
        ("GET", "/3.0/ping", 401),
    ] {
        assert_eq!(spec().check_response(method, path, status, Some(&problem)), Ok(()), "{method} {path} {status}");
    }
    // Errors may carry extra fields (the 400 `errors` array).
    let mut with_errors = problem.clone();
    with_errors["errors"] = json!([{"field": "email_address", "message": "This value should be a valid email."}]);
    assert_eq!(spec().check_response("PUT", MEMBER, 400, Some(&with_errors)), Ok(()));

    let mut bad = problem.clone();
    bad.as_object_mut().unwrap().remove("instance");
    bad["status"] = json!("404");
    assert_violation(
        spec().check_response("GET", MEMBER, 404, Some(&bad)),
        &[
            r#"GET /lists/{listId}/members/{subscriberHash}: response 404 body: "instance" is a required property"#,
            r#"response 404 body /status: "404" is not of type "integer""#,
        ],
    );
    // An undocumented error status is not a violation; its body is checked against `default`.
    assert_violation(spec().check_response("GET", MEMBER, 503, Some(&json!({"oops": 1}))), &["response 503 body"]);
    // A bare 403 (the throttling layer) is tolerated; other errors need their problem document.
    assert_eq!(spec().check_response("GET", MEMBER, 403, None), Ok(()));
    assert_violation(spec().check_response("GET", MEMBER, 404, None), &["response 404 has no body"]);
}

#[test]
fn no_content_responses() {
    assert_eq!(spec().check_response("DELETE", MEMBER, 204, None), Ok(()));
    assert_eq!(
        spec().check_response("DELETE", MEMBER, 204, Some(&json!({}))),
        Err(vec!["DELETE /lists/{listId}/members/{subscriberHash}: a 204 response must have no body".to_owned()])
    );
    let tags = format!("{MEMBER}/tags");
    assert_eq!(spec().check_response("POST", &tags, 204, None), Ok(()));
    assert_violation(spec().check_response("POST", &tags, 204, Some(&json!({"ok": true}))), &["must have no body"]);
    // A 200 where the document says 204.
    assert_violation(
        spec().check_response("DELETE", MEMBER, 200, Some(&json!({}))),
        &["response status 200 is not documented (documented: 204, default)"],
    );
    // The Ballerina copy gives DELETE /ecommerce/stores/{storeId} a 204 with a JSON schema; no body is still right.
    assert_eq!(spec().check_response("DELETE", "/3.0/ecommerce/stores/s1", 204, None), Ok(()));
}

#[test]
fn every_schema_of_the_document_compiles() {
    let operations = spec().operations();
    assert_eq!(operations.len(), 274);
    let started = Instant::now();
    let compiled = spec().precompile().unwrap_or_else(|failures| panic!("schemas that do not compile: {failures:#?}"));
    println!("compiled {compiled} validators for {} operations in {:?}", operations.len(), started.elapsed());
    assert!(compiled > 800, "{compiled}");
}

#[test]
fn checking_a_thousand_requests_is_fast() {
    let load_started = Instant::now();
    let own = Spec::load(Path::new(SPEC)).unwrap().with_base_path("/3.0");
    let load = load_started.elapsed();
    let bodies: Vec<(String, Value)> = (0..1000)
        .map(|i| {
            let mut body = member_body();
            body["email_address"] = json!(format!("user{i}@example.com"));
            body["merge_fields"]["FNAME"] = json!(format!("User {i}"));
            (format!("/3.0/lists/a1b2c3/members/{i:032x}"), body)
        })
        .collect();
    let started = Instant::now();
    for (i, (path, body)) in bodies.iter().enumerate() {
        let result = if i % 2 == 0 {
            own.check_request("PUT", path, "", Some(body))
        } else {
            own.check_request("POST", "/3.0/ecommerce/stores/store-1/orders", "", Some(&order()))
        };
        assert_eq!(result, Ok(()));
    }
    let elapsed = started.elapsed();
    println!(
        "loading the spec: {load:?}; checking 1000 requests (500 member PUTs, 500 order POSTs, cold cache): {elapsed:?}"
    );
}

#[test]
fn batch_operations_are_checked_one_by_one() {
    let put = |body: &Value| {
        json!({"method": "PUT", "path": "/lists/a1b2c3/members/0cc175b9c0f1b6a831c399e269772661",
                                    "operation_id": "m1", "body": body.to_string()})
    };
    let mut missing = member_body();
    missing.as_object_mut().unwrap().remove("status_if_new");
    let batch = json!({"operations": [
        put(&member_body()),
        {"method": "GET", "path": "/lists/a1b2c3/members", "params": {"count": 10, "status": "subscribed", "fields": ["members.id", "total_items"]}},
        {"method": "POST", "path": "/ecommerce/stores/s1/orders", "body": order().to_string()},
    ]});
    assert_eq!(spec().check_request("POST", "/3.0/batches", "", Some(&batch)), Ok(()));
    assert_eq!(spec().check_batch_operations(&batch), Ok(()));

    let bad = json!({"operations": [
        put(&member_body()),
        put(&missing),
        {"method": "GET", "path": "/lists/a1b2c3/members", "params": {"count": 5000}},
        {"method": "POST", "path": "/nope", "body": "{}"},
        {"method": "POST", "path": "/ecommerce/stores/s1/orders", "body": "{not json"},
    ]});
    assert_eq!(spec().check_request("POST", "/3.0/batches", "", Some(&bad)), Ok(()), "the envelope is fine");
    let violations = spec().check_batch_operations(&bad).unwrap_err();
    assert_eq!(violations.len(), 4, "{violations:#?}");
    assert_eq!(
        violations[0],
        r#"operations/1: PUT /lists/{listId}/members/{subscriberHash}: request body: "status_if_new" is a required property"#
    );
    assert!(violations[1].starts_with("operations/2: GET /lists/{listId}/members: query parameter `count`: 5000"));
    assert_eq!(violations[2], "operations/3: POST /nope: no path of the OpenAPI document matches");
    assert!(violations[3].starts_with("operations/4: `body` is not JSON"), "{}", violations[3]);
    // Bodies inside a batch are JSON strings, not objects.
    let object_body = json!({"operations": [{"method": "PUT", "path": "/lists/a/members/b", "body": member_body()}]});
    assert_violation(
        spec().check_request("POST", "/3.0/batches", "", Some(&object_body)),
        &[r#"POST /batches: request body /operations/0/body: {"#],
    );
}
