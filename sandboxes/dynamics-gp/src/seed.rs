//! Sample data: Fabrikam (`-1`, GP's sample company, database `TWO`) and Contoso (`2`), with
//! the cases a connector must survive: several e-mail addresses in one field, invalid ones,
//! e-mail only in `INET1`, no internet row, an e-mail edited after the customer (the SY01200
//! stamp is newer than the customer's), XML special characters, foreign currencies, and
//! invoices open, partly paid, paid, voided and moved to history.
//!
//! Seed timestamps are fixed (2024) so tests can assert on them; later changes use the sandbox
//! clock.

use jiff::Timestamp;
use serde::Deserialize;

use crate::admin::Admin;
use crate::model::{self, AddressInput, Company, CustomerInput, InternetAddresses, InvoiceInput, LineInput, key};

fn ts(text: &str) -> Timestamp {
    text.parse().expect("valid seed timestamp")
}

fn email(to: &str) -> Option<InternetAddresses> {
    Some(InternetAddresses { email_to: to.into(), ..Default::default() })
}

#[allow(clippy::too_many_arguments)]
fn address(
    id: &str,
    line1: &str,
    city: &str,
    state: &str,
    zip: &str,
    country: &str,
    phone: &str,
    internet: Option<InternetAddresses>,
) -> AddressInput {
    AddressInput {
        id: id.into(),
        line1: line1.into(),
        city: city.into(),
        state: state.into(),
        postal_code: zip.into(),
        country: country.into(),
        phone1: phone.into(),
        internet,
        ..Default::default()
    }
}

fn customer(id: &str, name: &str, class: &str, salesperson: &str, addresses: Vec<AddressInput>) -> CustomerInput {
    CustomerInput {
        id: id.into(),
        name: name.into(),
        class_id: class.into(),
        salesperson_id: salesperson.into(),
        statement_name: name.into(),
        short_name: name.chars().take(15).collect(),
        payment_terms_id: "Net 30".into(),
        created: "2017-04-12".into(),
        addresses,
        ..Default::default()
    }
}

/// Inserts a customer stamped at `at` (internet rows too), then restamps the internet rows
/// listed in `email_changed` (an e-mail edited later, which leaves the customer's stamp alone).
fn put(company: &mut Company, input: CustomerInput, at: &str, email_changed: Option<&str>) {
    let input = model::validate_customer(input).expect("valid seed customer");
    let mut stored = model::apply_customer(None, input, ts(at));
    if let Some(later) = email_changed {
        for address in &mut stored.addresses {
            if let Some((_, stamp)) = address.internet.as_deref_mut() {
                *stamp = ts(later);
            }
        }
    }
    company.customers.insert(key(&stored.input.id), Box::new(stored));
}

fn invoice(number: &str, customer: &str, date: &str, lines: &[(&str, &str, &str, &str)]) -> InvoiceInput {
    InvoiceInput {
        number: number.into(),
        customer_id: customer.into(),
        date: date.into(),
        lines: lines
            .iter()
            .map(|(item, description, quantity, price)| LineInput {
                item: (*item).into(),
                description: (*description).into(),
                quantity: (*quantity).into(),
                unit_price: (*price).into(),
            })
            .collect(),
        ..Default::default()
    }
}

