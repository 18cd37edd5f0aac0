//! A YAML document as a tree of nodes that remember where they came from.
//! Used for workflows, action metadata, environment configs, lockfiles and
//! advisories alike.
//!
//! Built from saphyr-parser's event stream so every scalar, sequence and
//! mapping carries its line and column; plain scalars are resolved with the
//! YAML 1.2 core schema, as GitHub does (`on:` stays a string key).

use saphyr_parser::{Event, Parser, ScalarStyle, Span as YSpan};
use std::collections::HashMap;

/// A 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, PartialOrd, Ord)]
pub struct Pos {
    pub line: u32,
    pub col: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub start: Pos,
    pub end: Pos,
}

#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    Null,
    Bool(bool),
    Number(f64),
    /// A string scalar; `raw` is false for block and quoted styles.
    String(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub kind: NodeKind,
    pub span: Span,
    /// The scalar's source text (for numbers and booleans written in YAML).
    pub raw: Option<String>,
    pub style: Style,
}

/// How a node was written, needed to map offsets inside a value back to the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Style {
    #[default]
    Plain,
    Quoted,
    /// `|` or `>`: the content starts on the line after the indicator.
    Block,
    Collection,
}

impl Node {
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            NodeKind::Null => "null",
            NodeKind::Bool(_) => "a boolean",
            NodeKind::Number(_) => "a number",
            NodeKind::String(_) => "a string",
            NodeKind::Seq(_) => "a sequence",
            NodeKind::Map(_) => "a mapping",
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.kind {
            NodeKind::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.kind {
            NodeKind::Seq(s) => Some(s),
            _ => None,
        }
    }

    pub fn is_scalar(&self) -> bool {
        !matches!(self.kind, NodeKind::Seq(_) | NodeKind::Map(_))
    }

    /// A scalar as the string a workflow would see (`3.10` → `"3.1"`, like GitHub).
    pub fn scalar_string(&self) -> Option<String> {
        Some(match &self.kind {
            NodeKind::Null => String::new(),
            NodeKind::Bool(b) => b.to_string(),
            NodeKind::Number(n) => format_number(*n),
            NodeKind::String(s) => s.clone(),
            _ => return None,
        })
    }

    /// Looks a key up in a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    /// The node as JSON; non-finite numbers become strings (`.inf`, `.nan`).
    pub fn to_json(&self) -> serde_json::Value {
        match &self.kind {
            NodeKind::Null => serde_json::Value::Null,
            NodeKind::Bool(b) => serde_json::Value::Bool(*b),
            NodeKind::Number(n) => match serde_json::Number::from_f64(*n) {
                Some(_) if n.fract() == 0.0 && n.abs() < 9.007_199_254_740_992e15 =>
                {
                    #[allow(clippy::cast_possible_truncation)]
                    serde_json::Value::from(*n as i64)
                }
                Some(num) => serde_json::Value::Number(num),
                None => serde_json::Value::String(self.raw.clone().unwrap_or_default()),
            },
            NodeKind::String(s) => serde_json::Value::String(s.clone()),
            NodeKind::Seq(items) => {
                serde_json::Value::Array(items.iter().map(Node::to_json).collect())
            }
            NodeKind::Map(entries) => serde_json::Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.scalar_string().unwrap_or_default(), v.to_json()))
                    .collect(),
            ),
        }
    }
}

/// A YAML syntax error.
#[derive(Debug, Clone, PartialEq)]
pub struct YamlError {
    pub message: String,
    pub pos: Pos,
}

fn pos(m: saphyr_parser::Marker) -> Pos {
    Pos {
        line: u32::try_from(m.line()).unwrap_or(u32::MAX),
        col: u32::try_from(m.col() + 1).unwrap_or(u32::MAX),
    }
}

fn span(s: YSpan) -> Span {
    Span {
        start: pos(s.start),
        end: pos(s.end),
    }
}

