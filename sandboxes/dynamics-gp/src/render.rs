//! GP business objects as SOAP XML, element order exactly as in [`crate::schema`] (tests
//! validate every response against it).
//!
//! Field sources (documented choices where the reference is silent, §8.3):
//! - `CreatedDate` = `CREATDDT` (date-only, midnight);
//! - `ModifiedDate` and `LastModifiedDate` = the row's `DEX_ROW_TS` (UTC, milliseconds): the
//!   reference quotes GP's docs that the `ModifiedDate` criterion is UTC "with both the date and
//!   time portions", and recommends polling on it;
//! - "no date" is `1900-01-01T00:00:00` (GP's convention), never an absent element;
//! - amounts follow `Context.CurrencyType`: `Transactional` = the document's currency,
//!   `Local` = the company's functional currency (converted at the document's rate).

use crate::clock::{format_date, format_ts};
use crate::model::{Company, Customer, InternetAddressAction, Invoice, format_money, iso};
use crate::xml::Out;

/// What the request's context asks of the rendering.
#[derive(Clone, Copy, Debug)]
pub struct Ctx {
    /// `CurrencyType` is `Local`.
    pub local: bool,
}

/// `<name><Currency/><Value/><DecimalDigits/></name>`.
fn money(out: &mut Out, name: &str, iso_code: &str, cents: i64) {
    out.open(name)
        .leaf("Currency", iso_code)
        .leaf("Value", &format_money(cents))
        .leaf("DecimalDigits", "2")
        .close(name);
}

/// An invoice amount in the currency the context asks for.
fn doc_money(out: &mut Out, name: &str, company: &Company, invoice: &Invoice, cents: i64, ctx: Ctx) {
    if ctx.local {
        money(out, name, iso(&company.functional_currency), invoice.functional(cents));
    } else {
        money(out, name, iso(&invoice.currency_id), cents);
    }
}

fn currency_key(out: &mut Out, code: &str) {
    out.open("CurrencyKey").leaf("ISOCode", code).close("CurrencyKey");
}

fn doc_currency_key(out: &mut Out, company: &Company, invoice: &Invoice, ctx: Ctx) {
    let id = if ctx.local { &company.functional_currency } else { &invoice.currency_id };
    currency_key(out, iso(id));
}

fn phone(out: &mut Out, name: &str, value: &str) {
    out.open(name).leaf("Value", value).close(name);
}

fn address_key(out: &mut Out, name: &str, customer_id: &str, address_id: &str) {
    out.open(name).key("CustomerKey", customer_id).leaf("Id", address_id).close(name);
}

/// `CustomerSummary` (no e-mail: the summary has none, reference §2.5).
pub fn customer_summary(out: &mut Out, c: &Customer) {
    let i = &c.input;
    let primary = c.primary();
    out.open("CustomerSummary")
        .key("Key", &i.id)
        .leaf("Name", &i.name)
        .bool("IsActive", !i.inactive)
        .bool("IsOnHold", i.on_hold)
        .key("CustomerClassKey", &i.class_id)
        .key("CorporateAccountKey", &i.corporate_account_id)
        .key("SalespersonKey", &i.salesperson_id)
        .leaf("State", primary.map(|a| a.input.state.as_str()).unwrap_or(""));
    out.open("PhoneNumbers");
    if let Some(a) = primary {
        for p in [&a.input.phone1, &a.input.phone2, &a.input.phone3].into_iter().filter(|p| !p.is_empty()) {
            phone(out, "PhoneNumber", p);
        }
    }
    out.close("PhoneNumbers")
        .leaf("CreatedDate", &format_date(c.created))
        .leaf("ModifiedDate", &format_ts(c.ts))
        .leaf("LastModifiedDate", &format_ts(c.ts))
        .close("CustomerSummary");
}

