//! The data behind the services, shaped like GP's tables (reference §3) rather than like the
//! SOAP objects, so that the change semantics come out right:
//!
//! - `RM00101` (customer master): `DEX_ROW_TS` (UTC) bumped on every update, `MODIFDT` and
//!   `CREATDDT` date-only.
//! - `RM00102` (customer addresses): their own `DEX_ROW_TS`, and their triggers bump
//!   `RM00101.DEX_ROW_TS` too, so an address edit is a customer change.
//! - `SY01200` (internet addresses, where the e-mail lives): its own `DEX_ROW_TS` only. An
//!   e-mail edit does **not** change the customer's timestamp — a connector that polls
//!   customers by modified date will not see it (reference §0, §3.1).
//! - Entity action tracking (what GP's `GetChanged…KeyList` methods read): off until enabled
//!   per company, business object and action ([`Company::action_tracking`]); from then on every
//!   tracked create, update or delete of an internet address is logged with its time, whatever
//!   made it (GP's docs: "it doesn't matter where the action originates"). Actions before
//!   tracking was enabled are not in the log, so a `GetChanged…` call then returns nothing for
//!   them — "entity action tracking must be enabled for the GetChanged methods to return valid
//!   results".
//! - `RM20101` / `RM30101` (receivables open / history) plus `MC020102` (originating currency),
//!   and `SOP30200` (posted sales invoices): one [`Invoice`] holds the RM and SOP sides of a
//!   posted SOP invoice, which share the document number (reference §3.3).
//!
//! Text keys (`CUSTNMBR`, `ADRSCODE`, `DOCNUMBR`) compare case-insensitively, as under GP's
//! default SQL collation; values are stored trimmed (GP's `char` padding is a SQL artefact the
//! web services trim away).

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::clock::{self, NO_DATE};

/// Money in hundredths of the currency unit (every currency here has two decimals).
pub type Cents = i64;

/// GP currency ids and their ISO codes (Fabrikam's sample currencies).
pub const CURRENCIES: &[(&str, &str)] = &[("Z-US$", "USD"), ("Z-EURO", "EUR"), ("Z-UK", "GBP"), ("Z-C$", "CAD")];

/// The ISO code of a GP currency id.
pub fn iso(currency_id: &str) -> &'static str {
    CURRENCIES.iter().find(|(id, _)| id.eq_ignore_ascii_case(currency_id)).map(|(_, iso)| *iso).unwrap_or("USD")
}

/// A key as the collation compares it.
pub fn key(text: &str) -> String {
    text.trim().to_uppercase()
}

/// `12.34` from cents.
pub fn format_money(cents: Cents) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", cents.unsigned_abs() / 100, cents.unsigned_abs() % 100)
}

/// Cents from `12.34` / `12` / `-3.5` (at most two decimals).
pub fn parse_money(text: &str) -> Result<Cents, String> {
    let t = text.trim();
    let bad = || format!("'{text}' is not an amount with at most two decimals");
    let (neg, digits) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if int.is_empty()
        || frac.len() > 2
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let whole: i64 = int.parse().map_err(|_| bad())?;
    let cents: i64 = if frac.is_empty() { 0 } else { format!("{frac:0<2}").parse().map_err(|_| bad())? };
    let value = whole.checked_mul(100).and_then(|w| w.checked_add(cents)).ok_or_else(bad)?;
    Ok(if neg { -value } else { value })
}

/// A customer as the admin API writes it: `RM00101` fields plus its addresses.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CustomerInput {
    /// `CUSTNMBR`, at most 15 characters; the key.
    pub id: String,
    /// `CUSTNAME`, at most 64 characters.
    pub name: String,
    /// `CUSTCLAS`.
    pub class_id: String,
    /// `CPRCSTNM`: the parent (national) account.
    pub corporate_account_id: String,
    /// `STMTNAME`.
    pub statement_name: String,
    /// `SHRTNAME`.
    pub short_name: String,
    /// `SLPRSNID`.
    pub salesperson_id: String,
    /// `PYMTRMID`.
    pub payment_terms_id: String,
    /// `CURNCYID` (`Z-US$`, `Z-EURO`, …); empty means the company's functional currency.
    pub currency_id: String,
    /// `INACTIVE`.
    pub inactive: bool,
    /// `HOLD`.
    pub on_hold: bool,
    /// `COMMENT1`.
    pub comment1: String,
    /// `COMMENT2`.
    pub comment2: String,
    /// `USERDEF1`.
    pub user_defined1: String,
    /// `USERDEF2`.
    pub user_defined2: String,
    /// `ADRSCODE`: the primary address; empty means the first address.
    pub primary_address_id: String,
    /// `PRBTADCD`; empty means the primary address.
    pub bill_to_address_id: String,
    /// `PRSTADCD`; empty means the primary address.
    pub ship_to_address_id: String,
    /// `STADDRCD`; empty means the primary address.
    pub statement_to_address_id: String,
    /// `CREATDDT` as `YYYY-MM-DD`; empty means today.
    pub created: String,
    /// The `RM00102` rows.
    pub addresses: Vec<AddressInput>,
}

