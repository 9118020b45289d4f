//! The records the measurements work on, generated from a fixed seed so two runs compare:
//! Business Central customers and posted sales invoices shaped as API v2.0 returns them (every
//! field, not only the mapped ones, so that parsing costs what it costs in production), and the
//! writable fields the sandbox is seeded with.

use serde_json::{Value, json};

pub use crate::sample::Dice;
use crate::sample::{FIRST, LAST};

const TOWNS: &[(&str, &str, &str)] = &[
    ("Atlanta", "GA", "30303"),
    ("Seattle", "WA", "98101"),
    ("Portland", "OR", "97201"),
    ("Austin", "TX", "78701"),
    ("Denver", "CO", "80202"),
    ("Boston", "MA", "02108"),
    ("Chicago", "IL", "60601"),
    ("Madison", "WI", "53703"),
];
const STREETS: &[&str] = &["Market St", "Harbor Way", "Mill Rd", "Orchard Ave", "Vine St", "Station Rd", "Elm St"];
const GOODS: &[&str] = &[
    "Olive Oil 500ml",
    "Aged Balsamic",
    "Parmigiano 1kg",
    "Manchego",
    "Smoked Paprika",
    "Saffron 2g",
    "Truffle Salt",
    "Coffee Beans 1kg",
    "Darjeeling Tea",
    "Dark Chocolate",
    "Wildflower Honey",
    "Anchovies",
    "Crackers",
    "Fig Jam",
];

/// A GUID-shaped id, unique per (kind, n).
fn guid(kind: u32, n: usize) -> String {
    format!("{kind:08x}-0000-4000-8000-{n:012x}")
}

/// The writable fields of customer `n`: a person (three in four) or a company, every one with a
/// valid, unique e-mail and a complete address.
pub fn customer_fields(n: usize, dice: &mut Dice) -> Value {
    let (first, last) = (dice.pick(FIRST), dice.pick(LAST));
    let (city, state, zip) = TOWNS[dice.below(TOWNS.len())];
    let street = format!("{} {}", 1 + dice.below(900), dice.pick(STREETS));
    let phone = format!("+1 555 01{:02} {:04}", n % 100, n % 10_000);
    if n.is_multiple_of(4) {
        let shop = format!("{last} Provisions {n}");
        let domain = last.to_lowercase().replace(' ', "");
        json!({"type": "Company", "displayName": shop, "email": format!("Orders{n}@{domain}.example"),
               "addressLine1": street, "city": city, "state": state, "postalCode": zip, "country": "US",
               "phoneNumber": phone})
    } else {
        let local = format!("{}.{}{n}", first.to_lowercase(), last.to_lowercase().replace(' ', ""));
        json!({"type": "Person", "displayName": format!("{first} {last}"), "email": format!(" {local}@Example.com"),
               "addressLine1": street, "city": city, "state": state, "postalCode": zip, "country": "US",
               "phoneNumber": phone})
    }
}

/// Customer `n` as `GET customers` returns it.
pub fn customer(n: usize, dice: &mut Dice) -> Value {
    let mut record = customer_fields(n, dice);
    let fields = record.as_object_mut().expect("an object");
    for (k, v) in [
        ("@odata.etag", json!(format!("W/\"JzE5OzEyMzQ1Njc4OTAxMjM0NTY3ODkwMTsn{n}\""))),
        ("id", json!(guid(1, n))),
        ("number", json!(format!("C{n:06}"))),
        ("addressLine2", json!("")),
        ("website", json!("")),
        ("salespersonCode", json!("")),
        ("balanceDue", json!(0)),
        ("creditLimit", json!(0)),
        ("taxLiable", json!(false)),
        ("taxAreaId", json!(guid(9, 1))),
        ("taxAreaDisplayName", json!("")),
        ("taxRegistrationNumber", json!("")),
        ("currencyId", json!("00000000-0000-0000-0000-000000000000")),
        ("currencyCode", json!("")),
        ("paymentTermsId", json!(guid(9, 2))),
        ("shipmentMethodId", json!("00000000-0000-0000-0000-000000000000")),
        ("paymentMethodId", json!(guid(9, 3))),
        ("blocked", json!(" ")),
        ("lastModifiedDateTime", json!(format!("2026-10-{:02}T{:02}:{:02}:00Z", 1 + n % 28, n % 24, n % 60))),
    ] {
        fields.insert(k.to_owned(), v);
    }
    record
}

/// An amount in cents as the API writes it: a number with at most two decimals.
fn money(cents: i64) -> Value {
    json!(cents as f64 / 100.0)
}

