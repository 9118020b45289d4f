//! A conformance oracle: checks HTTP requests and responses against an OpenAPI 3.0 document.
//!
//! A conformance test checks every request the connector sends, and every response the sandbox
//! returns, against the document: the path and method exist, the JSON bodies validate against the
//! operation's schemas (required fields, types, enums), required query parameters are present and
//! declared ones have the declared type. The operations inside a `POST /batches` body can be
//! checked one by one with [`Spec::check_batch_operations`].
//!
//! ```no_run
//! # use std::path::Path;
//! let spec = conformance::Spec::load(Path::new("openapi.json")).unwrap().with_base_path("/3.0");
//! let body = serde_json::json!({"email_address": "a@example.com", "status_if_new": "subscribed"});
//! spec.check_request("PUT", "/3.0/lists/L1/members/abc", "", Some(&body)).unwrap();
//! ```
//!
//! Schemas are translated to JSON Schema draft 4 (see `src/schema.rs`): OpenAPI
//! annotations and `x-*` extensions are ignored, `format` is not asserted, `nullable` allows `null`,
//! `readOnly` properties are not required in requests nor `writeOnly` ones in responses, and unknown
//! properties are allowed unless a schema says `additionalProperties: false`. Known bugs of the
//! document are corrected at load time and listed by [`Spec::patches`]. Compiled validators are
//! cached per (operation, direction, status), so checking thousands of messages is cheap.

mod query;
mod schema;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex};

use jsonschema::Validator;
use jsonschema::error::ValidationErrorKind;
use serde_json::{Map, Value, json};

use schema::Direction;

/// An operation of the document: what a request matched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation {
    /// The method, upper case (`PUT`).
    pub method: String,
    /// The path template as written in the document, without the base path
    /// (`/lists/{listId}/members/{subscriberHash}`).
    pub template: String,
    /// The document's `operationId`, when it has one.
    pub operation_id: Option<String>,
}

/// A loaded OpenAPI 3.0 document, ready to check messages. `Spec` is `Send + Sync`: share one
/// (e.g. in a `static` or an `Arc`) across tests so the validator cache is shared too.
pub struct Spec {
    base_path: String,
    routes: Vec<Route>,
    /// The component schemas as written (after [`schema::apply_patches`]).
    raw_schemas: Map<String, Value>,
    request_schemas: Components,
    response_schemas: Components,
    patches: Vec<String>,
    cache: Mutex<HashMap<String, Arc<Compiled>>>,
}

type Compiled = Result<Validator, String>;

/// The component schemas translated for one direction, and the components each refers to.
struct Components {
    schemas: HashMap<String, Value>,
    refs: HashMap<String, Vec<String>>,
}

struct Route {
    template: String,
    segments: Vec<Segment>,
    operations: BTreeMap<String, OperationDef>,
}

enum Segment {
    Literal(String),
    Param,
}

struct OperationDef {
    operation_id: Option<String>,
    body: Option<RequestBody>,
    query: Vec<QueryParam>,
    /// Response keys as written (`200`, `2XX`, `default`), in document order.
    responses: Vec<(String, ResponseDef)>,
}

struct RequestBody {
    required: bool,
    /// The JSON media type's schema; `None` when the body is not JSON (not checked).
    schema: Option<Value>,
}

struct QueryParam {
    name: String,
    required: bool,
    schema: Option<Value>,
}

struct ResponseDef {
    /// The JSON (or problem+json) media type's schema; `None` when the response has no JSON content.
    schema: Option<Value>,
}