fn fabrikam() -> Company {
    let mut c = Company::new(-1, "Fabrikam, Inc.", "TWO");
    let us =
        |id: &str, line: &str, city: &str, state: &str, zip: &str, phone: &str, mail: Option<InternetAddresses>| {
            address(id, line, city, state, zip, "USA", phone, mail)
        };
    put(
        &mut c,
        customer(
            "AARONFIT0001",
            "Aaron Fitz Electrical",
            "USA-ILMO-T1",
            "GREG E.",
            vec![us(
                "PRIMARY",
                "One Microsoft Way",
                "Chicago",
                "IL",
                "60603-0776",
                "31255501010000",
                Some(InternetAddresses {
                    email_to: "orders@aaronfitz.example".into(),
                    inet: vec!["orders@aaronfitz.example".into(), "www.aaronfitz.example".into()],
                    ..Default::default()
                }),
            )],
        ),
        "2024-01-10T09:15:30.127Z",
        None,
    );
    put(
        &mut c,
        customer(
            "ADAMPARK0001",
            "Adam Park Resort",
            "USA-ILMO-T2",
            "NANCY B.",
            vec![us(
                "PRIMARY",
                "Suite 9876",
                "Chicago",
                "IL",
                "60605-2334",
                "31255501020000",
                email("frontdesk@adampark.example;accounting@adampark.example"),
            )],
        ),
        "2024-03-01T14:00:00.003Z",
        Some("2024-06-01T08:30:00.500Z"),
    );
    put(
        &mut c,
        customer(
            "ADVANCED0001",
            "Advanced Paper Co.",
            "USA-ILMO-T1",
            "GREG E.",
            vec![us("PRIMARY", "456 Oak Street", "Chicago", "IL", "60611", "31255501030000", email("not-an-email"))],
        ),
        "2024-02-05T11:11:11.110Z",
        None,
    );
    put(
        &mut c,
        CustomerInput {
            primary_address_id: "PRIMARY".into(),
            ship_to_address_id: "WAREHOUSE".into(),
            ..customer(
                "ALTONMAN0001",
                "Alton Manufacturing",
                "USA-ILMO-T3",
                "PAUL W.",
                vec![
                    us("PRIMARY", "P.O. Box 3333", "Alton", "IL", "62002", "61855501040000", None),
                    us(
                        "WAREHOUSE",
                        "12 River Road",
                        "Alton",
                        "IL",
                        "62002",
                        "61855501050000",
                        email("receiving@alton.example"),
                    ),
                ],
            )
        },
        "2024-02-20T16:45:00.997Z",
        None,
    );
    put(
        &mut c,
        customer(
            "AMERICAN0001",
            "American Science Museum",
            "USA-ILMO-T1",
            "NANCY B.",
            vec![us(
                "PRIMARY",
                "100 Lake Shore Drive",
                "Chicago",
                "IL",
                "60601",
                "31255501060000",
                email(" Museum@AmSci.example ; "),
            )],
        ),
        "2024-04-18T07:07:07.007Z",
        None,
    );
    put(
        &mut c,
        CustomerInput {
            inactive: true,
            ..customer(
                "ASSOCIAT0001",
                "Associated Insurance Company",
                "USA-ILMO-T2",
                "GREG E.",
                vec![us(
                    "PRIMARY",
                    "2 Insurance Plaza",
                    "Springfield",
                    "IL",
                    "62701",
                    "21755501070000",
                    email("claims@associated.example"),
                )],
            )
        },
        "2024-01-25T10:00:00Z",
        None,
    );
    put(
        &mut c,
        CustomerInput {
            on_hold: true,
            ..customer(
                "ATMORERE0001",
                "Atmore Retirement Center",
                "USA-ALAB-T1",
                "PAUL W.",
                vec![us(
                    "PRIMARY",
                    "88 Pine Avenue",
                    "Atmore",
                    "AL",
                    "36502",
                    "25155501080000",
                    Some(InternetAddresses { inet: vec!["info@atmore.example".into()], ..Default::default() }),
                )],
            )
        },
        "2024-03-12T12:12:12.013Z",
        None,
    );
    put(
        &mut c,
        customer(
            "BAKERSEM0001",
            "Baker's Emporium Inc.",
            "USA-ILMO-T1",
            "GREG E.",
            vec![us(
                "PRIMARY",
                "9 Market Street",
                "Chicago",
                "IL",
                "60607",
                "31255501090000",
                email("baker@emporium.example,sales@emporium.example"),
            )],
        ),
        "2024-05-02T13:14:15.437Z",
        None,
    );
    put(
        &mut c,
        customer(
            "SMITHSON0001",
            "Smith & Sons <Wholesale>",
            "USA-ILMO-T2",
            "NANCY B.",
            vec![us(
                "PRIMARY",
                "1 \"Quoted\" Lane",
                "Peoria",
                "IL",
                "61602",
                "30955501100000",
                email("smith&sons@wholesale.example"),
            )],
        ),
        "2024-05-03T09:00:00.100Z",
        None,
    );
    put(
        &mut c,
        CustomerInput {
            currency_id: "Z-UK".into(),
            ..customer(
                "CENTRALC0001",
                "Central Communications LTD",
                "INTL-UK",
                "PAUL W.",
                vec![address(
                    "PRIMARY",
                    "27 Fleet Street",
                    "London",
                    "",
                    "EC4Y 1AA",
                    "United Kingdom",
                    "442075550111",
                    email("ap@centralcomms.example"),
                )],
            )
        },
        "2024-04-01T08:00:00.250Z",
        None,
    );
    put(
        &mut c,
        CustomerInput {
            currency_id: "Z-EURO".into(),
            corporate_account_id: "CENTRALC0001".into(),
            ..customer(
                "EUROCONT0001",
                "Contoso GmbH Europe",
                "INTL-EU",
                "PAUL W.",
                vec![address(
                    "PRIMARY",
                    "Unter den Linden 1",
                    "Berlin",
                    "",
                    "10117",
                    "Germany",
                    "49305550122",
                    email("einkauf@contoso-gmbh.example"),
                )],
            )
        },
        "2024-04-02T08:00:00.500Z",
        None,
    );
    let at = |text: &str| ts(text);
    let post = |c: &mut Company, input: InvoiceInput, when: &str| {
        c.add_invoice(input, at(when)).expect("valid seed invoice");
    };
    post(
        &mut c,
        InvoiceInput {
            freight: "10.00".into(),
            tax: "8.50".into(),
            po_number: "PO-7781".into(),
            ..invoice("STDINV2001", "AARONFIT0001", "2024-04-02", &[("128 SDRAM", "128 meg SDRAM", "2", "59.95")])
        },
        "2024-04-02T17:00:00.003Z",
    );
    post(
        &mut c,
        invoice("STDINV2002", "ADAMPARK0001", "2024-04-05", &[("WIRE100", "Wire spool", "10", "45.00")]),
        "2024-04-05T10:00:00Z",
    );
    c.pay_invoice("STDINV2002", Some(10_000), at("2024-04-20T09:30:00.127Z")).expect("seed payment");
    post(
        &mut c,
        invoice("STDINV2003", "ADVANCED0001", "2024-03-15", &[("PAPER", "Paper, case", "5", "30.00")]),
        "2024-03-15T15:00:00Z",
    );
    c.pay_invoice("STDINV2003", None, at("2024-04-10T11:00:00.997Z")).expect("seed payment");
    post(
        &mut c,
        invoice("STDINV2004", "ALTONMAN0001", "2024-02-20", &[("HDWR", "Hardware kit", "1", "250.00")]),
        "2024-02-20T12:00:00Z",
    );
    c.void_invoice("STDINV2004", at("2024-02-22T08:00:00.500Z")).expect("seed void");
    post(
        &mut c,
        InvoiceInput {
            exchange_rate: Some(1.25),
            ..invoice("STDINV2005", "CENTRALC0001", "2024-04-12", &[("SERVICE", "Support contract", "1", "1200.00")])
        },
        "2024-04-12T09:00:00Z",
    );
    post(
        &mut c,
        InvoiceInput {
            exchange_rate: Some(1.08),
            ..invoice("STDINV2006", "EUROCONT0001", "2024-01-20", &[("SERVICE", "Installation", "3", "150.00")])
        },
        "2024-01-20T09:00:00Z",
    );
    c.pay_invoice("STDINV2006", None, at("2024-02-15T10:00:00Z")).expect("seed payment");
    for invoice in c.invoices.values_mut().filter(|i| i.number == "STDINV2006") {
        invoice.history = true;
        invoice.rm_ts = at("2024-03-01T02:00:00.003Z");
    }
    post(
        &mut c,
        invoice("STDINV2007", "AMERICAN0001", "2024-05-01", &[("EXHIBIT", "Exhibit cases", "4", "2499.99")]),
        "2024-05-01T16:20:00.440Z",
    );
    c
}