/// `Customer` with its addresses and their internet addresses.
pub fn customer(out: &mut Out, company: &Company, c: &Customer) {
    let i = &c.input;
    let primary = c.primary().map(|a| a.input.id.clone()).unwrap_or_default();
    let or_primary = |id: &str| if id.is_empty() { primary.clone() } else { id.to_string() };
    let currency = if i.currency_id.is_empty() { &company.functional_currency } else { &i.currency_id };
    out.open("GetCustomerByKeyResult")
        .key("Key", &i.id)
        .bool("IsOnHold", i.on_hold)
        .bool("IsActive", !i.inactive)
        .bool("ShipCompleteOnly", false)
        .leaf("Name", &i.name)
        .leaf("Shortname", &i.short_name)
        .leaf("StatementName", &i.statement_name)
        .key("ClassKey", &i.class_id);
    address_key(out, "DefaultAddressKey", &i.id, &primary);
    address_key(out, "ShipToAddressKey", &i.id, &or_primary(&i.ship_to_address_id));
    address_key(out, "BillToAddressKey", &i.id, &or_primary(&i.bill_to_address_id));
    address_key(out, "StatementToAddressKey", &i.id, &or_primary(&i.statement_to_address_id));
    out.leaf("Comment1", &i.comment1)
        .leaf("Comment2", &i.comment2)
        .key("SalespersonKey", &i.salesperson_id)
        .key("PaymentTermsKey", &i.payment_terms_id);
    currency_key(out, iso(currency));
    out.leaf("CreatedDate", &format_date(c.created))
        .leaf("ModifiedDate", &format_ts(c.ts))
        .leaf("LastModifiedDate", &format_ts(c.ts))
        .key("CorporateAccountKey", &i.corporate_account_id)
        .leaf("UserDefined1", &i.user_defined1)
        .leaf("UserDefined2", &i.user_defined2)
        .open("Addresses");
    for a in &c.addresses {
        let x = &a.input;
        out.open("CustomerAddress")
            .leaf("Line1", &x.line1)
            .leaf("Line2", &x.line2)
            .leaf("Line3", &x.line3)
            .leaf("City", &x.city)
            .leaf("State", &x.state)
            .leaf("PostalCode", &x.postal_code)
            .leaf("CountryRegion", &x.country);
        phone(out, "Phone1", &x.phone1);
        phone(out, "Phone2", &x.phone2);
        phone(out, "Phone3", &x.phone3);
        phone(out, "Fax", &x.fax);
        out.key("CountryRegionCodeKey", &x.country_code)
            .leaf("Name", &x.ship_to_name)
            .leaf("ContactPerson", &x.contact_person)
            .leaf("UPSZone", &x.ups_zone)
            .key("ShippingMethodKey", &x.shipping_method_id)
            .key("TaxScheduleKey", &x.tax_schedule_id)
            .leaf("CreatedDate", &format_date(a.created))
            .leaf("ModifiedDate", &format_ts(a.ts))
            .leaf("LastModifiedDate", &format_ts(a.ts))
            .leaf("UserDefined1", &x.user_defined1)
            .leaf("UserDefined2", &x.user_defined2);
        if let Some((n, _)) = a.internet.as_deref() {
            out.open("InternetAddresses")
                .leaf("MessengerAddress", &n.messenger)
                .leaf("EmailToAddress", &n.email_to)
                .leaf("EmailCcAddress", &n.email_cc)
                .leaf("EmailBccAddress", &n.email_bcc);
            for k in 0..8 {
                out.leaf(&format!("InternetField{}", k + 1), n.inet.get(k).map(String::as_str).unwrap_or(""));
            }
            out.leaf("AdditionalInformation", &n.additional_information).close("InternetAddresses");
        }
        address_key(out, "Key", &i.id, &x.id);
        out.key("SalespersonKey", &x.salesperson_id)
            .key("SalesTerritoryKey", &x.sales_territory_id)
            .key("WarehouseKey", "")
            .bool("DeleteOnUpdate", false)
            .close("CustomerAddress");
    }
    out.close("Addresses").close("GetCustomerByKeyResult");
}

