//! YAML → JSON with a source map.
//!
//! Configuration is parsed once with saphyr (YAML 1.2: `yes`/`no` stay strings) into a
//! `serde_json::Value`, and every node's position is recorded under its JSON Pointer. The JSON
//! Schema validator and the typed deserializer both report JSON Pointers, so every later
//! diagnostic can be turned back into `file:line:col` through [`SourceMap::position`].
//!
//! Deliberately unsupported: merge keys (`<<`, which YAML 1.2 dropped), several documents in one
//! file, and keys that are not scalars. Each is a diagnostic, not a silent surprise.
//!
//! Bounded on purpose, since a configuration file may come from anywhere: nesting deeper than
//! [`MAX_DEPTH`] (a recursive drop or schema check would overflow the stack) and aliases that
//! expand to more than [`MAX_ALIAS_NODES`] values (a few lines of anchors can otherwise grow
//! exponentially) are diagnostics too.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::path::Path;

use saphyr::{Scalar, ScalarStyle, Tag};
use saphyr_parser::{Event, Parser, Span, SpannedEventReceiver};
use serde_json::{Map, Value};

use crate::diagnostic::{Diagnostic, Position};

/// How deep collections may nest; configuration needs a handful of levels.
pub const MAX_DEPTH: usize = 128;

/// How many values all aliases of a file may expand to, together.
pub const MAX_ALIAS_NODES: usize = 100_000;

/// Where one node stands in its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeSpan {
    /// Start of the value (for a quoted scalar: its opening quote).
    pub value: Position,
    /// Start of the mapping key that holds this value, when it has one.
    pub key: Option<Position>,
    /// How a scalar was written; templates use it to map offsets inside the string.
    pub style: Option<ScalarStyle>,
}

/// JSON Pointer → position, for one file.
#[derive(Debug, Clone, Default)]
pub struct SourceMap {
    nodes: HashMap<String, NodeSpan>,
    /// The file's text, kept to locate offsets inside block scalars.
    lines: Vec<String>,
}

impl SourceMap {
    /// The node at `pointer`, or its nearest ancestor that has a recorded position (nodes copied
    /// through an alias are recorded only at the alias).
    pub fn node(&self, pointer: &str) -> Option<&NodeSpan> {
        let mut p = pointer;
        loop {
            if let Some(n) = self.nodes.get(p) {
                return Some(n);
            }
            match p.rfind('/') {
                Some(i) => p = &p[..i],
                None => return None,
            }
        }
    }

    /// The position of the value at `pointer` (or of its nearest recorded ancestor).
    pub fn position(&self, pointer: &str) -> Option<Position> {
        self.node(pointer).map(|n| n.value)
    }

    /// The position of the key that names the value at `pointer`, falling back to the value.
    pub fn key_position(&self, pointer: &str) -> Option<Position> {
        self.node(pointer).map(|n| n.key.unwrap_or(n.value))
    }

    /// The position of byte `offset` inside the string scalar at `pointer`. Exact for plain and
    /// quoted one-line scalars and for literal blocks; otherwise the scalar's start.
    pub fn position_in_string(&self, pointer: &str, text: &str, offset: usize) -> Option<Position> {
        let node = self.nodes.get(pointer)?;
        let start = node.value;
        let before = &text[..offset.min(text.len())];
        let line_in_text = before.matches('\n').count();
        let col_in_line = before.rsplit('\n').next().unwrap_or("").chars().count();
        match node.style {
            Some(ScalarStyle::Plain) if line_in_text == 0 => {
                Some(Position { line: start.line, column: start.column + col_in_line })
            }
            Some(ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted) if line_in_text == 0 => {
                Some(Position { line: start.line, column: start.column + 1 + col_in_line })
            }
            Some(ScalarStyle::Literal) => {
                // A block scalar's span starts at its first content line.
                let indent = self
                    .lines
                    .get(start.line.saturating_sub(1))
                    .map(|l| l.chars().take_while(|c| *c == ' ').count())
                    .unwrap_or(0);
                Some(Position { line: start.line + line_in_text, column: indent + col_in_line + 1 })
            }
            _ => Some(start),
        }
    }
}

/// A parsed YAML file: its JSON value and where each node came from.
#[derive(Debug, Clone)]
pub struct YamlDocument {
    pub value: Value,
    pub source_map: SourceMap,
}

/// Escapes one JSON Pointer segment (RFC 6901).
pub fn escape_pointer_segment(segment: &str) -> Cow<'_, str> {
    if segment.contains(['~', '/']) {
        Cow::Owned(segment.replace('~', "~0").replace('/', "~1"))
    } else {
        Cow::Borrowed(segment)
    }
}

