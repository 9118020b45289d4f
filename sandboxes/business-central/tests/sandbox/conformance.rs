//! `$metadata` conformance: every entity the sandbox serves uses exactly the property names,
//! types, MaxLength and nullability of the real API v2.0 `$metadata`
//! (`shared/specs/business-central/api-v2.0-metadata.xml`), its enums have the real members,
//! and the JSON it serves matches the document it serves.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::common::Env;

const REAL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/specs/business-central/api-v2.0-metadata.xml");

/// A property as declared: (name, type, MaxLength, Nullable).
type Declared = (String, String, Option<String>, Option<String>);

struct Model {
    entities: BTreeMap<String, Vec<Declared>>,
    navigations: BTreeMap<String, Vec<(String, String)>>,
    enums: BTreeMap<String, Vec<(String, String)>>,
    sets: BTreeMap<String, String>,
}

fn parse(xml: &str) -> Model {
    let doc = roxmltree::Document::parse(xml).expect("well-formed EDMX");
    let mut model = Model {
        entities: BTreeMap::new(),
        navigations: BTreeMap::new(),
        enums: BTreeMap::new(),
        sets: BTreeMap::new(),
    };
    for node in doc.descendants() {
        match node.tag_name().name() {
            "EntityType" => {
                let name = node.attribute("Name").unwrap().to_string();
                let props = node
                    .children()
                    .filter(|c| c.tag_name().name() == "Property")
                    .map(|p| {
                        (
                            p.attribute("Name").unwrap().to_string(),
                            p.attribute("Type").unwrap().to_string(),
                            p.attribute("MaxLength").map(str::to_string),
                            p.attribute("Nullable").map(str::to_string),
                        )
                    })
                    .collect();
                let navs = node
                    .children()
                    .filter(|c| c.tag_name().name() == "NavigationProperty")
                    .map(|p| (p.attribute("Name").unwrap().to_string(), p.attribute("Type").unwrap().to_string()))
                    .collect();
                model.entities.insert(name.clone(), props);
                model.navigations.insert(name, navs);
            }
            "EnumType" => {
                let members = node
                    .children()
                    .filter(|c| c.tag_name().name() == "Member")
                    .map(|m| (m.attribute("Name").unwrap().to_string(), m.attribute("Value").unwrap().to_string()))
                    .collect();
                model.enums.insert(node.attribute("Name").unwrap().to_string(), members);
            }
            "EntitySet" => {
                model.sets.insert(
                    node.attribute("Name").unwrap().to_string(),
                    node.attribute("EntityType").unwrap().to_string(),
                );
            }
            _ => {}
        }
    }
    model
}