const METHODS: &[&str] = &["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/// Longest violation message kept (messages embed the offending value, which can be a whole object).
const MAX_MESSAGE: usize = 400;

impl Spec {
    /// Loads an OpenAPI 3.0 JSON document.
    pub fn load(path: &Path) -> Result<Spec, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let document: Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        Spec::from_value(document).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Builds a `Spec` from a parsed OpenAPI 3.0 document.
    pub fn from_value(mut document: Value) -> Result<Spec, String> {
        match document.get("openapi").and_then(Value::as_str) {
            Some(version) if version.starts_with("3.") => {}
            Some(version) => return Err(format!("unsupported OpenAPI version {version} (3.x expected)")),
            None => return Err("not an OpenAPI 3 document (no `openapi` field)".into()),
        }
        let patches = schema::apply_patches(&mut document);
        let raw_schemas =
            document.pointer("/components/schemas").and_then(Value::as_object).cloned().unwrap_or_default();
        let request_schemas = Components::translate(&raw_schemas, Direction::Request);
        let response_schemas = Components::translate(&raw_schemas, Direction::Response);
        let paths = document.get("paths").and_then(Value::as_object).ok_or("the document has no `paths`")?;
        let mut routes = Vec::with_capacity(paths.len());
        for (template, item) in paths {
            routes.push(Route::parse(&document, template, deref(&document, item))?);
        }
        Ok(Spec {
            base_path: String::new(),
            routes,
            raw_schemas,
            request_schemas,
            response_schemas,
            patches,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// `base_path` is stripped from request paths before matching (e.g. `"/3.0"`); a path outside
    /// it matches nothing.
    pub fn with_base_path(mut self, base_path: &str) -> Spec {
        let trimmed = base_path.trim_matches('/');
        self.base_path = if trimmed.is_empty() { String::new() } else { format!("/{trimmed}") };
        self
    }

    /// The corrections applied to known bugs of the document, one line each.
    pub fn patches(&self) -> &[String] {
        &self.patches
    }

    /// Every operation of the document, in document order.
    pub fn operations(&self) -> Vec<Operation> {
        self.routes
            .iter()
            .flat_map(|route| {
                route.operations.iter().map(|(method, op)| Operation {
                    method: method.clone(),
                    template: route.template.clone(),
                    operation_id: op.operation_id.clone(),
                })
            })
            .collect()
    }

    /// The operation a concrete request path matches. Template segments (`{x}`) match one non-empty
    /// segment; when several paths match, the one with a literal segment at the first position
    /// where they differ wins (as OpenAPI says: concrete paths before templated ones), and then
    /// the method must exist on that path. A query string in `path` is ignored.
    pub fn operation(&self, method: &str, path: &str) -> Option<Operation> {
        let (route, method, op) = self.resolve(method, path).ok()?;
        Some(Operation {
            method: method.to_owned(),
            template: route.template.clone(),
            operation_id: op.operation_id.clone(),
        })
    }

    /// Checks a request: the path and method exist; when the operation has a JSON request body, the
    /// body validates against its schema (a required body that is missing is a violation, and so is
    /// a non-empty body sent to an operation that takes none); required query parameters are
    /// present and the query parameters the operation declares have values of the declared type
    /// (integers, booleans, enums, maximum...). `query` may include the leading `?`; a query string
    /// in `path` is checked too. Returns all violations.
    pub fn check_request(
        &self,
        method: &str,
        path: &str,
        query: &str,
        body: Option<&Value>,
    ) -> Result<(), Vec<String>> {
        let mut pairs = query::parse(query);
        if let Some((_, in_path)) = path.split_once('?') {
            pairs.extend(query::parse(in_path.split('#').next().unwrap_or_default()));
        }
        self.check_request_pairs(method, path, &pairs, body, true)
    }

    /// Checks the operations of a `POST /batches` body: each `operations[i]` (`method`, `path`
    /// relative to the API root, `params`, `body` — a JSON *string*) is checked like a request, and
    /// its violations are prefixed with `operations/{i}`. The envelope itself is checked by
    /// [`Spec::check_request`]; malformed entries are reported here too.
    pub fn check_batch_operations(&self, batch: &Value) -> Result<(), Vec<String>> {
        let Some(operations) = batch.get("operations").and_then(Value::as_array) else {
            return Err(vec!["POST /batches: the body has no `operations` array".to_owned()]);
        };
        let mut violations = Vec::new();
        for (i, operation) in operations.iter().enumerate() {
            let prefix = format!("operations/{i}");
            let (Some(method), Some(path)) =
                (operation.get("method").and_then(Value::as_str), operation.get("path").and_then(Value::as_str))
            else {
                violations.push(format!("{prefix}: `method` and `path` must be strings"));
                continue;
            };
            let mut pairs = Vec::new();
            if let Some((_, in_path)) = path.split_once('?') {
                pairs.extend(query::parse(in_path));
            }
            match operation.get("params") {
                None | Some(Value::Null) => {}
                Some(Value::Object(params)) => {
                    for (name, value) in params {
                        let text = match value {
                            Value::String(text) => text.clone(),
                            Value::Array(items) => items
                                .iter()
                                .map(|item| item.as_str().map_or_else(|| item.to_string(), str::to_owned))
                                .collect::<Vec<_>>()
                                .join(","),
                            other => other.to_string(),
                        };
                        pairs.push((name.clone(), text));
                    }
                }
                Some(_) => violations.push(format!("{prefix}: `params` must be an object")),
            }
            let body = match operation.get("body") {
                None | Some(Value::Null) => None,
                Some(Value::String(text)) => match serde_json::from_str::<Value>(text) {
                    Ok(body) => Some(body),
                    Err(e) => {
                        violations.push(format!("{prefix}: `body` is not JSON: {e}"));
                        continue;
                    }
                },
                Some(_) => {
                    violations.push(format!("{prefix}: `body` must be a JSON string"));
                    continue;
                }
            };
            if let Err(found) = self.check_request_pairs(method, path, &pairs, body.as_ref(), false) {
                violations.extend(found.into_iter().map(|v| format!("{prefix}: {v}")));
            }
        }
        if violations.is_empty() { Ok(()) } else { Err(violations) }
    }

    fn check_request_pairs(
        &self,
        method: &str,
        path: &str,
        pairs: &[(String, String)],
        body: Option<&Value>,
        under_base: bool,
    ) -> Result<(), Vec<String>> {
        let (route, method, op) = self.resolve_in(method, path, under_base).map_err(|e| vec![e])?;
        let name = format!("{method} {}", route.template);
        let mut violations = Vec::new();
        for param in &op.query {
            let values: Vec<&str> = pairs.iter().filter(|(n, _)| *n == param.name).map(|(_, v)| v.as_str()).collect();
            if values.is_empty() {
                if param.required {
                    violations.push(format!("{name}: required query parameter `{}` is missing", param.name));
                }
                continue;
            }
            let Some(param_schema) = &param.schema else { continue };
            let resolved = self.resolve_schema(param_schema);
            let instances = if resolved.get("type").and_then(Value::as_str) == Some("array") {
                let items = resolved.get("items").map(|items| self.resolve_schema(items));
                let parts = values.iter().flat_map(|v| v.split(',')).map(|v| coerce(items, v)).collect();
                vec![Value::Array(parts)]
            } else {
                values.iter().map(|v| coerce(Some(resolved), v)).collect()
            };
            let key = format!("{name} query {}", param.name);
            let what = format!("query parameter `{}`", param.name);
            for instance in &instances {
                self.validate(&name, &what, &key, param_schema, Direction::Request, instance, &mut violations);
            }
        }

        match (&op.body, body) {
            (Some(RequestBody { schema: Some(body_schema), .. }), Some(body)) => {
                let key = format!("{name} request");
                self.validate(&name, "request body", &key, body_schema, Direction::Request, body, &mut violations);
            }
            (Some(RequestBody { required: true, .. }), None) => {
                violations.push(format!("{name}: the request body is required"));
            }
            (None, Some(body)) if !is_empty_body(body) => {
                violations.push(format!("{name}: the operation takes no request body"));
            }
            _ => {}
        }
        if violations.is_empty() { Ok(()) } else { Err(violations) }
    }

    /// Checks a response body against the response documented for `status`: the exact code, else
    /// its range (`2XX`), else `default` — except that a 2xx status never falls back to `default`
    /// when the operation documents another 2xx. An undocumented status is a violation only for
    /// 2xx. A documented JSON (or problem+json) response needs a body (except 403: the real API's
    /// throttling sometimes answers a bare 403) that validates; a 204 must have no body.
    pub fn check_response(
        &self,
        method: &str,
        path: &str,
        status: u16,
        body: Option<&Value>,
    ) -> Result<(), Vec<String>> {
        let (route, method, op) = self.resolve(method, path).map_err(|e| vec![e])?;
        let name = format!("{method} {}", route.template);
        let mut violations = Vec::new();
        if status == 204 && body.is_some() {
            violations.push(format!("{name}: a 204 response must have no body"));
        }
        match op.response_for(status) {
            None if (200..300).contains(&status) => {
                let documented: Vec<&str> = op.responses.iter().map(|(key, _)| key.as_str()).collect();
                violations.push(format!(
                    "{name}: response status {status} is not documented (documented: {})",
                    documented.join(", ")
                ));
            }
            None => {}
            Some(_) if status == 204 => {}
            Some((key, response)) => match (&response.schema, body) {
                (Some(response_schema), Some(body)) => {
                    let cache_key = format!("{name} response {key}");
                    let what = format!("response {status} body");
                    self.validate(
                        &name,
                        &what,
                        &cache_key,
                        response_schema,
                        Direction::Response,
                        body,
                        &mut violations,
                    );
                }
                (Some(_), None) if status != 403 => {
                    violations.push(format!("{name}: response {status} has no body (a JSON body is documented)"));
                }
                _ => {}
            },
        }
        if violations.is_empty() { Ok(()) } else { Err(violations) }
    }

    /// Compiles every schema of the document (request bodies, query parameters, responses) into
    /// the cache. Returns how many compiled, or the ones that do not compile.
    pub fn precompile(&self) -> Result<usize, Vec<String>> {
        let mut compiled = 0;
        let mut failures = Vec::new();
        for route in &self.routes {
            for (method, op) in &route.operations {
                let name = format!("{method} {}", route.template);
                let mut jobs: Vec<(String, &Value, Direction)> = Vec::new();
                if let Some(RequestBody { schema: Some(s), .. }) = &op.body {
                    jobs.push((format!("{name} request"), s, Direction::Request));
                }
                for param in &op.query {
                    if let Some(s) = &param.schema {
                        jobs.push((format!("{name} query {}", param.name), s, Direction::Request));
                    }
                }
                for (key, response) in &op.responses {
                    if let Some(s) = &response.schema {
                        jobs.push((format!("{name} response {key}"), s, Direction::Response));
                    }
                }
                for (key, s, direction) in jobs {
                    match &*self.validator(&key, s, direction) {
                        Ok(_) => compiled += 1,
                        Err(e) => failures.push(format!("{key}: {e}")),
                    }
                }
            }
        }
        if failures.is_empty() { Ok(compiled) } else { Err(failures) }
    }

    /// Finds the route and operation of a request, or the violation saying why there is none.
    fn resolve(&self, method: &str, path: &str) -> Result<(&Route, &str, &OperationDef), String> {
        self.resolve_in(method, path, true)
    }

    /// `under_base`: whether `path` includes the base path (batch operation paths do not).
    fn resolve_in(&self, method: &str, path: &str, under_base: bool) -> Result<(&Route, &str, &OperationDef), String> {
        let method_upper = method.to_ascii_uppercase();
        let bare = path.split(['?', '#']).next().unwrap_or_default();
        let relative = if self.base_path.is_empty() || !under_base {
            bare
        } else if bare == self.base_path {
            "/"
        } else {
            match bare.strip_prefix(self.base_path.as_str()) {
                Some(rest) if rest.starts_with('/') => rest,
                _ => {
                    return Err(format!(
                        "{method_upper} {bare}: the path is not under the base path {}",
                        self.base_path
                    ));
                }
            }
        };
        let Some(relative) = relative.strip_prefix('/') else {
            return Err(format!("{method_upper} {bare}: the path does not start with `/`"));
        };
        let segments: Vec<&str> = if relative.is_empty() { Vec::new() } else { relative.split('/').collect() };
        let mut best: Option<(&Route, Vec<bool>)> = None;
        for route in self.routes.iter().filter(|route| route.matches(&segments)) {
            let specificity = route.specificity();
            if best.as_ref().is_none_or(|(_, best)| specificity > *best) {
                best = Some((route, specificity));
            }
        }
        let (route, _) =
            best.ok_or_else(|| format!("{method_upper} {bare}: no path of the OpenAPI document matches"))?;
        match route.operations.get_key_value(&method_upper) {
            Some((method, op)) => Ok((route, method.as_str(), op)),
            None => {
                let allowed: Vec<&str> = route.operations.keys().map(String::as_str).collect();
                Err(format!(
                    "{method_upper} {bare}: method not allowed on {} (allowed: {})",
                    route.template,
                    allowed.join(", ")
                ))
            }
        }
    }

    /// Follows `$ref`s to component schemas (for reading `type`/`items` of query parameters).
    fn resolve_schema<'a>(&'a self, mut schema: &'a Value) -> &'a Value {
        for _ in 0..8 {
            let target = schema
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix(schema::SCHEMA_REF_PREFIX))
                .and_then(|name| self.raw_schemas.get(&schema::unescape_pointer_token(name)));
            match target {
                Some(target) => schema = target,
                None => break,
            }
        }
        schema
    }

    #[allow(clippy::too_many_arguments)]
    fn validate(
        &self,
        name: &str,
        what: &str,
        key: &str,
        schema: &Value,
        direction: Direction,
        instance: &Value,
        violations: &mut Vec<String>,
    ) {
        match &*self.validator(key, schema, direction) {
            Err(e) => violations.push(format!("{name}: the {what} schema does not compile: {e}")),
            Ok(validator) => {
                for error in validator.iter_errors(instance) {
                    let pointer = error.instance_path().as_str();
                    let separator = if pointer.is_empty() { "" } else { " " };
                    let message = match error.kind() {
                        // The crate's message names only two of the values; the whole list is more useful.
                        ValidationErrorKind::Enum { options } => {
                            format!("{} is not one of {options}", error.instance())
                        }
                        _ => error.to_string(),
                    };
                    violations.push(truncate(format!("{name}: {what}{separator}{pointer}: {message}")));
                }
            }
        }
    }

    /// The cached validator for `key`, compiled on first use.
    fn validator(&self, key: &str, schema: &Value, direction: Direction) -> Arc<Compiled> {
        if let Some(compiled) = self.cache.lock().unwrap_or_else(|e| e.into_inner()).get(key) {
            return compiled.clone();
        }
        // Compiled outside the lock: two threads may compile the same schema once each.
        let compiled = Arc::new(self.compile(schema, direction));
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).entry(key.to_owned()).or_insert(compiled).clone()
    }

    /// Translates a schema and bundles the component schemas it reaches, then compiles it.
    fn compile(&self, schema: &Value, direction: Direction) -> Compiled {
        let components = match direction {
            Direction::Request => &self.request_schemas,
            Direction::Response => &self.response_schemas,
        };
        let translated = schema::translate(schema, direction, &self.raw_schemas);
        let mut pending = Vec::new();
        schema::direct_refs(&translated, &mut pending);
        let mut needed = HashSet::new();
        while let Some(name) = pending.pop() {
            if needed.insert(name.clone()) {
                match components.refs.get(&name) {
                    Some(refs) => pending.extend(refs.iter().cloned()),
                    None => return Err(format!("unresolved $ref {}{name}", schema::SCHEMA_REF_PREFIX)),
                }
            }
        }
        let bundled: Map<String, Value> =
            needed.into_iter().map(|name| (name.clone(), components.schemas[&name].clone())).collect();
        let root = json!({"allOf": [translated], "components": {"schemas": bundled}});
        jsonschema::draft4::options().should_validate_formats(false).build(&root).map_err(|e| e.to_string())
    }
}

impl fmt::Debug for Spec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Spec")
            .field("base_path", &self.base_path)
            .field("paths", &self.routes.len())
            .field("schemas", &self.raw_schemas.len())
            .field("patches", &self.patches)
            .finish_non_exhaustive()
    }
}

