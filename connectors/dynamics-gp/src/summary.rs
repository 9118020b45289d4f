//! List answers (`Get…List`) read as they stream, keeping of each summary only the few fields a
//! record uses.
//!
//! GP's lists cannot page, so one answer may hold every record of a key range (all 50,000
//! customers when their ids share a prefix). Parsed into an [`Element`] tree, such an answer
//! costs about ten times its text; read here, it costs the text plus a few short strings per
//! summary. What is kept is exactly what the tree would have given for each field (the first
//! element at its path, trimmed, nil or blank as absent), and [`Summary::element`] rebuilds a
//! small tree with the same answers for `records`. Anything unusual (a fault, not a SOAP
//! envelope, invalid XML) is left to the tree reader, [`soap::result`], so errors read the same.

use quick_xml::NsReader;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;

use crate::soap::{self, AnswerError};
use crate::xml::{self, Element, MAX_DEPTH, SOAP_ENV};

/// A summary field a record reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    /// The path of local names below the summary element.
    pub path: &'static [&'static str],
    /// Read as `records::money` reads it: the element's own text when it has no children,
    /// else its `Value` child's.
    pub money: bool,
}

impl Field {
    /// A text field (`Element::text_at`).
    pub const fn text(path: &'static [&'static str]) -> Field {
        Field { path, money: false }
    }

    /// A `MoneyAmount` or plain decimal field.
    pub const fn money(path: &'static [&'static str]) -> Field {
        Field { path, money: true }
    }
}

/// One summary: for each field (in the order given), its value, or `None` when absent, nil or
/// blank.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    values: Box<[Option<Box<str>>]>,
}

impl Summary {
    /// The value of the field at `path`, if it is one of `fields`.
    pub fn value(&self, fields: &[Field], path: &[&str]) -> Option<&str> {
        let i = fields.iter().position(|f| f.path == path)?;
        self.values.get(i)?.as_deref()
    }

    /// A small tree giving the same answers as the summary element did for `fields`.
    pub fn element(&self, fields: &[Field]) -> Element {
        let mut root = Element::default();
        for (field, value) in fields.iter().zip(self.values.iter()) {
            let Some(value) = value else { continue };
            let mut e = &mut root;
            for name in field.path {
                let i = match e.children.iter().position(|c| c.name == *name) {
                    Some(i) => i,
                    None => {
                        e.children.push(Element { name: (*name).to_owned(), ..Element::default() });
                        e.children.len() - 1
                    }
                };
                e = &mut e.children[i];
            }
            e.text = value.to_string();
        }
        root
    }

    /// The summary of a parsed summary element (the tree reader's way).
    pub fn of(e: &Element, fields: &[Field]) -> Summary {
        let values = fields
            .iter()
            .map(|f| {
                let value = if f.money {
                    e.at(f.path)
                        .and_then(|el| if el.children.is_empty() { el.text_at(&[]) } else { el.text_at(&["Value"]) })
                } else {
                    e.text_at(f.path)
                };
                value.map(String::into_boxed_str)
            })
            .collect();
        Summary { values }
    }
}

/// The summaries of a `Get…List` answer, or the fault or error the answer holds.
pub fn list(body: &str, operation: &str, fields: &[Field]) -> Result<Vec<Summary>, AnswerError> {
    if let Some(summaries) = stream(body, operation, fields) {
        return Ok(summaries);
    }
    soap::result(body, operation).map(|r| r.children.iter().map(|s| Summary::of(s, fields)).collect())
}

/// What the element at a capture path held: its direct text, nil, whether it had children.
#[derive(Debug, Default)]
struct Captured {
    text: String,
    nil: bool,
    has_children: bool,
}

impl Captured {
    /// `Element::text_at(&[])`.
    fn text(&self) -> Option<String> {
        let t = self.text.trim();
        (!self.nil && !t.is_empty()).then(|| t.to_owned())
    }
}

/// An open element within a summary on the way to a capture path (the first child of its
/// name at every level, as `Element::at` finds).
struct Frame {
    /// Index into the capture paths when this element is at one.
    target: Option<usize>,
    /// Names of the children seen so far that lead to a capture path.
    seen: Vec<String>,
    captured: Captured,
}

