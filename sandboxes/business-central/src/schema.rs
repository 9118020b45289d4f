//! The entity model: every entity type the sandbox serves, with property names, EDM types,
//! MaxLength and nullability copied from the real API v2.0 `$metadata` (the conformance test
//! checks them against `shared/specs/business-central/api-v2.0-metadata.xml`), plus what the
//! AL API pages let clients write. `$metadata`, `$filter`/`$select` typing, body validation and
//! rendering all read these tables, so they cannot drift apart.

/// An EDM type as used by the served properties.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Edm {
    Guid,
    String,
    Decimal,
    Boolean,
    DateTimeOffset,
    Date,
    Int32,
    Int64,
    /// A `Microsoft.NAV.*` enum; JSON carries its XML-encoded member names.
    Enum(&'static EnumType),
}

impl Edm {
    /// The qualified type name as `$metadata` and OData messages spell it.
    pub(crate) fn type_name(&self) -> String {
        match self {
            Edm::Guid => "Edm.Guid".into(),
            Edm::String => "Edm.String".into(),
            Edm::Decimal => "Edm.Decimal".into(),
            Edm::Boolean => "Edm.Boolean".into(),
            Edm::DateTimeOffset => "Edm.DateTimeOffset".into(),
            Edm::Date => "Edm.Date".into(),
            Edm::Int32 => "Edm.Int32".into(),
            Edm::Int64 => "Edm.Int64".into(),
            Edm::Enum(e) => format!("Microsoft.NAV.{}", e.name),
        }
    }
}

/// A `Microsoft.NAV` enum type: members with their XML-encoded names and values.
#[derive(Debug, PartialEq)]
pub(crate) struct EnumType {
    /// The type name after `Microsoft.NAV.`.
    pub name: &'static str,
    /// XML-encoded member names and their values.
    pub members: &'static [(&'static str, i64)],
}

impl EnumType {
    pub(crate) fn has(&self, member: &str) -> bool {
        self.members.iter().any(|(m, _)| *m == member)
    }

    /// The member a new record gets (value 0, or the first one).
    pub(crate) fn default_member(&self) -> &'static str {
        self.members.first().map(|(m, _)| *m).unwrap_or("")
    }
}

/// Who may write a property through the API.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Access {
    /// Insert and modify.
    ReadWrite,
    /// On insert only (`id`, `documentId`, `sequence`).
    Insert,
    /// Never (FlowFields, calculated fields, SystemModifiedAt).
    ReadOnly,
}

/// One structural property.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Prop {
    /// The JSON/EDM name.
    pub name: &'static str,
    /// The EDM type.
    pub ty: Edm,
    /// `MaxLength` of strings.
    pub max: Option<u32>,
    /// `Nullable="false"` in `$metadata`.
    pub not_null: bool,
    /// Whether clients may write it.
    pub access: Access,
}

impl Prop {
    const fn new(name: &'static str, ty: Edm) -> Prop {
        Prop { name, ty, max: None, not_null: false, access: Access::ReadWrite }
    }
    const fn max(mut self, n: u32) -> Prop {
        self.max = Some(n);
        self
    }
    const fn nn(mut self) -> Prop {
        self.not_null = true;
        self
    }
    const fn ro(mut self) -> Prop {
        self.access = Access::ReadOnly;
        self
    }
    const fn ins(mut self) -> Prop {
        self.access = Access::Insert;
        self
    }
}

const fn g(name: &'static str) -> Prop {
    Prop::new(name, Edm::Guid)
}
const fn s(name: &'static str, max: u32) -> Prop {
    Prop::new(name, Edm::String).max(max)
}
const fn text(name: &'static str) -> Prop {
    Prop::new(name, Edm::String)
}
const fn dec(name: &'static str) -> Prop {
    Prop::new(name, Edm::Decimal)
}
const fn b(name: &'static str) -> Prop {
    Prop::new(name, Edm::Boolean)
}
const fn dto(name: &'static str) -> Prop {
    Prop::new(name, Edm::DateTimeOffset)
}
const fn date(name: &'static str) -> Prop {
    Prop::new(name, Edm::Date)
}
const fn en(name: &'static str, e: &'static EnumType) -> Prop {
    Prop::new(name, Edm::Enum(e))
}
const fn id() -> Prop {
    g("id").nn().ins()
}
const fn modified() -> Prop {
    dto("lastModifiedDateTime").ro()
}