/// Resolves a plain scalar with the YAML 1.2 core schema.
fn resolve_plain(s: &str) -> NodeKind {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => NodeKind::Null,
        "true" | "True" | "TRUE" => NodeKind::Bool(true),
        "false" | "False" | "FALSE" => NodeKind::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => NodeKind::Number(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => NodeKind::Number(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => NodeKind::Number(f64::NAN),
        _ => match core_number(s) {
            Some(n) => NodeKind::Number(n),
            None => NodeKind::String(s.to_string()),
        },
    }
}

/// Integers and floats of the YAML 1.2 core schema:
/// `[-+]?[0-9]+`, `0o[0-7]+`, `0x[0-9a-fA-F]+`,
/// `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`.
fn core_number(s: &str) -> Option<f64> {
    if let Some(h) = s.strip_prefix("0x") {
        return (!h.is_empty())
            .then(|| u64::from_str_radix(h, 16).ok())
            .flatten()
            .map(|v| v as f64);
    }
    if let Some(o) = s.strip_prefix("0o") {
        return (!o.is_empty())
            .then(|| u64::from_str_radix(o, 8).ok())
            .flatten()
            .map(|v| v as f64);
    }
    let body = s.strip_prefix(['-', '+']).unwrap_or(s);
    if !launchway_expr::is_plain_decimal(body) {
        return None;
    }
    s.parse().ok()
}

/// A number as a workflow sees it when a scalar is used as a string:
/// JavaScript's shortest form (`3.10` → `3.1`, `1.0` → `1`), as the
/// expression language formats numbers.
pub use launchway_expr::format_number;

/// Applies YAML merge keys: in a mapping, `<<: *base` (or a list of
/// them) adds the keys of those mappings that the mapping does not set
/// itself; an earlier source wins over a later one. Anchors are already
/// expanded by [`parse`]. A plain `<<` key only (a quoted one is a key).
pub fn merge_keys(node: Node) -> Result<Node, YamlError> {
    fn not_a_map(at: Span) -> YamlError {
        YamlError {
            message: "a merge key ('<<') takes a mapping or a list of mappings".into(),
            pos: at.start,
        }
    }
    let Node {
        kind,
        span,
        raw,
        style,
    } = node;
    let kind = match kind {
        NodeKind::Seq(items) => NodeKind::Seq(
            items
                .into_iter()
                .map(merge_keys)
                .collect::<Result<_, _>>()?,
        ),
        NodeKind::Map(entries) => {
            let mut own: Vec<(Node, Node)> = Vec::new();
            let mut sources: Vec<Vec<(Node, Node)>> = Vec::new();
            for (k, v) in entries {
                let v = merge_keys(v)?;
                let is_merge =
                    k.style == Style::Plain && matches!(&k.kind, NodeKind::String(s) if s == "<<");
                if !is_merge {
                    own.push((k, v));
                    continue;
                }
                match v.kind {
                    NodeKind::Map(m) => sources.push(m),
                    NodeKind::Seq(items) => {
                        for item in items {
                            match item.kind {
                                NodeKind::Map(m) => sources.push(m),
                                _ => return Err(not_a_map(item.span)),
                            }
                        }
                    }
                    _ => return Err(not_a_map(v.span)),
                }
            }
            for src in sources {
                for (k, v) in src {
                    let key = k.scalar_string();
                    if !own.iter().any(|(o, _)| o.scalar_string() == key) {
                        own.push((k, v));
                    }
                }
            }
            NodeKind::Map(own)
        }
        other => other,
    };
    Ok(Node {
        kind,
        span,
        raw,
        style,
    })
}

enum Frame {
    Seq(Vec<Node>, Span, usize),
    Map(Vec<(Node, Node)>, Option<Node>, Span, usize),
}

/// Nesting bound so hostile input cannot exhaust memory through recursion
/// elsewhere (the builder itself is iterative).
const MAX_NESTING: usize = 256;

/// Parses the first document of a YAML stream into a node tree.
/// Parses a YAML document into nodes with positions.
///
/// YAML puts no indentation rule on the lines inside a flow collection
/// (`[ … ]`, `{ … }`), so GitHub, PyYAML and actionlint accept a closing
/// bracket at its item's indentation (numpy's matrices do this); the
/// parser underneath rejects it (saphyr#108). When it does, the offending
/// line — only if it starts inside a flow collection — is indented one
/// column past the block that holds the collection and parsing is tried
/// again; positions on such lines are mapped back to the source.
pub fn parse(src: &str) -> Result<Node, YamlError> {
    let first = match parse_exact(src) {
        Err(e) if e.message.contains("invalid indentation") => e,
        other => return other,
    };
    let needs = flow_indents(src);
    let mut lines: Vec<String> = src.split('\n').map(str::to_string).collect();
    let mut lifted: HashMap<u32, u32> = HashMap::new();
    let mut err = first.clone();
    for _ in 0..256 {
        // The error's line (1-based), if it starts inside a flow collection.
        let i = err.pos.line.saturating_sub(1) as usize;
        let (Some(Some(min)), Some(line)) = (needs.get(i), lines.get_mut(i)) else {
            return Err(first);
        };
        let have = line.len() - line.trim_start_matches(' ').len();
        if have >= *min || lifted.contains_key(&err.pos.line) {
            return Err(first);
        }
        let add = *min - have;
        line.insert_str(0, &" ".repeat(add));
        lifted.insert(err.pos.line, u32::try_from(add).unwrap_or(0));
        match parse_exact(&lines.join("\n")) {
            Ok(mut node) => {
                unshift(&mut node, &lifted);
                return Ok(node);
            }
            Err(e) if e.message.contains("invalid indentation") => err = e,
            Err(_) => return Err(first),
        }
    }
    Err(first)
}

/// For each line, when it starts inside a flow collection opened on an
/// earlier line: the least indentation the parser accepts for it (one past
/// the indentation of the line that opened the outermost collection).
fn flow_indents(src: &str) -> Vec<Option<usize>> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut opened_at = 0usize;
    let mut quote: Option<char> = None;
    for line in src.split('\n') {
        out.push((depth > 0).then_some(opened_at + 1));
        let indent = line.len() - line.trim_start_matches(' ').len();
        let mut prev = ' ';
        // Where a flow collection may start in block context: the start of
        // the content, or after `- `, `: `, `? `.
        let mut value_start = true;
        for c in line.chars() {
            if let Some(q) = quote {
                if c == q {
                    quote = None;
                }
                prev = c;
                continue;
            }
            match c {
                '#' if prev == ' ' || prev == '\t' => break,
                '"' | '\'' if depth > 0 || value_start => quote = Some(c),
                '[' | '{' if depth > 0 || value_start => {
                    if depth == 0 {
                        opened_at = indent;
                    }
                    depth += 1;
                }
                ']' | '}' if depth > 0 => depth -= 1,
                _ => {}
            }
            value_start =
                c == ' ' && depth == 0 && (value_start || matches!(prev, '-' | ':' | '?'));
            prev = c;
        }
        // A quote left open at the end of a block-context line is not a
        // quoted scalar (`don't`): only flow and quoted scalars span lines.
        if depth == 0 && quote == Some('\'') {
            quote = None;
        }
    }
    out
}