/// One customer address (`RM00102`) and its internet addresses (`SY01200`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AddressInput {
    /// `ADRSCODE`, at most 15 characters; empty means `PRIMARY`.
    pub id: String,
    /// `CNTCPRSN`.
    pub contact_person: String,
    /// `ADDRESS1`.
    pub line1: String,
    /// `ADDRESS2`.
    pub line2: String,
    /// `ADDRESS3`.
    pub line3: String,
    /// `CITY`.
    pub city: String,
    /// `STATE`.
    pub state: String,
    /// `ZIP`.
    pub postal_code: String,
    /// `COUNTRY`.
    pub country: String,
    /// `CCode`.
    pub country_code: String,
    /// `PHONE1` (GP stores digits, phone then a four-digit extension).
    pub phone1: String,
    /// `PHONE2`.
    pub phone2: String,
    /// `PHONE3`.
    pub phone3: String,
    /// `FAX`.
    pub fax: String,
    /// `ShipToName`.
    pub ship_to_name: String,
    /// `SLPRSNID`.
    pub salesperson_id: String,
    /// `SALSTERR`.
    pub sales_territory_id: String,
    /// `UPSZONE`.
    pub ups_zone: String,
    /// `SHIPMTHD`.
    pub shipping_method_id: String,
    /// `TAXSCHID`.
    pub tax_schedule_id: String,
    /// `USERDEF1`.
    pub user_defined1: String,
    /// `USERDEF2`.
    pub user_defined2: String,
    /// The `SY01200` row (`Master_Type = 'CUS'`), if any.
    pub internet: Option<InternetInput>,
}

/// `SY01200`: where GP keeps e-mail addresses. `email_to` may hold several addresses separated
/// by `;`, and nothing checks that they are valid.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InternetAddresses {
    /// `EmailToAddress`.
    pub email_to: String,
    /// `EmailCcAddress`.
    pub email_cc: String,
    /// `EmailBccAddress`.
    pub email_bcc: String,
    /// `Messenger_Address`.
    pub messenger: String,
    /// `INET1` … `INET8` (eConnect: INET1 = e-mail, INET2 = web site); at most eight.
    pub inet: Vec<String>,
    /// `INETINFO`.
    pub additional_information: String,
}

/// The admin input form of [`InternetAddresses`].
pub type InternetInput = InternetAddresses;

/// GP's `DataModificationAction`: what entity action tracking logs about a business object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum DataModificationAction {
    /// The object was created.
    Created,
    /// The object was updated.
    Updated,
    /// The object was deleted.
    Deleted,
}

impl DataModificationAction {
    /// GP's enumeration value (`Created`, `Updated`, `Deleted`).
    pub fn as_str(self) -> &'static str {
        match self {
            DataModificationAction::Created => "Created",
            DataModificationAction::Updated => "Updated",
            DataModificationAction::Deleted => "Deleted",
        }
    }
}

/// The business objects whose actions GP can track (Microsoft's "Overview of entity action
/// tracking"). Only `InternetAddress` has its `GetChanged…KeyList` in the sandbox; the others
/// are refused by the admin API rather than silently tracked into a log nothing reads.
pub const TRACKABLE_OBJECTS: &[&str] = &[
    "Currency",
    "Customer",
    "CustomerAddress",
    "InternetAddress",
    "Item",
    "PriceLevel",
    "Pricing",
    "SalesInvoice",
    "SalesOrder",
    "Salesperson",
    "ShippingMethod",
    "TaxDetail",
    "TaxScheduleDetail",
    "UofMSchedule",
];

/// One tracked action on an internet-address row (`SY01200`): what
/// `GetChangedInternetAddressKeyList` returns as a `ChangedInternetAddressKey`.
#[derive(Clone, Debug, PartialEq)]
pub struct InternetAddressAction {
    /// What happened.
    pub action: DataModificationAction,
    /// When (UTC, SQL `datetime` precision): `LastModifiedDate`.
    pub at: Timestamp,
    /// `Master_Type` (`CUS` for customers): `InternetAddressType`.
    pub master_type: &'static str,
    /// `Master_ID` (the `CUSTNMBR`): `InternetAddressKey`.
    pub master_id: String,
    /// `ADRSCODE`: `AddressKey/Id`.
    pub address_id: String,
}

/// A stored customer.
#[derive(Clone, Debug)]
pub struct Customer {
    /// The master fields (its `addresses` is kept empty; see `addresses`).
    pub input: CustomerInput,
    /// `RM00102` rows, in `ADRSCODE` order.
    pub addresses: Vec<Address>,
    /// `CREATDDT`.
    pub created: Date,
    /// `MODIFDT` (date-only).
    pub modified: Date,
    /// `RM00101.DEX_ROW_TS` (UTC).
    pub ts: Timestamp,
}

/// A stored address.
#[derive(Clone, Debug)]
pub struct Address {
    /// The `RM00102` fields (its `internet` is kept `None`).
    pub input: AddressInput,
    /// The `SY01200` row and its own `DEX_ROW_TS`.
    pub internet: Option<Box<(InternetAddresses, Timestamp)>>,
    /// `CREATDDT`.
    pub created: Date,
    /// `MODIFDT`.
    pub modified: Date,
    /// `RM00102.DEX_ROW_TS`.
    pub ts: Timestamp,
}

impl Customer {
    /// The primary address (`ADRSCODE`).
    pub fn primary(&self) -> Option<&Address> {
        self.address(&self.input.primary_address_id).or_else(|| self.addresses.first())
    }