fn is_guid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts.iter().zip([8, 4, 4, 4, 12]).all(|(p, n)| p.len() == n && p.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Whether a JSON value is a valid instance of an EDM type.
fn compatible(model: &Model, ty: &str, value: &Value) -> bool {
    match ty {
        "Edm.Guid" => value.as_str().is_some_and(is_guid),
        "Edm.String" => value.is_string(),
        "Edm.Decimal" => value.is_number(),
        "Edm.Int32" | "Edm.Int64" => value.is_i64() || value.is_u64(),
        "Edm.Boolean" => value.is_boolean(),
        "Edm.Date" => value.as_str().is_some_and(|s| s.parse::<jiff::civil::Date>().is_ok() && s.len() == 10),
        "Edm.DateTimeOffset" => {
            value.as_str().is_some_and(|s| s.ends_with('Z') && s.parse::<jiff::Timestamp>().is_ok())
        }
        other => match other.strip_prefix("Microsoft.NAV.").and_then(|e| model.enums.get(e)) {
            Some(members) => value.as_str().is_some_and(|s| members.iter().any(|(m, _)| m == s)),
            None => false,
        },
    }
}

/// Checks served JSON entities against the served model.
fn check_rows(model: &Model, entity: &str, rows: &[Value]) {
    let props = &model.entities[entity];
    assert!(!rows.is_empty(), "no {entity} rows to check");
    for row in rows {
        let object = row.as_object().unwrap();
        let keys: Vec<&str> = object.keys().map(String::as_str).filter(|k| !k.starts_with("@odata.")).collect();
        let mut expected: Vec<&str> = props.iter().map(|p| p.0.as_str()).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        expected.sort();
        assert_eq!(sorted, expected, "{entity}: served keys differ from $metadata");
        for (name, ty, max, nullable) in props {
            let value = &object[name];
            assert!(compatible(model, ty, value), "{entity}.{name}: {value} is not {ty}");
            if let (Some(max), Some(s)) = (max, value.as_str()) {
                assert!(s.chars().count() <= max.parse::<usize>().unwrap(), "{entity}.{name} longer than {max}");
            }
            if nullable.as_deref() == Some("false") {
                assert!(!value.is_null(), "{entity}.{name} is null");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn served_entities_conform_to_the_real_metadata() {
    let real = parse(&std::fs::read_to_string(REAL).expect("the EDMX snapshot in shared/specs"));
    let env = Env::new().await;
    let served_xml = env
        .client
        .get(format!("{}/$metadata", env.api))
        .bearer_auth(&env.token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let served = parse(&served_xml);

    assert_eq!(
        served.entities.keys().collect::<Vec<_>>(),
        ["company", "contact", "customer", "item", "salesInvoice", "salesInvoiceLine", "subscriptions"]
    );
    for (entity, props) in &served.entities {
        let real_props = real.entities.get(entity).unwrap_or_else(|| panic!("{entity} is not in the real $metadata"));
        assert_eq!(props, real_props, "{entity}: names, order, types, MaxLength and Nullable must match");
        for (nav, ty) in &served.navigations[entity] {
            assert!(
                real.navigations[entity].iter().any(|(n, t)| n == nav && t == ty),
                "{entity}.{nav} ({ty}) is not in the real $metadata"
            );
        }
    }
    for (name, members) in &served.enums {
        assert_eq!(Some(members), real.enums.get(name), "enum {name}");
    }
    for (set, ty) in &served.sets {
        assert_eq!(real.sets.get(set), Some(ty), "entity set {set}");
    }

    // The JSON served matches the document served.
    let customer = env.customer("Adatum", "a@example.com");
    let item =
        env.admin.create_item(&env.company, json!({"displayName": "Chair", "unitPrice": 12.5, "type": "Service"}));
    env.admin.create_sales_invoice(
        &env.company,
        json!({"customerId": customer["id"]}),
        vec![json!({"itemId": item["id"], "quantity": 1.5})],
    );
    let rx = crate::common::Receiver::start().await;
    let r = env
        .post(
            "/subscriptions",
            json!({"notificationUrl": rx.url, "resource": format!("companies({})/items", env.company)}),
        )
        .await;
    assert_eq!(r.status, 201);
    let sets = [
        ("company", "/companies".to_string()),
        ("customer", env.co("customers")),
        ("item", env.co("items")),
        ("contact", env.co("contacts")),
        ("salesInvoice", env.co("salesInvoices")),
        (
            "salesInvoiceLine",
            format!(
                "{}?$filter=documentId%20ne%2000000000-0000-0000-0000-000000000000%20and%20id%20ne%2000000000-0000-0000-0000-000000000000",
                env.co("salesInvoiceLines")
            ),
        ),
        ("subscriptions", "/subscriptions".to_string()),
    ];
    for (entity, path) in sets {
        let r = env.get(&path).await;
        if entity == "salesInvoiceLine" {
            // The company-level lines route insists on a document or line id.
            assert_eq!(r.status, 400);
            let invoice =
                &env.get(&format!("{}?$expand=salesInvoiceLines", env.co("salesInvoices"))).await.body["value"][0];
            check_rows(&served, entity, invoice["salesInvoiceLines"].as_array().unwrap());
            continue;
        }
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        check_rows(&served, entity, r.body["value"].as_array().unwrap());
    }
    // Single-entity responses too.
    let r = env.get(&format!("{}({})", env.co("customers"), customer["id"].as_str().unwrap())).await;
    check_rows(&served, "customer", std::slice::from_ref(&r.body));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_custom_api_serves_what_its_metadata_declares() {
    let env = Env::new().await;
    let custom = env.api.replace("/api/v2.0", "/api/contoso/marketing/v1.0");
    let xml = env
        .client
        .get(format!("{custom}/$metadata"))
        .bearer_auth(&env.token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let model = parse(&xml);
    assert_eq!(model.entities.keys().collect::<Vec<_>>(), ["company", "customerConsent", "subscriptions"]);
    assert_eq!(
        model.enums["consentStatus"].iter().map(|m| m.0.as_str()).collect::<Vec<_>>(),
        ["_x0020_", "Opted_x0020_In", "Opted_x0020_Out", "Pending"]
    );
    env.customer("Adatum", "a@example.com");
    let r = env.get(&format!("{custom}/companies({})/customerConsents", env.company)).await;
    check_rows(&model, "customerConsent", r.body["value"].as_array().unwrap());
    let r = env.get(&format!("{custom}/companies")).await;
    check_rows(&model, "company", r.body["value"].as_array().unwrap());
}