/// Maps positions on lines `parse` indented back to the source.
fn unshift(node: &mut Node, lifted: &HashMap<u32, u32>) {
    for p in [&mut node.span.start, &mut node.span.end] {
        if let Some(k) = lifted.get(&p.line) {
            p.col = p.col.saturating_sub(*k).max(1);
        }
    }
    match &mut node.kind {
        NodeKind::Seq(items) => items.iter_mut().for_each(|n| unshift(n, lifted)),
        NodeKind::Map(entries) => entries.iter_mut().for_each(|(k, v)| {
            unshift(k, lifted);
            unshift(v, lifted);
        }),
        _ => {}
    }
}

/// Where the document writes an explicit tag (`!!str`, `!Ref`), and the
/// tag as written: formats whose readers refuse tags (GitHub's workflow
/// parser) report them. Stops at the first syntax error.
pub fn explicit_tags(src: &str) -> Vec<(Pos, String)> {
    let mut out = Vec::new();
    let mut parser = Parser::new_from_str(src);
    while let Some(Ok((ev, sp))) = parser.next_event() {
        let tag = match ev {
            Event::Scalar(_, _, _, Some(t))
            | Event::SequenceStart(_, Some(t))
            | Event::MappingStart(_, Some(t)) => t,
            _ => continue,
        };
        let shown = if tag.is_yaml_core_schema() {
            format!("!!{}", tag.suffix)
        } else {
            format!("{}{}", tag.handle, tag.suffix)
        };
        out.push((pos(sp.start), shown));
    }
    out
}