    /// An address by id (case-insensitive).
    pub fn address(&self, id: &str) -> Option<&Address> {
        self.addresses.iter().find(|a| a.input.id.eq_ignore_ascii_case(id))
    }

    /// Back to the admin input form (with addresses and internet rows).
    pub fn to_input(&self) -> CustomerInput {
        let mut input = self.input.clone();
        input.created = self.created.to_string();
        input.addresses = self
            .addresses
            .iter()
            .map(|a| AddressInput { internet: a.internet.as_deref().map(|(i, _)| i.clone()), ..a.input.clone() })
            .collect();
        input
    }

    /// The customer as GP's tables hold it (column names, plus `id` = `CUSTNMBR` as in the
    /// admin input form), for the admin API and tests.
    pub fn to_json(&self) -> Value {
        let i = &self.input;
        let primary = self.primary().map(|a| a.input.id.clone()).unwrap_or_default();
        let mut value = json!({
            "CUSTNMBR": i.id, "CUSTNAME": i.name, "CUSTCLAS": i.class_id, "CPRCSTNM": i.corporate_account_id,
            "STMTNAME": i.statement_name, "SHRTNAME": i.short_name, "SLPRSNID": i.salesperson_id,
            "PYMTRMID": i.payment_terms_id, "CURNCYID": i.currency_id, "INACTIVE": u8::from(i.inactive),
            "HOLD": u8::from(i.on_hold), "COMMENT1": i.comment1, "COMMENT2": i.comment2,
            "USERDEF1": i.user_defined1, "USERDEF2": i.user_defined2, "ADRSCODE": primary,
            "CREATDDT": self.created.to_string(), "MODIFDT": self.modified.to_string(),
            "DEX_ROW_TS": clock::format_ts(self.ts),
        });
        value["addresses"] = Value::Array(self.addresses.iter().map(Address::to_json).collect());
        // The admin input form's key, next to the column name.
        value["id"] = json!(i.id);
        value
    }
}

impl Address {
    /// The `RM00102` row (and its `SY01200` row under `internet`).
    pub fn to_json(&self) -> Value {
        let x = &self.input;
        let mut value = json!({
            "ADRSCODE": x.id, "CNTCPRSN": x.contact_person, "ADDRESS1": x.line1, "ADDRESS2": x.line2,
            "ADDRESS3": x.line3, "CITY": x.city, "STATE": x.state, "ZIP": x.postal_code,
            "COUNTRY": x.country, "CCode": x.country_code, "PHONE1": x.phone1, "PHONE2": x.phone2,
            "PHONE3": x.phone3, "FAX": x.fax, "MODIFDT": self.modified.to_string(),
            "DEX_ROW_TS": clock::format_ts(self.ts),
        });
        value["internet"] = match self.internet.as_deref() {
            Some((n, ts)) => json!({
                "EmailToAddress": n.email_to, "EmailCcAddress": n.email_cc, "EmailBccAddress": n.email_bcc,
                "INET": n.inet, "DEX_ROW_TS": clock::format_ts(*ts),
            }),
            None => Value::Null,
        };
        value
    }
}

/// Checks an input against GP's column sizes and keys; returns it normalised (trimmed, default
/// address ids filled in).
pub fn validate_customer(mut input: CustomerInput) -> Result<CustomerInput, String> {
    fn limit(what: &str, value: &str, max: usize) -> Result<(), String> {
        if value.chars().count() > max {
            Err(format!("{what} '{value}' is longer than {max} characters"))
        } else {
            Ok(())
        }
    }
    input.id = input.id.trim().to_string();
    if input.id.is_empty() {
        return Err("a customer needs an id (CUSTNMBR)".into());
    }
    limit("CUSTNMBR", &input.id, 15)?;
    limit("CUSTNAME", &input.name, 64)?;
    for (what, value) in [
        ("CUSTCLAS", &input.class_id),
        ("CPRCSTNM", &input.corporate_account_id),
        ("SLPRSNID", &input.salesperson_id),
        ("CURNCYID", &input.currency_id),
    ] {
        limit(what, value, 15)?;
    }
    if !input.currency_id.is_empty() && !CURRENCIES.iter().any(|(id, _)| id.eq_ignore_ascii_case(&input.currency_id)) {
        return Err(format!("unknown currency id '{}'", input.currency_id));
    }
    if !input.created.is_empty() {
        clock::parse_date(&input.created)?;
    }
    let mut seen = Vec::new();
    for address in &mut input.addresses {
        address.id = address.id.trim().to_string();
        if address.id.is_empty() {
            address.id = "PRIMARY".into();
        }
        limit("ADRSCODE", &address.id, 15)?;
        for (what, value, max) in [
            ("ADDRESS1", &address.line1, 60),
            ("ADDRESS2", &address.line2, 60),
            ("ADDRESS3", &address.line3, 60),
            ("CITY", &address.city, 34),
            ("STATE", &address.state, 28),
            ("ZIP", &address.postal_code, 10),
            ("COUNTRY", &address.country, 60),
        ] {
            limit(what, value, max)?;
        }
        if let Some(internet) = &address.internet {
            if internet.inet.len() > 8 {
                return Err("SY01200 has eight INET fields".into());
            }
            for value in &internet.inet {
                limit("INET", value, 200)?;
            }
        }
        if seen.contains(&key(&address.id)) {
            return Err(format!("address id '{}' appears twice", address.id));
        }
        seen.push(key(&address.id));
    }
    for (what, id) in [
        ("primary", &input.primary_address_id),
        ("bill-to", &input.bill_to_address_id),
        ("ship-to", &input.ship_to_address_id),
        ("statement-to", &input.statement_to_address_id),
    ] {
        if !id.is_empty() && !seen.contains(&key(id)) {
            return Err(format!("the {what} address '{id}' is not one of the customer's addresses"));
        }
    }
    Ok(input)
}

