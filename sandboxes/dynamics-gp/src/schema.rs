//! The subset of GP's legacy WSDL the sandbox implements, as data.
//!
//! One table drives three things, so they cannot drift apart: the WSDL served at `?wsdl`, the
//! validation of every SOAP request (and [`crate::check_soap_request`] for the connector's
//! tests), and the tests' validation of the sandbox's own responses.
//!
//! Names, namespaces and element order follow `shared/reference/dynamics-gp.md` §2.3–2.5: both
//! schemas are `elementFormDefault="qualified"`, so an element is in the namespace of the type
//! that declares it (`Context`'s children and `CompanyKey/Id` in `d:`, everything else in
//! `gp:`); derived types list base fields first. Where the reference elides fields ("…"), the
//! subset leaves them out; where it gives no type, the choice is documented on the type.
//!
//! Validation is stricter than .NET's XmlSerializer (which silently drops unknown or misplaced
//! elements): an ignored criterion would make real GP return *everything*, so the sandbox
//! refuses the request instead.

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::xml::{self, XSI};

/// One element of a sequence.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// Local name.
    pub name: &'static str,
    /// Qualified type name (`xs:string`, `gp:CustomerKey`, `d:CompanyKey`).
    pub ty: &'static str,
    /// `minOccurs` (0 or 1).
    pub min: u8,
    /// `maxOccurs="unbounded"`.
    pub many: bool,
    /// `nillable="true"`.
    pub nillable: bool,
}

/// Optional element (`minOccurs="0"`).
const fn opt(name: &'static str, ty: &'static str) -> Field {
    Field { name, ty, min: 0, many: false, nillable: false }
}

/// Required element.
const fn req(name: &'static str, ty: &'static str) -> Field {
    Field { name, ty, min: 1, many: false, nillable: false }
}

/// Required but nillable (the `Nullable<T>` members of restrictions: send `xsi:nil` when unused).
const fn nil1(name: &'static str, ty: &'static str) -> Field {
    Field { name, ty, min: 1, many: false, nillable: true }
}

/// Array items.
const fn many(name: &'static str, ty: &'static str) -> Field {
    Field { name, ty, min: 0, many: true, nillable: true }
}

/// A type's content.
#[derive(Debug, Clone, Copy)]
pub enum Body {
    /// A sequence of elements (after the base type's).
    Seq(&'static [Field]),
    /// An `xs:string` enumeration.
    Enum(&'static [&'static str]),
}

/// A named complex type or enumeration.
#[derive(Debug, Clone, Copy)]
pub struct TypeDef {
    /// Qualified name: `gp:…`, `d:…` or `sec:…`.
    pub name: &'static str,
    /// The base type (`xs:extension`).
    pub base: Option<&'static str>,
    /// Abstract types need `xsi:type` in instances.
    pub is_abstract: bool,
    /// Content.
    pub body: Body,
}

const fn seq(name: &'static str, fields: &'static [Field]) -> TypeDef {
    TypeDef { name, base: None, is_abstract: false, body: Body::Seq(fields) }
}

const fn ext(name: &'static str, base: &'static str, fields: &'static [Field]) -> TypeDef {
    TypeDef { name, base: Some(base), is_abstract: false, body: Body::Seq(fields) }
}

