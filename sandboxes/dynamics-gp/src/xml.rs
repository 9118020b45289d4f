//! XML plumbing: the namespaces of GP's legacy WSDL, escaping, a small writer for responses and
//! helpers over parsed (roxmltree) requests.
//!
//! Responses are written as text rather than through a tree: a `GetCustomerList` over 50,000
//! customers is tens of megabytes, and the sandbox streams it in chunks.

use std::fmt::Write as _;

/// SOAP 1.1 envelope namespace.
pub const SOAP_ENV: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// XML Schema instance (`xsi:nil`, `xsi:type`).
pub const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";
/// XML Schema.
pub const XS: &str = "http://www.w3.org/2001/XMLSchema";
/// GP operations, criteria, business objects and keys (reference §2.3, prefix `gp`).
pub const GP: &str = "http://schemas.microsoft.com/dynamics/gp/2006/01";
/// `Context`, `OrganizationKey`, `CompanyKey`, `CurrencyType`, `Extension` (prefix `d`).
pub const D: &str = "http://schemas.microsoft.com/dynamics/2006/01";
/// `RoleKey` (prefix `sec`).
pub const SEC: &str = "http://schemas.microsoft.com/dynamics/security/2006/01";

/// The namespace URI for one of the schema prefixes used in [`crate::schema`].
pub fn prefix_uri(prefix: &str) -> Option<&'static str> {
    match prefix {
        "gp" => Some(GP),
        "d" => Some(D),
        "sec" => Some(SEC),
        "xs" => Some(XS),
        _ => None,
    }
}

/// The schema prefix for a namespace URI.
pub fn uri_prefix(uri: &str) -> Option<&'static str> {
    match uri {
        GP => Some("gp"),
        D => Some("d"),
        SEC => Some("sec"),
        XS => Some("xs"),
        _ => None,
    }
}

/// Escapes text and attribute values (`&`, `<`, `>`, `"`), and drops characters XML 1.0 cannot
/// carry at all (a GP `char` column can hold control characters; .NET would refuse to serialize
/// them, the sandbox prefers a readable document).
pub fn escape(text: &str) -> std::borrow::Cow<'_, str> {
    let needs = |c: char| matches!(c, '&' | '<' | '>' | '"') || (c < ' ' && !matches!(c, '\t' | '\n' | '\r'));
    if !text.chars().any(needs) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c if c < ' ' && !matches!(c, '\t' | '\n' | '\r') => {}
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Appends XML to a string. Element names are written as given (the caller picks prefixes and
/// declares namespaces).
#[derive(Default)]
pub struct Out {
    /// The document so far.
    pub buf: String,
}

impl Out {
    /// `<name>`.
    pub fn open(&mut self, name: &str) -> &mut Self {
        let _ = write!(self.buf, "<{name}>");
        self
    }

    /// `<name attrs>` (attrs written verbatim, already escaped).
    pub fn open_with(&mut self, name: &str, attrs: &str) -> &mut Self {
        let _ = write!(self.buf, "<{name} {attrs}>");
        self
    }

    /// `</name>`.
    pub fn close(&mut self, name: &str) -> &mut Self {
        let _ = write!(self.buf, "</{name}>");
        self
    }

    /// `<name>text</name>`, or `<name/>` for empty text.
    pub fn leaf(&mut self, name: &str, text: &str) -> &mut Self {
        if text.is_empty() {
            let _ = write!(self.buf, "<{name}/>");
        } else {
            let _ = write!(self.buf, "<{name}>{}</{name}>", escape(text));
        }
        self
    }

    /// `<name><Id>id</Id></name>`: the shape of every GP key.
    pub fn key(&mut self, name: &str, id: &str) -> &mut Self {
        self.open(name).leaf("Id", id).close(name)
    }

    /// A boolean leaf.
    pub fn bool(&mut self, name: &str, value: bool) -> &mut Self {
        self.leaf(name, if value { "true" } else { "false" })
    }
}

/// The element children of a node.
pub fn elements<'a, 'i>(node: roxmltree::Node<'a, 'i>) -> impl Iterator<Item = roxmltree::Node<'a, 'i>> {
    node.children().filter(|n| n.is_element())
}

/// The first child element `{ns}name`.
pub fn child<'a, 'i>(node: roxmltree::Node<'a, 'i>, ns: &str, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
    elements(node).find(|c| c.tag_name().name() == name && c.tag_name().namespace() == Some(ns))
}

/// Whether the element carries `xsi:nil="true"`.
pub fn is_nil(node: roxmltree::Node) -> bool {
    matches!(node.attribute((XSI, "nil")).map(str::trim), Some("true" | "1"))
}

/// The concatenated text content of an element (its text children only).
pub fn text(node: roxmltree::Node) -> String {
    node.children().filter(|c| c.is_text()).filter_map(|c| c.text()).collect()
}

/// `{namespace}local` for messages.
pub fn qualified(node: roxmltree::Node) -> String {
    match node.tag_name().namespace() {
        Some(ns) => format!("{{{ns}}}{}", node.tag_name().name()),
        None => node.tag_name().name().to_string(),
    }
}

/// Parses a request document the way the GP service host would: no DTD, UTF-8 text.
pub fn parse(body: &str) -> Result<roxmltree::Document<'_>, String> {
    roxmltree::Document::parse(body).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        assert_eq!(escape("a&b<c>\"d\u{1}"), "a&amp;b&lt;c&gt;&quot;d");
        assert!(matches!(escape("plain"), std::borrow::Cow::Borrowed(_)));
        let mut out = Out::default();
        out.open("A").leaf("B", "").leaf("C", "x&y").key("K", "ID").bool("E", true).close("A");
        assert_eq!(out.buf, "<A><B/><C>x&amp;y</C><K><Id>ID</Id></K><E>true</E></A>");
    }

    #[test]
    fn dtd_is_refused() {
        assert!(parse("<!DOCTYPE x [<!ENTITY a \"b\">]><x>&a;</x>").is_err());
        assert!(parse("<a><b></a>").is_err());
    }
}
