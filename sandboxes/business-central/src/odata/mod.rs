//! The OData layer: query options, `$filter`, `$select`/`$expand`, ordering and paging, ETags,
//! path segments, and the rendering of collections and single entities in BC's envelope
//! (`@odata.context`, `@odata.etag` first in each entity, `value`, `@odata.nextLink` last).

pub(crate) mod etag;
pub(crate) mod filter;
pub(crate) mod paging;
pub(crate) mod path;
pub(crate) mod query;

use serde_json::{Map, Value};

use crate::errors::ApiError;
use crate::json::Out;
use crate::schema::{EntityType, Nav, Prop};
use filter::Expr;
use query::QueryOptions;

/// A rendered row: every property by name, and its ETag (companies have none).
#[derive(Clone, Debug)]
pub(crate) struct Row {
    /// Every property by name (filtering and ordering read it).
    pub view: Map<String, Value>,
    /// The row's ETag.
    pub etag: Option<String>,
}

/// One `$expand` item with its nested `$select`/`$filter`.
#[derive(Debug)]
pub(crate) struct ExpandItem {
    /// The navigation property.
    pub nav: &'static Nav,
    /// Its target type.
    pub target: &'static EntityType,
    /// Nested `$select`.
    pub select: Option<Vec<&'static Prop>>,
    /// Nested `$filter`.
    pub filter: Option<Expr>,
}

/// What to show of each entity.
#[derive(Debug, Default)]
pub(crate) struct Shape {
    /// `$select`: the properties to show (None: all).
    pub select: Option<Vec<&'static Prop>>,
    /// `$expand` items.
    pub expand: Vec<ExpandItem>,
}

impl Shape {
    pub(crate) fn parse(
        ty: &'static EntityType,
        select: Option<&str>,
        expand: Option<&str>,
    ) -> Result<Shape, ApiError> {
        let select = select.map(|s| parse_select(ty, s)).transpose()?.flatten();
        let expand = expand.map(|e| parse_expand(ty, e)).transpose()?.unwrap_or_default();
        Ok(Shape { select, expand })
    }

    /// The `(a,b)` part of a context URL when `$select` was given.
    fn context_suffix(&self) -> String {
        match &self.select {
            Some(props) => format!("({})", props.iter().map(|p| p.name).collect::<Vec<_>>().join(",")),
            None => String::new(),
        }
    }
}

