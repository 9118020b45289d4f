//! `$filter`: the subset BC supports [MS-FILTER][MS-ODATALIM]: `eq ne gt ge lt le`, `and`,
//! `or` on ONE field (across fields is an error), `not`, parentheses, and `contains`,
//! `startswith`, `endswith`. Literals: strings in single quotes (`''` escapes a quote), GUIDs,
//! numbers, booleans, `null`, enum members as strings (`status eq 'In_x0020_Review'`), and
//! unquoted `Edm.Date` / `Edm.DateTimeOffset` values (`lastModifiedDateTime gt
//! 2024-01-01T00:00:00Z`). Quoting a date makes it a string, which OData rejects as an operand of
//! incompatible type — the same message the real service returns.
//!
//! Expressions are type-checked against the entity type when parsed, then evaluated against
//! rendered rows.

use std::cmp::Ordering;
use std::collections::BTreeSet;

use jiff::Timestamp;
use serde_json::{Map, Value};

use crate::errors::ApiError;
use crate::schema::{Edm, EntityType, Prop};

/// A literal operand.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Lit {
    Null,
    Bool(bool),
    Str(String),
    Int(i64),
    Dec(f64),
    Double(f64),
    Guid(String),
    DateTime(Timestamp),
    Date(String),
}

impl Lit {
    fn type_name(&self) -> &'static str {
        match self {
            Lit::Null => "null",
            Lit::Bool(_) => "Edm.Boolean",
            Lit::Str(_) => "Edm.String",
            Lit::Int(n) if i32::try_from(*n).is_ok() => "Edm.Int32",
            Lit::Int(_) => "Edm.Int64",
            Lit::Dec(_) => "Edm.Decimal",
            Lit::Double(_) => "Edm.Double",
            Lit::Guid(_) => "Edm.Guid",
            Lit::DateTime(_) => "Edm.DateTimeOffset",
            Lit::Date(_) => "Edm.Date",
        }
    }
}

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

impl Op {
    fn parse(word: &str) -> Option<Op> {
        Some(match word {
            "eq" => Op::Eq,
            "ne" => Op::Ne,
            "gt" => Op::Gt,
            "ge" => Op::Ge,
            "lt" => Op::Lt,
            "le" => Op::Le,
            _ => return None,
        })
    }

    /// OData Core's operator kind names (they appear in its messages).
    fn kind(self) -> &'static str {
        match self {
            Op::Eq => "Equal",
            Op::Ne => "NotEqual",
            Op::Gt => "GreaterThan",
            Op::Ge => "GreaterThanOrEqual",
            Op::Lt => "LessThan",
            Op::Le => "LessThanOrEqual",
        }
    }

    fn holds(self, ordering: Ordering) -> bool {
        match self {
            Op::Eq => ordering == Ordering::Equal,
            Op::Ne => ordering != Ordering::Equal,
            Op::Gt => ordering == Ordering::Greater,
            Op::Ge => ordering != Ordering::Less,
            Op::Lt => ordering == Ordering::Less,
            Op::Le => ordering != Ordering::Greater,
        }
    }
}

/// A string function.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Func {
    Contains,
    StartsWith,
    EndsWith,
}

/// A type-checked filter expression.
#[derive(Clone, Debug)]
pub(crate) enum Expr {
    Or(Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Cmp(&'static Prop, Op, Lit),
    Func(Func, &'static Prop, String),
}

/// A lexical token of `$filter`.
#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    Open,
    Close,
    Comma,
}

/// Parses and type-checks `$filter` for `ty`.
pub(crate) fn parse(text: &str, ty: &'static EntityType) -> Result<Expr, ApiError> {
    let tokens = tokenize(text)?;
    let mut parser = Parser { tokens, at: 0, text, ty };
    let expr = parser.or()?;
    if parser.at < parser.tokens.len() {
        return Err(parser.syntax());
    }
    check_or(&expr)?;
    Ok(expr)
}

fn tokenize(text: &str) -> Result<Vec<(Tok, usize)>, ApiError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                tokens.push((Tok::Open, i));
                i += 1;
            }
            ')' => {
                tokens.push((Tok::Close, i));
                i += 1;
            }
            ',' => {
                tokens.push((Tok::Comma, i));
                i += 1;
            }
            '\'' => {
                let start = i;
                i += 1;
                let mut s = String::new();
                loop {
                    match chars.get(i) {
                        None => {
                            return Err(ApiError::query(format!(
                                "There is an unterminated string literal at position {i} in '{text}'."
                            )));
                        }
                        Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                            s.push('\'');
                            i += 2;
                        }
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some(other) => {
                            s.push(*other);
                            i += 1;
                        }
                    }
                }
                tokens.push((Tok::Str(s), start));
            }
            c if c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ':' | '+' | '$') => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_alphanumeric() || matches!(chars[i], '_' | '-' | '.' | ':' | '+' | '$'))
                {
                    i += 1;
                }
                tokens.push((Tok::Word(chars[start..i].iter().collect()), start));
            }
            _ => {
                return Err(ApiError::query(format!(
                    "Syntax error: character '{c}' is not valid at position {i} in '{text}'."
                )));
            }
        }
    }
    Ok(tokens)
}

