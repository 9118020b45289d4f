//! Incremental reads: `customers` and `invoices`, over SOAP (key ranges, then each record by key)
//! or SBA.
//!
//! An incremental `customers` read over SOAP also asks GP which customers' internet addresses
//! changed after the watermark (`GetChangedInternetAddressKeyList`): GP keeps e-mail there, and
//! editing it does not change the customer's `ModifiedDate`, so the list alone would never show
//! an e-mail-only change. Those customers are read by key too (once, whether or not the list
//! also had them), and their cursor moves to the change (`records::note_internet_address_change`).
//! GP answers that question only when entity action tracking is enabled for internet addresses
//! on the install; otherwise it answers with nothing, and e-mail-only changes wait for the next
//! change of the customer itself. SBA has no such question: see `GpSettings::interface`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use async_trait::async_trait;
use engine::config::CursorKind;
use engine::connector::{ConnectorError, ReadRequest, RecordPages};
use futures_util::StreamExt;
use jiff::Timestamp;
use serde_json::Value;

use crate::client::{GpClient, GpError};
use crate::keyrange::KeyRanges;
use crate::records::{self, CURSOR_FIELD};
use crate::soap::{self, KeyRange};
use crate::summary::{Field, Summary};
use crate::xml::Element;

/// What a pipeline can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    /// Customers (`GetCustomerList` + `GetCustomerByKey`).
    Customers,
    /// Posted receivables invoices (`GetReceivablesInvoiceList` + `GetReceivablesInvoiceByKey`).
    Invoices,
}

impl Entity {
    /// The entity a pipeline names (`customers`, `invoices`).
    pub fn parse(name: &str) -> Result<Entity, String> {
        match name {
            "customers" => Ok(Entity::Customers),
            "invoices" => Ok(Entity::Invoices),
            other => Err(format!("dynamics-gp has no entity `{other}` (it reads `customers` and `invoices`)")),
        }
    }

    fn list_operation(self) -> &'static str {
        match self {
            Entity::Customers => "GetCustomerList",
            Entity::Invoices => "GetReceivablesInvoiceList",
        }
    }

    fn key_operation(self) -> &'static str {
        match self {
            Entity::Customers => "GetCustomerByKey",
            Entity::Invoices => "GetReceivablesInvoiceByKey",
        }
    }

    /// The key column's width (`CUSTNMBR` char(15), `DOCNUMBR` char(21)): the deepest bound.
    fn key_width(self) -> usize {
        match self {
            Entity::Customers => 15,
            Entity::Invoices => 21,
        }
    }

    fn list_envelope(self, company: i32, since: Option<&Timestamp>, range: &KeyRange) -> String {
        match self {
            Entity::Customers => soap::customer_list(company, since, range),
            Entity::Invoices => soap::invoice_list(company, since, range),
        }
    }

    /// What a record reads from a list summary: all that is kept of one.
    fn summary_fields(self) -> &'static [Field] {
        match self {
            Entity::Customers => records::CUSTOMER_SUMMARY,
            Entity::Invoices => records::INVOICE_SUMMARY,
        }
    }

    fn key_envelope(self, company: i32, id: &str) -> String {
        match self {
            Entity::Customers => soap::customer_by_key(company, id),
            Entity::Invoices => soap::invoice_by_key(company, id),
        }
    }

    /// Reads one record whole; `None` when it is gone (deleted since it was listed, or since
    /// GP logged a change of its internet addresses).
    async fn by_key(self, client: &GpClient, id: &str, summary: Option<&Element>) -> Result<Option<Value>, GpError> {
        let company = client.company_key();
        match client.soap(self.key_operation(), self.key_envelope(company, id), client.retry()).await {
            Ok(full) if full.children.is_empty() => Ok(None),
            Ok(full) => Ok(Some(self.record(summary, &full, Some(company)))),
            Err(GpError::Fault(f)) if f.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn record(self, summary: Option<&Element>, full: &Element, company: Option<i32>) -> Value {
        match self {
            Entity::Customers => records::customer(summary, full, company),
            Entity::Invoices => records::invoice(summary, full, company),
        }
    }
}

/// `since` as a timestamp. GP's cursor is `ModifiedDate`, a UTC timestamp; the engine has
/// already moved it back by the lookback, so it is used as is.
pub fn since_of(request: &ReadRequest) -> Result<Option<Timestamp>, String> {
    if let Some(field) = &request.cursor_field
        && field != CURSOR_FIELD
    {
        return Err(format!(
            "dynamics-gp filters changes on `{CURSOR_FIELD}` (GP's UTC modified timestamp); set the cursor field to it, not `{field}`"
        ));
    }
    if request.cursor_kind != CursorKind::Timestamp && request.cursor_field.is_some() {
        return Err(format!("`{CURSOR_FIELD}` is a timestamp: the cursor kind must be `timestamp`"));
    }
    match &request.since {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            records::parse_datetime(s).map(Some).ok_or_else(|| format!("the watermark `{s}` is not a timestamp"))
        }
        Some(other) => Err(format!("the watermark {other} is not a timestamp")),
    }
}