fn parse_select(ty: &'static EntityType, text: &str) -> Result<Option<Vec<&'static Prop>>, ApiError> {
    let mut props = Vec::new();
    for name in text.split(',').map(str::trim) {
        if name == "*" {
            return Ok(None);
        }
        if name.is_empty() {
            return Err(ApiError::query(format!("Syntax error in '$select={text}'.")));
        }
        let prop = ty.prop(name).ok_or_else(|| ApiError::unknown_property(name, ty.name))?;
        if !props.iter().any(|p: &&Prop| p.name == prop.name) {
            props.push(prop);
        }
    }
    props.sort_by_key(|p| ty.props.iter().position(|q| q.name == p.name));
    Ok(Some(props))
}

fn split_top(text: &str, sep: char) -> Vec<String> {
    let (mut parts, mut current, mut depth, mut quoted) = (Vec::new(), String::new(), 0i32, false);
    for c in text.chars() {
        match c {
            '\'' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth -= 1,
            c if c == sep && depth == 0 && !quoted => {
                parts.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    parts.push(current);
    parts
}

fn parse_expand(ty: &'static EntityType, text: &str) -> Result<Vec<ExpandItem>, ApiError> {
    let mut items = Vec::new();
    for item in split_top(text, ',') {
        let item = item.trim();
        let (name, options) = match item.find('(') {
            Some(open) if item.ends_with(')') => (&item[..open], Some(&item[open + 1..item.len() - 1])),
            Some(_) => return Err(ApiError::query(format!("Syntax error in '$expand={text}'."))),
            None => (item, None),
        };
        let name = name.trim();
        let Some(nav) = ty.nav(name) else {
            if ty.unserved.contains(&name) {
                return Err(ApiError::new(
                    400,
                    "BadRequest_MethodNotImplemented",
                    format!(
                        "The sandbox does not serve the navigation property '{name}' of 'Microsoft.NAV.{}'.",
                        ty.name
                    ),
                ));
            }
            if ty.prop(name).is_some() {
                return Err(ApiError::query(format!(
                    "Property '{name}' on type 'Microsoft.NAV.{}' is not a navigation property or complex property. Only navigation properties can be expanded.",
                    ty.name
                )));
            }
            return Err(ApiError::unknown_property(name, ty.name));
        };
        let target = crate::schema::by_name(nav.target).ok_or_else(|| ApiError::unknown_property(name, ty.name))?;
        let mut expand = ExpandItem { nav, target, select: None, filter: None };
        for option in options.map(|o| split_top(o, ';')).unwrap_or_default() {
            let option = option.trim();
            if option.is_empty() {
                continue;
            }
            let (key, value) =
                option.split_once('=').ok_or_else(|| ApiError::query(format!("Syntax error in '$expand={text}'.")))?;
            match key.trim() {
                "$select" => expand.select = parse_select(target, value)?,
                "$filter" if nav.many => expand.filter = Some(filter::parse(value, target)?),
                other => {
                    return Err(ApiError::query(format!(
                        "The query option '{other}' is not supported inside $expand."
                    )));
                }
            }
        }
        items.push(expand);
    }
    Ok(items)
}

/// One entity in output order: `@odata.etag`, then properties in `$metadata` order.
pub(crate) fn shape_row(ty: &EntityType, row: &Row, select: &Option<Vec<&'static Prop>>) -> Out {
    let mut out = Out::object();
    if let Some(etag) = &row.etag {
        out.push("@odata.etag", Value::from(etag.clone()));
    }
    let props: Vec<&Prop> = match select {
        Some(props) => props.clone(),
        None => ty.props.iter().collect(),
    };
    for prop in props {
        out.push(prop.name, row.view.get(prop.name).cloned().unwrap_or(Value::Null));
    }
    out
}

/// Resolves an expansion for one row: the target rows (all of them; filtered here).
pub(crate) type Expander<'a> = dyn FnMut(&Row, &ExpandItem) -> Result<Vec<Row>, ApiError> + 'a;

fn shape_with_expand(ty: &EntityType, row: &Row, shape: &Shape, expander: &mut Expander<'_>) -> Result<Out, ApiError> {
    let mut out = shape_row(ty, row, &shape.select);
    for item in &shape.expand {
        let mut targets = expander(row, item)?;
        if let Some(f) = &item.filter {
            targets.retain(|r| filter::eval(f, &r.view));
        }
        if item.nav.many {
            out.push(item.nav.name, Out::A(targets.iter().map(|r| shape_row(item.target, r, &item.select)).collect()));
        } else {
            match targets.first() {
                Some(r) => out.push(item.nav.name, shape_row(item.target, r, &item.select)),
                None => out.push(item.nav.name, Value::Null),
            }
        }
    }
    Ok(out)
}

/// A single entity response: `@odata.context` (`…/$entity`) then the entity.
pub(crate) fn single(
    ty: &'static EntityType,
    row: &Row,
    options: &QueryOptions,
    context: &str,
    expander: &mut Expander<'_>,
) -> Result<Out, ApiError> {
    options.single_entity()?;
    let shape = Shape::parse(ty, options.select.as_deref(), options.expand.as_deref())?;
    let body = shape_with_expand(ty, row, &shape, expander)?;
    let mut out = Out::object();
    out.push("@odata.context", Value::from(format!("{context}{}/$entity", shape.context_suffix())));
    if let Out::O(pairs) = body {
        for (k, v) in pairs {
            out.push(k, v);
        }
    }
    Ok(out)
}

/// How to list a collection.
pub(crate) struct ListRequest<'a> {
    /// The entity type listed.
    pub ty: &'static EntityType,
    /// The request's query options.
    pub options: &'a QueryOptions,
    /// The `Prefer` header.
    pub prefer: Option<&'a str>,
    /// The server's page size cap.
    pub max_page_size: usize,
    /// `<api base>/$metadata#companies(<id>)/customers`.
    pub context: String,
    /// The collection URL the nextLink starts with.
    pub link_base: String,
    /// Query parameters every link repeats (`company=`).
    pub keep: Vec<(String, String)>,
}

/// A rendered page and the page size preference applied, if one was asked for.
pub(crate) struct Page {
    /// The collection envelope.
    pub body: Out,
    /// The `odata.maxpagesize` honoured, for `Preference-Applied`.
    pub applied: Option<usize>,
}

/// Filters, orders, pages and renders a collection.
pub(crate) fn list(req: ListRequest<'_>, rows: Vec<Row>, expander: &mut Expander<'_>) -> Result<Page, ApiError> {
    list_with(req, rows, &mut Ok, expander)
}

/// [`list`] of rows that carry only what filtering and ordering read: `complete` turns each row
/// of the page into the full one. Building every property of every row, for each page, made a
/// paged read of a large table quadratic.
pub(crate) fn list_with(
    req: ListRequest<'_>,
    mut rows: Vec<Row>,
    complete: &mut dyn FnMut(Row) -> Result<Row, ApiError>,
    expander: &mut Expander<'_>,
) -> Result<Page, ApiError> {
    let options = req.options;
    let filter = options.filter.as_deref().map(|f| filter::parse(f, req.ty)).transpose()?;
    let shape = Shape::parse(req.ty, options.select.as_deref(), options.expand.as_deref())?;
    let keys = paging::sort_keys(req.ty, options.orderby.as_deref())?;
    let fingerprint = paging::fingerprint(&[
        &req.link_base,
        options.filter.as_deref().unwrap_or(""),
        options.orderby.as_deref().unwrap_or(""),
    ]);
    if let Some(f) = &filter {
        rows.retain(|r| filter::eval(f, &r.view));
    }
    rows.sort_by(|a, b| paging::cmp_rows(&keys, &a.view, &b.view));
    let total = rows.len();
    if let Some(token) = &options.skiptoken {
        let cursor = paging::decode_token(token, &fingerprint, keys.len())?;
        rows.retain(|r| paging::cmp_cursor(&keys, &r.view, &cursor) == std::cmp::Ordering::Greater);
    } else if let Some(skip) = options.skip {
        rows.drain(..skip.min(rows.len()));
    }
    let preferred = paging::preferred_page_size(req.prefer);
    let page_size = preferred.unwrap_or(req.max_page_size).min(req.max_page_size).max(1);
    let take = match options.top {
        Some(top) => top.min(page_size),
        None => page_size,
    };
    let more = options.top.is_none() && rows.len() > take;
    rows.truncate(take);
    let rows = rows.into_iter().map(complete).collect::<Result<Vec<Row>, ApiError>>()?;

    let mut body = Out::object();
    body.push("@odata.context", Value::from(format!("{}{}", req.context, shape.context_suffix())));
    if options.count {
        body.push("@odata.count", Value::from(total));
    }
    let mut values = Vec::with_capacity(rows.len());
    for row in &rows {
        values.push(shape_with_expand(req.ty, row, &shape, expander)?);
    }
    body.push("value", Out::A(values));
    if more && let Some(last) = rows.last() {
        let token = paging::encode_token(&paging::cursor(&keys, &last.view), &fingerprint);
        let mut query: Vec<(String, String)> = req.keep.clone();
        for (name, value) in [
            ("$filter", &options.filter),
            ("$select", &options.select),
            ("$expand", &options.expand),
            ("$orderby", &options.orderby),
        ] {
            if let Some(value) = value {
                query.push((name.into(), value.clone()));
            }
        }
        if options.count {
            query.push(("$count".into(), "true".into()));
        }
        query.push(("$skiptoken".into(), token));
        let query: Vec<String> = query
            .iter()
            .map(|(k, v)| format!("{}={}", paging::encode_query_value(k), paging::encode_query_value(v)))
            .collect();
        body.push("@odata.nextLink", Value::from(format!("{}?{}", req.link_base, query.join("&"))));
    }
    Ok(Page { body, applied: preferred.map(|p| p.min(req.max_page_size)) })
}