/// A navigation property the sandbox can expand or traverse.
#[derive(Debug)]
pub(crate) struct Nav {
    /// The navigation property name.
    pub name: &'static str,
    /// The target entity type name.
    pub target: &'static str,
    /// A collection (else a single entity).
    pub many: bool,
    /// `(local property, referenced property)` for `$metadata`, when there is one.
    pub constraint: Option<(&'static str, &'static str)>,
}

/// An entity type and its entity set.
#[derive(Debug)]
pub(crate) struct EntityType {
    /// The entity type name (`customer`).
    pub name: &'static str,
    /// The entity set name (`customers`).
    pub set: &'static str,
    /// The key property.
    pub key: &'static str,
    /// Structural properties in `$metadata` order.
    pub props: &'static [Prop],
    /// Navigation properties the sandbox serves.
    pub navs: &'static [Nav],
    /// Navigation properties the real API has and the sandbox does not serve (a clear error
    /// instead of "no such property").
    pub unserved: &'static [&'static str],
    /// The default order (the source table's primary key), before the key as tie-breaker.
    pub order: &'static [&'static str],
    /// POST allowed.
    pub insertable: bool,
    /// PATCH allowed.
    pub updatable: bool,
    /// DELETE allowed.
    pub deletable: bool,
}

impl EntityType {
    pub(crate) fn prop(&self, name: &str) -> Option<&'static Prop> {
        self.props.iter().find(|p| p.name == name)
    }

    pub(crate) fn nav(&self, name: &str) -> Option<&'static Nav> {
        self.navs.iter().find(|n| n.name == name)
    }
}

pub(crate) static CONTACT_TYPE: EnumType = EnumType { name: "contactType", members: &[("Company", 0), ("Person", 1)] };
pub(crate) static CUSTOMER_BLOCKED: EnumType =
    EnumType { name: "customerBlocked", members: &[("_x0020_", 0), ("Ship", 1), ("Invoice", 2), ("All", 3)] };
pub(crate) static ITEM_TYPE: EnumType =
    EnumType { name: "itemType", members: &[("Inventory", 0), ("Service", 1), ("Non_x002D_Inventory", 2)] };
pub(crate) static INVOICE_STATUS: EnumType = EnumType {
    name: "invoiceEntityAggregateStatus",
    members: &[
        ("_x0020_", 0),
        ("Draft", 1),
        ("In_x0020_Review", 2),
        ("Open", 3),
        ("Paid", 4),
        ("Canceled", 5),
        ("Corrective", 6),
    ],
};
pub(crate) static LINE_TYPE: EnumType = EnumType {
    name: "invoiceLineAggLineType",
    members: &[
        ("Comment", 0),
        ("Account", 1),
        ("Item", 2),
        ("Resource", 3),
        ("Fixed_x0020_Asset", 4),
        ("Charge", 5),
        ("Allocation_x0020_Account", 10),
    ],
};
pub(crate) static CONTACT_BUSINESS_RELATION: EnumType = EnumType {
    name: "contactBusinessRelation",
    members: &[
        ("_x0020_", 0),
        ("Customer", 1),
        ("Vendor", 2),
        ("Bank_x0020_Account", 3),
        ("Employee", 4),
        ("None", 100),
        ("Other", 101),
        ("Multiple", 102),
    ],
};
/// The custom API's consent status (an AL enum with spaces in its names, hence the encoding).
pub(crate) static CONSENT_STATUS: EnumType = EnumType {
    name: "consentStatus",
    members: &[("_x0020_", 0), ("Opted_x0020_In", 1), ("Opted_x0020_Out", 2), ("Pending", 3)],
};