/// Reads each item with `read`, `max_in_flight` at once, keeping the items' order; records gone
/// since they were listed (`None`) are left out, and the first failure fails the page.
async fn read_in_order<I, F, Fut>(
    client: &GpClient,
    entity: Entity,
    items: impl IntoIterator<Item = I>,
    read: F,
) -> Result<Vec<Value>, ConnectorError>
where
    F: Fn(I) -> Fut,
    Fut: std::future::Future<Output = Result<Option<Value>, GpError>>,
{
    let details = futures_util::stream::iter(items)
        .map(read)
        .buffered(client.settings.max_in_flight.max(1))
        .collect::<Vec<_>>()
        .await;
    let mut records = Vec::with_capacity(details.len());
    for d in details {
        if let Some(record) = d.map_err(|e| read_error(entity, &e))? {
            records.push(record);
        }
    }
    Ok(records)
}

fn read_error(entity: Entity, e: &GpError) -> ConnectorError {
    let what = match entity {
        Entity::Customers => "customers",
        Entity::Invoices => "invoices",
    };
    ConnectorError::new(format!("reading GP {what}: {e}"))
}

/// A record to read whole: listed by a key range (with its summary) or named by GP's log of
/// internet-address changes (without), and the time of such a change when GP reported one.
struct Pending {
    id: String,
    summary: Option<Summary>,
    internet_change: Option<Timestamp>,
}

/// SOAP pages: key ranges give the keys of changed records (their summaries, which are small);
/// each page then reads its records whole by key, a few at once. So what a page holds in full
/// is one page of records, whatever a range returned.
pub struct SoapPages {
    client: Arc<GpClient>,
    entity: Entity,
    since: Option<Timestamp>,
    ranges: KeyRanges,
    page_size: usize,
    /// Records listed or named and not yet read whole (a range may hold more than a page).
    pending: VecDeque<Pending>,
    /// Customers whose internet addresses changed after `since`, with the latest change, that
    /// no key range has listed yet, by upper-cased id (GP's keys compare case-insensitively):
    /// `None` until GP was asked (first page); emptied into `pending` when the ranges are done.
    /// Only incremental customer reads ask.
    internet_changes: Option<BTreeMap<String, (String, Timestamp)>>,
}

impl SoapPages {
    /// A read of `entity` changed after `since`, `page_size` records a page.
    pub fn new(client: Arc<GpClient>, entity: Entity, since: Option<Timestamp>, page_size: usize) -> Self {
        let page_size = page_size.max(1);
        SoapPages {
            client,
            entity,
            ranges: KeyRanges::new(page_size, entity.key_width(), since.is_some()),
            since,
            page_size,
            pending: VecDeque::new(),
            internet_changes: None,
        }
    }

