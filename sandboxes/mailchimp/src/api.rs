//! Routing of `/3.0` paths to resources. HTTP requests and batch operations both come through
//! [`dispatch`], so a batch sees exactly the validation and rules a direct call sees.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::Value;

use crate::ecommerce::{self, Store, customers, orders, products};
use crate::errors::ApiError;
use crate::lists::{self, List};
use crate::members::{self, WriteCtx};
use crate::query::{Query, apply_fields};
use crate::state::{Data, Shared};
use crate::util::percent_decode;
use crate::webhooks::{self, Outgoing, Source};
use crate::{account, batch_subscribe, batches, merge_fields};

/// A request to the API, from HTTP or from a batch.
#[derive(Clone, Debug)]
pub(crate) struct ApiRequest {
    /// Upper case.
    pub method: String,
    /// The path after `/3.0` (`/lists/abc/members`).
    pub path: String,
    /// Decoded query parameters (filters, paging, `fields`).
    pub query: Query,
    /// The parsed JSON body (a malformed one never gets here).
    pub body: Option<Value>,
}

/// A successful answer.
#[derive(Clone, Debug)]
pub(crate) struct Reply {
    /// 200, or 204 for deletes and actions.
    pub status: u16,
    /// The JSON body (none for 204).
    pub body: Option<Value>,
}

impl Reply {
    fn json(body: Value) -> Reply {
        Reply { status: 200, body: Some(body) }
    }

    fn empty() -> Reply {
        Reply { status: 204, body: None }
    }
}

pub(crate) type ApiResult = Result<Reply, ApiError>;

