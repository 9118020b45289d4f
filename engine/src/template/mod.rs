//! Templating: minijinja, compiled once at load time, rendered per record.
//!
//! Two things set this apart from rendering strings:
//! - A template that is exactly one `{{ expression }}` is evaluated as an expression and keeps
//!   its JSON type, so `"{{ record.amount }}"` yields the number `12.5`, not the string `"12.5"`.
//! - Undefined variables are errors (strict mode), and unknown variables, filters and tests are
//!   found at load time, with their position inside the template.
//!
//! The environment is leaked on purpose: compiled templates borrow it, a loaded project lives as
//! long as the process, and leaking one environment per project avoids a self-referential struct.

mod filters;

use std::collections::{BTreeSet, HashSet};

use minijinja::machinery::{Token, tokenize};
use minijinja::syntax::SyntaxConfig;
use minijinja::{Environment, Expression, Template, UndefinedBehavior, Value as TplValue};
use serde_json::Value;

pub use filters::{
    CUSTOM_FILTERS, FilterDoc, normalize_email, parse_timestamp as filters_parse_timestamp, split_name, subscriber_hash,
};

/// Upper bound on the work one render may do: stops a runaway loop in a template instead of
/// hanging a sync.
const FUEL: u64 = 100_000;

/// Filters that come with minijinja, kept as a list because minijinja has no public lookup. A
/// unit test checks every name against the real environment, so an upgrade that drops one fails.
pub const BUILTIN_FILTERS: &[&str] = &[
    "abs",
    "attr",
    "batch",
    "bool",
    "capitalize",
    "chain",
    "count",
    "d",
    "default",
    "dictsort",
    "e",
    "escape",
    "first",
    "float",
    "format",
    "groupby",
    "indent",
    "int",
    "items",
    "join",
    "last",
    "length",
    "lines",
    "list",
    "lower",
    "map",
    "max",
    "min",
    "pprint",
    "reject",
    "rejectattr",
    "replace",
    "reverse",
    "round",
    "select",
    "selectattr",
    "slice",
    "sort",
    "split",
    "string",
    "sum",
    "title",
    "tojson",
    "trim",
    "unique",
    "upper",
    "zip",
];

/// Tests (`x is defined`) that come with minijinja.
pub const BUILTIN_TESTS: &[&str] = &[
    "boolean",
    "defined",
    "divisibleby",
    "endingwith",
    "eq",
    "equalto",
    "escaped",
    "even",
    "false",
    "filter",
    "float",
    "ge",
    "greaterthan",
    "gt",
    "in",
    "int",
    "integer",
    "iterable",
    "le",
    "lessthan",
    "lower",
    "lt",
    "mapping",
    "ne",
    "none",
    "number",
    "odd",
    "safe",
    "sameas",
    "sequence",
    "startingwith",
    "string",
    "test",
    "true",
    "undefined",
    "upper",
];

/// Globals that come with minijinja (functions usable without a variable).
const BUILTIN_GLOBALS: &[&str] = &["range", "dict", "debug", "namespace"];

/// A template problem found at load time. `offset` is a byte offset into the template text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    pub offset: usize,
    pub message: String,
}

/// The shared template environment of one loaded project.
#[derive(Clone, Copy)]
pub struct Templates {
    env: &'static Environment<'static>,
}

impl Default for Templates {
    fn default() -> Self {
        Self::new()
    }
}

impl Templates {
    pub fn new() -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_fuel(Some(FUEL));
        env.set_recursion_limit(64);
        // JSON null prints as nothing, not as Python's `None`.
        env.set_formatter(
            |out, state, value| {
                if value.is_none() { Ok(()) } else { minijinja::escape_formatter(out, state, value) }
            },
        );
        filters::register(&mut env);
        Templates { env: Box::leak(Box::new(env)) }
    }

    /// Compiles a field template. `variables` are the names the template may read.
    pub fn compile(&self, text: &str, variables: &[&str]) -> Result<CompiledTemplate, TemplateError> {
        let shape = scan(text, false, variables)?;
        if !shape.has_code {
            return Ok(CompiledTemplate::Literal(text.to_owned()));
        }
        if let Some((start, end)) = shape.single_expression {
            let expr = &text[start..end];
            let compiled = self.env.compile_expression_owned(expr.to_owned()).map_err(|e| syntax_error(&e, start))?;
            return Ok(CompiledTemplate::Expression(compiled, expr.trim().to_owned()));
        }
        let source: &'static str = Box::leak(text.to_owned().into_boxed_str());
        let compiled = self.env.template_from_str(source).map_err(|e| syntax_error(&e, 0))?;
        Ok(CompiledTemplate::Template(compiled))
    }

    /// Compiles a boolean expression (a pipeline or `for_each` filter), written without braces.
    pub fn compile_condition(&self, text: &str, variables: &[&str]) -> Result<Condition, TemplateError> {
        scan(text, true, variables)?;
        let compiled = self.env.compile_expression_owned(text.to_owned()).map_err(|e| syntax_error(&e, 0))?;
        Ok(Condition(compiled))
    }
}

