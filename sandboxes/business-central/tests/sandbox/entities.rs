//! Entity behaviour: CRUD, ETags, validation, contacts, invoices and posting, the consent API.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::Env;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_crud_and_etags() {
    let env = Env::new().await;
    let r = env
        .post(
            &env.co("customers"),
            json!({"displayName": "Ulm Falcons", "type": "Company", "email": "info@ulm.example"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(r.header("location").unwrap(), format!("{}/companies({})/customers({id})", env.api, env.company));
    assert_eq!(r.body["@odata.context"], format!("{}/$metadata#companies({})/customers/$entity", env.api, env.company));
    let keys: Vec<&String> = r.body.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 29, "context + etag + 27 properties");
    assert_eq!(r.body["number"], "C00010");
    assert_eq!(r.body["currencyCode"], "USD");
    assert_eq!(r.body["taxAreaId"], "00000000-0000-0000-0000-000000000000");
    assert_eq!(r.body["balanceDue"], 0);
    let etag1 = r.body["@odata.etag"].as_str().unwrap().to_string();
    assert!(etag1.starts_with("W/\"JzE") || etag1.starts_with("W/\"JzI"), "{etag1}");
    let modified1 = r.body["lastModifiedDateTime"].as_str().unwrap().to_string();
    let path = format!("{}({id})", env.co("customers"));

    // PATCH needs If-Match.
    let r = env.patch(&path, json!({"displayName": "TSG Söflingen"}), None).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"]["code"], "BadRequest_InvalidToken");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Could not validate the client concurrency token required by the service.")
    );
    let r = env.patch(&path, json!({"displayName": "TSG Söflingen"}), Some("\"garbage\"")).await;
    assert_eq!(r.status, 400);
    tokio::time::sleep(Duration::from_millis(5)).await;
    let r = env.patch(&path, json!({"displayName": "TSG Söflingen"}), Some(&etag1)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["displayName"], "TSG Söflingen");
    let etag2 = r.body["@odata.etag"].as_str().unwrap().to_string();
    assert_ne!(etag1, etag2);
    assert!(r.body["lastModifiedDateTime"].as_str().unwrap() > modified1.as_str());
    // Stale → 409.
    let r = env.patch(&path, json!({"displayName": "Again"}), Some(&etag1)).await;
    assert_eq!(r.status, 409);
    assert_eq!(r.body["error"]["code"], "Request_EntityChanged");
    assert!(r.body["error"]["message"].as_str().unwrap().starts_with("Another user has already changed the record."));
    // `*` always matches.
    let r = env.patch(&path, json!({"phoneNumber": "555-0100"}), Some("*")).await;
    assert_eq!(r.status, 200);
    let etag3 = r.body["@odata.etag"].as_str().unwrap().to_string();
    // A null update changes nothing.
    let r = env.patch(&path, json!({"phoneNumber": "555-0100", "id": id}), Some(&etag3)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["@odata.etag"], etag3.as_str());
    // Read back, then delete (no If-Match needed), then 404.
    let r = env.get(&path).await;
    assert_eq!(r.body["phoneNumber"], "555-0100");
    assert_eq!(r.body["@odata.etag"], etag3.as_str());
    let r = env.delete(&path, Some(&etag1)).await;
    assert_eq!(r.status, 409, "a stale If-Match on DELETE is refused too");
    let r = env.delete(&path, None).await;
    assert_eq!(r.status, 204);
    assert_eq!(env.get(&path).await.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_is_strict() {
    let env = Env::new().await;
    let r = env.post(&env.co("customers"), json!({"displayName": "x".repeat(101)})).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"]["code"], "Application_StringExceededLength");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("The length of the string is 101, but it must be less than or equal to 100 characters.")
    );
    let r = env.post(&env.co("customers"), json!({"displayName": "A", "nickname": "b"})).await;
    assert_eq!(r.status, 400);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("The property 'nickname' does not exist on type 'Microsoft.NAV.customer'.")
    );
    let r = env.post(&env.co("customers"), json!({"displayName": "A", "balanceDue": 10})).await;
    assert_eq!(r.status, 400);
    let r = env.post(&env.co("customers"), json!({"displayName": "A", "email": "not an email"})).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"]["code"], "Application_DialogException");
    let r = env.post(&env.co("customers"), json!({"displayName": ""})).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"]["code"], "BadRequest_RequiredParamNotProvided");
    let r = env.post(&env.co("customers"), json!({"displayName": "A", "creditLimit": "100"})).await;
    assert_eq!(r.status, 400, "decimals are JSON numbers");
    let r = env.post(&env.co("customers"), json!({"displayName": "A", "number": "K1"})).await;
    assert_eq!(r.status, 201);
    let r = env.post(&env.co("customers"), json!({"displayName": "B", "number": "K1"})).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"]["code"], "Internal_EntityWithSameKeyExists");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customers_have_contacts() {
    let env = Env::new().await;
    let customer = env.customer("Adatum Corporation", "robert@adatum.example");
    let r = env.get(&env.co("contacts")).await;
    assert_eq!(r.status, 200);
    let contact = &r.body["value"][0];
    assert_eq!(contact["displayName"], "Adatum Corporation");
    assert_eq!(contact["email"], "robert@adatum.example");
    assert_eq!(contact["contactBusinessRelation"], "Customer");
    assert_eq!(contact["type"], "Company");
    assert_eq!(contact["searchName"], "ADATUM CORPORATION");
    assert_eq!(contact["privacyBlocked"], false);
    assert_eq!(contact["lastInteractionDate"], "0001-01-01");
    let before = contact["@odata.etag"].clone();
    env.admin.update_customer(&env.company, customer["id"].as_str().unwrap(), json!({"email": "new@adatum.example"}));
    let r = env.get(&env.co("contacts")).await;
    assert_eq!(r.body["value"][0]["email"], "new@adatum.example");
    assert_ne!(r.body["value"][0]["@odata.etag"], before);
    // A person contact through the API.
    let r = env
        .post(&env.co("contacts"), json!({"displayName": "Ann Beebe", "type": "Person", "email": "ann@example.com"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["contactBusinessRelation"], "None");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoices_lines_and_posting() {
    let env = Env::new().await;
    let customer = env.customer("Fabrikam", "ap@fabrikam.example");
    let item = env
        .admin
        .create_item(&env.company, json!({"displayName": "Bicycle", "unitPrice": 199.99, "type": "Inventory"}));
    let invoice = env.admin.create_sales_invoice(
        &env.company,
        json!({"customerId": customer["id"], "externalDocumentNumber": "PO-1"}),
        vec![json!({"itemId": item["id"], "quantity": 3})],
    );
    assert!(invoice.get("error").is_none(), "{invoice}");
    let id = invoice["id"].as_str().unwrap().to_string();
    assert_eq!(invoice["status"], "Draft");
    assert_eq!(invoice["number"], "S-INV101001");
    assert_eq!(invoice["customerNumber"], customer["number"]);
    assert_eq!(invoice["customerName"], "Fabrikam");
    assert_eq!(invoice["email"], "ap@fabrikam.example");
    assert_eq!(invoice["promisedPayDate"], "0001-01-01");
    assert_eq!(invoice["totalAmountExcludingTax"], 599.97);

    // Lines: nested route, and the company-level route that needs a filter.
    let lines_path = format!("{}({id})/salesInvoiceLines", env.co("salesInvoices"));
    let r = env.get(&lines_path).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["value"][0]["lineObjectNumber"], item["number"]);
    assert_eq!(r.body["value"][0]["description"], "Bicycle");
    let r = env.get(&env.co("salesInvoiceLines")).await;
    assert_eq!(r.status, 400);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("You must specify an Id or a Document Id to get the lines.")
    );
    let r = env.get(&format!("{}?$filter=documentId%20eq%20{id}", env.co("salesInvoiceLines"))).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["value"].as_array().unwrap().len(), 1);
    let r = env
        .post(
            &lines_path,
            json!({"lineType": "Item", "lineObjectNumber": item["number"], "quantity": 1, "unitPrice": 100}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["sequence"], 20000);
    let r = env.get(&format!("{}({id})", env.co("salesInvoices"))).await;
    assert_eq!(r.body["totalAmountIncludingTax"], 699.97);
    let draft_etag = r.body["@odata.etag"].as_str().unwrap().to_string();

    // Posting: same id, new number, status Open.
    let posted = env.admin.post_sales_invoice(&env.company, &id);
    assert_eq!(posted["id"], id.as_str());
    assert_eq!(posted["status"], "Open");
    assert_eq!(posted["number"], "PS-INV103001");
    assert_ne!(posted["@odata.etag"], draft_etag.as_str());
    let r = env.get(&format!("{}?$filter=number%20eq%20'S-INV101001'", env.co("salesInvoices"))).await;
    assert_eq!(r.body["value"].as_array().unwrap().len(), 0);
    let r = env.get(&format!("{}({id})", env.co("salesInvoices"))).await;
    assert_eq!(r.body["number"], "PS-INV103001");
    let r = env
        .patch(&format!("{}({id})", env.co("salesInvoices")), json!({"externalDocumentNumber": "PO-2"}), Some("*"))
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"]["code"], "Application_DialogException");
    assert_eq!(env.admin.customer(&env.company, customer["id"].as_str().unwrap()).unwrap()["balanceDue"], 699.97);

    // The bound action posts a draft created through the API (deep insert of lines).
    let r = env
        .post(
            &env.co("salesInvoices"),
            json!({"customerNumber": customer["number"], "salesInvoiceLines": [{"itemId": item["id"], "quantity": 1}]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let second = r.body["id"].as_str().unwrap().to_string();
    let r = env.post(&format!("{}({second})/Microsoft.NAV.post", env.co("salesInvoices")), json!({})).await;
    assert_eq!(r.status, 204, "{}", r.body);
    let r = env.get(&format!("{}({second})", env.co("salesInvoices"))).await;
    assert_eq!(r.body["number"], "PS-INV103002");
    // Nothing to post.
    let empty = env.admin.create_sales_invoice(&env.company, json!({"customerId": customer["id"]}), vec![]);
    let r = env
        .post(&format!("{}({})/Microsoft.NAV.post", env.co("salesInvoices"), empty["id"].as_str().unwrap()), json!({}))
        .await;
    assert_eq!(r.status, 400);
    assert!(r.body["error"]["message"].as_str().unwrap().starts_with("There is nothing to post."));
    // A customer with outstanding invoices cannot be deleted.
    let r = env.delete(&format!("{}({})", env.co("customers"), customer["id"].as_str().unwrap()), None).await;
    assert_eq!(r.status, 400);
    // Unknown customer.
    let r = env.post(&env.co("salesInvoices"), json!({"customerNumber": "NOPE"})).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body["error"]["code"], "Internal_RecordNotFound");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_api_is_a_view_of_the_customer() {
    let env = Env::new().await;
    let customer = env.customer("Contoso", "hello@contoso.example");
    let id = customer["id"].as_str().unwrap();
    let custom = env.api.replace("/api/v2.0", "/api/contoso/marketing/v1.0");
    let consents = format!("{custom}/companies({})/customerConsents", env.company);
    let r = env.get(&consents).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let record = &r.body["value"][0];
    assert_eq!(record["id"], id);
    assert_eq!(record["customerId"], id);
    assert_eq!(record["email"], "hello@contoso.example");
    assert_eq!(record["marketingConsent"], false);
    assert_eq!(record["consentStatus"], "_x0020_");
    assert_eq!(record["consentChangedAt"], "0001-01-01T00:00:00Z");
    assert_eq!(record["@odata.etag"], customer["@odata.etag"]);
    assert_eq!(r.body["@odata.context"], format!("{custom}/$metadata#companies({})/customerConsents", env.company));
    let etag = record["@odata.etag"].as_str().unwrap().to_string();
    let r = env
        .patch(&format!("{consents}({id})"), json!({"marketingConsent": true, "consentStatus": "Opted_x0020_In"}), None)
        .await;
    assert_eq!(r.status, 400);
    let r = env
        .patch(
            &format!("{consents}({id})"),
            json!({"marketingConsent": true, "consentStatus": "Opted In"}),
            Some(&etag),
        )
        .await;
    assert_eq!(r.status, 400);
    let r = env.patch(&format!("{consents}({id})"), json!({"email": "x@y.z"}), Some(&etag)).await;
    assert_eq!(r.status, 400, "email is read-only on the consent page");
    let r = env
        .patch(
            &format!("{consents}({id})"),
            json!({"marketingConsent": true, "consentStatus": "Opted_x0020_In"}),
            Some(&etag),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["consentStatus"], "Opted_x0020_In");
    assert_ne!(r.body["consentChangedAt"], "0001-01-01T00:00:00Z");
    // Same row: the customer's etag and timestamp moved too.
    let after = env.admin.customer(&env.company, id).unwrap();
    assert_eq!(after["@odata.etag"], r.body["@odata.etag"]);
    assert!(after["lastModifiedDateTime"].as_str().unwrap() >= customer["lastModifiedDateTime"].as_str().unwrap());
    assert_ne!(after["@odata.etag"], customer["@odata.etag"]);
    assert_eq!(env.admin.consent(&env.company, id).unwrap()["marketingConsent"], true);
    // No insert or delete on the consent page; the v2.0 route does not know it.
    assert_eq!(env.post(&consents, json!({"marketingConsent": true})).await.status, 405);
    assert_eq!(env.delete(&format!("{consents}({id})"), None).await.status, 405);
    assert_eq!(env.get(&env.co("customerConsents")).await.status, 404);
    let r = env.get(&format!("{consents}?$filter=marketingConsent%20eq%20true")).await;
    assert_eq!(r.body["value"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timestamps_use_the_virtual_clock() {
    let env = Env::new().await;
    let frozen: jiff::Timestamp = "2024-03-01T12:00:00.123Z".parse().unwrap();
    env.admin.set_timestamp_override(Some(frozen));
    let a = env.customer("A", "a@example.com");
    let b = env.customer("B", "b@example.com");
    assert_eq!(a["lastModifiedDateTime"], "2024-03-01T12:00:00.123Z");
    assert_eq!(b["lastModifiedDateTime"], a["lastModifiedDateTime"]);
    env.admin.set_timestamp_override(None);
    let before = env.admin.now();
    env.admin.advance_clock(Duration::from_secs(86_400));
    assert!(env.admin.now().as_second() - before.as_second() >= 86_400);
    let c = env.customer("C", "c@example.com");
    let stamp: jiff::Timestamp = c["lastModifiedDateTime"].as_str().unwrap().parse().unwrap();
    assert!(stamp.as_second() - before.as_second() >= 86_400);
    let ms = c["lastModifiedDateTime"].as_str().unwrap();
    assert!(matches!(ms.as_bytes()[22], b'0' | b'3' | b'7'), "SQL datetime ticks: {ms}");
    let _: Value = c;
}