fn contoso() -> Company {
    let mut c = Company::new(2, "Contoso Ltd.", "CONT");
    for (id, name, mail, at) in [
        ("NORTHWIN0001", "Northwind Traders", "orders@northwind.example", "2024-02-01T10:00:00Z"),
        ("TAILSPIN0001", "Tailspin Toys", "buyer@tailspin.example;", "2024-02-02T10:00:00Z"),
        ("WINGTIPT0001", "Wingtip Toys", "", "2024-02-03T10:00:00Z"),
    ] {
        let mail = if mail.is_empty() { None } else { email(mail) };
        put(
            &mut c,
            customer(
                id,
                name,
                "RETAIL",
                "SARA D.",
                vec![address("MAIN", "1 Main Street", "Redmond", "WA", "98052", "USA", "42555501000000", mail)],
            ),
            at,
            None,
        );
    }
    c.add_invoice(
        invoice("INV000101", "NORTHWIN0001", "2024-02-10", &[("TOY", "Toy crate", "12", "19.99")]),
        ts("2024-02-10T12:00:00Z"),
    )
    .expect("valid seed invoice");
    c
}

/// Loads the default companies (replacing any with the same id).
pub fn default_seed(admin: &Admin) {
    let mut db = admin.shared().db();
    for company in [fabrikam(), contoso()] {
        db.insert(company.id, company);
    }
}