    /// Asks GP which customers' internet addresses changed after `since` (nothing to ask for a
    /// full read, which reads every customer anyway, or for invoices).
    async fn ask_internet_changes(&self) -> Result<BTreeMap<String, (String, Timestamp)>, ConnectorError> {
        let (Entity::Customers, Some(since)) = (self.entity, self.since.as_ref()) else { return Ok(BTreeMap::new()) };
        let envelope = soap::changed_customer_internet_addresses(self.client.company_key(), since);
        let list =
            self.client.soap("GetChangedInternetAddressKeyList", envelope, self.client.retry()).await.map_err(|e| {
                ConnectorError::new(format!(
                    "reading GP customers: asking which customers' e-mail (internet addresses) changed: {e}"
                ))
            })?;
        let changes = records::internet_address_changes(&list);
        tracing::debug!(changed = changes.len(), keys = list.children.len(), "GP: internet-address changes listed");
        Ok(changes.into_iter().map(|(id, at)| (id.to_ascii_uppercase(), (id, at))).collect())
    }

    /// Takes the internet-address change of a customer a key range listed, so it is read once.
    fn take_internet_change(&mut self, id: &str) -> Option<Timestamp> {
        self.internet_changes.as_mut()?.remove(&id.to_ascii_uppercase()).map(|(_, at)| at)
    }

    /// Lists the next key range into `pending`.
    async fn list_next_range(&mut self) -> Result<(), ConnectorError> {
        let Some(range) = self.ranges.next_range() else { return Ok(()) };
        let company = self.client.company_key();
        let envelope = self.entity.list_envelope(company, self.since.as_ref(), &range);
        let fields = self.entity.summary_fields();
        let list = self
            .client
            .soap_list(self.entity.list_operation(), envelope, self.client.retry(), fields)
            .await
            .map_err(|e| read_error(self.entity, &e))?;
        let summaries: Vec<(String, Summary)> = list
            .into_iter()
            .filter_map(|s| s.value(fields, &["Key", "Id"]).map(str::to_owned).map(|id| (id, s)))
            .collect();
        let keys: Vec<String> = summaries.iter().map(|(id, _)| id.clone()).collect();
        tracing::debug!(entity = ?self.entity, ?range, found = keys.len(), "GP: key range listed");
        self.ranges.advance(&range, &keys);
        for (id, summary) in summaries {
            let internet_change = self.take_internet_change(&id);
            self.pending.push_back(Pending { id, summary: Some(summary), internet_change });
        }
        Ok(())
    }

    /// Reads these records whole, `max_in_flight` at once, in order.
    async fn read_whole(&self, batch: Vec<Pending>) -> Result<Vec<Value>, ConnectorError> {
        let entity = self.entity;
        let client = &self.client;
        read_in_order(client, entity, batch, |p| async move {
            let summary = p.summary.as_ref().map(|s| s.element(entity.summary_fields()));
            let mut record = entity.by_key(client, &p.id, summary.as_ref()).await?;
            if let (Some(r), Some(at)) = (record.as_mut(), p.internet_change) {
                records::note_internet_address_change(r, at);
            }
            Ok(record)
        })
        .await
    }
}

#[async_trait]
impl RecordPages for SoapPages {
    async fn next_page(&mut self) -> Result<Option<Vec<Value>>, ConnectorError> {
        if self.internet_changes.is_none() {
            self.internet_changes = Some(self.ask_internet_changes().await?);
        }
        loop {
            while self.pending.len() < self.page_size && !self.ranges.done() {
                self.list_next_range().await?;
            }
            if self.ranges.done() {
                // What the list did not have: customers whose e-mail alone changed.
                let unlisted = self.internet_changes.as_mut().map(std::mem::take).unwrap_or_default();
                self.pending.extend(unlisted.into_values().map(|(id, at)| Pending {
                    id,
                    summary: None,
                    internet_change: Some(at),
                }));
            }
            if self.pending.is_empty() {
                return Ok(None);
            }
            let n = self.pending.len().min(self.page_size);
            let batch: Vec<_> = self.pending.drain(..n).collect();
            let records = self.read_whole(batch).await?;
            // A page whose every record vanished meanwhile is skipped, not handed out empty.
            if !records.is_empty() {
                return Ok(Some(records));
            }
        }
    }
}