impl Components {
    fn translate(raw: &Map<String, Value>, direction: Direction) -> Components {
        let mut schemas = HashMap::with_capacity(raw.len());
        let mut refs = HashMap::with_capacity(raw.len());
        for (name, schema) in raw {
            let translated = schema::translate(schema, direction, raw);
            let mut direct = Vec::new();
            schema::direct_refs(&translated, &mut direct);
            refs.insert(name.clone(), direct);
            schemas.insert(name.clone(), translated);
        }
        Components { schemas, refs }
    }
}

impl Route {
    fn parse(document: &Value, template: &str, item: &Value) -> Result<Route, String> {
        let segments = template
            .strip_prefix('/')
            .ok_or_else(|| format!("path `{template}` does not start with `/`"))?
            .split('/')
            .filter(|segment| !segment.is_empty())
            .map(|segment| {
                if segment.starts_with('{') && segment.ends_with('}') {
                    Segment::Param
                } else {
                    Segment::Literal(segment.to_owned())
                }
            })
            .collect();
        let shared_params: Vec<&Value> =
            item.get("parameters").and_then(Value::as_array).map(|p| p.iter().collect()).unwrap_or_default();
        let mut operations = BTreeMap::new();
        for method in METHODS {
            if let Some(op) = item.get(*method) {
                operations.insert(method.to_ascii_uppercase(), OperationDef::parse(document, op, &shared_params));
            }
        }
        Ok(Route { template: template.to_owned(), segments, operations })
    }