const fn enumeration(name: &'static str, values: &'static [&'static str]) -> TypeDef {
    TypeDef { name, base: None, is_abstract: false, body: Body::Enum(values) }
}

/// Fields of the simple GP keys: an optional company and the id.
const ID_KEY: &[Field] = &[opt("CompanyKey", "d:CompanyKey"), opt("Id", "xs:string")];

/// Values of every `Scope` enumeration (reference §2.4).
const SCOPES: &[&str] = &["Return All", "Return Based on Customer Id", "Return Based on Salesperson Id"];

/// Every type of the subset.
pub static TYPES: &[TypeDef] = &[
    // --- d: (http://schemas.microsoft.com/dynamics/2006/01) ---
    TypeDef { name: "d:Key", base: None, is_abstract: true, body: Body::Seq(&[]) },
    TypeDef { name: "d:OrganizationKey", base: Some("d:Key"), is_abstract: true, body: Body::Seq(&[]) },
    ext("d:CompanyKey", "d:OrganizationKey", &[req("Id", "xs:int")]),
    enumeration("d:CurrencyType", &["Transactional", "Local"]),
    seq(
        "d:Context",
        &[
            opt("WorkOnBehalfOf", "xs:string"),
            Field { name: "OrganizationKey", ty: "d:OrganizationKey", min: 0, many: false, nillable: true },
            opt("CultureName", "xs:string"),
            req("CurrencyType", "d:CurrencyType"),
            opt("RoleKey", "sec:RoleKey"),
            opt("TenantName", "xs:string"),
        ],
    ),
    seq("d:Extension", &[opt("ExtensionId", "xs:string")]),
    seq("d:ArrayOfExtension", &[many("Extension", "d:Extension")]),
    // --- sec: ---
    seq("sec:RoleKey", &[opt("Id", "xs:string")]),
    // --- gp: restrictions ---
    seq(
        "gp:RestrictionOfNullableOfDateTime",
        &[nil1("EqualValue", "xs:dateTime"), nil1("NotEqualValue", "xs:dateTime")],
    ),
    seq("gp:ArrayOfDateTime", &[many("dateTime", "xs:dateTime")]),
    ext(
        "gp:ListRestrictionOfNullableOfDateTime",
        "gp:RestrictionOfNullableOfDateTime",
        &[opt("Items", "gp:ArrayOfDateTime")],
    ),
    ext(
        "gp:BetweenRestrictionOfNullableOfDateTime",
        "gp:ListRestrictionOfNullableOfDateTime",
        &[
            nil1("From", "xs:dateTime"),
            nil1("To", "xs:dateTime"),
            nil1("GreaterThan", "xs:dateTime"),
            nil1("LessThan", "xs:dateTime"),
        ],
    ),
    seq("gp:RestrictionOfNullableOfInt32", &[nil1("EqualValue", "xs:int"), nil1("NotEqualValue", "xs:int")]),
    seq("gp:ArrayOfInt", &[many("int", "xs:int")]),
    ext("gp:ListRestrictionOfNullableOfInt32", "gp:RestrictionOfNullableOfInt32", &[opt("Items", "gp:ArrayOfInt")]),
    ext(
        "gp:BetweenRestrictionOfNullableOfInt32",
        "gp:ListRestrictionOfNullableOfInt32",
        &[nil1("From", "xs:int"), nil1("To", "xs:int"), nil1("GreaterThan", "xs:int"), nil1("LessThan", "xs:int")],
    ),
    seq("gp:RestrictionOfNullableOfBoolean", &[nil1("EqualValue", "xs:boolean"), nil1("NotEqualValue", "xs:boolean")]),
    seq("gp:RestrictionOfString", &[opt("EqualValue", "xs:string"), opt("NotEqualValue", "xs:string")]),
    seq("gp:ArrayOfString", &[many("string", "xs:string")]),
    ext("gp:ListRestrictionOfString", "gp:RestrictionOfString", &[opt("Items", "gp:ArrayOfString")]),
    ext(
        "gp:BetweenRestrictionOfString",
        "gp:ListRestrictionOfString",
        &[
            opt("From", "xs:string"),
            opt("To", "xs:string"),
            opt("GreaterThan", "xs:string"),
            opt("LessThan", "xs:string"),
        ],
    ),
    ext("gp:LikeRestrictionOfString", "gp:BetweenRestrictionOfString", &[opt("Like", "xs:string")]),
    enumeration("gp:ReceivablesTransactionState", &["Work", "Open", "History"]),
    seq(
        "gp:RestrictionOfNullableOfReceivablesTransactionState",
        &[
            nil1("EqualValue", "gp:ReceivablesTransactionState"),
            nil1("NotEqualValue", "gp:ReceivablesTransactionState"),
        ],
    ),
    seq(
        "gp:ArrayOfReceivablesTransactionState",
        &[many("ReceivablesTransactionState", "gp:ReceivablesTransactionState")],
    ),
    ext(
        "gp:ListRestrictionOfNullableOfReceivablesTransactionState",
        "gp:RestrictionOfNullableOfReceivablesTransactionState",
        &[opt("Items", "gp:ArrayOfReceivablesTransactionState")],
    ),
    enumeration("gp:SalesTransactionState", &["Work", "History"]),
    seq(
        "gp:RestrictionOfNullableOfSalesTransactionState",
        &[nil1("EqualValue", "gp:SalesTransactionState"), nil1("NotEqualValue", "gp:SalesTransactionState")],
    ),
    seq("gp:ArrayOfSalesTransactionState", &[many("SalesTransactionState", "gp:SalesTransactionState")]),
    ext(
        "gp:ListRestrictionOfNullableOfSalesTransactionState",
        "gp:RestrictionOfNullableOfSalesTransactionState",
        &[opt("Items", "gp:ArrayOfSalesTransactionState")],
    ),
    enumeration("gp:CustomerScope", SCOPES),
    enumeration("gp:ReceivablesDocumentScope", SCOPES),
    enumeration("gp:SalesDocumentScope", SCOPES),
    enumeration(
        "gp:ReceivablesDocumentType",
        &[
            "Balance Brought Forward",
            "Invoice",
            "Scheduled Payment",
            "Debit Memo",
            "Finance Charge",
            "Service Repair",
            "Warranty",
            "Credit Memo",
            "Return",
            "Cash Receipt",
        ],
    ),
    enumeration("gp:SalesDocumentType", &["Quote", "Order", "Invoice", "Return", "Backorder", "Fulfillment Order"]),
    enumeration("gp:DataModificationAction", &["Created", "Updated", "Deleted"]),
    seq(
        "gp:RestrictionOfNullableOfDataModificationAction",
        &[nil1("EqualValue", "gp:DataModificationAction"), nil1("NotEqualValue", "gp:DataModificationAction")],
    ),
    // --- gp: criteria (schema order from reference §2.4) ---
    seq(
        "gp:CompanyCriteria",
        &[
            opt("Id", "gp:BetweenRestrictionOfNullableOfInt32"),
            opt("Name", "gp:LikeRestrictionOfString"),
            opt("CreatedDate", "gp:BetweenRestrictionOfNullableOfDateTime"),
            opt("ModifiedDate", "gp:BetweenRestrictionOfNullableOfDateTime"),
        ],
    ),
    seq(
        "gp:CustomerCriteria",
        &[
            opt("Id", "gp:BetweenRestrictionOfString"),
            opt("Name", "gp:LikeRestrictionOfString"),
            opt("IsActive", "gp:RestrictionOfNullableOfBoolean"),
            opt("IsOnHold", "gp:RestrictionOfNullableOfBoolean"),
            opt("SalespersonId", "gp:LikeRestrictionOfString"),
            opt("ClassId", "gp:LikeRestrictionOfString"),
            opt("CorporateAccountId", "gp:LikeRestrictionOfString"),
            opt("State", "gp:LikeRestrictionOfString"),
            opt("PhoneNumber", "gp:LikeRestrictionOfString"),
            opt("CreatedDate", "gp:BetweenRestrictionOfNullableOfDateTime"),
            opt("ModifiedDate", "gp:BetweenRestrictionOfNullableOfDateTime"),
            opt("LastModifiedDate", "gp:BetweenRestrictionOfNullableOfDateTime"),
            req("Scope", "gp:CustomerScope"),
        ],
    ),
    seq(
        "gp:ReceivablesDocumentCriteriaBase",
        &[
            opt("TransactionState", "gp:ListRestrictionOfNullableOfReceivablesTransactionState"),
            opt("DocumentId", "gp:LikeRestrictionOfString"),
            opt("Date", "gp:BetweenRestrictionOfNullableOfDateTime"),
            opt("CustomerId", "gp:LikeRestrictionOfString"),
            opt("BatchId", "gp:LikeRestrictionOfString"),
            opt("SalespersonId", "gp:LikeRestrictionOfString"),
            opt("ModifiedDate", "gp:BetweenRestrictionOfNullableOfDateTime"),
            req("Scope", "gp:ReceivablesDocumentScope"),
        ],
    ),
    ext("gp:ReceivablesInvoiceCriteria", "gp:ReceivablesDocumentCriteriaBase", &[]),
    seq(
        "gp:SalesDocumentCriteriaBase",
        &[
            opt("TransactionState", "gp:ListRestrictionOfNullableOfSalesTransactionState"),
            opt("DocumentId", "gp:LikeRestrictionOfString"),
            opt("Date", "gp:BetweenRestrictionOfNullableOfDateTime"),
            opt("CustomerId", "gp:LikeRestrictionOfString"),
            opt("CustomerName", "gp:LikeRestrictionOfString"),
            opt("CustomerPONumber", "gp:LikeRestrictionOfString"),
            opt("BatchId", "gp:LikeRestrictionOfString"),
            opt("DocumentTypeId", "gp:LikeRestrictionOfString"),
            opt("SalespersonId", "gp:LikeRestrictionOfString"),
            opt("MasterNumber", "gp:BetweenRestrictionOfNullableOfInt32"),
            opt("ModifiedDate", "gp:BetweenRestrictionOfNullableOfDateTime"),
            opt("LastModifiedDate", "gp:BetweenRestrictionOfNullableOfDateTime"),
            opt("CreatedDate", "gp:BetweenRestrictionOfNullableOfDateTime"),
            req("Scope", "gp:SalesDocumentScope"),
        ],
    ),
    ext("gp:SalesInvoiceCriteria", "gp:SalesDocumentCriteriaBase", &[]),
    // Entity action tracking (`GetChanged…KeyList`): `BaseChangedKeyCriteria` (LastModifiedDate,
    // Action), then the object's own restrictions, in the order of the legacy WSDL's
    // `InternetAddressKeyChangedCriteria` (JAX-WS stubs generated from it: InternetAddressType,
    // InternetAddressKeyId, AddressKeyId). No `Scope`: the changed-key criteria have none.
    seq(
        "gp:BaseChangedKeyCriteria",
        &[
            opt("LastModifiedDate", "gp:BetweenRestrictionOfNullableOfDateTime"),
            opt("Action", "gp:RestrictionOfNullableOfDataModificationAction"),
        ],
    ),
    ext(
        "gp:InternetAddressKeyChangedCriteria",
        "gp:BaseChangedKeyCriteria",
        &[
            opt("InternetAddressType", "gp:BetweenRestrictionOfString"),
            opt("InternetAddressKeyId", "gp:BetweenRestrictionOfString"),
            opt("AddressKeyId", "gp:BetweenRestrictionOfString"),
        ],
    ),
    // --- gp: keys ---
    ext("gp:CustomerKey", "d:Key", ID_KEY),
    ext(
        "gp:CustomerAddressKey",
        "d:Key",
        &[opt("CompanyKey", "d:CompanyKey"), opt("CustomerKey", "gp:CustomerKey"), opt("Id", "xs:string")],
    ),
    ext("gp:CustomerClassKey", "d:Key", ID_KEY),
    ext("gp:SalespersonKey", "d:Key", ID_KEY),
    ext("gp:SalesTerritoryKey", "d:Key", ID_KEY),
    ext("gp:PaymentTermsKey", "d:Key", ID_KEY),
    ext("gp:ShippingMethodKey", "d:Key", ID_KEY),
    ext("gp:TaxScheduleKey", "d:Key", ID_KEY),
    ext("gp:WarehouseKey", "d:Key", ID_KEY),
    ext("gp:CountryRegionCodeKey", "d:Key", ID_KEY),
    ext("gp:BatchKey", "d:Key", ID_KEY),
    ext("gp:ItemKey", "d:Key", ID_KEY),
    ext("gp:ReceivablesDocumentKey", "d:Key", ID_KEY),
    ext("gp:SalesDocumentKey", "d:Key", ID_KEY),
    ext(
        "gp:SalesDocumentTypeKey",
        "d:Key",
        &[opt("CompanyKey", "d:CompanyKey"), req("Type", "gp:SalesDocumentType"), opt("Id", "xs:string")],
    ),
    ext(
        "gp:SalesLineKey",
        "d:Key",
        &[
            opt("CompanyKey", "d:CompanyKey"),
            opt("SalesDocumentKey", "gp:SalesDocumentKey"),
            req("LineSequenceNumber", "xs:int"),
        ],
    ),
    ext("gp:CurrencyKey", "d:Key", &[opt("ISOCode", "xs:string")]),
    ext("gp:AddressKey", "d:Key", &[opt("Id", "xs:string")]),
    // Changed keys: `ChangedBusinessObjectKey` (LastModifiedDate, LastModifiedBy — "not
    // implemented", so never sent —, Action) → `ChangedBusinessObjectGreatPlainsKey` (CompanyKey;
    // abstract) → the object's key fields.
    TypeDef {
        name: "gp:ChangedBusinessObjectKey",
        base: None,
        is_abstract: true,
        body: Body::Seq(&[
            req("LastModifiedDate", "xs:dateTime"),
            opt("LastModifiedBy", "xs:string"),
            req("Action", "gp:DataModificationAction"),
        ]),
    },
    TypeDef {
        name: "gp:ChangedBusinessObjectGreatPlainsKey",
        base: Some("gp:ChangedBusinessObjectKey"),
        is_abstract: true,
        body: Body::Seq(&[opt("CompanyKey", "d:CompanyKey")]),
    },
    ext(
        "gp:ChangedInternetAddressKey",
        "gp:ChangedBusinessObjectGreatPlainsKey",
        &[
            opt("InternetAddressType", "xs:string"),
            opt("InternetAddressKey", "xs:string"),
            opt("AddressKey", "gp:AddressKey"),
        ],
    ),
    seq("gp:ArrayOfChangedInternetAddressKey", &[many("ChangedInternetAddressKey", "gp:ChangedInternetAddressKey")]),
    // --- gp: values ---
    TypeDef { name: "gp:Amount", base: None, is_abstract: true, body: Body::Seq(&[]) },
    ext(
        "gp:MoneyAmount",
        "gp:Amount",
        &[opt("Currency", "xs:string"), req("Value", "xs:decimal"), opt("DecimalDigits", "xs:int")],
    ),
    seq("gp:Quantity", &[req("Value", "xs:decimal"), opt("DecimalDigits", "xs:int")]),
    seq("gp:PhoneNumber", &[opt("Value", "xs:string"), opt("CountryCode", "xs:string"), opt("Extension", "xs:string")]),
    seq("gp:ArrayOfPhoneNumber", &[many("PhoneNumber", "gp:PhoneNumber")]),
    seq(
        "gp:EmailRecipients",
        &[opt("To", "gp:ArrayOfString"), opt("CC", "gp:ArrayOfString"), opt("BCC", "gp:ArrayOfString")],
    ),
    seq(
        "gp:InternetAddresses",
        &[
            opt("MessengerAddress", "xs:string"),
            opt("EmailToAddress", "xs:string"),
            opt("EmailCcAddress", "xs:string"),
            opt("EmailBccAddress", "xs:string"),
            opt("InternetField1", "xs:string"),
            opt("InternetField2", "xs:string"),
            opt("InternetField3", "xs:string"),
            opt("InternetField4", "xs:string"),
            opt("InternetField5", "xs:string"),
            opt("InternetField6", "xs:string"),
            opt("InternetField7", "xs:string"),
            opt("InternetField8", "xs:string"),
            opt("AdditionalInformation", "xs:string"),
        ],
    ),
    // --- gp: business objects ---
    seq("gp:BusinessObject", &[opt("Extensions", "d:ArrayOfExtension")]),
    seq(
        "gp:Company",
        &[
            opt("Key", "d:CompanyKey"),
            opt("Name", "xs:string"),
            req("CreatedDate", "xs:dateTime"),
            req("ModifiedDate", "xs:dateTime"),
        ],
    ),
    seq("gp:ArrayOfCompany", &[many("Company", "gp:Company")]),
    seq(
        "gp:CustomerSummary",
        &[
            opt("Key", "gp:CustomerKey"),
            opt("Name", "xs:string"),
            req("IsActive", "xs:boolean"),
            req("IsOnHold", "xs:boolean"),
            opt("CustomerClassKey", "gp:CustomerClassKey"),
            opt("CorporateAccountKey", "gp:CustomerKey"),
            opt("SalespersonKey", "gp:SalespersonKey"),
            opt("State", "xs:string"),
            opt("PhoneNumbers", "gp:ArrayOfPhoneNumber"),
            req("CreatedDate", "xs:dateTime"),
            req("ModifiedDate", "xs:dateTime"),
            req("LastModifiedDate", "xs:dateTime"),
        ],
    ),
    seq("gp:ArrayOfCustomerSummary", &[many("CustomerSummary", "gp:CustomerSummary")]),
    ext(
        "gp:AddressBase",
        "gp:BusinessObject",
        &[
            opt("Line1", "xs:string"),
            opt("Line2", "xs:string"),
            opt("Line3", "xs:string"),
            opt("City", "xs:string"),
            opt("State", "xs:string"),
            opt("PostalCode", "xs:string"),
        ],
    ),
    ext(
        "gp:Address",
        "gp:AddressBase",
        &[
            opt("CountryRegion", "xs:string"),
            opt("Phone1", "gp:PhoneNumber"),
            opt("Phone2", "gp:PhoneNumber"),
            opt("Phone3", "gp:PhoneNumber"),
            opt("Fax", "gp:PhoneNumber"),
        ],
    ),
    ext("gp:InternationalAddress", "gp:Address", &[opt("CountryRegionCodeKey", "gp:CountryRegionCodeKey")]),
    ext(
        "gp:BusinessAddress",
        "gp:InternationalAddress",
        &[opt("Name", "xs:string"), opt("ContactPerson", "xs:string")],
    ),
    ext(
        "gp:ConstituentAddress",
        "gp:BusinessAddress",
        &[
            opt("UPSZone", "xs:string"),
            opt("ShippingMethodKey", "gp:ShippingMethodKey"),
            opt("TaxScheduleKey", "gp:TaxScheduleKey"),
            req("CreatedDate", "xs:dateTime"),
            req("ModifiedDate", "xs:dateTime"),
            req("LastModifiedDate", "xs:dateTime"),
            opt("UserDefined1", "xs:string"),
            opt("UserDefined2", "xs:string"),
            opt("InternetAddresses", "gp:InternetAddresses"),
        ],
    ),
    ext(
        "gp:CustomerAddress",
        "gp:ConstituentAddress",
        &[
            opt("Key", "gp:CustomerAddressKey"),
            opt("SalespersonKey", "gp:SalespersonKey"),
            opt("SalesTerritoryKey", "gp:SalesTerritoryKey"),
            opt("WarehouseKey", "gp:WarehouseKey"),
            req("DeleteOnUpdate", "xs:boolean"),
        ],
    ),
    seq("gp:ArrayOfCustomerAddress", &[many("CustomerAddress", "gp:CustomerAddress")]),
    ext(
        "gp:Customer",
        "gp:BusinessObject",
        &[
            opt("Key", "gp:CustomerKey"),
            req("IsOnHold", "xs:boolean"),
            req("IsActive", "xs:boolean"),
            req("ShipCompleteOnly", "xs:boolean"),
            opt("Name", "xs:string"),
            opt("Shortname", "xs:string"),
            opt("StatementName", "xs:string"),
            opt("ClassKey", "gp:CustomerClassKey"),
            opt("DefaultAddressKey", "gp:CustomerAddressKey"),
            opt("ShipToAddressKey", "gp:CustomerAddressKey"),
            opt("BillToAddressKey", "gp:CustomerAddressKey"),
            opt("StatementToAddressKey", "gp:CustomerAddressKey"),
            opt("Comment1", "xs:string"),
            opt("Comment2", "xs:string"),
            opt("SalespersonKey", "gp:SalespersonKey"),
            opt("PaymentTermsKey", "gp:PaymentTermsKey"),
            opt("CurrencyKey", "gp:CurrencyKey"),
            opt("StatementRecipients", "gp:EmailRecipients"),
            req("CreatedDate", "xs:dateTime"),
            req("ModifiedDate", "xs:dateTime"),
            req("LastModifiedDate", "xs:dateTime"),
            opt("CorporateAccountKey", "gp:CustomerKey"),
            opt("UserDefined1", "xs:string"),
            opt("UserDefined2", "xs:string"),
            opt("Addresses", "gp:ArrayOfCustomerAddress"),
        ],
    ),
    seq(
        "gp:ReceivablesDocumentSummaryBase",
        &[
            opt("Key", "gp:ReceivablesDocumentKey"),
            opt("CustomerKey", "gp:CustomerKey"),
            opt("CustomerPONumber", "xs:string"),
            opt("CustomerName", "xs:string"),
            req("Date", "xs:dateTime"),
            opt("CurrencyKey", "gp:CurrencyKey"),
            opt("BatchKey", "gp:BatchKey"),
            opt("SalespersonKey", "gp:SalespersonKey"),
            opt("TradeDiscountAmount", "gp:MoneyAmount"),
            opt("FreightAmount", "gp:MoneyAmount"),
            opt("MiscellaneousAmount", "gp:MoneyAmount"),
            opt("TaxAmount", "gp:MoneyAmount"),
            opt("DocumentAmount", "gp:MoneyAmount"),
            req("ModifiedDate", "xs:dateTime"),
            req("TransactionState", "gp:ReceivablesTransactionState"),
        ],
    ),
    ext("gp:ReceivablesInvoiceSummary", "gp:ReceivablesDocumentSummaryBase", &[]),
    seq("gp:ArrayOfReceivablesInvoiceSummary", &[many("ReceivablesInvoiceSummary", "gp:ReceivablesInvoiceSummary")]),
    seq(
        "gp:ReceivablesTerms",
        &[
            req("DueDate", "xs:dateTime"),
            req("DiscountDate", "xs:dateTime"),
            opt("DiscountAvailableAmount", "gp:MoneyAmount"),
        ],
    ),
    ext(
        "gp:ReceivablesDocument",
        "gp:BusinessObject",
        &[
            opt("Key", "gp:ReceivablesDocumentKey"),
            req("Type", "gp:ReceivablesDocumentType"),
            req("Date", "xs:dateTime"),
            opt("DocumentAmount", "gp:MoneyAmount"),
            opt("SalesAmount", "gp:MoneyAmount"),
            opt("Description", "xs:string"),
            req("TransactionState", "gp:ReceivablesTransactionState"),
            opt("CurrentDocumentAmount", "gp:MoneyAmount"),
            opt("CorporateAccountKey", "gp:CustomerKey"),
            opt("AuditTrailCode", "xs:string"),
            req("InvoicePaidOffDate", "xs:dateTime"),
            req("IsDeleted", "xs:boolean"),
            req("IsVoided", "xs:boolean"),
            req("VoidDate", "xs:dateTime"),
            req("ModifiedDate", "xs:dateTime"),
            opt("ModifiedBy", "xs:string"),
            opt("BatchKey", "gp:BatchKey"),
            opt("CustomerKey", "gp:CustomerKey"),
            opt("AddressKey", "gp:CustomerAddressKey"),
            opt("CurrencyKey", "gp:CurrencyKey"),
        ],
    ),
    ext(
        "gp:ReceivablesDebitDocument",
        "gp:ReceivablesDocument",
        &[opt("Terms", "gp:ReceivablesTerms"), opt("WriteoffAmount", "gp:MoneyAmount")],
    ),
    ext("gp:ReceivablesInvoice", "gp:ReceivablesDebitDocument", &[]),
    seq(
        "gp:SalesDocumentSummaryBase",
        &[
            opt("DocumentTypeKey", "gp:SalesDocumentTypeKey"),
            opt("Key", "gp:SalesDocumentKey"),
            req("MasterNumber", "xs:int"),
            opt("CustomerKey", "gp:CustomerKey"),
            opt("CustomerPONumber", "xs:string"),
            opt("CustomerName", "xs:string"),
            opt("SalespersonKey", "gp:SalespersonKey"),
            req("Date", "xs:dateTime"),
            opt("CurrencyKey", "gp:CurrencyKey"),
            opt("LineTotalAmount", "gp:MoneyAmount"),
            opt("TradeDiscountAmount", "gp:MoneyAmount"),
            opt("FreightAmount", "gp:MoneyAmount"),
            opt("MiscellaneousAmount", "gp:MoneyAmount"),
            opt("TaxAmount", "gp:MoneyAmount"),
            opt("TotalAmount", "gp:MoneyAmount"),
            req("CreatedDate", "xs:dateTime"),
            req("ModifiedDate", "xs:dateTime"),
            req("LastModifiedDate", "xs:dateTime"),
            req("TransactionState", "gp:SalesTransactionState"),
            opt("BatchKey", "gp:BatchKey"),
        ],
    ),
    ext("gp:SalesInvoiceSummary", "gp:SalesDocumentSummaryBase", &[]),
    seq("gp:ArrayOfSalesInvoiceSummary", &[many("SalesInvoiceSummary", "gp:SalesInvoiceSummary")]),
    seq(
        "gp:SalesInvoiceLine",
        &[
            opt("Key", "gp:SalesLineKey"),
            opt("ItemKey", "gp:ItemKey"),
            opt("ItemDescription", "xs:string"),
            opt("Quantity", "gp:Quantity"),
            opt("UnitPrice", "gp:MoneyAmount"),
            opt("TotalAmount", "gp:MoneyAmount"),
        ],
    ),
    seq("gp:ArrayOfSalesInvoiceLine", &[many("SalesInvoiceLine", "gp:SalesInvoiceLine")]),
    ext(
        "gp:SalesDocument",
        "gp:SalesDocumentSummaryBase",
        &[req("IsVoided", "xs:boolean"), opt("PaymentAmount", "gp:MoneyAmount")],
    ),
    ext(
        "gp:SalesInvoice",
        "gp:SalesDocument",
        &[req("InvoiceDate", "xs:dateTime"), req("DueDate", "xs:dateTime"), opt("Lines", "gp:ArrayOfSalesInvoiceLine")],
    ),
];

/// One implemented operation: its request parameter and result type.
#[derive(Debug, Clone, Copy)]
pub struct Operation {
    /// The operation (and request element) name; `SOAPAction` is `gp-namespace/<name>`.
    pub name: &'static str,
    /// `criteria` or `key`.
    pub param: &'static str,
    /// The parameter's type.
    pub param_type: &'static str,
    /// The `<name>Result` type.
    pub result_type: &'static str,
    /// The WCF contract in the output action (`…/2006/01/ISales/<name>Response`).
    pub contract: &'static str,
}

/// The implemented operations (reference §2.4, §6).
pub static OPERATIONS: &[Operation] = &[
    Operation {
        name: "GetCompanyList",
        param: "criteria",
        param_type: "gp:CompanyCriteria",
        result_type: "gp:ArrayOfCompany",
        contract: "ICompany",
    },
    Operation {
        name: "GetCustomerList",
        param: "criteria",
        param_type: "gp:CustomerCriteria",
        result_type: "gp:ArrayOfCustomerSummary",
        contract: "ISales",
    },
    Operation {
        name: "GetCustomerByKey",
        param: "key",
        param_type: "gp:CustomerKey",
        result_type: "gp:Customer",
        contract: "ISales",
    },
    Operation {
        name: "GetReceivablesInvoiceList",
        param: "criteria",
        param_type: "gp:ReceivablesInvoiceCriteria",
        result_type: "gp:ArrayOfReceivablesInvoiceSummary",
        contract: "ISales",
    },
    Operation {
        name: "GetReceivablesInvoiceByKey",
        param: "key",
        param_type: "gp:ReceivablesDocumentKey",
        result_type: "gp:ReceivablesInvoice",
        contract: "ISales",
    },
    Operation {
        name: "GetSalesInvoiceList",
        param: "criteria",
        param_type: "gp:SalesInvoiceCriteria",
        result_type: "gp:ArrayOfSalesInvoiceSummary",
        contract: "ISales",
    },
    Operation {
        name: "GetSalesInvoiceByKey",
        param: "key",
        param_type: "gp:SalesDocumentKey",
        result_type: "gp:SalesInvoice",
        contract: "ISales",
    },
    // Microsoft's method page lists only the "Dynamics GP" interface (no "Sales"), hence the
    // contract name; inferred, not captured.
    Operation {
        name: "GetChangedInternetAddressKeyList",
        param: "criteria",
        param_type: "gp:InternetAddressKeyChangedCriteria",
        result_type: "gp:ArrayOfChangedInternetAddressKey",
        contract: "IDynamicsGP",
    },
];

/// The operation with this name.
pub fn operation(name: &str) -> Option<&'static Operation> {
    OPERATIONS.iter().find(|op| op.name == name)
}