/// Reads the summaries as the tree reader would, or `None` when the answer is not a plain
/// result (a fault, not an envelope, no response element, invalid XML): the caller then asks
/// the tree reader, which says what is wrong.
pub fn stream(body: &str, operation: &str, fields: &[Field]) -> Option<Vec<Summary>> {
    // The paths to capture: each field's, and a money field's `Value` too.
    let mut targets: Vec<Vec<&str>> = Vec::new();
    for f in fields {
        targets.push(f.path.to_vec());
        if f.money {
            targets.push([f.path, &["Value"]].concat());
        }
    }
    let leads_to =
        |path: &[String]| targets.iter().any(|t| t.len() >= path.len() && t.iter().zip(path).all(|(a, b)| a == b));
    let response_name = format!("{operation}Response");
    let result_name = format!("{operation}Result");

    let mut reader = NsReader::from_str(body);
    let mut summaries = Vec::new();
    // Open elements in the document.
    let mut open = 0usize;
    // Depths (open-element counts) of the envelope's body, the response and the result when
    // open, and whether each was found.
    let (mut in_body, mut in_response, mut in_result) = (false, false, false);
    let (mut seen_body, mut seen_response, mut seen_result) = (false, false, false);
    // Within a summary: the frames on a capture path, the names to them, how deep below the
    // last frame the reader is (in elements off every path), and what was captured.
    let mut frames: Vec<Frame> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    let mut skip = 0usize;
    let mut captures: Vec<Option<Captured>> = Vec::new();

    loop {
        let (resolved, event) = reader.read_resolved_event().ok()?;
        match event {
            Event::Start(ref start) | Event::Empty(ref start) => {
                let empty = matches!(event, Event::Empty(_));
                let local = start.local_name();
                let name: &str = local.as_ref();
                if !empty && open >= MAX_DEPTH {
                    return None;
                }
                if !frames.is_empty() {
                    // Inside a summary.
                    if skip > 0 {
                        skip += usize::from(!empty);
                    } else {
                        let parent = frames.last_mut()?;
                        parent.captured.has_children = true;
                        names.push(name.to_owned());
                        let first = !parent.seen.iter().any(|s| s == name);
                        if first && leads_to(&names) {
                            parent.seen.push(name.to_owned());
                            let target = targets.iter().position(|t| *t == names);
                            let captured = Captured { nil: xml::is_nil(&reader, start), ..Captured::default() };
                            frames.push(Frame { target, seen: Vec::new(), captured });
                            if empty {
                                close_frame(&mut frames, &mut names, &mut captures);
                            }
                        } else {
                            names.pop();
                            skip = usize::from(!empty);
                        }
                    }
                } else {
                    match open {
                        0 => {
                            let is_envelope = matches!(resolved, ResolveResult::Bound(ref ns) if ns.as_ref() == SOAP_ENV)
                                && name == "Envelope";
                            if !is_envelope || empty {
                                return None;
                            }
                        }
                        1 if !seen_body && name == "Body" => {
                            seen_body = true;
                            in_body = !empty;
                        }
                        2 if in_body => {
                            let is_fault = matches!(resolved, ResolveResult::Bound(ref ns) if ns.as_ref() == SOAP_ENV)
                                && name == "Fault";
                            if is_fault {
                                return None;
                            }
                            if !seen_response && name == response_name {
                                seen_response = true;
                                in_response = !empty;
                            }
                        }
                        3 if in_response && !seen_result && name == result_name => {
                            seen_result = true;
                            in_result = !empty;
                        }
                        4 if in_result => {
                            captures = (0..targets.len()).map(|_| None).collect();
                            let captured = Captured { nil: xml::is_nil(&reader, start), ..Captured::default() };
                            frames.push(Frame { target: None, seen: Vec::new(), captured });
                            if empty {
                                frames.clear();
                                summaries.push(summary(fields, &targets, &mut captures));
                            }
                        }
                        _ => {}
                    }
                }
                if !empty {
                    open += 1;
                }
            }
            Event::End(_) => {
                open = open.checked_sub(1)?;
                if !frames.is_empty() {
                    if skip > 0 {
                        skip -= 1;
                    } else if frames.len() > 1 {
                        close_frame(&mut frames, &mut names, &mut captures);
                    } else {
                        frames.clear();
                        summaries.push(summary(fields, &targets, &mut captures));
                    }
                }
                match open {
                    0 => return seen_response.then_some(summaries),
                    1 => in_body = false,
                    2 => in_response = false,
                    3 => in_result = false,
                    _ => {}
                }
            }
            Event::Text(t) => {
                if let Some(c) = capturing(&mut frames, skip) {
                    c.text.push_str(&t.xml10_content());
                }
            }
            Event::CData(c) => {
                if let Some(cap) = capturing(&mut frames, skip) {
                    cap.text.push_str(&c.into_inner());
                }
            }
            Event::GeneralRef(r) => {
                if open == 0 {
                    continue;
                }
                // Resolved everywhere, so a bad reference fails here as in the tree reader.
                let mut scratch = String::new();
                let text = match capturing(&mut frames, skip) {
                    Some(c) => &mut c.text,
                    None => &mut scratch,
                };
                xml::push_reference(text, &r).ok()?;
            }
            Event::Eof => return None,
            _ => {}
        }
    }
}