/// `ReceivablesInvoiceSummary` (no remaining amount or void flag: the summary has none).
pub fn receivables_summary(out: &mut Out, company: &Company, inv: &Invoice, ctx: Ctx) {
    out.open("ReceivablesInvoiceSummary")
        .key("Key", &inv.number)
        .key("CustomerKey", &inv.customer_id)
        .leaf("CustomerPONumber", &inv.po_number)
        .leaf("CustomerName", &inv.customer_name)
        .leaf("Date", &format_date(inv.date));
    doc_currency_key(out, company, inv, ctx);
    out.key("BatchKey", &inv.batch_id).key("SalespersonKey", &inv.salesperson_id);
    doc_money(out, "TradeDiscountAmount", company, inv, inv.trade_discount, ctx);
    doc_money(out, "FreightAmount", company, inv, inv.freight, ctx);
    doc_money(out, "MiscellaneousAmount", company, inv, inv.misc, ctx);
    doc_money(out, "TaxAmount", company, inv, inv.tax, ctx);
    doc_money(out, "DocumentAmount", company, inv, inv.total(), ctx);
    out.leaf("ModifiedDate", &format_ts(inv.rm_ts))
        .leaf("TransactionState", inv.rm_state())
        .close("ReceivablesInvoiceSummary");
}

/// `ReceivablesInvoice` (as the `GetReceivablesInvoiceByKeyResult` element).
pub fn receivables_invoice(out: &mut Out, company: &Company, inv: &Invoice, ctx: Ctx) {
    let customer = company.customers.get(&crate::model::key(&inv.customer_id));
    let parent = customer.map(|c| c.input.corporate_account_id.as_str()).unwrap_or("");
    let bill_to = customer
        .map(|c| {
            if c.input.bill_to_address_id.is_empty() {
                c.primary().map(|a| a.input.id.clone()).unwrap_or_default()
            } else {
                c.input.bill_to_address_id.clone()
            }
        })
        .unwrap_or_default();
    let tag = "GetReceivablesInvoiceByKeyResult";
    out.open(tag).key("Key", &inv.number).leaf("Type", "Invoice").leaf("Date", &format_date(inv.date));
    doc_money(out, "DocumentAmount", company, inv, inv.total(), ctx);
    doc_money(out, "SalesAmount", company, inv, inv.subtotal, ctx);
    out.leaf("Description", &inv.description).leaf("TransactionState", inv.rm_state());
    doc_money(out, "CurrentDocumentAmount", company, inv, inv.current, ctx);
    out.key("CorporateAccountKey", parent)
        .leaf("AuditTrailCode", &format!("RMSLS{:08}", inv.master_number))
        .leaf("InvoicePaidOffDate", &format_date(inv.paid_off))
        .bool("IsDeleted", false)
        .bool("IsVoided", inv.void_status != 0)
        .leaf("VoidDate", &format_date(inv.void_date))
        .leaf("ModifiedDate", &format_ts(inv.rm_ts))
        .leaf("ModifiedBy", "sa")
        .key("BatchKey", &inv.batch_id)
        .key("CustomerKey", &inv.customer_id);
    address_key(out, "AddressKey", &inv.customer_id, &bill_to);
    doc_currency_key(out, company, inv, ctx);
    out.open("Terms")
        .leaf("DueDate", &format_date(inv.due_date))
        .leaf("DiscountDate", &format_date(crate::clock::NO_DATE));
    doc_money(out, "DiscountAvailableAmount", company, inv, 0, ctx);
    out.close("Terms");
    doc_money(out, "WriteoffAmount", company, inv, 0, ctx);
    out.close(tag);
}