/// Writes `input` over `existing` (or creates the customer), stamping only the rows that
/// changed, with the trigger semantics described in the module docs.
pub fn apply_customer(existing: Option<&Customer>, input: CustomerInput, now: Timestamp) -> Customer {
    let today = clock::utc(now).date();
    let mut master = input.clone();
    let new_addresses = std::mem::take(&mut master.addresses);
    let created = clock::parse_date(&input.created).unwrap_or(today);
    let mut customer = match existing {
        Some(old) => {
            Customer { input: master.clone(), addresses: Vec::new(), created, modified: old.modified, ts: old.ts }
        }
        None => Customer { input: master.clone(), addresses: Vec::new(), created, modified: today, ts: now },
    };
    let master_changed = existing.is_some_and(|old| {
        let mut old_master = old.input.clone();
        old_master.created = String::new();
        let mut new_master = master.clone();
        new_master.created = String::new();
        old_master != new_master
    });
    let mut address_changed = false;
    let mut addresses: Vec<Address> = Vec::new();
    for mut a in new_addresses {
        let internet = a.internet.take();
        let old = existing.and_then(|c| c.address(&a.id));
        let (created, modified, ts) = match old {
            Some(o) if o.input == a => (o.created, o.modified, o.ts),
            Some(o) => {
                address_changed = true;
                (o.created, today, now)
            }
            None => {
                address_changed |= existing.is_some();
                (today, today, now)
            }
        };
        // SY01200 keeps its own stamp; it never touches RM00101/RM00102.
        let internet = internet.map(|n| {
            let stamp = match old.and_then(|o| o.internet.as_deref()) {
                Some((same, ts)) if *same == n => *ts,
                _ => now,
            };
            Box::new((n, stamp))
        });
        addresses.push(Address { input: a, internet, created, modified, ts });
    }
    if let Some(old) = existing {
        address_changed |=
            old.addresses.iter().any(|o| !addresses.iter().any(|a| a.input.id.eq_ignore_ascii_case(&o.input.id)));
    }
    addresses.sort_by_key(|a| key(&a.input.id));
    // A Vec of large elements starts at capacity 4; most customers have one address.
    addresses.shrink_to_fit();
    customer.addresses = addresses;
    if master_changed || address_changed {
        customer.ts = now;
        customer.modified = today;
    }
    customer
}

/// One line of a posted sales invoice (`SOP30300`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LineInput {
    /// `ITEMNMBR`.
    pub item: String,
    /// `ITEMDESC`.
    pub description: String,
    /// `QUANTITY` (at most two decimals here).
    pub quantity: String,
    /// `UNITPRCE`.
    pub unit_price: String,
}

/// A posted sales invoice as the admin API writes it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InvoiceInput {
    /// `SOPNUMBE` = `DOCNUMBR`, at most 20 characters.
    pub number: String,
    /// `CUSTNMBR`; the customer must exist.
    pub customer_id: String,
    /// `DOCDATE` (`YYYY-MM-DD`); empty means today.
    pub date: String,
    /// `DUEDATE`; empty means 30 days after the document date.
    pub due_date: String,
    /// `CURNCYID`; empty means the customer's currency, else the functional one.
    pub currency_id: String,
    /// `XCHGRATE` to the functional currency (1 for the functional currency).
    pub exchange_rate: Option<f64>,
    /// The lines; their extended prices make the subtotal.
    pub lines: Vec<LineInput>,
    /// The subtotal when there are no lines.
    pub subtotal: String,
    /// `TRDISAMT`.
    pub trade_discount: String,
    /// `FRTAMNT`.
    pub freight: String,
    /// `MISCAMNT`.
    pub misc: String,
    /// `TAXAMNT`.
    pub tax: String,
    /// `BACHNUMB`; empty means `SALES` + the date.
    pub batch_id: String,
    /// `SLPRSNID`; empty means the customer's.
    pub salesperson_id: String,
    /// `CSTPONBR`.
    pub po_number: String,
    /// `TRXDSCRN`.
    pub description: String,
}

/// A stored invoice line.
#[derive(Clone, Debug)]
pub struct Line {
    /// `ITEMNMBR`.
    pub item: String,
    /// `ITEMDESC`.
    pub description: String,
    /// Quantity in hundredths.
    pub quantity: i64,
    /// `UNITPRCE` (originating currency).
    pub unit_price: Cents,
    /// `XTNDPRCE`.
    pub extended: Cents,
}