/// A compiled field template.
pub enum CompiledTemplate {
    /// No template syntax at all: the text itself.
    Literal(String),
    /// Exactly one `{{ expression }}`: evaluated, keeping its JSON type. The text is kept for
    /// messages.
    Expression(Expression<'static, 'static>, String),
    /// Anything else: rendered to a string.
    Template(Template<'static, 'static>),
}

impl std::fmt::Debug for CompiledTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CompiledTemplate::Literal(s) => write!(f, "Literal({s:?})"),
            CompiledTemplate::Expression(_, text) => write!(f, "Expression({text:?})"),
            CompiledTemplate::Template(t) => write!(f, "Template({:?})", t.source()),
        }
    }
}

impl CompiledTemplate {
    /// Renders against a context. Errors read like minijinja's, without its debug dump.
    pub fn render(&self, context: &TplValue) -> Result<Value, String> {
        match self {
            CompiledTemplate::Literal(s) => Ok(Value::String(s.clone())),
            CompiledTemplate::Expression(e, text) => {
                let v = e.eval(context).map_err(render_error)?;
                if v.is_undefined() {
                    // Say what was undefined: `a or vars.b` is undefined when `vars.b` is missing.
                    return Err(format!(
                        "`{text}` rendered to an undefined value (a record field or var it reads does not exist)"
                    ));
                }
                to_json(&v)
            }
            CompiledTemplate::Template(t) => t.render(context).map(Value::String).map_err(render_error),
        }
    }

    /// The variables the template reads, with their attribute chains (`record.email`), as
    /// minijinja's static analysis finds them; a bare name (`record`) means the whole value.
    pub fn variables_read(&self) -> HashSet<String> {
        match self {
            CompiledTemplate::Literal(_) => HashSet::new(),
            CompiledTemplate::Expression(e, _) => e.undeclared_variables(true),
            CompiledTemplate::Template(t) => t.undeclared_variables(true),
        }
    }

    /// Renders and requires a string (keys, paths). Numbers and booleans are printed.
    pub fn render_string(&self, context: &TplValue) -> Result<String, String> {
        match self.render(context)? {
            Value::String(s) => Ok(s),
            Value::Null => Err("rendered to null, expected text".to_owned()),
            other @ (Value::Number(_) | Value::Bool(_)) => Ok(other.to_string()),
            other => Err(format!("rendered to {}, expected text", json_kind(&other))),
        }
    }
}

/// A compiled boolean expression.
pub struct Condition(Expression<'static, 'static>);

impl std::fmt::Debug for Condition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Condition")
    }
}

impl Condition {
    pub fn is_true(&self, context: &TplValue) -> Result<bool, String> {
        self.0.eval(context).map(|v| v.is_true()).map_err(render_error)
    }

    /// The variables the condition reads, as [`CompiledTemplate::variables_read`] says.
    pub fn variables_read(&self) -> HashSet<String> {
        self.0.undeclared_variables(true)
    }
}

/// Converts a template value to JSON; undefined is an error, never a silent null.
pub fn to_json(value: &TplValue) -> Result<Value, String> {
    if value.is_undefined() {
        return Err("rendered to an undefined value".to_owned());
    }
    serde_json::to_value(value).map_err(|e| format!("cannot turn the result into JSON: {e}"))
}

/// The kind of a JSON value, for messages.
pub fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn render_error(e: minijinja::Error) -> String {
    // minijinja's Display appends "(in <string>:1)"; the caller knows the field, so drop it.
    let mut msg = match e.detail() {
        Some(detail) => detail.to_owned(),
        None => e.kind().to_string(),
    };
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        msg.push_str(&format!(": {s}"));
        source = s.source();
    }
    msg
}

fn syntax_error(e: &minijinja::Error, base: usize) -> TemplateError {
    let offset = e.range().map(|r| r.start).unwrap_or(0) + base;
    let message = match e.detail() {
        Some(d) => format!("template syntax error: {d}"),
        None => format!("template syntax error: {}", e.kind()),
    };
    TemplateError { offset, message }
}

/// What a scan of the tokens found.
struct Shape {
    /// The template has `{{`, `{%` or `{#`.
    has_code: bool,
    /// Byte range of the expression when the template is exactly one `{{ ... }}`.
    single_expression: Option<(usize, usize)>,
}