/// Page 30009 "APIV2 - Customers".
pub(crate) static CUSTOMER: EntityType = EntityType {
    name: "customer",
    set: "customers",
    key: "id",
    props: &[
        id(),
        s("number", 20),
        s("displayName", 100).nn(),
        en("type", &CONTACT_TYPE),
        s("addressLine1", 100),
        s("addressLine2", 50),
        s("city", 30),
        s("state", 30),
        s("country", 10),
        s("postalCode", 20),
        s("phoneNumber", 30),
        s("email", 80),
        s("website", 80),
        s("salespersonCode", 20),
        dec("balanceDue").ro(),
        dec("creditLimit"),
        b("taxLiable"),
        g("taxAreaId"),
        text("taxAreaDisplayName").ro(),
        text("taxRegistrationNumber"),
        g("currencyId"),
        text("currencyCode"),
        g("paymentTermsId"),
        g("shipmentMethodId"),
        g("paymentMethodId"),
        en("blocked", &CUSTOMER_BLOCKED),
        modified(),
    ],
    navs: &[],
    unserved: &[
        "currency",
        "paymentTerm",
        "shipmentMethod",
        "paymentMethod",
        "customerFinancialDetail",
        "picture",
        "defaultDimensions",
        "agedAccountsReceivable",
        "contactsInformation",
        "documentAttachments",
    ],
    order: &["number"],
    insertable: true,
    updatable: true,
    deletable: true,
};

/// Page 30008 "APIV2 - Items".
pub(crate) static ITEM: EntityType = EntityType {
    name: "item",
    set: "items",
    key: "id",
    props: &[
        id(),
        s("number", 20),
        s("displayName", 100),
        s("displayName2", 50),
        en("type", &ITEM_TYPE),
        g("itemCategoryId"),
        s("itemCategoryCode", 20),
        b("blocked"),
        s("gtin", 14),
        dec("inventory").ro(),
        dec("unitPrice"),
        b("priceIncludesTax"),
        dec("unitCost"),
        g("taxGroupId"),
        s("taxGroupCode", 20),
        g("baseUnitOfMeasureId"),
        s("baseUnitOfMeasureCode", 10),
        g("generalProductPostingGroupId"),
        s("generalProductPostingGroupCode", 20),
        g("inventoryPostingGroupId"),
        s("inventoryPostingGroupCode", 20),
        modified(),
    ],
    navs: &[],
    unserved: &[
        "itemCategory",
        "inventoryPostingGroup",
        "generalProductPostingGroup",
        "unitOfMeasure",
        "picture",
        "defaultDimensions",
        "itemVariants",
        "documentAttachments",
    ],
    order: &["number"],
    insertable: true,
    updatable: true,
    deletable: true,
};

/// Page 30071 "APIV2 - Contacts".
pub(crate) static CONTACT: EntityType = EntityType {
    name: "contact",
    set: "contacts",
    key: "id",
    props: &[
        id(),
        s("number", 20),
        en("type", &CONTACT_TYPE),
        s("displayName", 100).nn(),
        s("jobTitle", 30).nn(),
        s("companyNumber", 20),
        s("companyName", 100).ro(),
        en("contactBusinessRelation", &CONTACT_BUSINESS_RELATION).ro(),
        s("addressLine1", 100),
        s("addressLine2", 50),
        s("city", 30),
        s("state", 30),
        s("country", 10),
        s("postalCode", 20),
        s("phoneNumber", 30),
        s("mobilePhoneNumber", 30),
        s("email", 80),
        s("website", 80),
        s("searchName", 100),
        b("privacyBlocked"),
        text("taxRegistrationNumber"),
        date("lastInteractionDate").ro(),
        modified(),
    ],
    navs: &[],
    unserved: &["contactInformation", "picture"],
    order: &["number"],
    insertable: true,
    updatable: true,
    deletable: true,
};

