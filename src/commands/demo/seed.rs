//! The demo's data: a specialty foods distributor on Business Central and an office supply
//! distributor on Dynamics GP, generated from a fixed seed so every demo tells the same story.
//! A few records are wrong on purpose (an e-mail without a domain, a customer without e-mail)
//! so the demo shows what happens to bad data.

use serde_json::{Value, json};

use crate::sample::{Dice, FIRST, LAST};

/// How much to seed.
#[derive(Debug, Clone, Copy)]
pub struct Volume {
    pub bc_customers: usize,
    pub bc_items: usize,
    pub bc_invoices: usize,
    pub gp_customers: usize,
    pub gp_invoices: usize,
}

impl Volume {
    /// What the issue calls realistic: a few hundred customers, dozens of items, a thousand
    /// posted invoices.
    pub const FULL: Volume =
        Volume { bc_customers: 300, bc_items: 40, bc_invoices: 1000, gp_customers: 150, gp_invoices: 400 };
    /// Enough to show every path, fast.
    pub const SMALL: Volume =
        Volume { bc_customers: 30, bc_items: 8, bc_invoices: 60, gp_customers: 15, gp_invoices: 30 };
}

const TOWNS: &[(&str, &str, &str)] = &[
    ("Atlanta", "GA", "30303"),
    ("Seattle", "WA", "98101"),
    ("Portland", "OR", "97201"),
    ("Austin", "TX", "78701"),
    ("Denver", "CO", "80202"),
    ("Boston", "MA", "02108"),
    ("Chicago", "IL", "60601"),
    ("Madison", "WI", "53703"),
    ("Savannah", "GA", "31401"),
    ("Santa Fe", "NM", "87501"),
];
const STREETS: &[&str] = &["Market St", "Harbor Way", "Mill Rd", "Orchard Ave", "Vine St", "Station Rd", "Elm St"];
const SHOPS: &[&str] =
    &["Deli", "Bistro", "Trattoria", "Market", "Pantry", "Cheese Shop", "Grocer", "Kitchen", "Café", "Provisions"];
const FOODS: &[(&str, f64)] = &[
    ("Arbequina Olive Oil 500ml", 18.5),
    ("Aged Balsamic 250ml", 24.0),
    ("Parmigiano Reggiano 1kg", 39.9),
    ("Manchego 12 months", 21.75),
    ("Smoked Paprika 100g", 6.4),
    ("Saffron 2g", 14.2),
    ("Black Truffle Salt", 12.0),
    ("Single-Origin Coffee 1kg", 32.0),
    ("Darjeeling First Flush", 17.3),
    ("Dark Chocolate 85%", 4.95),
    ("Wildflower Honey", 9.8),
    ("Anchovies in Oil", 7.25),
    ("Sourdough Crackers", 5.5),
    ("Fig Preserve", 6.9),
    ("Pistachio Cream", 11.4),
    ("Smoked Salmon 200g", 15.6),
];
const SUPPLIES: &[(&str, &str, &str)] = &[
    ("PPR-A4-500", "Copy paper A4, 500 sheets", "5.49"),
    ("PEN-BLU-12", "Ballpoint pens, blue, box of 12", "3.99"),
    ("STP-26-6", "Stapler, 26/6", "12.50"),
    ("BND-2IN", "Ring binder, 2 inch", "4.25"),
    ("TNR-HP-85A", "Toner cartridge 85A", "64.00"),
    ("CHR-ERGO", "Ergonomic office chair", "249.00"),
    ("DSK-LAMP", "LED desk lamp", "34.90"),
    ("NTB-A5-DOT", "Notebook A5, dotted", "6.75"),
];

fn email_of(first: &str, last: &str, n: usize, domain: &str) -> String {
    format!("{}.{}{n}@{domain}", first.to_lowercase(), last.to_lowercase())
}