/// Parses `text` (the contents of `file`) into JSON plus a source map.
///
/// A syntax error yields exactly one diagnostic: after a syntax error YAML parsers cannot
/// resynchronise reliably, so later "errors" would be noise.
pub fn parse(file: &Path, text: &str) -> Result<YamlDocument, Vec<Diagnostic>> {
    let mut builder = Builder::new(file);
    // The events are pumped here rather than by `Parser::load`, which recurses once per level
    // of nesting and so overflows the stack on a deep enough file.
    for event in Parser::new_from_str(text) {
        match event {
            Ok((event, span)) => builder.on_event(event, span),
            Err(e) => {
                let m = e.marker();
                // The scanner counts some columns in bytes: never point past the line's end.
                let width = text
                    .replace("\r\n", "\n")
                    .split(['\n', '\r'])
                    .nth(m.line().saturating_sub(1))
                    .map_or(0, |l| l.chars().count());
                let pos = Position { line: m.line(), column: (m.col() + 1).min(width + 1) };
                return Err(vec![Diagnostic::new(file, Some(pos), "yaml", format!("YAML syntax error: {}", e.info()))]);
            }
        }
    }
    if !builder.diagnostics.is_empty() {
        return Err(builder.diagnostics);
    }
    let value = builder.documents.into_iter().next().unwrap_or(Value::Null);
    let lines = text.lines().map(str::to_owned).collect();
    Ok(YamlDocument { value, source_map: SourceMap { nodes: builder.nodes, lines } })
}

enum Frame {
    Mapping { pointer: String, map: Map<String, Value>, pending_key: Option<(String, Position)>, anchor: usize },
    Sequence { pointer: String, items: Vec<Value>, anchor: usize },
}

struct Builder<'f> {
    file: &'f Path,
    stack: Vec<Frame>,
    documents: Vec<Value>,
    anchors: HashMap<usize, Value>,
    nodes: HashMap<String, NodeSpan>,
    diagnostics: Vec<Diagnostic>,
    reported_merge: HashSet<String>,
    /// Collections being skipped because they nest too deep (0: not skipping).
    skipping: usize,
    /// Values the aliases so far expanded to.
    alias_nodes: usize,
}

/// The number of values in `value`, counting no further than `limit`.
fn count_nodes(value: &Value, limit: usize) -> usize {
    let mut count = 0;
    let mut pending = vec![value];
    while let Some(v) = pending.pop() {
        count += 1;
        if count > limit {
            break;
        }
        match v {
            Value::Array(items) => pending.extend(items),
            Value::Object(map) => pending.extend(map.values()),
            _ => {}
        }
    }
    count
}

fn position(span: &Span) -> Position {
    Position { line: span.start.line(), column: span.start.col() + 1 }
}

impl<'f> Builder<'f> {
    fn new(file: &'f Path) -> Self {
        Builder {
            file,
            stack: Vec::new(),
            documents: Vec::new(),
            anchors: HashMap::new(),
            nodes: HashMap::new(),
            diagnostics: Vec::new(),
            reported_merge: HashSet::new(),
            skipping: 0,
            alias_nodes: 0,
        }
    }

    fn error(&mut self, pos: Position, message: impl Into<String>) {
        self.diagnostics.push(Diagnostic::new(self.file, Some(pos), "yaml", message));
    }

    /// The pointer the next node will have, and the key position if it is a mapping value.
    /// Returns `None` when the next node is a mapping key.
    fn next_pointer(&self) -> Option<(String, Option<Position>)> {
        match self.stack.last() {
            None => Some((String::new(), None)),
            Some(Frame::Sequence { pointer, items, .. }) => Some((format!("{pointer}/{}", items.len()), None)),
            Some(Frame::Mapping { pointer, pending_key: Some((k, kp)), .. }) => {
                Some((format!("{pointer}/{}", escape_pointer_segment(k)), Some(*kp)))
            }
            Some(Frame::Mapping { pending_key: None, .. }) => None,
        }
    }