/// The fields shared by `SalesInvoiceSummary` and `SalesInvoice` (`SalesDocumentSummaryBase`).
fn sales_base(out: &mut Out, company: &Company, inv: &Invoice, ctx: Ctx) {
    out.open("DocumentTypeKey")
        .leaf("Type", "Invoice")
        .leaf("Id", "STDINV")
        .close("DocumentTypeKey")
        .key("Key", &inv.number)
        .leaf("MasterNumber", &inv.master_number.to_string())
        .key("CustomerKey", &inv.customer_id)
        .leaf("CustomerPONumber", &inv.po_number)
        .leaf("CustomerName", &inv.customer_name)
        .key("SalespersonKey", &inv.salesperson_id)
        .leaf("Date", &format_date(inv.date));
    doc_currency_key(out, company, inv, ctx);
    doc_money(out, "LineTotalAmount", company, inv, inv.subtotal, ctx);
    doc_money(out, "TradeDiscountAmount", company, inv, inv.trade_discount, ctx);
    doc_money(out, "FreightAmount", company, inv, inv.freight, ctx);
    doc_money(out, "MiscellaneousAmount", company, inv, inv.misc, ctx);
    doc_money(out, "TaxAmount", company, inv, inv.tax, ctx);
    doc_money(out, "TotalAmount", company, inv, inv.total(), ctx);
    out.leaf("CreatedDate", &format_date(inv.sop_created))
        .leaf("ModifiedDate", &format_ts(inv.sop_ts))
        .leaf("LastModifiedDate", &format_ts(inv.sop_ts))
        .leaf("TransactionState", "History")
        .key("BatchKey", &inv.batch_id);
}

/// `SalesInvoiceSummary` (posted invoices are SOP history).
pub fn sales_summary(out: &mut Out, company: &Company, inv: &Invoice, ctx: Ctx) {
    out.open("SalesInvoiceSummary");
    sales_base(out, company, inv, ctx);
    out.close("SalesInvoiceSummary");
}

/// `SalesInvoice` (as the `GetSalesInvoiceByKeyResult` element). `IsVoided` is the SOP
/// header's flag: voiding the posted document in receivables does not change it.
pub fn sales_invoice(out: &mut Out, company: &Company, inv: &Invoice, ctx: Ctx) {
    let tag = "GetSalesInvoiceByKeyResult";
    out.open(tag);
    sales_base(out, company, inv, ctx);
    out.bool("IsVoided", false);
    doc_money(out, "PaymentAmount", company, inv, 0, ctx);
    out.leaf("InvoiceDate", &format_date(inv.date)).leaf("DueDate", &format_date(inv.due_date)).open("Lines");
    for (n, line) in inv.lines.iter().enumerate() {
        out.open("SalesInvoiceLine")
            .open("Key")
            .key("SalesDocumentKey", &inv.number)
            .leaf("LineSequenceNumber", &((n as i64 + 1) * 16384).to_string())
            .close("Key")
            .key("ItemKey", &line.item)
            .leaf("ItemDescription", &line.description)
            .open("Quantity")
            .leaf("Value", &format_money(line.quantity))
            .leaf("DecimalDigits", "2")
            .close("Quantity");
        doc_money(out, "UnitPrice", company, inv, line.unit_price, ctx);
        doc_money(out, "TotalAmount", company, inv, line.extended, ctx);
        out.close("SalesInvoiceLine");
    }
    out.close("Lines").close(tag);
}

/// `Company` (its `Key` is a `d:CompanyKey`, whose `Id` is in the `d:` namespace).
/// `ChangedInternetAddressKey`: one tracked action on an internet address. `LastModifiedBy` is
/// "not implemented" in GP and left out; `CompanyKey` is left out as in every key the sandbox
/// writes (whether GP echoes it is not captured, reference §8.2).
pub fn changed_internet_address_key(out: &mut Out, a: &InternetAddressAction) {
    out.open("ChangedInternetAddressKey")
        .leaf("LastModifiedDate", &format_ts(a.at))
        .leaf("Action", a.action.as_str())
        .leaf("InternetAddressType", a.master_type)
        .leaf("InternetAddressKey", &a.master_id)
        .key("AddressKey", &a.address_id)
        .close("ChangedInternetAddressKey");
}

pub fn company(out: &mut Out, c: &Company) {
    out.open("Company")
        .open("Key")
        .open_with("Id", &format!("xmlns=\"{}\"", crate::xml::D))
        .buf
        .push_str(&c.id.to_string());
    out.close("Id")
        .close("Key")
        .leaf("Name", &c.name)
        .leaf("CreatedDate", &format_date(c.created))
        .leaf("ModifiedDate", &format_date(c.created))
        .close("Company");
}