/// A posted SOP invoice (`SOP30200`) and its receivables document (`RM20101`/`RM30101`,
/// `RMDTYPAL` 1, with `MC020102` for the originating currency).
#[derive(Clone, Debug)]
pub struct Invoice {
    /// `SOPNUMBE` / `DOCNUMBR`.
    pub number: String,
    /// `CUSTNMBR`.
    pub customer_id: String,
    /// `CUSTNAME` as posted.
    pub customer_name: String,
    /// `CSTPONBR`.
    pub po_number: String,
    /// `DOCDATE`.
    pub date: Date,
    /// `DUEDATE`.
    pub due_date: Date,
    /// `CURNCYID`.
    pub currency_id: String,
    /// `XCHGRATE` (originating → functional).
    pub rate: f64,
    /// The lines.
    pub lines: Vec<Line>,
    /// Subtotal (originating).
    pub subtotal: Cents,
    /// `TRDISAMT`.
    pub trade_discount: Cents,
    /// `FRTAMNT`.
    pub freight: Cents,
    /// `MISCAMNT`.
    pub misc: Cents,
    /// `TAXAMNT`.
    pub tax: Cents,
    /// `BACHNUMB`.
    pub batch_id: String,
    /// `SLPRSNID`.
    pub salesperson_id: String,
    /// `TRXDSCRN`.
    pub description: String,
    /// `MSTRNUMB`.
    pub master_number: i32,
    /// RM `CURTRXAM` (originating): what is still owed.
    pub current: Cents,
    /// In `RM30101` (history) rather than `RM20101` (open).
    pub history: bool,
    /// `VOIDSTTS` (0 none, 1 void, 2 NSF, 3 waived).
    pub void_status: i16,
    /// `VOIDDATE` (`1900-01-01` when not voided).
    pub void_date: Date,
    /// `DINVPDOF` (`1900-01-01` until paid off).
    pub paid_off: Date,
    /// `RM20101/RM30101.DEX_ROW_TS`.
    pub rm_ts: Timestamp,
    /// `SOP30200.CREATDDT`.
    pub sop_created: Date,
    /// `SOP30200.DEX_ROW_TS`. Applying payments or voiding in RM does not touch the SOP
    /// history header (inferred from reference §3.3: SOP has the header, RM the balance).
    pub sop_ts: Timestamp,
}

impl Invoice {
    /// `ORTRXAMT` = `DOCAMNT` (originating).
    pub fn total(&self) -> Cents {
        self.subtotal - self.trade_discount + self.freight + self.misc + self.tax
    }

    /// An originating amount in the functional currency.
    pub fn functional(&self, cents: Cents) -> Cents {
        (cents as f64 * self.rate).round() as Cents
    }

    /// The RM transaction state.
    pub fn rm_state(&self) -> &'static str {
        if self.history { "History" } else { "Open" }
    }

    /// The invoice as GP's tables hold it (plus `number` = `DOCNUMBR` as in the admin input
    /// form), for the admin API and tests.
    pub fn to_json(&self) -> Value {
        json!({
            "DOCNUMBR": self.number, "RMDTYPAL": 1, "CUSTNMBR": self.customer_id, "CUSTNAME": self.customer_name,
            "DOCDATE": self.date.to_string(), "DUEDATE": self.due_date.to_string(), "CURNCYID": self.currency_id,
            "XCHGRATE": self.rate, "ORTRXAMT": format_money(self.total()), "CURTRXAM": format_money(self.current),
            "table": if self.history { "RM30101" } else { "RM20101" }, "VOIDSTTS": self.void_status,
            "VOIDDATE": self.void_date.to_string(), "DINVPDOF": self.paid_off.to_string(),
            "DEX_ROW_TS": clock::format_ts(self.rm_ts), "SOP30200_DEX_ROW_TS": clock::format_ts(self.sop_ts),
            "BACHNUMB": self.batch_id, "SLPRSNID": self.salesperson_id, "number": self.number,
        })
    }
}

/// A GP company (a company database).
#[derive(Clone, Debug)]
pub struct Company {
    /// The numeric company id (`CompanyKey.Id`; Fabrikam is `-1`).
    pub id: i32,
    /// The company name (`CMPNYNAM`; the SBA URL segment).
    pub name: String,
    /// The database name (`INTERID`).
    pub interid: String,
    /// The functional currency id.
    pub functional_currency: String,
    /// When the company was created.
    pub created: Date,
    /// Customers by collation key (boxed: B-tree nodes hold values inline and are often
    /// half full, which matters at 50,000 customers).
    pub customers: BTreeMap<String, Box<Customer>>,
    /// Invoices by collation key of the document number.
    pub invoices: BTreeMap<String, Invoice>,
    /// The next `MSTRNUMB`.
    pub next_master_number: i32,
    /// Entity action tracking: the actions logged per business object (none until enabled).
    pub action_tracking: BTreeMap<&'static str, BTreeSet<DataModificationAction>>,
    /// The tracked actions on internet addresses, oldest first.
    pub internet_address_actions: Vec<InternetAddressAction>,
}

impl Company {
    /// An empty company.
    pub fn new(id: i32, name: &str, interid: &str) -> Company {
        Company {
            id,
            name: name.into(),
            interid: interid.into(),
            functional_currency: "Z-US$".into(),
            created: jiff::civil::date(2017, 4, 12),
            customers: BTreeMap::new(),
            invoices: BTreeMap::new(),
            next_master_number: 1,
            action_tracking: BTreeMap::new(),
            internet_address_actions: Vec::new(),
        }
    }

    /// Whether `action` on `object` is tracked.
    pub fn tracks(&self, object: &str, action: DataModificationAction) -> bool {
        self.action_tracking.get(object).is_some_and(|actions| actions.contains(&action))
    }