fn parse_exact(src: &str) -> Result<Node, YamlError> {
    let mut parser = Parser::new_from_str(src);
    let mut stack: Vec<Frame> = Vec::new();
    let mut anchors: HashMap<usize, Node> = HashMap::new();
    let mut root: Option<Node> = None;
    let mut alias_budget: usize = 10_000;

    while let Some(ev) = parser.next_event() {
        let (ev, sp) = ev.map_err(|e| YamlError {
            message: e.info().to_string(),
            pos: pos(*e.marker()),
        })?;
        let finished: Option<(Node, usize)> = match ev {
            Event::StreamStart | Event::DocumentStart(_) | Event::Nothing => None,
            Event::DocumentEnd | Event::StreamEnd => {
                if root.is_some() || matches!(ev, Event::StreamEnd) {
                    break;
                }
                None
            }
            Event::Alias(id) => {
                let node = anchors.get(&id).cloned().ok_or_else(|| YamlError {
                    message: "alias refers to an unknown anchor".into(),
                    pos: pos(sp.start),
                })?;
                alias_budget = alias_budget
                    .checked_sub(count(&node))
                    .ok_or_else(|| YamlError {
                        message: "too many alias expansions (possible alias bomb)".into(),
                        pos: pos(sp.start),
                    })?;
                Some((node, 0))
            }
            Event::Scalar(value, style, anchor, _tag) => {
                let kind = if style == ScalarStyle::Plain {
                    resolve_plain(&value)
                } else {
                    NodeKind::String(value.to_string())
                };
                let raw = (style == ScalarStyle::Plain).then(|| value.to_string());
                let style = match style {
                    ScalarStyle::Plain => Style::Plain,
                    ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted => Style::Quoted,
                    _ => Style::Block,
                };
                Some((
                    Node {
                        kind,
                        span: span(sp),
                        raw,
                        style,
                    },
                    anchor,
                ))
            }
            Event::SequenceStart(anchor, _) => {
                if stack.len() >= MAX_NESTING {
                    return Err(YamlError {
                        message: format!("nesting deeper than {MAX_NESTING} levels"),
                        pos: pos(sp.start),
                    });
                }
                stack.push(Frame::Seq(Vec::new(), span(sp), anchor));
                None
            }
            Event::MappingStart(anchor, _) => {
                if stack.len() >= MAX_NESTING {
                    return Err(YamlError {
                        message: format!("nesting deeper than {MAX_NESTING} levels"),
                        pos: pos(sp.start),
                    });
                }
                stack.push(Frame::Map(Vec::new(), None, span(sp), anchor));
                None
            }
            Event::SequenceEnd => match stack.pop() {
                Some(Frame::Seq(items, mut s, anchor)) => {
                    s.end = pos(sp.end);
                    Some((
                        Node {
                            kind: NodeKind::Seq(items),
                            span: s,
                            raw: None,
                            style: Style::Collection,
                        },
                        anchor,
                    ))
                }
                _ => None,
            },
            Event::MappingEnd => match stack.pop() {
                Some(Frame::Map(entries, _, mut s, anchor)) => {
                    s.end = pos(sp.end);
                    Some((
                        Node {
                            kind: NodeKind::Map(entries),
                            span: s,
                            raw: None,
                            style: Style::Collection,
                        },
                        anchor,
                    ))
                }
                _ => None,
            },
        };
        if let Some((node, anchor)) = finished {
            if anchor != 0 {
                anchors.insert(anchor, node.clone());
            }
            match stack.last_mut() {
                None => root = Some(node),
                Some(Frame::Seq(items, ..)) => items.push(node),
                Some(Frame::Map(entries, pending, ..)) => match pending.take() {
                    None => *pending = Some(node),
                    Some(key) => {
                        if let Some(k) = key.as_str()
                            && entries.iter().any(|(e, _)| e.as_str() == Some(k))
                        {
                            return Err(YamlError {
                                message: format!("duplicate key '{k}'"),
                                pos: key.span.start,
                            });
                        }
                        entries.push((key, node));
                    }
                },
            }
        }
    }
    Ok(root.unwrap_or(Node {
        kind: NodeKind::Null,
        span: Span::default(),
        raw: None,
        style: Style::Plain,
    }))
}