/// Page 30012 "APIV2 - Sales Invoices" (drafts and posted invoices in one collection).
pub(crate) static SALES_INVOICE: EntityType = EntityType {
    name: "salesInvoice",
    set: "salesInvoices",
    key: "id",
    props: &[
        id(),
        s("number", 20).ins(),
        s("externalDocumentNumber", 35),
        date("invoiceDate"),
        date("postingDate"),
        date("dueDate"),
        date("promisedPayDate"),
        s("customerPurchaseOrderReference", 35),
        g("customerId"),
        s("customerNumber", 20).nn(),
        s("customerName", 100).ro(),
        s("billToName", 100).ro(),
        g("billToCustomerId"),
        s("billToCustomerNumber", 20).nn(),
        s("shipToName", 100),
        s("shipToContact", 100),
        s("sellToAddressLine1", 100),
        s("sellToAddressLine2", 50),
        s("sellToCity", 30),
        s("sellToCountry", 10),
        s("sellToState", 30),
        s("sellToPostCode", 20),
        s("billToAddressLine1", 100),
        s("billToAddressLine2", 50),
        s("billToCity", 30),
        s("billToCountry", 10),
        s("billToState", 30),
        s("billToPostCode", 20),
        s("shipToAddressLine1", 100),
        s("shipToAddressLine2", 50),
        s("shipToCity", 30),
        s("shipToCountry", 10),
        s("shipToState", 30),
        s("shipToPostCode", 20),
        g("currencyId"),
        s("shortcutDimension1Code", 20),
        s("shortcutDimension2Code", 20),
        text("currencyCode"),
        g("orderId").ro(),
        s("orderNumber", 20).ro(),
        g("paymentTermsId"),
        g("shipmentMethodId"),
        s("salesperson", 20),
        g("disputeStatusId"),
        s("disputeStatus", 10),
        b("pricesIncludeTax"),
        dec("remainingAmount").ro(),
        dec("discountAmount"),
        b("discountAppliedBeforeTax").ro(),
        dec("totalAmountExcludingTax").ro(),
        dec("totalTaxAmount").ro(),
        dec("totalAmountIncludingTax").ro(),
        en("status", &INVOICE_STATUS).ro(),
        modified(),
        s("phoneNumber", 30),
        s("email", 80),
    ],
    navs: &[
        Nav { name: "customer", target: "customer", many: false, constraint: Some(("customerId", "id")) },
        Nav {
            name: "salesInvoiceLines",
            target: "salesInvoiceLine",
            many: true,
            constraint: Some(("id", "documentId")),
        },
    ],
    unserved: &[
        "currency",
        "dimensionValue",
        "paymentTerm",
        "shipmentMethod",
        "dimensionSetLines",
        "pdfDocument",
        "attachments",
        "documentAttachments",
    ],
    order: &["number"],
    insertable: true,
    updatable: true,
    deletable: true,
};

/// Page 30043 "APIV2 - Sales Invoice Lines" (a temporary source table: no webhooks).
pub(crate) static SALES_INVOICE_LINE: EntityType = EntityType {
    name: "salesInvoiceLine",
    set: "salesInvoiceLines",
    key: "id",
    props: &[
        id(),
        g("documentId").ins(),
        Prop::new("sequence", Edm::Int32).ins(),
        g("itemId"),
        g("accountId"),
        en("lineType", &LINE_TYPE),
        s("lineObjectNumber", 20),
        s("description", 100),
        s("description2", 50),
        g("unitOfMeasureId"),
        s("unitOfMeasureCode", 10),
        dec("quantity"),
        dec("unitPrice"),
        dec("discountAmount"),
        dec("discountPercent"),
        b("discountAppliedBeforeTax").ro(),
        dec("amountExcludingTax").ro(),
        s("taxCode", 50),
        dec("taxPercent").ro(),
        dec("totalTaxAmount").ro(),
        dec("amountIncludingTax").ro(),
        dec("invoiceDiscountAllocation").ro(),
        dec("netAmount").ro(),
        dec("netTaxAmount").ro(),
        dec("netAmountIncludingTax").ro(),
        date("shipmentDate"),
        g("itemVariantId"),
        g("locationId"),
    ],
    navs: &[],
    unserved: &["salesInvoice", "item", "account", "unitOfMeasure", "itemVariant", "dimensionSetLines", "location"],
    order: &["documentId", "sequence"],
    insertable: true,
    updatable: true,
    deletable: true,
};

/// The `companies` entity (a system table: read-only, no etag in recorded payloads).
pub(crate) static COMPANY: EntityType = EntityType {
    name: "company",
    set: "companies",
    key: "id",
    props: &[
        g("id").nn().ro(),
        text("systemVersion").ro(),
        Prop::new("timestamp", Edm::Int64).ro(),
        s("name", 30).ro(),
        s("displayName", 250).ro(),
        s("businessProfileId", 250).ro(),
        dto("systemCreatedAt").ro(),
        g("systemCreatedBy").ro(),
        dto("systemModifiedAt").ro(),
        g("systemModifiedBy").ro(),
    ],
    navs: &[],
    unserved: &[],
    order: &["name"],
    insertable: false,
    updatable: false,
    deletable: false,
};