fn index() -> &'static HashMap<&'static str, &'static TypeDef> {
    static INDEX: OnceLock<HashMap<&'static str, &'static TypeDef>> = OnceLock::new();
    INDEX.get_or_init(|| TYPES.iter().map(|t| (t.name, t)).collect())
}

/// The type named `name` (qualified).
pub fn typedef(name: &str) -> Option<&'static TypeDef> {
    index().get(name).copied()
}

/// Whether `ty` is `base` or derives from it.
pub fn derives_from(ty: &str, base: &str) -> bool {
    let mut current = Some(ty);
    while let Some(name) = current {
        if name == base {
            return true;
        }
        current = typedef(name).and_then(|t| t.base);
    }
    false
}

/// The fields of a type, base-first, each with the namespace URI it is qualified with.
pub fn flatten(ty: &TypeDef) -> Vec<(Field, &'static str)> {
    let mut chain = vec![ty];
    while let Some(base) = chain.last().and_then(|t| t.base).and_then(typedef) {
        chain.push(base);
    }
    let mut out = Vec::new();
    for t in chain.iter().rev() {
        if let Body::Seq(fields) = t.body {
            let ns = xml::prefix_uri(t.name.split(':').next().unwrap_or("gp")).unwrap_or(xml::GP);
            out.extend(fields.iter().map(|f| (*f, ns)));
        }
    }
    out
}