    /// Writes a customer (creating or replacing it, see [`apply_customer`]) and logs the tracked
    /// actions on its internet addresses.
    pub fn put_customer(&mut self, input: CustomerInput, now: Timestamp) {
        let k = key(&input.id);
        let old = self.customers.remove(&k);
        let new = apply_customer(old.as_deref(), input, now);
        self.log_internet_address_actions(old.as_deref(), Some(&new), now);
        self.customers.insert(k, Box::new(new));
    }

    /// Deletes a customer; its internet-address rows go with it (logged as deletes when
    /// tracked).
    pub fn remove_customer(&mut self, id: &str, now: Timestamp) -> Option<Box<Customer>> {
        let old = self.customers.remove(&key(id))?;
        self.log_internet_address_actions(Some(&old), None, now);
        Some(old)
    }

    /// Compares a customer's `SY01200` rows before and after a write: a row that appears is
    /// created, one whose values differ is updated, one that goes (with its address or alone)
    /// is deleted. Only tracked actions are logged.
    fn log_internet_address_actions(&mut self, old: Option<&Customer>, new: Option<&Customer>, now: Timestamp) {
        let rows = |c: Option<&Customer>| -> Vec<(String, InternetAddresses)> {
            c.map(|c| {
                c.addresses
                    .iter()
                    .filter_map(|a| a.internet.as_deref().map(|(row, _)| (a.input.id.clone(), row.clone())))
                    .collect()
            })
            .unwrap_or_default()
        };
        if !self.action_tracking.contains_key("InternetAddress") {
            return;
        }
        let Some(master_id) = new.or(old).map(|c| c.input.id.clone()) else { return };
        let (before, after) = (rows(old), rows(new));
        let find = |rows: &[(String, InternetAddresses)], id: &str| {
            rows.iter().find(|(a, _)| a.eq_ignore_ascii_case(id)).map(|(_, row)| row.clone())
        };
        let mut actions = Vec::new();
        for (address_id, row) in &after {
            match find(&before, address_id) {
                None => actions.push((DataModificationAction::Created, address_id.clone())),
                Some(previous) if previous != *row => {
                    actions.push((DataModificationAction::Updated, address_id.clone()))
                }
                Some(_) => {}
            }
        }
        for (address_id, _) in &before {
            if find(&after, address_id).is_none() {
                actions.push((DataModificationAction::Deleted, address_id.clone()));
            }
        }
        for (action, address_id) in actions {
            if self.tracks("InternetAddress", action) {
                self.internet_address_actions.push(InternetAddressAction {
                    action,
                    at: now,
                    master_type: "CUS",
                    master_id: master_id.clone(),
                    address_id,
                });
            }
        }
    }

    /// Posts an invoice (creates its SOP and RM sides).
    pub fn add_invoice(&mut self, input: InvoiceInput, now: Timestamp) -> Result<&Invoice, String> {
        let today = clock::utc(now).date();
        let number = input.number.trim().to_string();
        if number.is_empty() || number.chars().count() > 20 {
            return Err("an invoice needs a number of at most 20 characters".into());
        }
        if self.invoices.contains_key(&key(&number)) {
            return Err(format!("document {number} already exists"));
        }
        let customer = self
            .customers
            .get(&key(&input.customer_id))
            .ok_or_else(|| format!("customer '{}' does not exist", input.customer_id))?;
        let currency_id = [&input.currency_id, &customer.input.currency_id, &self.functional_currency]
            .into_iter()
            .find(|c| !c.is_empty())
            .cloned()
            .unwrap_or_default();
        if !CURRENCIES.iter().any(|(id, _)| id.eq_ignore_ascii_case(&currency_id)) {
            return Err(format!("unknown currency id '{currency_id}'"));
        }
        let functional = currency_id.eq_ignore_ascii_case(&self.functional_currency);
        let rate = match input.exchange_rate {
            Some(r) if r > 0.0 && (!functional || r == 1.0) => r,
            Some(_) => return Err("the exchange rate must be positive (and 1 for the functional currency)".into()),
            None if functional => 1.0,
            None => return Err(format!("an invoice in {currency_id} needs an exchange_rate")),
        };
        let date = if input.date.is_empty() { today } else { clock::parse_date(&input.date)? };
        let due_date = if input.due_date.is_empty() {
            date.checked_add(jiff::Span::new().days(30)).map_err(|e| e.to_string())?
        } else {
            clock::parse_date(&input.due_date)?
        };
        let money = |text: &str| if text.is_empty() { Ok(0) } else { parse_money(text) };
        let mut lines = Vec::new();
        for line in &input.lines {
            let quantity = parse_money(&line.quantity).map_err(|e| format!("quantity: {e}"))?;
            let unit_price = parse_money(&line.unit_price)?;
            let extended = (quantity as i128 * unit_price as i128 / 100) as Cents;
            lines.push(Line {
                item: line.item.clone(),
                description: line.description.clone(),
                quantity,
                unit_price,
                extended,
            });
        }
        let subtotal = if lines.is_empty() { money(&input.subtotal)? } else { lines.iter().map(|l| l.extended).sum() };
        let master_number = self.next_master_number;
        self.next_master_number += 1;
        let invoice = Invoice {
            customer_id: customer.input.id.clone(),
            customer_name: customer.input.name.clone(),
            po_number: input.po_number,
            date,
            due_date,
            currency_id,
            rate,
            lines,
            subtotal,
            trade_discount: money(&input.trade_discount)?,
            freight: money(&input.freight)?,
            misc: money(&input.misc)?,
            tax: money(&input.tax)?,
            batch_id: if input.batch_id.is_empty() {
                format!("SALES{}", date.strftime("%Y%m%d"))
            } else {
                input.batch_id
            },
            salesperson_id: if input.salesperson_id.is_empty() {
                customer.input.salesperson_id.clone()
            } else {
                input.salesperson_id
            },
            description: input.description,
            master_number,
            current: 0,
            history: false,
            void_status: 0,
            void_date: NO_DATE,
            paid_off: NO_DATE,
            rm_ts: now,
            sop_created: today,
            sop_ts: now,
            number: number.clone(),
        };
        if invoice.total() <= 0 {
            return Err("an invoice must have a positive total".into());
        }
        let mut invoice = invoice;
        invoice.current = invoice.total();
        Ok(self.invoices.entry(key(&number)).or_insert(invoice))
    }

