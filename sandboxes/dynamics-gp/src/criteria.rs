//! GP criteria: restriction elements parsed into values and matched against records.
//!
//! The kind of each criteria field (text, date, number, flag, enumeration) comes from its
//! restriction type in [`crate::schema`], so the same code serves every `Get…List`.
//!
//! Semantics (the reference leaves them open; these are the sandbox's documented choices):
//! - `EqualValue` / `NotEqualValue` / `Items` (IN) / `Like` (SQL LIKE with `%` and `_`);
//! - `From`/`To` are **inclusive** (SQL `BETWEEN`) and need each other; `GreaterThan` /
//!   `LessThan` are exclusive and combine (a key range);
//! - text compares case-insensitively (GP's default collation);
//! - an all-nil restriction filters nothing.
//!
//! Refused as invalid criteria (a GP validation fault): two kinds of restriction in one field
//! (`EqualValue` with `GreaterThan`, `From` with `LessThan`, …), `From` without `To` or the
//! reverse, `From` after `To`, an empty `Items`, a date outside SQL Server's `datetime` range,
//! and a `Scope` "Return Based on …" without the restriction it is based on. Real GP may be
//! more forgiving; a connector that passes here sends unambiguous criteria.

use std::cmp::Ordering;

use jiff::Timestamp;
use serde_json::{Map, Value};

use crate::clock;
use crate::schema;
use crate::xml::{self, GP};

/// A criteria value.
#[derive(Clone, Debug, PartialEq)]
pub enum Val {
    /// Text or an enumeration value (upper-cased: the collation ignores case).
    Str(String),
    /// A UTC instant.
    Date(Timestamp),
    /// An integer.
    Int(i64),
    /// A flag.
    Bool(bool),
}

impl PartialOrd for Val {
    fn partial_cmp(&self, other: &Val) -> Option<Ordering> {
        match (self, other) {
            (Val::Str(a), Val::Str(b)) => a.partial_cmp(b),
            (Val::Date(a), Val::Date(b)) => a.partial_cmp(b),
            (Val::Int(a), Val::Int(b)) => a.partial_cmp(b),
            (Val::Bool(a), Val::Bool(b)) => a.partial_cmp(b),
            _ => None,
        }
    }
}

/// The value kinds of restriction types.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Text,
    Enum,
    Date,
    Int,
    Bool,
}

fn kind_of(restriction_type: &str) -> Kind {
    if restriction_type.ends_with("OfString") {
        Kind::Text
    } else if restriction_type.ends_with("DateTime") {
        Kind::Date
    } else if restriction_type.ends_with("Int32") {
        Kind::Int
    } else if restriction_type.ends_with("Boolean") {
        Kind::Bool
    } else {
        Kind::Enum
    }
}

/// One field's restriction.
#[derive(Clone, Debug, Default)]
pub struct Restriction {
    /// `EqualValue`.
    pub eq: Option<Val>,
    /// `NotEqualValue`.
    pub ne: Option<Val>,
    /// `Items` (IN).
    pub items: Option<Vec<Val>>,
    /// `From` (inclusive).
    pub from: Option<Val>,
    /// `To` (inclusive).
    pub to: Option<Val>,
    /// `GreaterThan` (exclusive).
    pub gt: Option<Val>,
    /// `LessThan` (exclusive).
    pub lt: Option<Val>,
    /// `Like` (upper-cased pattern).
    pub like: Option<String>,
}

impl Restriction {
    /// Whether `value` passes.
    pub fn matches(&self, value: &Val) -> bool {
        let value = match value {
            Val::Str(s) => &Val::Str(s.trim().to_uppercase()),
            other => other,
        };
        self.eq.as_ref().is_none_or(|v| value == v)
            && self.ne.as_ref().is_none_or(|v| value != v)
            && self.items.as_ref().is_none_or(|items| items.contains(value))
            && self.from.as_ref().is_none_or(|v| value >= v)
            && self.to.as_ref().is_none_or(|v| value <= v)
            && self.gt.as_ref().is_none_or(|v| value > v)
            && self.lt.as_ref().is_none_or(|v| value < v)
            && self.like.as_ref().is_none_or(|p| match value {
                Val::Str(s) => like(p.as_bytes(), s.as_bytes()),
                _ => false,
            })
    }