/// The resources under `/3.0`, with their path parameters.
#[derive(Clone, Copy, Debug)]
enum Route<'a> {
    Root,
    Ping,
    Lists,
    List(&'a str),
    Members(&'a str),
    Member(&'a str, &'a str),
    MemberTags(&'a str, &'a str),
    MemberDeletePermanent(&'a str, &'a str),
    MergeFields(&'a str),
    MergeField(&'a str, &'a str),
    Webhooks(&'a str),
    Webhook(&'a str, &'a str),
    Stores,
    Store(&'a str),
    Customers(&'a str),
    Customer(&'a str, &'a str),
    Products(&'a str),
    Product(&'a str, &'a str),
    Variants(&'a str, &'a str),
    Variant(&'a str, &'a str, &'a str),
    Orders(&'a str),
    Order(&'a str, &'a str),
    Lines(&'a str, &'a str),
    Line(&'a str, &'a str, &'a str),
    Batches,
    Batch(&'a str),
}

impl<'a> Route<'a> {
    fn parse(segments: &[&'a str]) -> Option<Route<'a>> {
        Some(match segments {
            [] => Route::Root,
            ["ping"] => Route::Ping,
            ["lists"] => Route::Lists,
            ["lists", l] => Route::List(l),
            ["lists", l, "members"] => Route::Members(l),
            ["lists", l, "members", m] => Route::Member(l, m),
            ["lists", l, "members", m, "tags"] => Route::MemberTags(l, m),
            ["lists", l, "members", m, "actions", "delete-permanent"] => Route::MemberDeletePermanent(l, m),
            ["lists", l, "merge-fields"] => Route::MergeFields(l),
            ["lists", l, "merge-fields", f] => Route::MergeField(l, f),
            ["lists", l, "webhooks"] => Route::Webhooks(l),
            ["lists", l, "webhooks", w] => Route::Webhook(l, w),
            ["ecommerce", "stores"] => Route::Stores,
            ["ecommerce", "stores", s] => Route::Store(s),
            ["ecommerce", "stores", s, "customers"] => Route::Customers(s),
            ["ecommerce", "stores", s, "customers", c] => Route::Customer(s, c),
            ["ecommerce", "stores", s, "products"] => Route::Products(s),
            ["ecommerce", "stores", s, "products", p] => Route::Product(s, p),
            ["ecommerce", "stores", s, "products", p, "variants"] => Route::Variants(s, p),
            ["ecommerce", "stores", s, "products", p, "variants", v] => Route::Variant(s, p, v),
            ["ecommerce", "stores", s, "orders"] => Route::Orders(s),
            ["ecommerce", "stores", s, "orders", o] => Route::Order(s, o),
            ["ecommerce", "stores", s, "orders", o, "lines"] => Route::Lines(s, o),
            ["ecommerce", "stores", s, "orders", o, "lines", l] => Route::Line(s, o, l),
            ["batches"] => Route::Batches,
            ["batches", b] => Route::Batch(b),
            _ => return None,
        })
    }

    /// The methods the resource allows (the `Allow` header of a 405).
    fn methods(&self) -> &'static [&'static str] {
        use Route::*;
        match self {
            Root | Ping => &["GET"],
            Lists | Members(_) | MergeFields(_) | Webhooks(_) | Stores | Customers(_) | Products(_) | Variants(..)
            | Orders(_) | Lines(..) | Batches | MemberTags(..) => &["GET", "POST"],
            List(_) => &["GET", "POST", "PATCH", "DELETE"],
            Member(..) | Customer(..) | Product(..) | Variant(..) | Order(..) => &["GET", "PUT", "PATCH", "DELETE"],
            MemberDeletePermanent(..) => &["POST"],
            MergeField(..) | Webhook(..) | Store(_) | Line(..) => &["GET", "PATCH", "DELETE"],
            Batch(_) => &["GET", "DELETE"],
        }
    }
}

/// [`dispatch`] as a boxed future, for callers that are themselves reached from `dispatch`
/// (batch operations), so the future types do not nest forever.
pub(crate) fn dispatch_boxed(
    shared: Arc<Shared>,
    request: ApiRequest,
) -> Pin<Box<dyn Future<Output = ApiResult> + Send>> {
    Box::pin(async move { dispatch(&shared, request).await })
}

/// Handles one API request: route, method, resource, then `fields`/`exclude_fields`.
pub(crate) async fn dispatch(shared: &Arc<Shared>, request: ApiRequest) -> ApiResult {
    let decoded: Vec<String> = request.path.split('/').filter(|s| !s.is_empty()).map(percent_decode).collect();
    let segments: Vec<&str> = decoded.iter().map(String::as_str).collect();
    let route = Route::parse(&segments).ok_or_else(ApiError::not_found)?;
    let allowed = route.methods();
    if !allowed.contains(&request.method.as_str()) {
        return Err(ApiError::method_not_allowed(allowed));
    }
    let reply = handle(shared, route, &request).await?;
    match reply.body {
        Some(body) => Ok(Reply { status: reply.status, body: Some(apply_fields(body, &request.query)?) }),
        None => Ok(reply),
    }
}

/// The write context of API calls.
fn api_ctx(shared: &Shared, query: &Query) -> WriteCtx {
    WriteCtx {
        source: Source::Api,
        origin: "API - Generic",
        skip_merge_validation: query.flag("skip_merge_validation"),
        resubscribe_after_api_unsubscribe: shared.config.resubscribe_after_api_unsubscribe,
    }
}

fn read_list<R>(shared: &Shared, id: &str, f: impl FnOnce(&List) -> Result<R, ApiError>) -> Result<R, ApiError> {
    let data = shared.lock();
    f(data.lists.get(id).ok_or_else(ApiError::not_found)?)
}

fn write_list<R>(
    shared: &Arc<Shared>,
    id: &str,
    f: impl FnOnce(&mut List, &mut u64, &mut Vec<Outgoing>) -> Result<R, ApiError>,
) -> Result<R, ApiError> {
    shared.write(|data, out| {
        let Data { lists, seq, .. } = data;
        f(lists.get_mut(id).ok_or_else(ApiError::not_found)?, seq, out)
    })
}

fn read_store<R>(shared: &Shared, id: &str, f: impl FnOnce(&Store) -> Result<R, ApiError>) -> Result<R, ApiError> {
    let data = shared.lock();
    f(ecommerce::store(&data.stores, id)?)
}

/// A write to a store, with its audience (for customer side effects).
fn write_store<R>(
    shared: &Arc<Shared>,
    id: &str,
    f: impl FnOnce(&mut Store, &mut List, &mut u64, &mut Vec<Outgoing>) -> Result<R, ApiError>,
) -> Result<R, ApiError> {
    shared.write(|data, out| {
        let Data { lists, stores, seq, .. } = data;
        let store = ecommerce::store_mut(stores, id)?;
        let list = lists.get_mut(&store.list_id).ok_or_else(ApiError::not_found)?;
        f(store, list, seq, out)
    })
}

async fn handle(shared: &Arc<Shared>, route: Route<'_>, request: &ApiRequest) -> ApiResult {
    let method = request.method.as_str();
    let query = &request.query;
    let body = request.body.as_ref();
    let ctx = api_ctx(shared, query);
    let json = |r: Result<Value, ApiError>| r.map(Reply::json);
    let empty = |r: Result<(), ApiError>| r.map(|()| Reply::empty());
    match (route, method) {
        (Route::Root, _) => Ok(Reply::json(account::root(shared))),
        (Route::Ping, _) => Ok(Reply::json(serde_json::json!({"health_status": "Everything's Chimpy!"}))),

        (Route::Lists, "GET") => json(lists::list(&shared.lock().lists.values().collect::<Vec<_>>(), query)),
        (Route::Lists, _) => {
            let (name, settings) = lists::check_create(body)?;
            let mut data = shared.lock();
            let seq = data.next_seq();
            let list = lists::create(seq, &name, settings);
            let out = list.render();
            data.lists.insert(list.id.clone(), list);
            Ok(Reply::json(out))
        }
        (Route::List(l), "GET") => json(read_list(shared, l, |list| Ok(list.render()))),
        (Route::List(l), "POST") => {
            json(write_list(shared, l, |list, seq, out| batch_subscribe::run(list, seq, body, query, &ctx, out)))
        }
        (Route::List(l), "PATCH") => json(write_list(shared, l, |list, _, _| lists::patch(list, body))),
        (Route::List(l), _) => {
            let mut data = shared.lock();
            data.lists.remove(l).ok_or_else(ApiError::not_found)?;
            data.stores.retain(|_, s| s.list_id != l);
            Ok(Reply::empty())
        }

        (Route::Members(l), "GET") => json(read_list(shared, l, |list| members::collection(list, query))),
        (Route::Members(l), _) => {
            json(write_list(shared, l, |list, seq, out| members::post(list, seq, body, &ctx, out)))
        }
        (Route::Member(l, m), "GET") => json(read_list(shared, l, |list| members::get(list, m))),
        (Route::Member(l, m), "PUT") => {
            json(write_list(shared, l, |list, seq, out| members::put(list, seq, m, body, &ctx, out)))
        }
        (Route::Member(l, m), "PATCH") => {
            json(write_list(shared, l, |list, seq, out| members::patch(list, seq, m, body, &ctx, out)))
        }
        (Route::Member(l, m), _) => {
            empty(write_list(shared, l, |list, _, out| members::archive(list, m, Source::Api, out)))
        }
        (Route::MemberTags(l, m), "GET") => json(read_list(shared, l, |list| members::get_tags(list, m, query))),
        (Route::MemberTags(l, m), _) => {
            empty(write_list(shared, l, |list, seq, _| members::post_tags(list, seq, m, body)))
        }
        (Route::MemberDeletePermanent(l, m), _) => {
            empty(write_list(shared, l, |list, _, out| members::forget(list, m, Source::Api, out)))
        }

        (Route::MergeFields(l), "GET") => json(read_list(shared, l, |list| merge_fields::list(list, query))),
        (Route::MergeFields(l), _) => json(write_list(shared, l, |list, _, _| merge_fields::create(list, body))),
        (Route::MergeField(l, f), "GET") => json(read_list(shared, l, |list| merge_fields::get(list, f))),
        (Route::MergeField(l, f), "PATCH") => {
            json(write_list(shared, l, |list, _, _| merge_fields::patch(list, f, body)))
        }
        (Route::MergeField(l, f), _) => empty(write_list(shared, l, |list, _, _| merge_fields::delete(list, f))),

        (Route::Webhooks(l), "GET") => json(read_list(shared, l, |list| webhooks::list(list, query))),
        (Route::Webhooks(l), _) => json(webhooks::create(shared, l, body).await),
        (Route::Webhook(l, w), "GET") => json(read_list(shared, l, |list| webhooks::get(list, w))),
        (Route::Webhook(l, w), "PATCH") => json(webhooks::patch(shared, l, w, body).await),
        (Route::Webhook(l, w), _) => empty(write_list(shared, l, |list, _, _| webhooks::delete(shared, list, w))),

        (Route::Stores, "GET") => json(ecommerce::list_stores(&shared.lock().stores, query)),
        (Route::Stores, _) => {
            let mut data = shared.lock();
            let seq = data.next_seq();
            let Data { stores, lists, .. } = &mut *data;
            json(ecommerce::create_store(stores, lists, seq, body))
        }
        (Route::Store(s), "GET") => json(read_store(shared, s, |store| Ok(store.render()))),
        (Route::Store(s), "PATCH") => json(ecommerce::patch_store(&mut shared.lock().stores, s, body)),
        (Route::Store(s), _) => {
            shared.lock().stores.remove(s).ok_or_else(ApiError::not_found)?;
            Ok(Reply::empty())
        }

        (Route::Customers(s), "GET") => json(read_store(shared, s, |store| customers::list(store, query))),
        (Route::Customers(s), _) => {
            json(write_store(shared, s, |store, list, seq, out| customers::create(store, list, seq, body, &ctx, out)))
        }
        (Route::Customer(s, c), "GET") => json(read_store(shared, s, |store| customers::get(store, c))),
        (Route::Customer(s, c), "PUT") => {
            json(write_store(shared, s, |store, list, seq, out| customers::put(store, list, seq, c, body, &ctx, out)))
        }
        (Route::Customer(s, c), "PATCH") => {
            json(write_store(shared, s, |store, list, seq, out| customers::patch(store, list, seq, c, body, &ctx, out)))
        }
        (Route::Customer(s, c), _) => empty(write_store(shared, s, |store, _, _, _| customers::delete(store, c))),

        (Route::Products(s), "GET") => json(read_store(shared, s, |store| products::list(store, query))),
        (Route::Products(s), _) => json(write_store(shared, s, |store, _, seq, _| products::create(store, seq, body))),
        (Route::Product(s, p), "GET") => json(read_store(shared, s, |store| products::get(store, p))),
        (Route::Product(s, p), "PUT") => {
            json(write_store(shared, s, |store, _, seq, _| products::put(store, seq, p, body)))
        }
        (Route::Product(s, p), "PATCH") => {
            json(write_store(shared, s, |store, _, seq, _| products::patch(store, seq, p, body)))
        }
        (Route::Product(s, p), _) => empty(write_store(shared, s, |store, _, _, _| products::delete(store, p))),
        (Route::Variants(s, p), "GET") => json(read_store(shared, s, |store| products::list_variants(store, p, query))),
        (Route::Variants(s, p), _) => {
            json(write_store(shared, s, |store, _, seq, _| products::create_variant(store, seq, p, body)))
        }
        (Route::Variant(s, p, v), "GET") => json(read_store(shared, s, |store| products::get_variant(store, p, v))),
        (Route::Variant(s, p, v), "PUT") => {
            json(write_store(shared, s, |store, _, seq, _| products::put_variant(store, seq, p, v, body)))
        }
        (Route::Variant(s, p, v), "PATCH") => {
            json(write_store(shared, s, |store, _, _, _| products::patch_variant(store, p, v, body)))
        }
        (Route::Variant(s, p, v), _) => {
            empty(write_store(shared, s, |store, _, _, _| products::delete_variant(store, p, v)))
        }

        (Route::Orders(s), "GET") => json(read_store(shared, s, |store| orders::list(store, query))),
        (Route::Orders(s), _) => {
            json(write_store(shared, s, |store, list, seq, out| orders::create(store, list, seq, body, &ctx, out)))
        }
        (Route::Order(s, o), "GET") => json(read_store(shared, s, |store| orders::get(store, o))),
        (Route::Order(s, o), "PUT") => {
            json(write_store(shared, s, |store, list, seq, out| orders::put(store, list, seq, o, body, &ctx, out)))
        }
        (Route::Order(s, o), "PATCH") => {
            json(write_store(shared, s, |store, list, seq, out| orders::patch(store, list, seq, o, body, &ctx, out)))
        }
        (Route::Order(s, o), _) => empty(write_store(shared, s, |store, _, _, _| orders::delete(store, o))),
        (Route::Lines(s, o), "GET") => json(read_store(shared, s, |store| orders::list_lines(store, o, query))),
        (Route::Lines(s, o), _) => json(write_store(shared, s, |store, _, _, _| orders::create_line(store, o, body))),
        (Route::Line(s, o, l), "GET") => json(read_store(shared, s, |store| orders::get_line(store, o, l))),
        (Route::Line(s, o, l), "PATCH") => {
            json(write_store(shared, s, |store, _, _, _| orders::patch_line(store, o, l, body)))
        }
        (Route::Line(s, o, l), _) => empty(write_store(shared, s, |store, _, _, _| orders::delete_line(store, o, l))),

        (Route::Batches, "GET") => json(batches::list(&shared.lock(), query)),
        (Route::Batches, _) => json(batches::create(shared, body)),
        (Route::Batch(b), "GET") => json(batches::get(&shared.lock(), b)),
        (Route::Batch(b), _) => empty(batches::delete(&mut shared.lock(), b)),
    }
}