    /// Attaches a finished node to its parent (or makes it a document).
    fn attach(&mut self, value: Value, anchor: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, value.clone());
        }
        match self.stack.last_mut() {
            None => self.documents.push(value),
            Some(Frame::Sequence { items, .. }) => items.push(value),
            Some(Frame::Mapping { map, pending_key, .. }) => {
                if let Some((k, _)) = pending_key.take() {
                    map.insert(k, value);
                }
            }
        }
    }

    fn on_scalar(
        &mut self,
        text: Cow<'_, str>,
        style: ScalarStyle,
        anchor: usize,
        tag: Option<Cow<'_, Tag>>,
        span: Span,
    ) {
        let pos = position(&span);
        match self.next_pointer() {
            None => {
                // A mapping key.
                let key = text.into_owned();
                let Some(Frame::Mapping { pointer, map, .. }) = self.stack.last() else { return };
                let merge_at = (key == "<<" && style == ScalarStyle::Plain).then(|| pointer.clone());
                let duplicate = map.contains_key(&key);
                if let Some(pointer) = merge_at
                    && self.reported_merge.insert(pointer)
                {
                    self.error(pos, "merge keys (`<<`) are not supported (YAML 1.2 has none): repeat the keys, or anchor the whole value");
                }
                if duplicate {
                    self.error(pos, format!("duplicate key `{key}` in this mapping"));
                }
                if let Some(Frame::Mapping { pending_key, .. }) = self.stack.last_mut() {
                    *pending_key = Some((key, pos));
                }
            }
            Some((pointer, key)) => {
                let value = match Scalar::parse_from_cow_and_metadata(text, style, tag.as_ref()) {
                    Some(s) => scalar_to_json(s),
                    None => {
                        self.error(pos, "this value does not match its YAML tag");
                        Value::Null
                    }
                };
                if matches!(&value, Value::Number(_)) || value.is_string() || value.is_boolean() || value.is_null() {
                    self.nodes.insert(pointer, NodeSpan { value: pos, key, style: Some(style) });
                }
                self.attach(value, anchor);
            }
        }
    }

    fn start_collection(&mut self, is_mapping: bool, anchor: usize, span: Span) {
        let pos = position(&span);
        if self.stack.len() >= MAX_DEPTH {
            self.error(pos, format!("lists and mappings nest more than {MAX_DEPTH} levels deep here"));
            self.skipping = 1;
            return;
        }
        let pointer = match self.next_pointer() {
            Some((pointer, key)) => {
                self.nodes.insert(pointer.clone(), NodeSpan { value: pos, key, style: None });
                pointer
            }
            None => {
                self.error(pos, "mapping keys must be plain values, not mappings or lists (a template that starts with `{{` must be quoted)");
                // Parse the complex key into a throwaway frame that is dropped on attach.
                "/\u{0}complex-key".to_owned()
            }
        };
        self.stack.push(if is_mapping {
            Frame::Mapping { pointer, map: Map::new(), pending_key: None, anchor }
        } else {
            Frame::Sequence { pointer, items: Vec::new(), anchor }
        });
    }

    fn end_collection(&mut self) {
        let Some(frame) = self.stack.pop() else { return };
        let (pointer, value, anchor) = match frame {
            Frame::Mapping { pointer, map, anchor, .. } => (pointer, Value::Object(map), anchor),
            Frame::Sequence { pointer, items, anchor } => (pointer, Value::Array(items), anchor),
        };
        if pointer.contains('\u{0}') {
            // A complex key: already reported. Give the mapping a placeholder key so the value
            // that follows is consumed without touching real data.
            if let Some(Frame::Mapping { pending_key, .. }) = self.stack.last_mut() {
                *pending_key = Some(("\u{0}complex-key".to_owned(), Position::default()));
            }
            return;
        }
        self.attach(value, anchor);
    }
}

fn scalar_to_json(s: Scalar<'_>) -> Value {
    match s {
        Scalar::Null => Value::Null,
        Scalar::Boolean(b) => Value::Bool(b),
        Scalar::Integer(i) => Value::from(i),
        Scalar::FloatingPoint(f) => serde_json::Number::from_f64(f.into_inner())
            .map(Value::Number)
            .unwrap_or_else(|| Value::String(f.to_string())),
        Scalar::String(s) => Value::String(s.into_owned()),
    }
}