fn count(n: &Node) -> usize {
    1 + match &n.kind {
        NodeKind::Seq(items) => items.iter().map(count).sum(),
        NodeKind::Map(entries) => entries.iter().map(|(k, v)| count(k) + count(v)).sum(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flow_collection_may_close_at_its_items_indentation() {
        // numpy's linux_simd.yml: PyYAML, GitHub and actionlint accept it.
        let src = "matrix:\n  p:\n    - [\n      \"a\",\n      \"b\"\n    ]\n  q: [\n    1, 2\n  ]\n  r: {\n    x: 1\n  }\n";
        let n = parse(src).unwrap();
        let m = n.get("matrix").unwrap();
        let p = m.get("p").unwrap().as_seq().unwrap();
        let inner = p[0].as_seq().unwrap();
        assert_eq!(inner[0].as_str(), Some("a"));
        // Positions are the source's, not the lifted text's.
        assert_eq!((inner[1].span.start.line, inner[1].span.start.col), (5, 7));
        assert_eq!(m.get("q").unwrap().as_seq().unwrap().len(), 2);
        assert_eq!(
            m.get("r").unwrap().get("x").unwrap().to_json(),
            serde_json::json!(1)
        );
        // A real indentation error still is one, where it was.
        let bad = "a:\n  b: 1\n c: 2\n";
        let e = parse(bad).unwrap_err();
        assert_eq!(e.pos.line, 3);
        // Brackets in block scalars and plain text are not flow collections.
        let text = "run: |\n  echo [\nx: y\n";
        assert!(parse(text).is_ok());
    }

    #[test]
    fn positions_and_core_schema() {
        let n = parse("on: push\njobs:\n  a:\n    x: 3.10\n    y: 'yes'\n    z: 0x1F\n").unwrap();
        let on = n.get("on").unwrap();
        assert_eq!(on.as_str(), Some("push"));
        assert_eq!(on.span.start, Pos { line: 1, col: 5 });
        let a = n.get("jobs").unwrap().get("a").unwrap();
        assert_eq!(a.get("x").unwrap().scalar_string().unwrap(), "3.1");
        assert_eq!(a.get("y").unwrap().as_str(), Some("yes"));
        assert_eq!(a.get("z").unwrap().kind, NodeKind::Number(31.0));
        assert_eq!(a.get("z").unwrap().span.start, Pos { line: 6, col: 8 });
    }

    #[test]
    fn merge_keys_add_what_a_mapping_does_not_set() {
        let n = merge_keys(
            parse("base: &b {replicas: 2, log_level: INFO}\nother: &o {replicas: 9, x: 1}\nprod:\n  <<: [*b, *o]\n  replicas: 3\n\"<<\": kept\n")
                .unwrap(),
        )
        .unwrap();
        let j = n.to_json();
        assert_eq!(j["prod"]["replicas"], 3.0);
        assert_eq!(j["prod"]["log_level"], "INFO");
        assert_eq!(j["prod"]["x"], 1.0);
        assert!(j["prod"].get("<<").is_none());
        assert_eq!(j["<<"], "kept", "a quoted key is a key");
        let bad = merge_keys(parse("a:\n  <<: 5\n").unwrap()).unwrap_err();
        assert!(bad.message.contains("merge key"), "{}", bad.message);
    }

    #[test]
    fn anchors_aliases_and_duplicates() {
        let n = parse("a: &x {k: 1}\nb: *x\n").unwrap();
        assert_eq!(
            n.get("b").unwrap().get("k").unwrap().kind,
            NodeKind::Number(1.0)
        );
        let e = parse("a: 1\na: 2\n").unwrap_err();
        assert_eq!(e.pos.line, 2);
        assert!(parse("a: [1, 2\n").is_err());
        let bomb = "a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n";
        assert!(parse(bomb).is_err());
    }
}