/// The capture of the element whose direct text is being read, if it is at a capture path.
fn capturing(frames: &mut [Frame], skip: usize) -> Option<&mut Captured> {
    match frames.last_mut() {
        Some(f) if skip == 0 && f.target.is_some() => Some(&mut f.captured),
        _ => None,
    }
}

fn close_frame(frames: &mut Vec<Frame>, names: &mut Vec<String>, captures: &mut [Option<Captured>]) {
    names.pop();
    if let Some(frame) = frames.pop()
        && let Some(i) = frame.target
    {
        captures[i] = Some(frame.captured);
    }
}

fn summary(fields: &[Field], targets: &[Vec<&str>], captures: &mut [Option<Captured>]) -> Summary {
    let at = |path: &[&str]| targets.iter().position(|t| *t == path).and_then(|i| captures[i].as_ref());
    let values = fields
        .iter()
        .map(|f| {
            let value = if f.money {
                at(f.path).and_then(|el| {
                    if el.has_children {
                        at(&[f.path, &["Value"]].concat()).and_then(Captured::text)
                    } else {
                        el.text()
                    }
                })
            } else {
                at(f.path).and_then(Captured::text)
            };
            value.map(String::into_boxed_str)
        })
        .collect();
    Summary { values }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELDS: &[Field] = &[
        Field::text(&["Key", "Id"]),
        Field::text(&["Name"]),
        Field::text(&["IsActive"]),
        Field::text(&["PhoneNumbers", "PhoneNumber", "Value"]),
        Field::text(&["ModifiedDate"]),
        Field::money(&["DocumentAmount"]),
        Field::money(&["SalesAmount"]),
        Field::money(&["TaxAmount"]),
    ];

    fn envelope(summaries: &str) -> String {
        format!(
            r#"<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"
            xmlns:i="http://www.w3.org/2001/XMLSchema-instance"><s:Header><X>1</X></s:Header><s:Body>
            <GetCustomerListResponse xmlns="http://schemas.microsoft.com/dynamics/gp/2006/01">
            <GetCustomerListResult xmlns:g="http://schemas.microsoft.com/dynamics/gp/2006/01">{summaries}</GetCustomerListResult>
            <GetCustomerListResult><CustomerSummary><Key><Id>SECONDRESULT</Id></Key></CustomerSummary></GetCustomerListResult>
            </GetCustomerListResponse></s:Body></s:Envelope>"#
        )
    }

    const SAMPLE: &str = r#"
        <CustomerSummary><Key><Id>  AARON&amp;FIT&#48;1  </Id><Id>SECOND</Id></Key><Name>Aaron &lt;Fitness&gt; <![CDATA[& Co]]></Name>
          <IsActive>true</IsActive><Key><Id>LATERKEY</Id></Key>
          <PhoneNumbers><PhoneNumber><Value i:nil="true"/></PhoneNumber><PhoneNumber><Value>555</Value></PhoneNumber></PhoneNumbers>
          <ModifiedDate>2024-05-01T10:00:00</ModifiedDate><Extensions><Key><Id>NOT-ME</Id></Key></Extensions>
          <DocumentAmount><Currency>USD</Currency><Value> 12.50 </Value></DocumentAmount><SalesAmount>3.25</SalesAmount>
          <TaxAmount><Value i:nil="true">9</Value></TaxAmount></CustomerSummary>
        <g:CustomerSummary><g:Key><g:Id i:nil="true">NIL</g:Id></g:Key><g:Name>   </g:Name><g:ModifiedDate/>
          <g:Key><g:Id>ANOTHER</g:Id></g:Key></g:CustomerSummary>
        <CustomerSummary/>
        <Other><Key><Id>OTHER&#x41;</Id></Key><Name>x<Inner>y</Inner>z</Name><SalesAmount i:nil="true">1</SalesAmount></Other>
        <CustomerSummary><Key><Id>DEEP</Id><Id><Id>no</Id></Id></Key><IsActive i:nil="1">false</IsActive>
          <DocumentAmount>7<Value>8</Value></DocumentAmount></CustomerSummary>"#;

    fn by_tree(body: &str) -> Vec<Summary> {
        let r = soap::result(body, "GetCustomerList").unwrap();
        r.children.iter().map(|s| Summary::of(s, FIELDS)).collect()
    }

    #[test]
    fn streaming_reads_what_the_tree_reads() {
        let body = envelope(SAMPLE);
        let streamed = stream(&body, "GetCustomerList", FIELDS).expect("a plain result streams");
        assert_eq!(streamed, by_tree(&body));
        let ids: Vec<_> = streamed.iter().map(|s| s.value(FIELDS, &["Key", "Id"])).collect();
        assert_eq!(ids, [Some("AARON&FIT01"), None, None, Some("OTHERA"), Some("DEEP")]);
        let first = &streamed[0];
        assert_eq!(first.value(FIELDS, &["Name"]), Some("Aaron <Fitness> & Co"));
        assert_eq!(first.value(FIELDS, &["PhoneNumbers", "PhoneNumber", "Value"]), None, "the first phone is nil");
        assert_eq!(first.value(FIELDS, &["ModifiedDate"]), Some("2024-05-01T10:00:00"));
        assert_eq!(first.value(FIELDS, &["DocumentAmount"]), Some("12.50"));
        assert_eq!(first.value(FIELDS, &["SalesAmount"]), Some("3.25"));
        assert_eq!(first.value(FIELDS, &["TaxAmount"]), None);
        assert_eq!(streamed[3].value(FIELDS, &["Name"]), Some("xz"));
        assert_eq!(streamed[4].value(FIELDS, &["IsActive"]), None);
        assert_eq!(streamed[4].value(FIELDS, &["DocumentAmount"]), Some("8"));

        // The rebuilt tree answers as the summary element did.
        let tree = soap::result(&body, "GetCustomerList").unwrap();
        for (s, e) in streamed.iter().zip(&tree.children) {
            assert_eq!(Summary::of(&s.element(FIELDS), FIELDS), Summary::of(e, FIELDS));
        }
    }

    #[test]
    fn empty_and_missing_results_and_errors_read_as_the_tree_reader_says() {
        let no_result = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>
            <GetCustomerListResponse xmlns="http://schemas.microsoft.com/dynamics/gp/2006/01"/></s:Body></s:Envelope>"#;
        assert_eq!(stream(no_result, "GetCustomerList", FIELDS), Some(vec![]));
        assert_eq!(list(&envelope(""), "GetCustomerList", FIELDS).unwrap(), vec![]);

        let fault = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault>
            <faultcode>s:Client</faultcode><faultstring>The request is invalid.</faultstring></s:Fault></s:Body></s:Envelope>"#;
        assert_eq!(stream(fault, "GetCustomerList", FIELDS), None);
        assert!(matches!(list(fault, "GetCustomerList", FIELDS), Err(AnswerError::Fault(f)) if f.code == "s:Client"));

        for bad in [
            "<html/>".to_owned(),
            envelope("<CustomerSummary>&bogus;</CustomerSummary>"),
            envelope("<CustomerSummary><Key></CustomerSummary>"),
            envelope("<CustomerSummary>").replace("</s:Envelope>", ""),
        ] {
            assert_eq!(stream(&bad, "GetCustomerList", FIELDS), None, "{bad}");
            assert!(matches!(list(&bad, "GetCustomerList", FIELDS), Err(AnswerError::Invalid(_))), "{bad}");
        }
        // Another operation's answer.
        assert!(matches!(list(&envelope(SAMPLE), "GetCustomerByKey", FIELDS), Err(AnswerError::Invalid(_))));
        let deep = envelope(&format!("{}{}", "<a>".repeat(MAX_DEPTH), "</a>".repeat(MAX_DEPTH)));
        assert!(matches!(list(&deep, "GetCustomerList", FIELDS), Err(AnswerError::Invalid(_))));
    }
}