impl<'input> SpannedEventReceiver<'input> for Builder<'_> {
    fn on_event(&mut self, ev: Event<'input>, span: Span) {
        if self.skipping > 0 {
            // Inside a collection nested too deep (already reported): consume it, then put a
            // null in its place so the parent stays consistent.
            match ev {
                Event::SequenceStart(..) | Event::MappingStart(..) => self.skipping += 1,
                Event::SequenceEnd | Event::MappingEnd => {
                    self.skipping -= 1;
                    if self.skipping == 0 {
                        self.attach(Value::Null, 0);
                    }
                }
                _ => {}
            }
            return;
        }
        match ev {
            Event::DocumentStart(_) => {
                if !self.documents.is_empty() {
                    self.error(
                        position(&span),
                        "a configuration file holds one YAML document; remove the `---` separator",
                    );
                }
            }
            Event::Scalar(text, style, anchor, tag) => self.on_scalar(text, style, anchor, tag, span),
            Event::SequenceStart(anchor, _) => self.start_collection(false, anchor, span),
            Event::MappingStart(anchor, _) => self.start_collection(true, anchor, span),
            Event::SequenceEnd | Event::MappingEnd => self.end_collection(),
            Event::Alias(id) => {
                let pos = position(&span);
                let value = self.anchors.get(&id).cloned();
                match (value, self.next_pointer()) {
                    (Some(value), Some((pointer, key))) => {
                        self.nodes.insert(pointer, NodeSpan { value: pos, key, style: None });
                        let budget = MAX_ALIAS_NODES.saturating_sub(self.alias_nodes);
                        let size = count_nodes(&value, budget);
                        if size > budget {
                            if self.alias_nodes <= MAX_ALIAS_NODES {
                                self.error(
                                    pos,
                                    format!("aliases in this file expand to more than {MAX_ALIAS_NODES} values"),
                                );
                            }
                            self.alias_nodes = MAX_ALIAS_NODES + 1;
                            self.attach(Value::Null, 0);
                        } else {
                            self.alias_nodes += size;
                            self.attach(value, 0);
                        }
                    }
                    (Some(_), None) => self.error(pos, "an alias cannot be used as a mapping key"),
                    (None, _) => self.error(pos, "unknown alias"),
                }
            }
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn load(text: &str) -> YamlDocument {
        parse(Path::new("t.yaml"), text).unwrap()
    }

    fn errors(text: &str) -> Vec<String> {
        parse(Path::new("t.yaml"), text).unwrap_err().iter().map(ToString::to_string).collect()
    }

    #[test]
    fn yaml_1_2_core_schema_types() {
        let doc = load("a: yes\nb: no\nc: on\nd: true\ne: 010\nf: 0x1F\ng: 1.5\nh: ~\ni: '5'\nj: 2026-01-01\n");
        assert_eq!(
            doc.value,
            json!({"a": "yes", "b": "no", "c": "on", "d": true, "e": 10, "f": 31, "g": 1.5, "h": null, "i": "5", "j": "2026-01-01"})
        );
    }

    #[test]
    fn every_node_has_a_position() {
        let doc = load("top:\n  list:\n    - x\n    - {k: v}\n  'a/b': 1\n");
        let at = |p: &str| doc.source_map.position(p).map(|p| (p.line, p.column));
        assert_eq!(at("/top"), Some((2, 3)));
        assert_eq!(at("/top/list/0"), Some((3, 7)));
        assert_eq!(at("/top/list/1/k"), Some((4, 11)));
        assert_eq!(at("/top/a~1b"), Some((5, 10)));
        assert_eq!(doc.source_map.key_position("/top/list").map(|p| (p.line, p.column)), Some((2, 3)));
        // Unknown pointers fall back to the nearest ancestor.
        assert_eq!(at("/top/list/1/missing"), Some((4, 7)));
    }

    #[test]
    fn positions_inside_strings() {
        let doc = load("a: \"{{ x }}\"\nb: x {{ y }}\nc: |\n  line one\n  {{ z }}\n");
        let text = |p: &str| doc.value.pointer(p).unwrap().as_str().unwrap().to_owned();
        let pos = |p: &str, off: usize| doc.source_map.position_in_string(p, &text(p), off).map(|p| (p.line, p.column));
        assert_eq!(pos("/a", 3), Some((1, 8)));
        assert_eq!(pos("/c", text("/c").find('z').unwrap()), Some((5, 6)));
        assert_eq!(pos("/b", 5), Some((2, 9)));
    }

    #[test]
    fn aliases_copy_the_anchored_value() {
        let doc = load("base: &b {x: 1}\nother: *b\n");
        assert_eq!(doc.value["other"], json!({"x": 1}));
        assert_eq!(doc.source_map.position("/other").map(|p| p.line), Some(2));
    }

    #[test]
    fn merge_keys_duplicates_and_documents_are_errors() {
        let e = errors("base: &b {x: 1}\nother:\n  <<: *b\n");
        assert!(e[0].starts_with("t.yaml:3:3: error[yaml]: merge keys"), "{e:?}");
        let e = errors("a: 1\nb: 2\na: 3\n");
        assert_eq!(e, vec!["t.yaml:3:1: error[yaml]: duplicate key `a` in this mapping"]);
        let e = errors("a: 1\n---\nb: 2\n");
        assert!(e[0].contains("one YAML document"), "{e:?}");
        let e = errors("? [a, b]\n: 1\n");
        assert!(e[0].contains("mapping keys must be plain values"), "{e:?}");
        // The classic slip: an unquoted template is a YAML flow mapping.
        let e = errors("email: {{ record.email }}\n");
        assert!(e[0].starts_with("t.yaml:1:9:") && e[0].contains("must be quoted"), "{e:?}");
    }

    #[test]
    fn syntax_errors_have_a_position() {
        let e = errors("a: [1, 2\nb: 3\n");
        assert_eq!(e.len(), 1);
        assert!(e[0].starts_with("t.yaml:") && e[0].contains("YAML syntax error"), "{e:?}");
    }

    #[test]
    fn an_empty_file_is_null() {
        assert_eq!(load("").value, Value::Null);
        assert_eq!(load("# only a comment\n").value, Value::Null);
    }
}
