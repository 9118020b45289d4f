//! Query options, envelopes, enums and error bodies.

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::Env;

fn names(r: &crate::common::Resp, field: &str) -> Vec<String> {
    r.body["value"].as_array().unwrap().iter().map(|v| v[field].as_str().unwrap().to_string()).collect()
}

async fn seeded() -> Env {
    let env = Env::new().await;
    for (name, limit) in [("Adatum", 1000), ("Fabrikam", 5000), ("Contoso", 2500), ("O'Brien Ltd", 0)] {
        let c = env.admin.create_customer(
            &env.company,
            json!({"displayName": name, "creditLimit": limit, "email": "x@example.com"}),
        );
        assert!(c.get("error").is_none(), "{c}");
    }
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn companies_list_and_alternate_key() {
    let env = Env::new().await;
    let r = env.get("/companies").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("odata-version").as_deref(), Some("4.0"));
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/json; odata.metadata=minimal; odata.streaming=true")
    );
    assert!(r.header("request-id").is_some());
    assert_eq!(r.body["@odata.context"], format!("{}/$metadata#companies", env.api));
    let company = &r.body["value"][0];
    assert_eq!(company["name"], "CRONUS USA, Inc.");
    assert_eq!(company["id"], env.company);
    assert_eq!(company["displayName"], "");
    assert_eq!(company["systemVersion"], "26.0.30643.32100");
    assert!(company.get("@odata.etag").is_none(), "companies carry no etag in recorded payloads");
    let r = env.get("/companies(name='CRONUS%20USA%2C%20Inc.')").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["id"], env.company);
    assert!(r.body["@odata.context"].as_str().unwrap().ends_with("$metadata#companies/$entity"));
    let r = env.get("/companies(name='Nope')").await;
    assert_eq!(r.status, 404);
    let r = env.post("/companies", json!({"name": "X"})).await;
    assert_eq!(r.status, 405);
    assert_eq!(r.body["error"]["code"], "BadRequest_MethodNotAllowed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filter_operators() {
    let env = seeded().await;
    let q = |f: &str| format!("{}?$filter={}", env.co("customers"), f.replace(' ', "%20").replace('\'', "%27"));
    let r = env.get(&q("displayName eq 'Adatum'")).await;
    assert_eq!(names(&r, "displayName"), ["Adatum"]);
    let r = env.get(&q("displayName eq 'O''Brien Ltd'")).await;
    assert_eq!(names(&r, "displayName"), ["O'Brien Ltd"]);
    let r = env.get(&q("creditLimit gt 1000")).await;
    assert_eq!(names(&r, "displayName"), ["Fabrikam", "Contoso"]);
    let r = env.get(&q("creditLimit ge 1000 and creditLimit lt 5000")).await;
    assert_eq!(names(&r, "displayName"), ["Adatum", "Contoso"]);
    let r = env.get(&q("creditLimit le 1000 and displayName ne 'Adatum'")).await;
    assert_eq!(names(&r, "displayName"), ["O'Brien Ltd"]);
    let r = env.get(&q("(displayName eq 'Adatum' or displayName eq 'Contoso') and creditLimit gt 0")).await;
    assert_eq!(names(&r, "displayName"), ["Adatum", "Contoso"]);
    let r = env.get(&q("startswith(displayName,'Fab') or contains(displayName,'toso')")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(names(&r, "displayName").len(), 2);
    let id = env.admin.customers(&env.company)[0]["id"].as_str().unwrap().to_string();
    let r = env.get(&q(&format!("id eq {id}"))).await;
    assert_eq!(r.body["value"].as_array().unwrap().len(), 1);
    let r = env.get(&q(&format!("id eq '{id}'"))).await;
    assert_eq!(r.status, 400);
    // OR across fields is refused.
    let r = env.get(&q("displayName eq 'Adatum' or creditLimit eq 0")).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"]["code"], "BadRequest_NotFound");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("The 'OR' operator is not supported on distinct fields on an OData filter.")
    );
    // Unknown property.
    let r = env.get(&q("nickname eq 'x'")).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"]["code"], "BadRequest_NotFound");
    assert!(
        r.body["error"]["message"].as_str().unwrap().starts_with(
            "Could not find a property named 'nickname' on type 'Microsoft.NAV.customer'.  CorrelationId:  "
        )
    );
    // Syntax error.
    assert_eq!(env.get(&q("displayName eq")).await.status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn date_literals_are_unquoted() {
    let env = seeded().await;
    let all = env.get(&env.co("customers")).await;
    let stamp = all.body["value"][0]["lastModifiedDateTime"].as_str().unwrap().to_string();
    assert!(stamp.ends_with('Z') && stamp.len() == 24, "{stamp}");
    let r = env.get(&format!("{}?$filter=lastModifiedDateTime%20ge%20{stamp}", env.co("customers"))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["value"].as_array().unwrap().len(), 4);
    let r = env.get(&format!("{}?$filter=lastModifiedDateTime%20gt%202999-01-01T00:00:00Z", env.co("customers"))).await;
    assert_eq!(r.body["value"].as_array().unwrap().len(), 0);
    // An explicit offset must be percent-encoded (a raw '+' is a space in a query string).
    let r = env
        .get(&format!("{}?$filter=lastModifiedDateTime%20gt%202000-01-01T01:00:00%2B01:00", env.co("customers")))
        .await;
    assert_eq!(r.body["value"].as_array().unwrap().len(), 4);
    // Quoted: a string, which OData refuses to compare with a DateTimeOffset.
    let r =
        env.get(&format!("{}?$filter=lastModifiedDateTime%20gt%20'2024-01-01T00:00:00Z'", env.co("customers"))).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"]["code"], "BadRequest_NotFound");
    let message = r.body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with(
            "A binary operator with incompatible types was detected. Found operand types 'Edm.DateTimeOffset' and 'Edm.String' for operator kind 'GreaterThan'."
        ),
        "{message}"
    );
    // Edm.Date literals on invoices.
    let customer = &all.body["value"][0];
    let item = env.admin.create_item(&env.company, json!({"displayName": "Chair", "unitPrice": 10}));
    env.admin.create_sales_invoice(
        &env.company,
        json!({"customerId": customer["id"], "invoiceDate": "2024-05-02"}),
        vec![json!({"itemId": item["id"], "quantity": 1})],
    );
    let r = env.get(&format!("{}?$filter=invoiceDate%20ge%202024-05-01", env.co("salesInvoices"))).await;
    assert_eq!(r.body["value"].as_array().unwrap().len(), 1, "{}", r.body);
    let r = env.get(&format!("{}?$filter=invoiceDate%20ge%20'2024-05-01'", env.co("salesInvoices"))).await;
    assert_eq!(r.status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn select_expand_top_orderby_count() {
    let env = seeded().await;
    let r = env.get(&format!("{}?$select=number,displayName", env.co("customers"))).await;
    assert_eq!(r.status, 200);
    let first = r.body["value"][0].as_object().unwrap();
    let keys: Vec<&str> = first.keys().map(String::as_str).collect();
    assert_eq!(keys.len(), 3, "{keys:?}");
    assert!(first.contains_key("@odata.etag") && first.contains_key("number") && first.contains_key("displayName"));
    assert!(r.body["@odata.context"].as_str().unwrap().ends_with("/customers(number,displayName)"));
    let r = env.get(&format!("{}?$select=number,nickname", env.co("customers"))).await;
    assert_eq!(r.status, 400);
    assert!(r.body["error"]["message"].as_str().unwrap().starts_with("Could not find a property named 'nickname'"));
    let r = env.get(&format!("{}?$top=2", env.co("customers"))).await;
    assert_eq!(r.body["value"].as_array().unwrap().len(), 2);
    assert!(r.body.get("@odata.nextLink").is_none(), "$top gives no nextLink");
    let r = env.get(&format!("{}?$orderby=creditLimit%20desc&$count=true", env.co("customers"))).await;
    assert_eq!(names(&r, "displayName"), ["Fabrikam", "Contoso", "Adatum", "O'Brien Ltd"]);
    assert_eq!(r.body["@odata.count"], 4);
    assert_eq!(env.get(&format!("{}?$orderby=nickname", env.co("customers"))).await.status, 400);
    assert_eq!(env.get(&format!("{}?$top=-1", env.co("customers"))).await.status, 400);
    assert_eq!(env.get(&format!("{}?$unknown=1", env.co("customers"))).await.status, 400);
    // $expand on invoices.
    let customer = env.admin.customers(&env.company)[0].clone();
    let item = env.admin.create_item(&env.company, json!({"displayName": "Desk", "unitPrice": 250.5}));
    let invoice = env.admin.create_sales_invoice(
        &env.company,
        json!({"customerNumber": customer["number"]}),
        vec![
            json!({"lineObjectNumber": item["number"], "quantity": 2}),
            json!({"lineType": "Comment", "description": "Thanks"}),
        ],
    );
    let r = env.get(&format!("{}?$expand=salesInvoiceLines", env.co("salesInvoices"))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let lines = r.body["value"][0]["salesInvoiceLines"].as_array().unwrap();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["sequence"], 10000);
    assert_eq!(lines[0]["lineType"], "Item");
    assert_eq!(lines[0]["amountExcludingTax"], 501);
    assert_eq!(lines[0]["documentId"], invoice["id"]);
    assert!(lines[0]["@odata.etag"].is_string());
    assert_eq!(r.body["value"][0]["totalAmountIncludingTax"], 501);
    let r = env
        .get(&format!(
            "{}({})?$expand=salesInvoiceLines($select=description),customer",
            env.co("salesInvoices"),
            invoice["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["salesInvoiceLines"][1]["description"], "Thanks");
    assert!(r.body["salesInvoiceLines"][1].get("quantity").is_none());
    assert_eq!(r.body["customer"]["id"], customer["id"]);
    let r = env.get(&format!("{}?$expand=nonsense", env.co("salesInvoices"))).await;
    assert_eq!(r.status, 400);
    let r = env.get(&format!("{}?$expand=number", env.co("salesInvoices"))).await;
    assert_eq!(r.status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enums_are_xml_encoded() {
    let env = seeded().await;
    let r = env.post(&env.co("items"), json!({"displayName": "Consulting", "type": "Non_x002D_Inventory"})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["type"], "Non_x002D_Inventory");
    assert_eq!(r.body["blocked"], false, "item.blocked is a Boolean");
    let r = env.post(&env.co("items"), json!({"displayName": "Bad", "type": "Non-Inventory"})).await;
    assert_eq!(r.status, 400, "captions are not accepted");
    let customers = env.get(&env.co("customers")).await;
    assert_eq!(customers.body["value"][0]["blocked"], "_x0020_");
    assert_eq!(customers.body["value"][0]["type"], "Company");
    let r = env.get(&format!("{}?$filter=blocked%20eq%20'_x0020_'", env.co("customers"))).await;
    assert_eq!(r.body["value"].as_array().unwrap().len(), 4);
    let r = env.get(&format!("{}?$filter=type%20eq%20'Non_x002D_Inventory'", env.co("items"))).await;
    assert_eq!(r.body["value"].as_array().unwrap().len(), 1);
    let r = env.get(&format!("{}?$filter=status%20eq%20'In%20Review'", env.co("salesInvoices"))).await;
    assert_eq!(r.status, 400);
    let r = env
        .get(&format!(
            "{}?$filter=status%20eq%20'In_x0020_Review'%20or%20status%20eq%20'Draft'",
            env.co("salesInvoices")
        ))
        .await;
    assert_eq!(r.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_bodies() {
    let env = Env::new().await;
    let r = env.get(&format!("{}(00000000-0000-0000-0000-00000000abcd)", env.co("customers"))).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.header("content-type").as_deref(), Some("application/json"));
    assert_eq!(r.body["error"]["code"], "BadRequest_ResourceNotFound");
    let message = r.body["error"]["message"].as_str().unwrap();
    let (text, correlation) = message.split_once("  CorrelationId:  ").unwrap();
    assert_eq!(text, "Resource not found for the segment 'customers'.");
    assert!(correlation.ends_with('.') && correlation.len() == 37, "{correlation}");
    let r = env.get(&env.co("vendorsx")).await;
    assert_eq!(r.status, 404);
    assert!(r.body["error"]["message"].as_str().unwrap().starts_with("Resource not found for the segment 'vendorsx'."));
    let r = env.get("/companies(00000000-0000-0000-0000-00000000abcd)/customers").await;
    assert_eq!(r.status, 404);
    let r = env.get(&format!("{}(10000)", env.co("customers"))).await;
    assert_eq!(r.status, 400, "keys are GUIDs");
    let raw = env
        .client
        .post(format!("{}{}", env.api, env.co("customers")))
        .bearer_auth(&env.token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 400);
    let body: Value = raw.json().await.unwrap();
    assert_eq!(body["error"]["code"], "BadRequest");
    let r = env.send(Method::PUT, &env.co("customers"), Some(json!({})), &[]).await;
    assert_eq!(r.status, 405);
    // The request log has what was sent and answered.
    let log = env.admin.requests();
    let last = log.last().unwrap();
    assert_eq!(last.method, "PUT");
    assert_eq!(last.status, 405);
    assert_eq!(last.response.as_ref().unwrap()["error"]["code"], "BadRequest_MethodNotAllowed");
    env.admin.clear_requests();
    assert!(env.admin.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_and_service_document() {
    let env = Env::new().await;
    let r = env.client.get(format!("{}/$metadata", env.api)).bearer_auth(&env.token).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/xml");
    let text = r.text().await.unwrap();
    assert!(text.contains("<EntityType Name=\"customer\">"));
    assert!(text.contains("<Member Name=\"In_x0020_Review\" Value=\"2\" />"));
    assert!(text.contains("Org.OData.Capabilities.V1.ChangeTracking"));
    let r = env.get("").await;
    assert_eq!(r.status, 200);
    assert!(r.body["value"].as_array().unwrap().iter().any(|s| s["name"] == "customers"));
    let custom = env.api.replace("/api/v2.0", "/api/contoso/marketing/v1.0");
    let r = env.client.get(format!("{custom}/$metadata")).bearer_auth(&env.token).send().await.unwrap();
    let text = r.text().await.unwrap();
    assert!(text.contains("<EntityType Name=\"customerConsent\">") && text.contains("Opted_x0020_In"));
    assert!(!text.contains("<EntityType Name=\"customer\">"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn company_parameter_count_segment_and_unserved_navigations() {
    let env = seeded().await;
    // `?company=` instead of a `companies(...)` segment (by id or by name).
    let r = env.get(&format!("/customers?company={}", env.company)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["value"].as_array().unwrap().len(), 4);
    let r = env.get("/customers?company=CRONUS%20USA%2C%20Inc.&$top=1").await;
    assert_eq!(r.body["value"].as_array().unwrap().len(), 1);
    let r = env.get("/customers").await;
    assert_eq!(r.status, 400);
    assert!(r.body["error"]["message"].as_str().unwrap().starts_with("The supplied company name is not valid."));
    // `$count` as a path segment answers plain text.
    let r = env
        .client
        .get(format!("{}{}/$count?$filter=creditLimit%20gt%201000", env.api, env.co("customers")))
        .bearer_auth(&env.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/plain");
    assert_eq!(r.text().await.unwrap(), "2");
    // Real navigation properties the sandbox does not serve say so.
    let r = env.get(&format!("{}?$expand=currency", env.co("customers"))).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"]["code"], "BadRequest_MethodNotImplemented");
}