/// Validates the element `node` against type `ty`, collecting errors with their path.
pub fn validate(node: roxmltree::Node, ty: &str, nillable: bool, path: &str, errors: &mut Vec<String>) {
    let here = format!("{path}/{}", node.tag_name().name());
    for attr in node.attributes() {
        let known = attr.namespace() == Some(XSI) && matches!(attr.name(), "nil" | "type");
        if !known {
            errors.push(format!("{here}: unexpected attribute '{}'", attr.name()));
        }
    }
    if xml::is_nil(node) {
        if !nillable {
            errors.push(format!("{here}: xsi:nil is not allowed here"));
        }
        if node.children().any(|c| c.is_element() || c.text().is_some_and(|t| !t.trim().is_empty())) {
            errors.push(format!("{here}: a nil element must be empty"));
        }
        return;
    }
    if let Some(simple) = ty.strip_prefix("xs:") {
        if xml::elements(node).next().is_some() {
            errors.push(format!("{here}: {ty} cannot contain elements"));
            return;
        }
        if let Err(e) = check_simple(simple, &xml::text(node)) {
            errors.push(format!("{here}: {e}"));
        }
        return;
    }
    let Some(mut def) = typedef(ty) else {
        errors.push(format!("{here}: unknown type {ty}"));
        return;
    };
    if let Some(value) = node.attribute((XSI, "type")) {
        match resolve_qname(node, value) {
            Some(actual) if derives_from(&actual, ty) => def = typedef(&actual).expect("derives_from found it"),
            Some(actual) => errors.push(format!("{here}: xsi:type {actual} does not derive from {ty}")),
            None => errors.push(format!("{here}: unknown xsi:type '{value}'")),
        }
    }
    match def.body {
        Body::Enum(values) => {
            let text = xml::text(node);
            if xml::elements(node).next().is_some() || !values.contains(&text.as_str()) {
                errors.push(format!("{here}: '{text}' is not a valid {} (one of: {})", def.name, values.join(", ")));
            }
        }
        Body::Seq(_) => {
            if def.is_abstract {
                errors.push(format!("{here}: {} is abstract; give a concrete xsi:type", def.name));
                return;
            }
            if node.children().any(|c| c.is_text() && c.text().is_some_and(|t| !t.trim().is_empty())) {
                errors.push(format!("{here}: text is not allowed in {}", def.name));
            }
            let children: Vec<_> = xml::elements(node).collect();
            let mut i = 0;
            for (field, ns) in flatten(def) {
                let mut count = 0;
                while i < children.len()
                    && children[i].tag_name().name() == field.name
                    && children[i].tag_name().namespace() == Some(ns)
                {
                    validate(children[i], field.ty, field.nillable, &here, errors);
                    count += 1;
                    i += 1;
                    if !field.many {
                        break;
                    }
                }
                if count < usize::from(field.min) {
                    errors.push(format!("{here}: missing required element {{{ns}}}{}", field.name));
                }
            }
            if let Some(extra) = children.get(i) {
                let expected: Vec<&str> = flatten(def).iter().map(|(f, _)| f.name).collect();
                errors.push(format!(
                    "{here}: unexpected element {} (allowed in order: {})",
                    xml::qualified(*extra),
                    expected.join(", ")
                ));
            }
        }
    }
}