/// Reads records by key (for replaying dead letters): one `Get…ByKey` each.
pub async fn soap_by_keys(client: &GpClient, entity: Entity, ids: &[Value]) -> Result<Vec<Value>, ConnectorError> {
    let mut found = Vec::new();
    for id in ids.iter().filter_map(Value::as_str) {
        if let Some(record) = entity.by_key(client, id, None).await.map_err(|e| read_error(entity, &e))? {
            found.push(record);
        }
    }
    Ok(found)
}

/// SBA pages. No public capture shows SBA paging or a modified-date filter (and asking for
/// either may be refused), so the list is read whole, filtered on `ModifiedDate` here, and only
/// the changed records' keys are kept; each page then reads its records one by one
/// (`<collection>(<id>)`), since list items lack e-mail, addresses and balances.
pub struct SbaPages {
    client: Arc<GpClient>,
    entity: Entity,
    since: Option<Timestamp>,
    page_size: usize,
    /// Keys of changed records not yet read (`None` until the list is read).
    pending: Option<VecDeque<String>>,
}

impl SbaPages {
    /// A read of `entity` changed after `since`, `page_size` records a page.
    pub fn new(client: Arc<GpClient>, entity: Entity, since: Option<Timestamp>, page_size: usize) -> Self {
        SbaPages { client, entity, since, page_size: page_size.max(1), pending: None }
    }

    fn collection(&self) -> &str {
        let paths = &self.client.settings.sba_paths;
        match self.entity {
            Entity::Customers => &paths.customers,
            Entity::Invoices => &paths.invoices,
        }
    }

    async fn list(&self) -> Result<VecDeque<String>, ConnectorError> {
        let body = self
            .client
            .sba_get(self.collection(), self.client.retry())
            .await
            .map_err(|e| read_error(self.entity, &e))?;
        let items = crate::sba::items(body).map_err(|e| read_error(self.entity, &GpError::Invalid(e)))?;
        let mut keys = VecDeque::new();
        for item in &items {
            let Some(id) = crate::sba::item_id(item) else { continue };
            let modified = item.get(CURSOR_FIELD).and_then(Value::as_str).and_then(records::parse_datetime);
            // Without a readable ModifiedDate the record is read: better once too often.
            if let (Some(since), Some(m)) = (self.since, modified)
                && m <= since
            {
                continue;
            }
            keys.push_back(id);
        }
        Ok(keys)
    }

    async fn read_whole(&self, ids: Vec<String>) -> Result<Vec<Value>, ConnectorError> {
        let client = &self.client;
        let entity = self.entity;
        let collection = self.collection();
        read_in_order(client, entity, ids, |id| async move {
            match client.sba_get(&GpClient::sba_item(collection, &id), client.retry()).await {
                Ok(body) => Ok(crate::sba::item(body)
                    .map(|v| entity.record(None, &crate::sba::to_element("Record", &v), client.settings.company_key))),
                // Deleted between the list and now.
                Err(GpError::Http { status: 404, .. }) => Ok(None),
                Err(e) => Err(e),
            }
        })
        .await
    }
}

#[async_trait]
impl RecordPages for SbaPages {
    async fn next_page(&mut self) -> Result<Option<Vec<Value>>, ConnectorError> {
        if self.pending.is_none() {
            self.pending = Some(self.list().await?);
        }
        loop {
            let pending = self.pending.as_mut().expect("listed above");
            if pending.is_empty() {
                return Ok(None);
            }
            let n = pending.len().min(self.page_size);
            let batch: Vec<String> = pending.drain(..n).collect();
            let records = self.read_whole(batch).await?;
            if !records.is_empty() {
                return Ok(Some(records));
            }
        }
    }
}