/// Posted invoice `n` with `lines` item lines, for one of `customers` customers, as
/// `GET salesInvoices?$expand=salesInvoiceLines` returns it.
pub fn invoice(n: usize, lines: usize, customers: usize, dice: &mut Dice) -> Value {
    let c = dice.below(customers.max(1));
    let mut who = Dice::new(c as u64 + 7);
    let buyer = customer_fields(c, &mut who);
    let id = guid(2, n);
    let mut excl_total = 0;
    let mut tax_total = 0;
    let items: Vec<Value> = (0..lines)
        .map(|l| {
            let item = dice.below(2000);
            let quantity = 1 + dice.below(12) as i64;
            let unit = 100 + dice.below(9_900) as i64;
            let excl = unit * quantity;
            let tax = (excl * 8 + 50) / 100;
            excl_total += excl;
            tax_total += tax;
            json!({"@odata.etag": format!("W/\"JzQ0O0xpbmV7{n}x{l}\""), "id": guid(3, n * 100 + l), "documentId": id,
                   "sequence": 10_000 * (l + 1), "itemId": guid(4, item), "accountId": "00000000-0000-0000-0000-000000000000",
                   "lineType": "Item", "lineObjectNumber": format!("{:04}-S", 1000 + item),
                   "description": format!("{} #{item}", GOODS[item % GOODS.len()]),
                   "unitOfMeasureId": guid(9, 4), "unitOfMeasureCode": "PCS", "quantity": quantity,
                   "unitPrice": money(unit), "discountAmount": money(0), "discountPercent": 0,
                   "discountAppliedBeforeTax": false, "amountExcludingTax": money(excl), "taxCode": "TAXABLE",
                   "taxPercent": 8, "totalTaxAmount": money(tax), "amountIncludingTax": money(excl + tax),
                   "invoiceDiscountAllocation": 0, "netAmount": money(excl), "netTaxAmount": money(tax),
                   "netAmountIncludingTax": money(excl + tax), "shipmentDate": "2026-10-02",
                   "itemVariantId": "00000000-0000-0000-0000-000000000000", "locationId": "00000000-0000-0000-0000-000000000000"})
        })
        .collect();
    let status = match n % 10 {
        0..=5 => "Open",
        6..=8 => "Paid",
        _ => "Canceled",
    };
    let currency = if n.is_multiple_of(7) { "EUR" } else { "" };
    let (city, state, zip) = (buyer["city"].clone(), buyer["state"].clone(), buyer["postalCode"].clone());
    let mut header = json!({
        "@odata.etag": format!("W/\"JzQ0O0ludm9pY2V7{n}\""), "id": id, "number": format!("PS-INV{:06}", 100_000 + n),
        "externalDocumentNumber": "", "invoiceDate": format!("2026-{:02}-{:02}", 1 + n % 12, 1 + n % 28),
        "postingDate": format!("2026-{:02}-{:02}", 1 + n % 12, 1 + n % 28), "dueDate": "2026-12-31",
        "customerPurchaseOrderReference": "", "customerId": guid(1, c), "customerNumber": format!("C{c:06}"),
        "customerName": buyer["displayName"], "billToName": buyer["displayName"], "billToCustomerId": guid(1, c),
        "billToCustomerNumber": format!("C{c:06}"), "shipToName": buyer["displayName"], "shipToContact": "",
        "sellToAddressLine1": buyer["addressLine1"], "sellToAddressLine2": "", "sellToCity": city, "sellToCountry": "US",
        "sellToState": state, "sellToPostCode": zip, "billToAddressLine1": buyer["addressLine1"], "billToAddressLine2": "",
        "billToCity": city, "billToCountry": "US", "billToState": state, "billToPostCode": zip,
    });
    let rest = json!({
        "shipToAddressLine1": buyer["addressLine1"], "shipToAddressLine2": "", "shipToCity": city, "shipToCountry": "US",
        "shipToState": state, "shipToPostCode": zip, "currencyId": "00000000-0000-0000-0000-000000000000",
        "currencyCode": currency, "orderId": "00000000-0000-0000-0000-000000000000", "orderNumber": "",
        "paymentTermsId": guid(9, 2), "shipmentMethodId": "00000000-0000-0000-0000-000000000000", "salesperson": "",
        "disputeStatusId": "00000000-0000-0000-0000-000000000000", "disputeStatus": "",
        "pricesIncludeTax": false, "remainingAmount": money(excl_total + tax_total), "discountAmount": money(0),
        "discountAppliedBeforeTax": false, "totalAmountExcludingTax": money(excl_total),
        "totalTaxAmount": money(tax_total), "totalAmountIncludingTax": money(excl_total + tax_total), "status": status,
        "lastModifiedDateTime": format!("2026-10-{:02}T{:02}:{:02}:00Z", 1 + n % 28, n % 24, n % 60),
        "phoneNumber": buyer["phoneNumber"], "email": buyer["email"], "salesInvoiceLines": items,
    });
    if let (Some(h), Value::Object(r)) = (header.as_object_mut(), rest) {
        h.extend(r);
    }
    header
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_deterministic_and_amounts_add_up() {
        let a = invoice(3, 5, 100, &mut Dice::new(1));
        assert_eq!(a, invoice(3, 5, 100, &mut Dice::new(1)));
        let lines = a["salesInvoiceLines"].as_array().unwrap();
        assert_eq!(lines.len(), 5);
        let sum: f64 = lines.iter().map(|l| l["amountIncludingTax"].as_f64().unwrap()).sum();
        assert!((sum - a["totalAmountIncludingTax"].as_f64().unwrap()).abs() < 0.001);
        let c = customer(4, &mut Dice::new(1));
        assert_eq!(c["type"], "Company");
        assert!(engine::template::normalize_email(c["email"].as_str().unwrap()).is_some());
    }
}