/// Resolves an `xsi:type` QName (`d:CompanyKey`) to a schema type name using the in-scope
/// namespace bindings of the element.
fn resolve_qname(node: roxmltree::Node, value: &str) -> Option<String> {
    let (prefix, local) = match value.trim().split_once(':') {
        Some((p, l)) => (Some(p), l),
        None => (None, value.trim()),
    };
    let uri = node.lookup_namespace_uri(prefix)?;
    let name = format!("{}:{local}", xml::uri_prefix(uri)?);
    typedef(&name).map(|_| name)
}

/// Checks the lexical form of a built-in simple type.
fn check_simple(ty: &str, text: &str) -> Result<(), String> {
    let t = text.trim();
    let ok = match ty {
        "string" => true,
        "int" => t.parse::<i32>().is_ok(),
        "boolean" => matches!(t, "true" | "false" | "1" | "0"),
        "decimal" => {
            let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
            let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
            !(int.is_empty() && frac.is_empty())
                && int.bytes().all(|b| b.is_ascii_digit())
                && frac.bytes().all(|b| b.is_ascii_digit())
        }
        "dateTime" => return crate::clock::parse_xs_datetime(t).map(|_| ()),
        _ => false,
    };
    if ok { Ok(()) } else { Err(format!("'{text}' is not a valid xs:{ty}")) }
}