/// Business Central: customers (people and shops), items, and posted invoices with 1–5 item
/// lines. Returns the customers as Business Central answered them.
pub fn business_central(admin: &sandbox_business_central::Admin, company: &str, volume: Volume) -> Vec<Value> {
    let mut dice = Dice::new(0x5EED_F00D);
    let mut customers = Vec::with_capacity(volume.bc_customers);
    for n in 0..volume.bc_customers {
        let (first, last) = (dice.pick(FIRST), dice.pick(LAST));
        let (city, state, zip) = TOWNS[dice.below(TOWNS.len())];
        let street = format!("{} {}", 1 + dice.below(900), dice.pick(STREETS));
        let fields = match n {
            // The bad data every ERP has: an address without a domain, a customer without one.
            3 => json!({"type": "Person", "displayName": "Tim Typo", "email": "tim@example"}),
            7 => json!({"type": "Person", "displayName": "Nora Nomail", "email": ""}),
            _ if n % 4 == 0 => {
                let shop = format!("{last} {}", dice.pick(SHOPS));
                json!({"type": "Company", "displayName": shop, "email": format!("orders{n}@{}.example", last.to_lowercase()),
                       "addressLine1": street, "city": city, "state": state, "postalCode": zip, "country": "US",
                       "phoneNumber": format!("+1 555 01{:02}", n % 100)})
            }
            _ => json!({"type": "Person", "displayName": format!("{first} {last}"),
                        "email": email_of(first, last, n, "example.com"), "addressLine1": street, "city": city,
                        "state": state, "postalCode": zip, "country": "US"}),
        };
        customers.push(admin.create_customer(company, fields));
    }
    let items: Vec<Value> = (0..volume.bc_items)
        .map(|i| {
            let (name, price) = FOODS[i % FOODS.len()];
            let name =
                if i < FOODS.len() { name.to_owned() } else { format!("{name} (case of {})", 6 * (i / FOODS.len())) };
            let price = if i < FOODS.len() { price } else { price * 6.0 * (i / FOODS.len()) as f64 * 0.9 };
            admin.create_item(company, json!({"displayName": name, "unitPrice": (price * 100.0).round() / 100.0}))
        })
        .collect();
    for _ in 0..volume.bc_invoices {
        let customer = &customers[dice.below(customers.len())];
        let lines: Vec<Value> = (0..1 + dice.below(5))
            .map(|_| {
                let item = &items[dice.below(items.len())];
                json!({"lineType": "Item", "itemId": item["id"], "quantity": (1 + dice.below(12)) as f64})
            })
            .collect();
        let invoice = admin.create_sales_invoice(company, json!({"customerId": customer["id"]}), lines);
        admin.post_sales_invoice(company, invoice["id"].as_str().unwrap_or_default());
    }
    customers
}

/// Dynamics GP: an office supply distributor's customers (with a billing address and e-mail in
/// the internet fields, some with two addresses in one field as GP allows) and receivables
/// invoices, some paid, some partly paid, one voided.
pub fn dynamics_gp(admin: &sandbox_dynamics_gp::Admin, company: i32, volume: Volume) -> Result<(), String> {
    use sandbox_dynamics_gp::{AddressInput, CustomerInput, InternetAddresses, InvoiceInput, LineInput};
    let mut dice = Dice::new(0x000F_F1CE);
    let mut ids = Vec::with_capacity(volume.gp_customers);
    for n in 0..volume.gp_customers {
        let (first, last) = (dice.pick(FIRST), dice.pick(LAST));
        let (city, state, zip) = TOWNS[dice.below(TOWNS.len())];
        let id = format!("LOS{n:05}");
        let company_name = format!("{last} & {} {}", dice.pick(LAST), ["Associates", "Law", "Dental", "Studio"][n % 4]);
        let email_to = match n {
            5 => "frontdesk@".to_owned(),
            _ if n % 10 == 0 => format!("{};{}", email_of(first, last, n, "office.example"), "billing@office.example"),
            _ => email_of(first, last, n, "office.example"),
        };
        let input = CustomerInput {
            id: id.clone(),
            name: company_name.clone(),
            statement_name: company_name,
            short_name: last.chars().take(15).collect(),
            class_id: "OFFICE".into(),
            payment_terms_id: "Net 30".into(),
            addresses: vec![AddressInput {
                id: "PRIMARY".into(),
                contact_person: format!("{first} {last}"),
                line1: format!("{} {}", 1 + dice.below(900), dice.pick(STREETS)),
                city: city.into(),
                state: state.into(),
                postal_code: zip.into(),
                country: "USA".into(),
                phone1: format!("555010{n:04}0000"),
                internet: Some(InternetAddresses { email_to, ..Default::default() }),
                ..Default::default()
            }],
            ..Default::default()
        };
        admin.upsert_customer(company, input).map_err(|e| format!("GP customer {id}: {e}"))?;
        ids.push(id);
    }
    for n in 0..volume.gp_invoices {
        let number = format!("INV{n:06}");
        let lines = (0..1 + dice.below(4))
            .map(|_| {
                let (item, description, price) = SUPPLIES[dice.below(SUPPLIES.len())];
                LineInput {
                    item: item.into(),
                    description: description.into(),
                    quantity: format!("{}", 1 + dice.below(20)),
                    unit_price: price.into(),
                }
            })
            .collect();
        let input = InvoiceInput {
            number: number.clone(),
            customer_id: ids[dice.below(ids.len())].clone(),
            date: format!("2026-{:02}-{:02}", 1 + n % 10, 1 + n % 28),
            lines,
            ..Default::default()
        };
        admin.add_invoice(company, input).map_err(|e| format!("GP invoice {number}: {e}"))?;
        let settled = match n % 5 {
            0 | 1 => admin.pay_invoice(company, &number, None),
            2 => admin.pay_invoice(company, &number, Some("1.00")),
            _ => Ok(()),
        };
        settled.map_err(|e| format!("GP invoice {number}: {e}"))?;
    }
    if volume.gp_invoices > 3 {
        admin.void_invoice(company, "INV000003").map_err(|e| format!("GP invoice INV000003: {e}"))?;
    }
    Ok(())
}