    fn matches(&self, segments: &[&str]) -> bool {
        self.segments.len() == segments.len()
            && self.segments.iter().zip(segments).all(|(pattern, segment)| match pattern {
                Segment::Literal(literal) => literal == segment,
                Segment::Param => !segment.is_empty(),
            })
    }

    /// Literal segments first: compared lexicographically, the more concrete path is greater.
    fn specificity(&self) -> Vec<bool> {
        self.segments.iter().map(|segment| matches!(segment, Segment::Literal(_))).collect()
    }
}

impl OperationDef {
    fn parse(document: &Value, op: &Value, shared_params: &[&Value]) -> OperationDef {
        let operation_id = op.get("operationId").and_then(Value::as_str).map(str::to_owned);

        // Operation parameters override path-item ones with the same name and location.
        let mut params: Vec<&Value> = Vec::new();
        let own: Vec<&Value> = op
            .get("parameters")
            .and_then(Value::as_array)
            .map(|p| p.iter().map(|param| deref(document, param)).collect())
            .unwrap_or_default();
        for shared in shared_params.iter().map(|param| deref(document, param)) {
            let overridden = own.iter().any(|o| o.get("name") == shared.get("name") && o.get("in") == shared.get("in"));
            if !overridden {
                params.push(shared);
            }
        }
        params.extend(own);
        let query = params
            .into_iter()
            .filter(|param| param.get("in").and_then(Value::as_str) == Some("query"))
            .filter_map(|param| {
                Some(QueryParam {
                    name: param.get("name")?.as_str()?.to_owned(),
                    required: param.get("required") == Some(&Value::Bool(true)),
                    schema: param.get("schema").cloned(),
                })
            })
            .collect();

        let body = op.get("requestBody").map(|body| {
            let body = deref(document, body);
            RequestBody {
                required: body.get("required") == Some(&Value::Bool(true)),
                schema: json_schema(body.get("content")),
            }
        });
        let responses = op
            .get("responses")
            .and_then(Value::as_object)
            .map(|responses| {
                responses
                    .iter()
                    .map(|(key, response)| {
                        let response = deref(document, response);
                        (key.clone(), ResponseDef { schema: json_schema(response.get("content")) })
                    })
                    .collect()
            })
            .unwrap_or_default();
        OperationDef { operation_id, body, query, responses }
    }