/// Tokenizes a template (or a bare expression) and checks every filter, test and root variable
/// it names. Unknown names are reported at their own offset.
fn scan(text: &str, is_expression: bool, variables: &[&str]) -> Result<Shape, TemplateError> {
    let mut tokens = Vec::new();
    for t in tokenize(text, is_expression, SyntaxConfig::default()) {
        match t {
            Ok(t) => tokens.push(t),
            Err(e) => return Err(syntax_error(&e, 0)),
        }
    }
    let has_code = tokens.iter().any(|(t, _)| !matches!(t, Token::TemplateData(_)));
    let single_expression = match (tokens.first(), tokens.last()) {
        (Some((Token::VariableStart, open)), Some((Token::VariableEnd, close)))
            if tokens.len() > 2
                && tokens[1..tokens.len() - 1].iter().all(|(t, _)| {
                    !matches!(t, Token::VariableStart | Token::VariableEnd | Token::BlockStart | Token::TemplateData(_))
                }) =>
        {
            Some((open.end_offset as usize, close.start_offset as usize))
        }
        _ => None,
    };

    let mut locals: BTreeSet<&str> = BTreeSet::new();
    let custom: BTreeSet<&str> = CUSTOM_FILTERS.iter().map(|f| f.name).collect();
    for (i, (token, span)) in tokens.iter().enumerate() {
        let prev = i.checked_sub(1).map(|j| &tokens[j].0);
        let prev2 = i.checked_sub(2).map(|j| &tokens[j].0);
        let Token::Ident(name) = token else { continue };
        let offset = span.start_offset as usize;
        match prev {
            // `| name`: a filter.
            Some(Token::Pipe) => {
                if !BUILTIN_FILTERS.contains(name) && !custom.contains(name) {
                    return Err(TemplateError {
                        offset,
                        message: format!(
                            "unknown filter `{name}`{}",
                            suggest(name, BUILTIN_FILTERS.iter().copied().chain(custom.iter().copied()))
                        ),
                    });
                }
            }
            // `is name` / `is not name`: a test.
            Some(Token::Ident("is")) | Some(Token::Ident("not")) if is_ident(prev, "is") || is_ident(prev2, "is") => {
                if !BUILTIN_TESTS.contains(name) && *name != "not" {
                    return Err(TemplateError {
                        offset,
                        message: format!("unknown test `{name}`{}", suggest(name, BUILTIN_TESTS.iter().copied())),
                    });
                }
            }
            // `.name`: an attribute, not a variable.
            Some(Token::Dot) => {}
            // `{% for name in` / `{% set name =` / `, name in`: a local.
            Some(Token::Ident("for")) | Some(Token::Ident("set")) => {
                locals.insert(name);
            }
            _ => {
                let next = tokens.get(i + 1).map(|(t, _)| t);
                let is_keyword = matches!(
                    *name,
                    "and"
                        | "or"
                        | "not"
                        | "is"
                        | "in"
                        | "if"
                        | "else"
                        | "elif"
                        | "endif"
                        | "for"
                        | "endfor"
                        | "set"
                        | "endset"
                        | "true"
                        | "false"
                        | "none"
                        | "True"
                        | "False"
                        | "None"
                        | "loop"
                        | "recursive"
                        | "with"
                        | "endwith"
                        | "filter"
                        | "endfilter"
                        | "macro"
                        | "endmacro"
                        | "call"
                        | "endcall"
                        | "raw"
                        | "endraw"
                        | "break"
                        | "continue"
                        | "do"
                        | "as"
                        | "autoescape"
                        | "endautoescape"
                );
                let is_kwarg =
                    matches!(next, Some(Token::Assign)) && matches!(prev, Some(Token::ParenOpen | Token::Comma));
                if is_keyword || is_kwarg || locals.contains(name) || BUILTIN_GLOBALS.contains(name) {
                    continue;
                }
                // `for a, b in`: later names of a for target are locals too.
                let statement = || tokens[..i].iter().rev().take_while(|(t, _)| !matches!(t, Token::BlockStart));
                if matches!(prev, Some(Token::Comma))
                    && statement().any(|(t, _)| is_ident(Some(t), "for"))
                    && !statement().any(|(t, _)| is_ident(Some(t), "in"))
                {
                    locals.insert(name);
                    continue;
                }
                if !variables.contains(name) {
                    return Err(TemplateError {
                        offset,
                        message: format!(
                            "unknown variable `{name}`{}; templates here can read {}",
                            suggest(name, variables.iter().copied()),
                            list(variables)
                        ),
                    });
                }
            }
        }
    }
    Ok(Shape { has_code, single_expression })
}

fn is_ident(token: Option<&Token<'_>>, name: &str) -> bool {
    matches!(token, Some(Token::Ident(n)) if *n == name)
}

fn list(names: &[&str]) -> String {
    names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
}

/// ", did you mean `x`?" when a known name is one or two edits away.
pub fn suggest<'a>(name: &str, known: impl Iterator<Item = &'a str>) -> String {
    known
        .map(|k| (edit_distance(name, k), k))
        .filter(|(d, k)| *d <= 2 && *d < k.len())
        .min()
        .map(|(_, k)| format!(" (did you mean `{k}`?)"))
        .unwrap_or_default()
}

/// Levenshtein distance, for suggestions.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb { prev } else { 1 + prev.min(row[j]).min(row[j + 1]) };
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests;