/// The WSDL of the subset, with `location` as the SOAP address.
pub fn wsdl(location: &str) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = write!(
        s,
        concat!(
            r#"<?xml version="1.0" encoding="utf-8"?>"#,
            "\n",
            r#"<wsdl:definitions name="DynamicsGP" targetNamespace="{gp}" xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/" "#,
            r#"xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/" xmlns:xs="{xs}" xmlns:gp="{gp}" xmlns:d="{d}" "#,
            r#"xmlns:sec="{sec}" xmlns:wsaw="http://www.w3.org/2006/05/addressing/wsdl" "#,
            r#"xmlns:wsp="http://schemas.xmlsoap.org/ws/2004/09/policy" "#,
            r#"xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd" "#,
            r#"xmlns:http="http://schemas.microsoft.com/ws/06/2004/policy/http">"#,
            "\n<!-- A subset of the Dynamics GP legacy web service: the operations this sandbox implements. -->\n",
            r#"<wsp:Policy wsu:Id="LegacyDynamicsGP_policy"><wsp:ExactlyOne><wsp:All><http:NtlmAuthentication/></wsp:All></wsp:ExactlyOne></wsp:Policy>"#,
            "\n<wsdl:types>\n"
        ),
        gp = xml::GP,
        d = xml::D,
        sec = xml::SEC,
        xs = xml::XS,
    );
    for (prefix, uri) in [("d", xml::D), ("sec", xml::SEC), ("gp", xml::GP)] {
        let _ = write!(s, r#"<xs:schema targetNamespace="{uri}" elementFormDefault="qualified">"#,);
        for other in ["d", "sec", "gp"].iter().filter(|p| **p != prefix) {
            let _ = write!(s, r#"<xs:import namespace="{}"/>"#, xml::prefix_uri(other).expect("known"));
        }
        s.push('\n');
        for t in TYPES.iter().filter(|t| t.name.starts_with(&format!("{prefix}:"))) {
            render_type(&mut s, t);
        }
        if prefix == "gp" {
            for op in OPERATIONS {
                let _ = write!(
                    s,
                    concat!(
                        r#"<xs:element name="{op}"><xs:complexType><xs:sequence>"#,
                        r#"<xs:element minOccurs="1" name="{param}" type="{pt}"/>"#,
                        r#"<xs:element minOccurs="1" name="context" type="d:Context"/>"#,
                        "</xs:sequence></xs:complexType></xs:element>\n",
                        r#"<xs:element name="{op}Response"><xs:complexType><xs:sequence>"#,
                        r#"<xs:element minOccurs="0" name="{op}Result" nillable="true" type="{rt}"/>"#,
                        "</xs:sequence></xs:complexType></xs:element>\n"
                    ),
                    op = op.name,
                    param = op.param,
                    pt = op.param_type,
                    rt = op.result_type,
                );
            }
        }
        s.push_str("</xs:schema>\n");
    }
    s.push_str("</wsdl:types>\n");
    for op in OPERATIONS {
        let _ = writeln!(
            s,
            r#"<wsdl:message name="{0}SoapIn"><wsdl:part name="parameters" element="gp:{0}"/></wsdl:message><wsdl:message name="{0}SoapOut"><wsdl:part name="parameters" element="gp:{0}Response"/></wsdl:message>"#,
            op.name
        );
    }
    s.push_str("<wsdl:portType name=\"DynamicsGPSoap\">\n");
    for op in OPERATIONS {
        let _ = writeln!(
            s,
            r#"<wsdl:operation name="{0}"><wsdl:input wsaw:Action="{gp}/{0}" message="gp:{0}SoapIn"/><wsdl:output wsaw:Action="{gp}/{1}/{0}Response" message="gp:{0}SoapOut"/></wsdl:operation>"#,
            op.name,
            op.contract,
            gp = xml::GP
        );
    }
    s.push_str("</wsdl:portType>\n");
    s.push_str(concat!(
        r##"<wsdl:binding name="LegacyDynamicsGP" type="gp:DynamicsGPSoap"><wsp:PolicyReference URI="#LegacyDynamicsGP_policy"/>"##,
        r#"<soap:binding transport="http://schemas.xmlsoap.org/soap/http" style="document"/>"#,
        "\n"
    ));
    for op in OPERATIONS {
        let _ = writeln!(
            s,
            r#"<wsdl:operation name="{0}"><soap:operation soapAction="{gp}/{0}" style="document"/><wsdl:input><soap:body use="literal"/></wsdl:input><wsdl:output><soap:body use="literal"/></wsdl:output></wsdl:operation>"#,
            op.name,
            gp = xml::GP
        );
    }
    let _ = write!(
        s,
        concat!(
            "</wsdl:binding>\n",
            r#"<wsdl:service name="DynamicsGP"><wsdl:port name="LegacyDynamicsGP" binding="gp:LegacyDynamicsGP">"#,
            r#"<soap:address location="{}"/></wsdl:port></wsdl:service>"#,
            "\n</wsdl:definitions>\n"
        ),
        xml::escape(location)
    );
    s
}

fn render_type(s: &mut String, t: &TypeDef) {
    use std::fmt::Write as _;
    let local = t.name.split_once(':').map(|(_, l)| l).unwrap_or(t.name);
    match t.body {
        Body::Enum(values) => {
            let _ = write!(s, r#"<xs:simpleType name="{local}"><xs:restriction base="xs:string">"#);
            for v in values {
                let _ = write!(s, r#"<xs:enumeration value="{v}"/>"#);
            }
            s.push_str("</xs:restriction></xs:simpleType>\n");
        }
        Body::Seq(fields) => {
            let abstract_attr = if t.is_abstract { r#" abstract="true""# } else { "" };
            let _ = write!(s, r#"<xs:complexType name="{local}"{abstract_attr}>"#);
            if let Some(base) = t.base {
                let _ = write!(s, r#"<xs:complexContent mixed="false"><xs:extension base="{base}">"#);
            }
            s.push_str("<xs:sequence>");
            for f in fields {
                let max = if f.many { "unbounded" } else { "1" };
                let nillable = if f.nillable { r#" nillable="true""# } else { "" };
                let _ = write!(
                    s,
                    r#"<xs:element minOccurs="{}" maxOccurs="{max}" name="{}"{nillable} type="{}"/>"#,
                    f.min, f.name, f.ty
                );
            }
            s.push_str("</xs:sequence>");
            if t.base.is_some() {
                s.push_str("</xs:extension></xs:complexContent>");
            }
            s.push_str("</xs:complexType>\n");
        }
    }
}

/// Checks a SOAP 1.1 request body against the subset's element names, namespaces, order,
/// occurrence, nil-ability and simple types. `Ok(())` or every problem found.
pub fn check_soap_request(body: &str) -> Result<(), Vec<String>> {
    let doc = xml::parse(body).map_err(|e| vec![format!("not well-formed XML: {e}")])?;
    let mut errors = Vec::new();
    match envelope_operation(&doc) {
        Err(e) => errors.push(e),
        Ok((node, op)) => validate_operation(node, op, &mut errors),
    }
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

/// Checks a response envelope: `Body/<Op>Response` with an optional `<Op>Result` of the
/// operation's result type.
pub fn check_soap_response(body: &str) -> Result<(), Vec<String>> {
    let doc = xml::parse(body).map_err(|e| vec![format!("not well-formed XML: {e}")])?;
    let root = doc.root_element();
    let body_node = (root.tag_name().namespace() == Some(xml::SOAP_ENV) && root.tag_name().name() == "Envelope")
        .then(|| xml::child(root, xml::SOAP_ENV, "Body"))
        .flatten()
        .ok_or_else(|| vec!["not a SOAP 1.1 envelope with a Body".to_string()])?;
    let response = xml::elements(body_node).next().ok_or_else(|| vec!["empty Body".to_string()])?;
    let op = response
        .tag_name()
        .name()
        .strip_suffix("Response")
        .filter(|_| response.tag_name().namespace() == Some(xml::GP))
        .and_then(operation)
        .ok_or_else(|| vec![format!("{} is not a response of an implemented operation", xml::qualified(response))])?;
    let mut errors = Vec::new();
    let here = format!("/Envelope/Body/{}Response", op.name);
    let children: Vec<_> = xml::elements(response).collect();
    let result_name = format!("{}Result", op.name);
    match children.as_slice() {
        [] => {}
        [result] if result.tag_name().name() == result_name && result.tag_name().namespace() == Some(xml::GP) => {
            validate(*result, op.result_type, true, &here, &mut errors)
        }
        [other, ..] => errors.push(format!("{here}: unexpected element {}", xml::qualified(*other))),
    }
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

/// The operation element inside `Envelope/Body`, and its definition.
pub fn envelope_operation<'a, 'i>(
    doc: &'a roxmltree::Document<'i>,
) -> Result<(roxmltree::Node<'a, 'i>, &'static Operation), String> {
    let root = doc.root_element();
    if root.tag_name().namespace() != Some(xml::SOAP_ENV) || root.tag_name().name() != "Envelope" {
        return Err(format!(
            "/{}: the root must be a SOAP 1.1 Envelope ({{{}}}Envelope)",
            xml::qualified(root),
            xml::SOAP_ENV
        ));
    }
    let mut parts = xml::elements(root);
    let mut first = parts.next();
    if first.is_some_and(|n| n.tag_name().name() == "Header" && n.tag_name().namespace() == Some(xml::SOAP_ENV)) {
        first = parts.next();
    }
    let body = first
        .filter(|n| n.tag_name().name() == "Body" && n.tag_name().namespace() == Some(xml::SOAP_ENV))
        .ok_or_else(|| "/Envelope: missing soap:Body".to_string())?;
    if let Some(extra) = parts.next() {
        return Err(format!("/Envelope: unexpected element {} after Body", xml::qualified(extra)));
    }
    let mut ops = xml::elements(body);
    let op_node = ops.next().ok_or_else(|| "/Envelope/Body: empty Body".to_string())?;
    if ops.next().is_some() {
        return Err("/Envelope/Body: more than one operation element".into());
    }
    if op_node.tag_name().namespace() != Some(xml::GP) {
        return Err(format!("/Envelope/Body: {} is not in the GP namespace {}", xml::qualified(op_node), xml::GP));
    }
    let op = operation(op_node.tag_name().name())
        .ok_or_else(|| format!("/Envelope/Body: unknown operation {}", xml::qualified(op_node)))?;
    Ok((op_node, op))
}

/// Validates `<op><param/><context/></op>`.
pub fn validate_operation(node: roxmltree::Node, op: &Operation, errors: &mut Vec<String>) {
    let path = "/Envelope/Body";
    let here = format!("{path}/{}", op.name);
    let children: Vec<_> = xml::elements(node).collect();
    let expected = [(op.param, op.param_type, xml::GP), ("context", "d:Context", xml::GP)];
    let mut i = 0;
    for (name, ty, ns) in expected {
        match children.get(i) {
            Some(c) if c.tag_name().name() == name && c.tag_name().namespace() == Some(ns) => {
                validate(*c, ty, false, &here, errors);
                i += 1;
            }
            _ => errors.push(format!("{here}: missing required element {{{ns}}}{name}")),
        }
    }
    if let Some(extra) = children.get(i) {
        errors.push(format!("{here}: unexpected element {}", xml::qualified(*extra)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_referenced_type_exists_and_bases_resolve() {
        for t in TYPES {
            if let Some(base) = t.base {
                assert!(typedef(base).is_some(), "{} base {base}", t.name);
            }
            if let Body::Seq(fields) = t.body {
                for f in fields {
                    assert!(f.ty.starts_with("xs:") || typedef(f.ty).is_some(), "{}.{}: {}", t.name, f.name, f.ty);
                }
            }
        }
        for op in OPERATIONS {
            assert!(typedef(op.param_type).is_some() && typedef(op.result_type).is_some(), "{}", op.name);
        }
    }

    #[test]
    fn flatten_is_base_first_with_declaring_namespace() {
        let names: Vec<_> =
            flatten(typedef("gp:LikeRestrictionOfString").unwrap()).iter().map(|(f, _)| f.name).collect();
        assert_eq!(names, ["EqualValue", "NotEqualValue", "Items", "From", "To", "GreaterThan", "LessThan", "Like"]);
        let company = flatten(typedef("d:CompanyKey").unwrap());
        assert_eq!((company[0].0.name, company[0].1), ("Id", xml::D));
        assert!(derives_from("gp:ReceivablesInvoice", "gp:ReceivablesDocument"));
        assert!(!derives_from("gp:CustomerKey", "d:OrganizationKey"));
    }

    #[test]
    fn wsdl_is_well_formed_and_names_the_operations() {
        let wsdl = wsdl("http://127.0.0.1:1/DynamicsGPWebServices/DynamicsGPService.asmx");
        let doc = roxmltree::Document::parse(&wsdl).unwrap();
        let ops: Vec<_> = doc
            .descendants()
            .filter(|n| n.has_tag_name(("http://schemas.xmlsoap.org/wsdl/soap/", "operation")))
            .filter_map(|n| n.attribute("soapAction"))
            .collect();
        assert_eq!(ops.len(), OPERATIONS.len());
        assert!(ops.contains(&"http://schemas.microsoft.com/dynamics/gp/2006/01/GetCustomerList"));
        assert!(wsdl.contains("<http:NtlmAuthentication/>"));
    }
}