    fn response_for(&self, status: u16) -> Option<(&str, &ResponseDef)> {
        let find = |wanted: &dyn Fn(&str) -> bool| {
            self.responses.iter().find(|(key, _)| wanted(key)).map(|(key, response)| (key.as_str(), response))
        };
        let code = status.to_string();
        let range = format!("{}XX", status / 100);
        if let Some(found) = find(&|key| key == code).or_else(|| find(&|key| key.eq_ignore_ascii_case(&range))) {
            return Some(found);
        }
        if (200..300).contains(&status) && self.responses.iter().any(|(key, _)| key.starts_with('2')) {
            return None;
        }
        find(&|key| key == "default")
    }
}

/// The schema of a content map's JSON media type: `application/json`, else `application/problem+json`,
/// else any `+json`/`json` type.
fn json_schema(content: Option<&Value>) -> Option<Value> {
    let content = content?.as_object()?;
    let media = content
        .get("application/json")
        .or_else(|| content.get("application/problem+json"))
        .or_else(|| content.iter().find(|(media, _)| media.ends_with("json")).map(|(_, m)| m))?;
    Some(media.get("schema").cloned().unwrap_or_else(|| json!({})))
}

/// Follows local `$ref`s (`#/components/...`) of parameters, request bodies and responses.
fn deref<'a>(document: &'a Value, mut value: &'a Value) -> &'a Value {
    for _ in 0..8 {
        match value
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix('#'))
            .and_then(|p| document.pointer(p))
        {
            Some(target) => value = target,
            None => break,
        }
    }
    value
}