/// A recursive-descent parser over the tokens (or < and < not < comparison).
struct Parser<'a> {
    /// Tokens with their character positions.
    tokens: Vec<(Tok, usize)>,
    /// The next token.
    at: usize,
    /// The filter text, for error messages.
    text: &'a str,
    /// The entity type properties are resolved against.
    ty: &'static EntityType,
}

impl Parser<'_> {
    fn syntax(&self) -> ApiError {
        let pos = self.tokens.get(self.at).map(|(_, p)| *p).unwrap_or(self.text.chars().count());
        ApiError::query(format!("Syntax error at position {pos} in '{}'.", self.text))
    }

    fn peek_word(&self, word: &str) -> bool {
        matches!(self.tokens.get(self.at), Some((Tok::Word(w), _)) if w == word)
    }

    fn next(&mut self) -> Option<Tok> {
        let tok = self.tokens.get(self.at).map(|(t, _)| t.clone());
        self.at += 1;
        tok
    }

    fn or(&mut self) -> Result<Expr, ApiError> {
        let mut left = self.and()?;
        while self.peek_word("or") {
            self.at += 1;
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, ApiError> {
        let mut left = self.unary()?;
        while self.peek_word("and") {
            self.at += 1;
            left = Expr::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, ApiError> {
        if self.peek_word("not") {
            self.at += 1;
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, ApiError> {
        match self.next() {
            Some(Tok::Open) => {
                let inner = self.or()?;
                match self.next() {
                    Some(Tok::Close) => Ok(inner),
                    _ => {
                        self.at -= 1;
                        Err(self.syntax())
                    }
                }
            }
            Some(Tok::Word(word)) => {
                if matches!(self.tokens.get(self.at), Some((Tok::Open, _))) {
                    return self.function(&word);
                }
                let prop = self.property(&word)?;
                let op = match self.next() {
                    Some(Tok::Word(w)) if Op::parse(&w).is_some() => Op::parse(&w).unwrap_or(Op::Eq),
                    _ => {
                        self.at -= 1;
                        return Err(self.syntax());
                    }
                };
                let lit = self.literal()?;
                check_types(prop, op, &lit)?;
                Ok(Expr::Cmp(prop, op, lit))
            }
            _ => {
                self.at -= 1;
                Err(self.syntax())
            }
        }
    }

    fn property(&self, name: &str) -> Result<&'static Prop, ApiError> {
        if name.contains('/') || self.ty.nav(name).is_some() {
            return Err(ApiError::query(format!("The navigation property '{name}' cannot be used in $filter.")));
        }
        self.ty.prop(name).ok_or_else(|| ApiError::unknown_property(name, self.ty.name))
    }

    fn function(&mut self, name: &str) -> Result<Expr, ApiError> {
        let func = match name {
            "contains" => Func::Contains,
            "startswith" => Func::StartsWith,
            "endswith" => Func::EndsWith,
            _ => {
                return Err(ApiError::query(format!(
                    "An unknown function with name '{name}' was found. This may also be a function import or a key lookup on a navigation property, which is not allowed."
                )));
            }
        };
        self.at += 1; // (
        let prop = match self.next() {
            Some(Tok::Word(w)) => self.property(&w)?,
            _ => {
                self.at -= 1;
                return Err(self.syntax());
            }
        };
        if self.next() != Some(Tok::Comma) {
            self.at -= 1;
            return Err(self.syntax());
        }
        let arg = self.literal()?;
        if self.next() != Some(Tok::Close) {
            self.at -= 1;
            return Err(self.syntax());
        }
        match (prop.ty, arg) {
            (Edm::String, Lit::Str(s)) => Ok(Expr::Func(func, prop, s)),
            _ => Err(ApiError::query(format!(
                "No function signature for the function with name '{name}' matches the specified arguments. The function signatures considered are: {name}(Edm.String Nullable=true, Edm.String Nullable=true)."
            ))),
        }
    }

    fn literal(&mut self) -> Result<Lit, ApiError> {
        let pos = self.at;
        match self.next() {
            Some(Tok::Str(s)) => Ok(Lit::Str(s)),
            Some(Tok::Word(w)) => word_literal(&w).ok_or_else(|| {
                self.at = pos;
                self.syntax()
            }),
            _ => {
                self.at = pos;
                Err(self.syntax())
            }
        }
    }
}

/// An unquoted literal: keyword, GUID, date, date-time or number.
fn word_literal(w: &str) -> Option<Lit> {
    match w {
        "null" => return Some(Lit::Null),
        "true" => return Some(Lit::Bool(true)),
        "false" => return Some(Lit::Bool(false)),
        _ => {}
    }
    if crate::util::is_guid(w) {
        return Some(Lit::Guid(w.to_ascii_lowercase()));
    }
    let looks_dated = w.is_ascii()
        && w.len() >= 10
        && w.as_bytes()[4] == b'-'
        && w.as_bytes()[7] == b'-'
        && w[..4].chars().all(|c| c.is_ascii_digit());
    if looks_dated {
        if w.len() == 10 {
            return w.parse::<jiff::civil::Date>().ok().map(|d| Lit::Date(d.to_string()));
        }
        return w.parse::<Timestamp>().ok().map(Lit::DateTime);
    }
    let (body, suffix) = match w.chars().last() {
        Some(c @ ('M' | 'm' | 'L' | 'l' | 'D' | 'd' | 'F' | 'f')) => (&w[..w.len() - 1], Some(c.to_ascii_uppercase())),
        _ => (w, None),
    };
    if !body.chars().next().is_some_and(|c| c.is_ascii_digit() || c == '-') {
        return None;
    }
    match suffix {
        Some('D' | 'F') => body.parse().ok().map(Lit::Double),
        Some('M') => body.parse().ok().map(Lit::Dec),
        Some(_) => body.parse().ok().map(Lit::Int),
        None if body.contains(['e', 'E']) => body.parse().ok().map(Lit::Double),
        None if body.contains('.') => body.parse().ok().map(Lit::Dec),
        None => body.parse().ok().map(Lit::Int),
    }
}

fn check_types(prop: &Prop, op: Op, lit: &Lit) -> Result<(), ApiError> {
    let ok = match (prop.ty, lit) {
        (_, Lit::Null) => true,
        (Edm::String, Lit::Str(_)) => true,
        (Edm::Guid, Lit::Guid(_)) => true,
        (Edm::DateTimeOffset, Lit::DateTime(_)) => true,
        (Edm::Date, Lit::Date(_)) => true,
        (Edm::Boolean, Lit::Bool(_)) => true,
        (Edm::Decimal | Edm::Int32 | Edm::Int64, Lit::Int(_) | Lit::Dec(_) | Lit::Double(_)) => true,
        (Edm::Enum(e), Lit::Str(s)) => {
            if !e.has(s) {
                return Err(ApiError::query(format!("The string '{s}' is not a valid enumeration type constant.")));
            }
            true
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(ApiError::query(format!(
            "A binary operator with incompatible types was detected. Found operand types '{}' and '{}' for operator kind '{}'.",
            prop.ty.type_name(),
            lit.type_name(),
            op.kind()
        )))
    }
}

fn fields(expr: &Expr, out: &mut BTreeSet<&'static str>) {
    match expr {
        Expr::Or(a, b) | Expr::And(a, b) => {
            fields(a, out);
            fields(b, out);
        }
        Expr::Not(a) => fields(a, out),
        Expr::Cmp(p, _, _) | Expr::Func(_, p, _) => {
            out.insert(p.name);
        }
    }
}

/// BC translates `or` into a filter on one field; across fields it refuses [MS-ODATALIM].
fn check_or(expr: &Expr) -> Result<(), ApiError> {
    match expr {
        Expr::Or(a, b) => {
            let mut names = BTreeSet::new();
            fields(expr, &mut names);
            if names.len() > 1 {
                return Err(ApiError::query(
                    "The 'OR' operator is not supported on distinct fields on an OData filter.",
                ));
            }
            check_or(a)?;
            check_or(b)
        }
        Expr::And(a, b) => {
            check_or(a)?;
            check_or(b)
        }
        Expr::Not(a) => check_or(a),
        _ => Ok(()),
    }
}

/// Evaluates against a rendered row.
pub(crate) fn eval(expr: &Expr, row: &Map<String, Value>) -> bool {
    match expr {
        Expr::Or(a, b) => eval(a, row) || eval(b, row),
        Expr::And(a, b) => eval(a, row) && eval(b, row),
        Expr::Not(a) => !eval(a, row),
        Expr::Cmp(prop, op, lit) => compare(prop, row.get(prop.name).unwrap_or(&Value::Null), lit)
            .map(|ordering| op.holds(ordering))
            .unwrap_or(*op == Op::Ne),
        Expr::Func(func, prop, arg) => {
            let value = row.get(prop.name).and_then(Value::as_str).unwrap_or("");
            match func {
                Func::Contains => value.contains(arg.as_str()),
                Func::StartsWith => value.starts_with(arg.as_str()),
                Func::EndsWith => value.ends_with(arg.as_str()),
            }
        }
    }
}

/// Orders a row value against a literal (`None`: not comparable, e.g. against `null`).
fn compare(prop: &Prop, value: &Value, lit: &Lit) -> Option<Ordering> {
    match lit {
        Lit::Null => value.is_null().then_some(Ordering::Equal),
        Lit::Str(s) => match prop.ty {
            Edm::Enum(e) => {
                let rank = |m: &str| e.members.iter().find(|(n, _)| *n == m).map(|(_, v)| *v);
                Some(rank(value.as_str()?)?.cmp(&rank(s)?))
            }
            _ => Some(value.as_str()?.cmp(s.as_str())),
        },
        Lit::Guid(g) => Some(value.as_str()?.to_ascii_lowercase().cmp(g)),
        Lit::Bool(b) => Some(value.as_bool()?.cmp(b)),
        Lit::Int(n) => value.as_f64()?.partial_cmp(&(*n as f64)),
        Lit::Dec(x) | Lit::Double(x) => value.as_f64()?.partial_cmp(x),
        Lit::Date(d) => Some(value.as_str()?.cmp(d.as_str())),
        Lit::DateTime(t) => Some(parse_datetime(value.as_str()?)?.cmp(t)),
    }
}

/// Parses a rendered `Edm.DateTimeOffset`.
pub(crate) fn parse_datetime(s: &str) -> Option<Timestamp> {
    s.parse::<Timestamp>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{CUSTOMER, SALES_INVOICE};
    use serde_json::json;

    fn row() -> Map<String, Value> {
        json!({"number": "C00010", "displayName": "Adatum", "blocked": "_x0020_", "balanceDue": 10.5,
            "taxLiable": true, "id": "b37406e8-eaf1-ef11-9b20-d99fd2b71a0f",
            "lastModifiedDateTime": "2025-02-23T13:34:29.943Z"})
        .as_object()
        .unwrap()
        .clone()
    }

    fn matches(filter: &str) -> bool {
        eval(&parse(filter, &CUSTOMER).unwrap(), &row())
    }

    #[test]
    fn operators_and_literals() {
        assert!(matches("number eq 'C00010'"));
        assert!(matches("number ne 'C00020' and balanceDue gt 10"));
        assert!(matches("balanceDue ge 10.5 and balanceDue le 10.5 and balanceDue lt 11"));
        assert!(matches("lastModifiedDateTime gt 2025-02-23T13:34:29.942Z"));
        assert!(!matches("lastModifiedDateTime gt 2025-02-23T13:34:29.943Z"));
        assert!(matches("lastModifiedDateTime ge 2025-02-23T14:34:29.943+01:00"));
        assert!(matches("id eq B37406E8-EAF1-EF11-9B20-D99FD2B71A0F"));
        assert!(matches("taxLiable eq true and blocked eq '_x0020_'"));
        assert!(matches("(number eq 'X' or number eq 'C00010') and not (displayName eq 'Y')"));
        assert!(matches("contains(displayName,'dat') and startswith(number,'C0') and endswith(number,'10')"));
        assert!(matches("displayName eq 'Adatum' or displayName eq 'O''Brien'"));
    }

    #[test]
    fn errors_match_odata() {
        let e = parse("lastModifiedDateTime gt '2024-01-01T00:00:00Z'", &CUSTOMER).unwrap_err();
        assert_eq!(e.code, "BadRequest_NotFound");
        assert!(
            e.message.contains("'Edm.DateTimeOffset' and 'Edm.String' for operator kind 'GreaterThan'"),
            "{}",
            e.message
        );
        let e = parse("foo eq 1", &CUSTOMER).unwrap_err();
        assert_eq!(e.message, "Could not find a property named 'foo' on type 'Microsoft.NAV.customer'.");
        let e = parse("number eq 'a' or displayName eq 'b'", &CUSTOMER).unwrap_err();
        assert!(e.message.contains("'OR' operator"));
        assert!(parse("number eq", &CUSTOMER).unwrap_err().message.starts_with("Syntax error at position 9"));
        assert!(parse("status eq 'In Review'", &SALES_INVOICE).is_err());
        assert!(parse("status eq 'In_x0020_Review'", &SALES_INVOICE).is_ok());
        assert!(parse("id eq 'b37406e8-eaf1-ef11-9b20-d99fd2b71a0f'", &CUSTOMER).is_err());
        assert!(parse("number eq 10000", &CUSTOMER).is_err());
        assert!(parse("invoiceDate ge 2024-05-01", &SALES_INVOICE).is_ok());
        assert!(parse("number eq 'x' and", &CUSTOMER).is_err());
        assert!(parse("contains(balanceDue,'1')", &CUSTOMER).is_err());
        assert!(parse("number eq 'unterminated", &CUSTOMER).is_err());
    }
}