/// Webhook subscriptions (environment-wide, string key).
pub(crate) static SUBSCRIPTION: EntityType = EntityType {
    name: "subscriptions",
    set: "subscriptions",
    key: "subscriptionId",
    props: &[
        s("subscriptionId", 150).nn().ro(),
        text("notificationUrl").nn(),
        text("resource").nn(),
        Prop::new("timestamp", Edm::Int64).ro(),
        g("userId").ro(),
        dto("lastModifiedDateTime").ro(),
        s("clientState", 2048),
        dto("expirationDateTime").ro(),
        dto("systemCreatedAt").ro(),
        g("systemCreatedBy").ro(),
        dto("systemModifiedAt").ro(),
        g("systemModifiedBy").ro(),
    ],
    navs: &[],
    unserved: &[],
    order: &["subscriptionId"],
    insertable: true,
    updatable: true,
    deletable: true,
};

/// The custom API page over the Customer table (`api/contoso/marketing/v1.0`): a table
/// extension's consent fields, keyed by the customer's SystemId.
pub(crate) static CUSTOMER_CONSENT: EntityType = EntityType {
    name: "customerConsent",
    set: "customerConsents",
    key: "id",
    props: &[
        g("id").nn().ro(),
        g("customerId").ro(),
        s("customerNumber", 20).ro(),
        s("displayName", 100).ro(),
        s("email", 80).ro(),
        b("marketingConsent"),
        en("consentStatus", &CONSENT_STATUS),
        dto("consentChangedAt"),
        b("bounced"),
        modified(),
    ],
    navs: &[],
    unserved: &[],
    order: &["customerNumber"],
    insertable: false,
    updatable: true,
    deletable: false,
};

/// The standard entity types served under `api/v2.0`, in `$metadata` order.
pub(crate) static V2_TYPES: [&EntityType; 7] =
    [&COMPANY, &SUBSCRIPTION, &ITEM, &CUSTOMER, &CONTACT, &SALES_INVOICE, &SALES_INVOICE_LINE];
/// The enums those types use.
pub(crate) static V2_ENUMS: [&EnumType; 6] =
    [&ITEM_TYPE, &CONTACT_TYPE, &CUSTOMER_BLOCKED, &CONTACT_BUSINESS_RELATION, &INVOICE_STATUS, &LINE_TYPE];
/// The custom API's entity types.
pub(crate) static CUSTOM_TYPES: [&EntityType; 3] = [&COMPANY, &SUBSCRIPTION, &CUSTOMER_CONSENT];
/// The custom API's enums.
pub(crate) static CUSTOM_ENUMS: [&EnumType; 1] = [&CONSENT_STATUS];

/// An entity type by name (for navigation targets).
pub(crate) fn by_name(name: &str) -> Option<&'static EntityType> {
    V2_TYPES.iter().chain(CUSTOM_TYPES.iter()).copied().find(|t| t.name == name)
}

/// An API route: the standard `api/v2.0` or the custom `api/contoso/marketing/v1.0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    V2,
    Custom,
}

impl Route {
    /// The path after `api/`.
    pub(crate) fn path(self) -> &'static str {
        match self {
            Route::V2 => "v2.0",
            Route::Custom => "contoso/marketing/v1.0",
        }
    }

    /// The entity types served on the route.
    pub(crate) fn types(self) -> &'static [&'static EntityType] {
        match self {
            Route::V2 => &V2_TYPES,
            Route::Custom => &CUSTOM_TYPES,
        }
    }

    /// The enums of those types.
    pub(crate) fn enums(self) -> &'static [&'static EnumType] {
        match self {
            Route::V2 => &V2_ENUMS,
            Route::Custom => &CUSTOM_ENUMS,
        }
    }

    /// The company-scoped entity type with this set name.
    pub(crate) fn company_set(self, set: &str) -> Option<&'static EntityType> {
        self.types().iter().copied().find(|t| t.set == set && t.set != "companies" && t.set != "subscriptions")
    }
}