/// A query value as the type its schema declares; left a string when it does not parse, so the
/// validator reports the type mismatch.
fn coerce(schema: Option<&Value>, value: &str) -> Value {
    let as_string = || Value::String(value.to_owned());
    match schema.and_then(|s| s.get("type")).and_then(Value::as_str) {
        Some("integer") => value.parse::<i64>().map(Value::from).unwrap_or_else(|_| as_string()),
        Some("number") => value
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .unwrap_or_else(as_string),
        Some("boolean") => match value {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => as_string(),
        },
        _ => as_string(),
    }
}

fn is_empty_body(body: &Value) -> bool {
    match body {
        Value::Null => true,
        Value::Object(object) => object.is_empty(),
        _ => false,
    }
}

fn truncate(mut message: String) -> String {
    if message.len() > MAX_MESSAGE {
        let mut end = MAX_MESSAGE;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push('…');
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mini() -> Spec {
        let document = json!({
            "openapi": "3.0.1",
            "paths": {
                "/a/{x}": {"get": {"operationId": "getX", "responses": {"200": {"description": ""}}},
                           "delete": {"responses": {"204": {"description": ""}}}},
                "/a/special": {"get": {"operationId": "getSpecial", "responses": {"200": {"description": ""}}}},
                "/{p}/b": {"get": {"operationId": "getB", "responses": {"200": {"description": ""}}}},
                "/": {"get": {"operationId": "root", "responses": {"2XX": {"description": ""}}}}
            }
        });
        Spec::from_value(document).unwrap()
    }

    fn id(spec: &Spec, method: &str, path: &str) -> Option<String> {
        spec.operation(method, path).map(|op| op.operation_id.unwrap())
    }

    #[test]
    fn literal_segments_win_over_templates() {
        let spec = mini();
        assert_eq!(id(&spec, "get", "/a/special").as_deref(), Some("getSpecial"));
        assert_eq!(id(&spec, "GET", "/a/other").as_deref(), Some("getX"));
        // `/a/b` matches `/a/{x}` and `/{p}/b`: the literal first segment wins.
        assert_eq!(id(&spec, "GET", "/a/b").as_deref(), Some("getX"));
        assert_eq!(id(&spec, "GET", "/z/b").as_deref(), Some("getB"));
        // The concrete path is chosen first; it has no DELETE.
        assert_eq!(spec.operation("DELETE", "/a/special"), None);
        let err = spec.check_request("DELETE", "/a/special", "", None).unwrap_err();
        assert_eq!(err, vec!["DELETE /a/special: method not allowed on /a/special (allowed: GET)"]);
        assert_eq!(spec.operation("DELETE", "/a/x?y=1").map(|op| op.template).as_deref(), Some("/a/{x}"));
    }

    #[test]
    fn templates_match_one_non_empty_segment() {
        let spec = mini();
        assert_eq!(spec.operation("GET", "/a/"), None);
        assert_eq!(spec.operation("GET", "/a/x/y"), None);
        assert_eq!(spec.operation("GET", "//b"), None);
        assert_eq!(id(&spec, "GET", "/").as_deref(), Some("root"));
    }

    #[test]
    fn base_path_is_stripped_and_required() {
        let spec = mini().with_base_path("/3.0/");
        assert_eq!(id(&spec, "GET", "/3.0/a/special").as_deref(), Some("getSpecial"));
        assert_eq!(id(&spec, "GET", "/3.0").as_deref(), Some("root"));
        assert_eq!(spec.operation("GET", "/a/special"), None);
        assert_eq!(spec.operation("GET", "/3.01/a/special"), None);
        let err = spec.check_response("GET", "/a/special", 200, None).unwrap_err();
        assert_eq!(err, vec!["GET /a/special: the path is not under the base path /3.0"]);
    }

    #[test]
    fn status_ranges_and_undocumented_statuses() {
        let spec = mini();
        assert!(spec.check_response("GET", "/", 201, None).is_ok(), "2XX covers 201");
        let err = spec.check_response("GET", "/a/special", 201, None).unwrap_err();
        assert_eq!(err, vec!["GET /a/special: response status 201 is not documented (documented: 200)"]);
        assert!(spec.check_response("GET", "/a/special", 500, None).is_ok(), "undocumented errors are allowed");
        let err = spec.check_response("DELETE", "/a/x", 204, Some(&json!({}))).unwrap_err();
        assert_eq!(err, vec!["DELETE /a/{x}: a 204 response must have no body"]);
    }

    #[test]
    fn rejects_non_openapi_3_documents() {
        assert!(Spec::from_value(json!({"swagger": "2.0", "paths": {}})).is_err());
        assert!(Spec::from_value(json!({"openapi": "3.0.0"})).is_err());
    }

    #[test]
    fn truncates_long_messages() {
        let long = truncate("é".repeat(MAX_MESSAGE));
        assert!(long.len() <= MAX_MESSAGE + '…'.len_utf8());
        assert!(long.ends_with('…'));
    }
}
