//! A small XML tree over quick-xml, and text escaping for the envelopes we write.
//!
//! Why a tree rather than serde: GP's objects are deep (a customer's addresses carry internet
//! addresses), optional everywhere and extended by ISVs (`Extensions`); reading the few fields we
//! map by path is shorter and more forgiving than typed structs for all of them. Namespaces are
//! resolved so the envelope and fault are recognised by URI, not by a prefix a server picked.

use quick_xml::NsReader;
use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::name::ResolveResult;

/// The SOAP 1.1 envelope namespace.
pub const SOAP_ENV: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// XML Schema instance (`xsi:nil`, `xsi:type`).
pub const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// One element: its namespace URI and local name, its text and its children.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Element {
    /// The namespace URI (empty when unbound).
    pub ns: String,
    /// The local name.
    pub name: String,
    /// `xsi:nil="true"`: present but null, which is not the same as an empty string.
    pub nil: bool,
    /// The text directly inside (entity and character references resolved).
    pub text: String,
    /// Child elements, in document order.
    pub children: Vec<Element>,
}

impl Element {
    /// The first child with this local name.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Every child with this local name.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The element at a path of local names.
    pub fn at(&self, path: &[&str]) -> Option<&Element> {
        path.iter().try_fold(self, |e, name| e.child(name))
    }

    /// The trimmed text at a path; `None` when absent, nil or blank (GP pads `char` columns
    /// with blanks, so blank means unset).
    pub fn text_at(&self, path: &[&str]) -> Option<String> {
        let e = self.at(path)?;
        let t = e.text.trim();
        (!e.nil && !t.is_empty()).then(|| t.to_owned())
    }
}

/// How deep elements may nest. GP's objects are a handful of levels deep; a deeper answer is
/// not GP's, and a tree that deep would overflow the stack when it is dropped or walked.
pub const MAX_DEPTH: usize = 256;

/// Parses a document into its root element.
pub fn parse(text: &str) -> Result<Element, String> {
    let mut reader = NsReader::from_str(text);
    let mut stack: Vec<Element> = Vec::new();
    loop {
        let (resolved, event) = reader.read_resolved_event().map_err(|e| format!("invalid XML: {e}"))?;
        let ns = match resolved {
            ResolveResult::Bound(ns) => ns.as_ref().to_owned(),
            _ => String::new(),
        };
        match event {
            Event::Start(ref start) | Event::Empty(ref start) => {
                let mut el = Element { ns, name: start.local_name().as_ref().to_owned(), ..Element::default() };
                el.nil = is_nil(&reader, start);
                if matches!(event, Event::Empty(_)) {
                    if stack.is_empty() {
                        return Ok(el);
                    }
                    attach(&mut stack, el)?;
                } else {
                    if stack.len() >= MAX_DEPTH {
                        return Err(format!("invalid XML: elements nested more than {MAX_DEPTH} deep"));
                    }
                    stack.push(el);
                }
            }
            Event::End(_) => {
                let el = stack.pop().ok_or("invalid XML: an end tag without a start")?;
                if stack.is_empty() {
                    return Ok(el);
                }
                attach(&mut stack, el)?;
            }
            Event::Text(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&t.xml10_content());
                }
            }
            Event::CData(c) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&c.into_inner());
                }
            }
            Event::GeneralRef(r) => {
                let Some(top) = stack.last_mut() else { continue };
                push_reference(&mut top.text, &r)?;
            }
            Event::Eof => return Err("invalid XML: the document ends early".into()),
            _ => {}
        }
    }
}

/// Whether a start tag says `xsi:nil="true"`.
pub(crate) fn is_nil(reader: &NsReader<&[u8]>, start: &BytesStart<'_>) -> bool {
    let mut nil = false;
    for attr in start.attributes().flatten() {
        let (attr_ns, local) = reader.resolver().resolve_attribute(attr.key);
        let is_xsi = matches!(attr_ns, ResolveResult::Bound(n) if n.as_ref() == XSI);
        if is_xsi && local.as_ref() == "nil" {
            nil = attr
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .is_ok_and(|v| v.trim() == "true" || v.trim() == "1");
        }
    }
    nil
}

/// Appends what a character or entity reference stands for; an error for a bad one.
pub(crate) fn push_reference(text: &mut String, r: &BytesRef<'_>) -> Result<(), String> {
    if r.is_char_ref() {
        match r.resolve_char_ref() {
            Ok(Some(c)) => text.push(c),
            _ => return Err("invalid XML: a bad character reference".into()),
        }
    } else {
        let name = r.xml10_content();
        match quick_xml::escape::resolve_predefined_entity(&name) {
            Some(s) => text.push_str(s),
            None => return Err(format!("invalid XML: unknown entity `&{name};`")),
        }
    }
    Ok(())
}

fn attach(stack: &mut [Element], el: Element) -> Result<(), String> {
    let parent = stack.last_mut().ok_or("invalid XML: an element outside the root")?;
    parent.children.push(el);
    Ok(())
}

/// Escapes text for element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 cannot carry at all are dropped rather than sent invalid.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_namespaces_nil_and_references() {
        let doc = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"
            xmlns:i="http://www.w3.org/2001/XMLSchema-instance"><s:Body>
            <R xmlns="urn:x"><A>Smith &amp; Sons &#233;</A><B i:nil="true"/><C><![CDATA[<raw>]]></C></R>
            </s:Body></s:Envelope>"#;
        let root = parse(doc).unwrap();
        assert_eq!((root.ns.as_str(), root.name.as_str()), (SOAP_ENV, "Envelope"));
        let r = root.at(&["Body", "R"]).unwrap();
        assert_eq!(r.ns, "urn:x");
        assert_eq!(r.text_at(&["A"]).as_deref(), Some("Smith & Sons é"));
        assert!(r.child("B").unwrap().nil);
        assert_eq!(r.text_at(&["B"]), None);
        assert_eq!(r.text_at(&["C"]).as_deref(), Some("<raw>"));
    }

    #[test]
    fn rejects_broken_documents() {
        assert!(parse("<a><b></a>").is_err());
        assert!(parse("<a>").is_err());
        assert!(parse("<a>&bogus;</a>").is_err());
    }

    #[test]
    fn escapes_markup_and_drops_control_characters() {
        assert_eq!(escape("a<b>&\"c'\u{1}"), "a&lt;b&gt;&amp;&quot;c&apos;");
    }
}