/// Adds `n` customers `BULK0000001` … to a company (for the 50,000-customer memory benchmark):
/// one primary address and one e-mail each, all stamped with the sandbox's current time (as a
/// bulk import would be). Does nothing (but log a warning) if the company does not exist.
pub fn seed_many_customers(admin: &Admin, company_id: i32, n: usize) {
    let now = admin.now();
    let mut db = admin.shared().db();
    let Some(company) = db.get_mut(&company_id) else {
        tracing::warn!(company_id, "seed_many_customers: no such company.");
        return;
    };
    let start = company.customers.keys().filter(|k| k.starts_with("BULK")).count() + 1;
    for i in start..start + n {
        let input = CustomerInput {
            id: format!("BULK{i:07}"),
            name: format!("Bulk Customer {i}"),
            class_id: "BULK".into(),
            addresses: vec![AddressInput {
                id: "PRIMARY".into(),
                line1: format!("{i} Bulk Street"),
                city: "Springfield".into(),
                state: "IL".into(),
                postal_code: "62701".into(),
                phone1: "21755500000000".into(),
                internet: email(&format!("bulk{i}@example.com")),
                ..Default::default()
            }],
            ..Default::default()
        };
        company.put_customer(input, now);
    }
}

/// A seed file: JSON applied over the default data.
///
/// ```json
/// {"companies": [{"id": 3, "name": "Adventure Works", "interid": "AW"}],
///  "customers": [{"company": -1, "customer": {"id": "NEWCUST0001", "name": "New", "addresses": [{"city": "Oslo"}]}}],
///  "invoices": [{"company": -1, "invoice": {"number": "X1", "customer_id": "NEWCUST0001", "subtotal": "10"}}],
///  "many_customers": [{"company": -1, "n": 50000}]}
/// ```
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SeedFile {
    /// Extra companies.
    pub companies: Vec<SeedCompany>,
    /// Customers to create or replace.
    pub customers: Vec<SeedCustomer>,
    /// Invoices to post.
    pub invoices: Vec<SeedInvoice>,
    /// Bulk customers.
    pub many_customers: Vec<SeedMany>,
}

/// A company of a seed file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedCompany {
    /// `CompanyKey.Id`.
    pub id: i32,
    /// Company name.
    pub name: String,
    /// Database name.
    pub interid: String,
}

/// A customer of a seed file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedCustomer {
    /// Company id.
    pub company: i32,
    /// The customer.
    pub customer: CustomerInput,
}

/// An invoice of a seed file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedInvoice {
    /// Company id.
    pub company: i32,
    /// The invoice.
    pub invoice: InvoiceInput,
}

/// Bulk customers of a seed file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedMany {
    /// Company id.
    pub company: i32,
    /// How many.
    pub n: usize,
}

/// Applies a seed file (see [`SeedFile`]).
pub fn apply_file(admin: &Admin, text: &str) -> Result<(), String> {
    let file: SeedFile = serde_json::from_str(text).map_err(|e| format!("seed file: {e}"))?;
    for c in file.companies {
        admin.add_company(c.id, &c.name, &c.interid).map_err(|e| e.to_string())?;
    }
    for c in file.customers {
        admin.upsert_customer(c.company, c.customer).map_err(|e| e.to_string())?;
    }
    for i in file.invoices {
        admin.add_invoice(i.company, i.invoice).map_err(|e| e.to_string())?;
    }
    for m in file.many_customers {
        seed_many_customers(admin, m.company, m.n);
    }
    Ok(())
}