    /// Applies a cash receipt of `amount` (default: the whole remaining amount).
    pub fn pay_invoice(&mut self, number: &str, amount: Option<Cents>, now: Timestamp) -> Result<&Invoice, String> {
        let invoice = self.invoices.get_mut(&key(number)).ok_or_else(|| format!("document {number} does not exist"))?;
        if invoice.void_status != 0 {
            return Err(format!("document {number} is voided"));
        }
        let amount = amount.unwrap_or(invoice.current);
        if amount <= 0 || amount > invoice.current {
            return Err(format!(
                "cannot apply {} to document {number} with {} remaining",
                format_money(amount),
                format_money(invoice.current)
            ));
        }
        invoice.current -= amount;
        if invoice.current == 0 {
            invoice.paid_off = clock::utc(now).date();
        }
        invoice.rm_ts = now;
        Ok(invoice)
    }

    /// Voids an unpaid posted invoice: `VOIDSTTS` 1, nothing owed, moved to history.
    pub fn void_invoice(&mut self, number: &str, now: Timestamp) -> Result<&Invoice, String> {
        let invoice = self.invoices.get_mut(&key(number)).ok_or_else(|| format!("document {number} does not exist"))?;
        if invoice.void_status != 0 {
            return Err(format!("document {number} is already voided"));
        }
        if invoice.current != invoice.total() {
            return Err(format!("document {number} has payments applied; unapply them before voiding"));
        }
        invoice.void_status = 1;
        invoice.void_date = clock::utc(now).date();
        invoice.current = 0;
        invoice.history = true;
        invoice.rm_ts = now;
        Ok(invoice)
    }