    /// Whether anything is restricted.
    pub fn is_active(&self) -> bool {
        self.eq.is_some()
            || self.ne.is_some()
            || self.items.is_some()
            || self.from.is_some()
            || self.to.is_some()
            || self.gt.is_some()
            || self.lt.is_some()
            || self.like.is_some()
    }

    fn check(&self, field: &str) -> Result<(), String> {
        let kinds = [
            self.eq.is_some(),
            self.ne.is_some(),
            self.items.is_some(),
            self.from.is_some() || self.to.is_some(),
            self.gt.is_some() || self.lt.is_some(),
            self.like.is_some(),
        ];
        if kinds.iter().filter(|k| **k).count() > 1 {
            return Err(format!(
                "The {field} restriction combines several kinds of restriction (EqualValue, NotEqualValue, Items, From/To, GreaterThan/LessThan, Like); use one."
            ));
        }
        if self.from.is_some() != self.to.is_some() {
            return Err(format!("The {field} restriction needs both From and To."));
        }
        if let (Some(from), Some(to)) = (&self.from, &self.to)
            && from > to
        {
            return Err(format!("The {field} restriction has From after To."));
        }
        if self.items.as_ref().is_some_and(Vec::is_empty) {
            return Err(format!("The {field} restriction has an empty Items list."));
        }
        Ok(())
    }
}

/// SQL LIKE over upper-cased bytes: `%` any run, `_` one character.
fn like(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'%', rest)) => (0..=text.len()).any(|i| like(rest, &text[i..])),
        Some((b'_', rest)) => {
            // One UTF-8 character.
            let width = text.first().map(|b| if *b < 0x80 { 1 } else { (b.leading_ones() as usize).max(1) });
            width.is_some_and(|w| text.len() >= w && like(rest, &text[w..]))
        }
        Some((c, rest)) => text.first() == Some(c) && like(rest, &text[1..]),
    }
}

/// Parsed criteria of a `Get…List`.
#[derive(Clone, Debug, Default)]
pub struct Criteria {
    /// Active restrictions by criteria field name.
    pub fields: Vec<(&'static str, Restriction)>,
    /// `Scope`.
    pub scope: String,
}

impl Criteria {
    /// Whether a record passes every restriction; `value` gives the record's value of a
    /// criteria field.
    pub fn matches(&self, value: impl Fn(&str) -> Option<Val>) -> bool {
        self.fields.iter().all(|(name, r)| value(name).is_some_and(|v| r.matches(&v)))
    }