    /// GP's "Paid Transactions Removal": fully applied open documents move to history.
    pub fn remove_paid_transactions(&mut self, now: Timestamp) -> usize {
        let mut moved = 0;
        for invoice in self.invoices.values_mut().filter(|i| !i.history && i.current == 0) {
            invoice.history = true;
            invoice.rm_ts = now;
            moved += 1;
        }
        moved
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn money() {
        assert_eq!(parse_money("12.3").unwrap(), 1230);
        assert_eq!(parse_money("-0.05").unwrap(), -5);
        assert_eq!(parse_money("7").unwrap(), 700);
        assert!(parse_money("1.234").is_err() && parse_money("abc").is_err() && parse_money(".5").is_err());
        assert_eq!(format_money(-1205), "-12.05");
        assert_eq!(format_money(5), "0.05");
    }

    fn customer() -> CustomerInput {
        validate_customer(CustomerInput {
            id: "C1".into(),
            name: "One".into(),
            addresses: vec![AddressInput {
                city: "Chicago".into(),
                internet: Some(InternetAddresses { email_to: "a@example.com".into(), ..Default::default() }),
                ..Default::default()
            }],
            ..Default::default()
        })
        .unwrap()
    }

    #[test]
    fn change_stamps_follow_the_triggers() {
        let t0 = ts("2024-01-01T00:00:00Z");
        let t1 = ts("2024-02-01T00:00:00Z");
        let c0 = apply_customer(None, customer(), t0);
        assert_eq!((c0.ts, c0.addresses[0].ts), (t0, t0));
        // Unchanged: nothing moves.
        let same = apply_customer(Some(&c0), c0.to_input(), t1);
        assert_eq!(same.ts, t0);
        // E-mail only (SY01200): the customer and address stamps stay.
        let mut input = c0.to_input();
        input.addresses[0].internet.as_mut().unwrap().email_to = "b@example.com".into();
        let email = apply_customer(Some(&c0), input, t1);
        assert_eq!((email.ts, email.addresses[0].ts, email.addresses[0].internet.as_deref().unwrap().1), (t0, t0, t1));
        // Address (RM00102): bumps the address and the customer.
        let mut input = c0.to_input();
        input.addresses[0].city = "Boston".into();
        let moved = apply_customer(Some(&c0), input, t1);
        assert_eq!((moved.ts, moved.addresses[0].ts), (t1, t1));
        assert_eq!(moved.modified, jiff::civil::date(2024, 2, 1));
        // Master (RM00101).
        let mut input = c0.to_input();
        input.name = "Uno".into();
        assert_eq!(apply_customer(Some(&c0), input, t1).ts, t1);
    }

    #[test]
    fn tracked_internet_address_actions_are_logged_and_nothing_else() {
        use DataModificationAction::{Created, Deleted, Updated};
        let (t0, t1, t2, t3) = (
            ts("2024-01-01T00:00:00Z"),
            ts("2024-02-01T00:00:00Z"),
            ts("2024-03-01T00:00:00Z"),
            ts("2024-04-01T00:00:00Z"),
        );
        let mut company = Company::new(-1, "Fabrikam, Inc.", "TWO");
        // Untracked: nothing is logged, before or after the write.
        company.put_customer(customer(), t0);
        assert!(company.internet_address_actions.is_empty());
        company.action_tracking.insert("InternetAddress", [Created, Updated, Deleted].into());
        // An e-mail edit is an update of that address's row.
        let mut input = company.customers["C1"].to_input();
        input.addresses[0].internet.as_mut().unwrap().email_to = "b@example.com".into();
        company.put_customer(input.clone(), t1);
        // The same values again: no action. A city edit touches RM00102, not SY01200.
        company.put_customer(input.clone(), t2);
        input.addresses[0].city = "Boston".into();
        company.put_customer(input.clone(), t2);
        // A new address with an e-mail: created; the row removed from the first: deleted.
        input.addresses[0].internet = None;
        input.addresses.push(AddressInput {
            id: "BILLING".into(),
            internet: Some(InternetAddresses { email_to: "ap@example.com".into(), ..Default::default() }),
            ..Default::default()
        });
        company.put_customer(validate_customer(input).unwrap(), t2);
        company.remove_customer("c1", t3).unwrap();
        let log: Vec<_> = company
            .internet_address_actions
            .iter()
            .map(|a| (a.action, a.at, a.master_type, a.master_id.as_str(), a.address_id.as_str()))
            .collect();
        assert_eq!(
            log,
            [
                (Updated, t1, "CUS", "C1", "PRIMARY"),
                (Created, t2, "CUS", "C1", "BILLING"),
                (Deleted, t2, "CUS", "C1", "PRIMARY"),
                (Deleted, t3, "CUS", "C1", "BILLING"),
            ]
        );
        // Tracking only updates: creates and deletes go unlogged.
        company.action_tracking.insert("InternetAddress", [Updated].into());
        company.internet_address_actions.clear();
        company.put_customer(customer(), t3);
        company.remove_customer("C1", t3).unwrap();
        assert!(company.internet_address_actions.is_empty());
        // The customer's own stamp never moves for an e-mail edit (the reason for all this).
        company.put_customer(customer(), t0);
        let mut input = company.customers["C1"].to_input();
        input.addresses[0].internet.as_mut().unwrap().email_to = "c@example.com".into();
        company.put_customer(input, t1);
        assert_eq!(company.customers["C1"].ts, t0);
        assert_eq!(company.internet_address_actions.len(), 1);
    }

    #[test]
    fn validation() {
        assert!(validate_customer(CustomerInput::default()).is_err());
        let long = CustomerInput { id: "X".repeat(16), ..Default::default() };
        assert!(validate_customer(long).is_err());
        let mut dup = customer();
        dup.addresses.push(AddressInput { id: "primary".into(), ..Default::default() });
        assert!(validate_customer(dup).is_err());
        let mut bad_primary = customer();
        bad_primary.primary_address_id = "WAREHOUSE".into();
        assert!(validate_customer(bad_primary).is_err());
    }

    #[test]
    fn invoice_lifecycle() {
        let now = ts("2024-03-01T12:00:00Z");
        let mut company = Company::new(-1, "Fabrikam, Inc.", "TWO");
        company.customers.insert("C1".into(), Box::new(apply_customer(None, customer(), now)));
        let input = InvoiceInput {
            number: "INV1".into(),
            customer_id: "c1".into(),
            date: "2024-02-15".into(),
            lines: vec![LineInput {
                item: "A".into(),
                quantity: "2".into(),
                unit_price: "10.50".into(),
                ..Default::default()
            }],
            tax: "1.00".into(),
            ..Default::default()
        };
        assert_eq!(company.add_invoice(input.clone(), now).unwrap().total(), 2200);
        assert!(company.add_invoice(input, now).is_err());
        assert!(company.pay_invoice("INV1", Some(3000), now).is_err());
        assert_eq!(company.pay_invoice("inv1", Some(200), now).unwrap().current, 2000);
        assert!(company.void_invoice("INV1", now).is_err(), "payments applied");
        assert_eq!(company.pay_invoice("INV1", None, now).unwrap().paid_off, jiff::civil::date(2024, 3, 1));
        assert_eq!(company.remove_paid_transactions(now), 1);
        assert!(company.invoices["INV1"].history);
        let eur = InvoiceInput {
            number: "INV2".into(),
            customer_id: "C1".into(),
            currency_id: "Z-EURO".into(),
            subtotal: "100".into(),
            ..Default::default()
        };
        assert!(company.add_invoice(eur.clone(), now).is_err(), "needs a rate");
        let eur = InvoiceInput { exchange_rate: Some(1.1), ..eur };
        assert_eq!(company.add_invoice(eur, now).unwrap().functional(10000), 11000);
        let voided = company.void_invoice("INV2", now).unwrap();
        assert_eq!((voided.void_status, voided.current, voided.history), (1, 0, true));
    }
}