    /// The restriction on a field, if active.
    pub fn get(&self, field: &str) -> Option<&Restriction> {
        self.fields.iter().find(|(n, _)| *n == field).map(|(_, r)| r)
    }
}

/// Parses a schema-valid criteria element of type `criteria_type`. `Err` is an invalid-criteria
/// message for the fault.
pub fn parse(node: roxmltree::Node, criteria_type: &str) -> Result<Criteria, String> {
    let def = schema::typedef(criteria_type).ok_or("unknown criteria type")?;
    let mut criteria = Criteria::default();
    for (field, ns) in schema::flatten(def) {
        let Some(child) = xml::child(node, ns, field.name) else { continue };
        if field.name == "Scope" {
            criteria.scope = xml::text(child);
            continue;
        }
        if xml::is_nil(child) {
            continue;
        }
        // xsi:type may name a derived restriction (LikeRestrictionOfString for an Id).
        let kind = kind_of(field.ty);
        let mut r = Restriction::default();
        for member in xml::elements(child) {
            if xml::is_nil(member) {
                continue;
            }
            let name = member.tag_name().name();
            if name == "Items" {
                let values = xml::elements(member)
                    .filter(|i| !xml::is_nil(*i))
                    .map(|i| value(kind, &xml::text(i), field.name))
                    .collect::<Result<Vec<_>, _>>()?;
                r.items = Some(values);
                continue;
            }
            let text = xml::text(member);
            if name == "Like" {
                r.like = Some(text.trim().to_uppercase());
                continue;
            }
            let v = value(kind, &text, field.name)?;
            match name {
                "EqualValue" => r.eq = Some(v),
                "NotEqualValue" => r.ne = Some(v),
                "From" => r.from = Some(v),
                "To" => r.to = Some(v),
                "GreaterThan" => r.gt = Some(v),
                "LessThan" => r.lt = Some(v),
                _ => {}
            }
        }
        r.check(field.name)?;
        if r.is_active() {
            criteria.fields.push((field.name, r));
        }
    }
    let based_on = match criteria.scope.as_str() {
        "Return Based on Customer Id" => Some(if criteria_type == "gp:CustomerCriteria" { "Id" } else { "CustomerId" }),
        "Return Based on Salesperson Id" => Some("SalespersonId"),
        _ => None,
    };
    if let Some(field) = based_on
        && criteria.get(field).is_none()
    {
        return Err(format!("The scope '{}' needs a {field} restriction.", criteria.scope));
    }
    Ok(criteria)
}

fn value(kind: Kind, text: &str, field: &str) -> Result<Val, String> {
    Ok(match kind {
        Kind::Text => Val::Str(text.trim().to_uppercase()),
        Kind::Enum => Val::Str(text.to_uppercase()),
        Kind::Int => Val::Int(text.trim().parse().map_err(|_| format!("'{text}' is not a number"))?),
        Kind::Bool => Val::Bool(matches!(text.trim(), "true" | "1")),
        Kind::Date => {
            let ts = clock::parse_xs_datetime(text)?;
            if !clock::in_sql_range(ts) {
                return Err(format!(
                    "SqlDateTime overflow in the {field} restriction. Must be between 1/1/1753 12:00:00 AM and 12/31/9999 11:59:59 PM."
                ));
            }
            Val::Date(ts)
        }
    })
}

/// A criteria (or key) element as JSON for the request log: members by name, nil as `null`,
/// `Items` as arrays.
pub fn to_json(node: roxmltree::Node) -> Value {
    if xml::is_nil(node) {
        return Value::Null;
    }
    let children: Vec<_> = xml::elements(node).collect();
    if children.is_empty() {
        return Value::String(xml::text(node));
    }
    if node.tag_name().name() == "Items" || node.tag_name().name().starts_with("ArrayOf") {
        return Value::Array(children.into_iter().map(to_json).collect());
    }
    let mut map = Map::new();
    for c in children {
        map.insert(c.tag_name().name().to_string(), to_json(c));
    }
    Value::Object(map)
}

/// The text of `key/Id` in the GP namespace, for `Get…ByKey`.
pub fn key_id(node: roxmltree::Node) -> Option<String> {
    xml::child(node, GP, "Id").filter(|n| !xml::is_nil(*n)).map(|n| xml::text(n).trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns() {
        assert!(like(b"AARON%", b"AARONFIT0001"));
        assert!(like(b"%FIT%", b"AARONFIT0001"));
        assert!(like(b"A_RON%", b"AARONFIT0001"));
        assert!(!like(b"B%", b"AARONFIT0001"));
        assert!(like("_X".as_bytes(), "ÉX".as_bytes()));
    }

    #[test]
    fn ranges_and_checks() {
        let r = Restriction { gt: Some(Val::Str("B".into())), lt: Some(Val::Str("D".into())), ..Default::default() };
        assert!(r.matches(&Val::Str("c1".into())));
        assert!(!r.matches(&Val::Str("B".into())));
        assert!(r.check("Id").is_ok());
        let between = Restriction { from: Some(Val::Int(1)), to: Some(Val::Int(3)), ..Default::default() };
        assert!(between.matches(&Val::Int(1)) && between.matches(&Val::Int(3)) && !between.matches(&Val::Int(4)));
        assert!(Restriction { from: Some(Val::Int(1)), ..Default::default() }.check("Id").is_err());
        assert!(
            Restriction { from: Some(Val::Int(3)), to: Some(Val::Int(1)), ..Default::default() }.check("Id").is_err()
        );
        assert!(
            Restriction { eq: Some(Val::Int(1)), gt: Some(Val::Int(0)), ..Default::default() }.check("Id").is_err()
        );
        assert!(Restriction { items: Some(vec![]), ..Default::default() }.check("Id").is_err());
    }
}
