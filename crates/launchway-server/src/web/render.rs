//! Pure rendering for the web pages: job logs (ANSI colours, `::group::`
//! folding, workflow-command markers, line anchors), step summaries from
//! Markdown with nothing of the author's HTML or script links kept, and
//! times and durations as people read them. No I/O.

use maud::{Markup, PreEscaped, html};
use pulldown_cmark::{CowStr, Event, LinkType, Options, Parser, Tag};

/// One line of a log as shown: its kind (from the runner's `##[…]`
/// markers) and its text with ANSI styles resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub number: usize,
    pub kind: &'static str,
    pub spans: Vec<Span>,
}

/// A run of text in one style.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    pub classes: String,
    pub text: String,
}

/// A log as a tree: lines, and groups (`##[group]` … `##[endgroup]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Line(Line),
    Group { title: Line, children: Vec<Node> },
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Style {
    bold: bool,
    italic: bool,
    underline: bool,
    fg: Option<u8>,
    bg: Option<u8>,
}

impl Style {
    fn classes(&self) -> String {
        let mut c = Vec::new();
        if self.bold {
            c.push("b".to_string());
        }
        if self.italic {
            c.push("i".to_string());
        }
        if self.underline {
            c.push("u".to_string());
        }
        if let Some(f) = self.fg {
            c.push(format!("f{f}"));
        }
        if let Some(b) = self.bg {
            c.push(format!("g{b}"));
        }
        c.join(" ")
    }

    /// Applies one SGR parameter list (`1;31`).
    fn apply(&mut self, params: &str) {
        let mut codes = params
            .split(';')
            .map(|p| p.parse::<u16>().unwrap_or(0))
            .peekable();
        if params.is_empty() {
            *self = Style::default();
            return;
        }
        while let Some(code) = codes.next() {
            match code {
                0 => *self = Style::default(),
                1 => self.bold = true,
                3 => self.italic = true,
                4 => self.underline = true,
                22 => self.bold = false,
                23 => self.italic = false,
                24 => self.underline = false,
                30..=37 => self.fg = u8::try_from(code - 30).ok(),
                90..=97 => self.fg = u8::try_from(code - 90 + 8).ok(),
                39 => self.fg = None,
                40..=47 => self.bg = u8::try_from(code - 40).ok(),
                100..=107 => self.bg = u8::try_from(code - 100 + 8).ok(),
                49 => self.bg = None,
                // 256-colour and true-colour forms: the low 16 map to the
                // palette, the rest are dropped (their arguments skipped).
                38 | 48 => {
                    let target_fg = code == 38;
                    match codes.next() {
                        Some(5) => {
                            let n = codes.next().unwrap_or(0);
                            let c = u8::try_from(n).ok().filter(|n| *n < 16);
                            if target_fg {
                                self.fg = c;
                            } else {
                                self.bg = c;
                            }
                        }
                        Some(2) => {
                            codes.next();
                            codes.next();
                            codes.next();
                        }
                        _ => {}
                    }
                }
                _ => {}
            }
        }
    }
}

/// Splits a line into styled spans; escape sequences other than colours
/// are dropped.
pub fn ansi_spans(text: &str) -> Vec<Span> {
    let mut out: Vec<Span> = Vec::new();
    let mut style = Style::default();
    let mut cur = String::new();
    let mut chars = text.chars().peekable();
    let flush = |cur: &mut String, style: &Style, out: &mut Vec<Span>| {
        if !cur.is_empty() {
            out.push(Span {
                classes: style.classes(),
                text: std::mem::take(cur),
            });
        }
    };
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            // Other control characters (bar tab) would only garble.
            if !c.is_control() || c == '\t' {
                cur.push(c);
            }
            continue;
        }
        match chars.peek() {
            Some('[') => {
                chars.next();
                let mut params = String::new();
                let mut fin = None;
                for d in chars.by_ref() {
                    if ('\u{40}'..='\u{7e}').contains(&d) {
                        fin = Some(d);
                        break;
                    }
                    params.push(d);
                }
                if fin == Some('m') {
                    flush(&mut cur, &style, &mut out);
                    style.apply(&params);
                }
            }
            // OSC (hyperlinks, titles): up to BEL or ST.
            Some(']') => {
                chars.next();
                while let Some(d) = chars.next() {
                    if d == '\u{7}' {
                        break;
                    }
                    if d == '\u{1b}' && chars.peek() == Some(&'\\') {
                        chars.next();
                        break;
                    }
                }
            }
            _ => {
                chars.next();
            }
        }
    }
    flush(&mut cur, &style, &mut out);
    out
}

/// The runner's marker at the start of a line: (kind, rest).
fn marker(line: &str) -> (&'static str, &str) {
    for (prefix, kind) in [
        ("##[command]", "cmd"),
        ("##[error]", "error"),
        ("##[warning]", "warning"),
        ("##[notice]", "notice"),
        ("##[debug]", "debug"),
        ("##[group]", "group"),
        ("##[endgroup]", "endgroup"),
    ] {
        if let Some(rest) = line.strip_prefix(prefix) {
            return (kind, rest);
        }
    }
    ("", line)
}

/// A job's log as a tree of numbered lines and groups.
pub fn parse_log(text: &str) -> Vec<Node> {
    let mut stack: Vec<(Line, Vec<Node>)> = Vec::new();
    let mut root: Vec<Node> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let (kind, rest) = marker(raw);
        let line = Line {
            number: i + 1,
            kind,
            spans: ansi_spans(rest),
        };
        match kind {
            "group" => stack.push((line, Vec::new())),
            "endgroup" => {
                if let Some((title, children)) = stack.pop() {
                    let node = Node::Group { title, children };
                    match stack.last_mut() {
                        Some((_, parent)) => parent.push(node),
                        None => root.push(node),
                    }
                }
            }
            _ => match stack.last_mut() {
                Some((_, children)) => children.push(Node::Line(line)),
                None => root.push(Node::Line(line)),
            },
        }
    }
    // Groups never closed end with the log.
    while let Some((title, children)) = stack.pop() {
        let node = Node::Group { title, children };
        match stack.last_mut() {
            Some((_, parent)) => parent.push(node),
            None => root.push(node),
        }
    }
    root
}

/// One line; a group's title line (inside its `<summary>`, which is
/// interactive itself) gets no link of its own.
fn line_html(prefix: &str, l: &Line, linked: bool) -> Markup {
    let id = format!("{prefix}-L{}", l.number);
    let class = if l.kind.is_empty() {
        "line".to_string()
    } else {
        format!("line {}", l.kind)
    };
    html! {
        span class=(class) id=(id) {
            @if linked {
                a.ln href={ "#" (id) } aria-hidden="true" tabindex="-1" { (l.number) }
            } @else {
                span.ln aria-hidden="true" { (l.number) }
            }
            span.text {
                @for s in &l.spans {
                    @if s.classes.is_empty() { (s.text) } @else { span class=(s.classes) { (s.text) } }
                }
            }
        }
    }
}

/// The log tree as HTML; line ids are `<prefix>-L<n>`.
pub fn log_html(prefix: &str, nodes: &[Node]) -> Markup {
    html! {
        @for n in nodes {
            @match n {
                Node::Line(l) => (line_html(prefix, l, true)),
                Node::Group { title, children } => {
                    details.group {
                        summary { (line_html(prefix, title, false)) }
                        (log_html(prefix, children))
                    }
                }
            }
        }
    }
}

/// Whether a link in a summary may stay a link: web pages, mail, places
/// in this server — never `javascript:` or `data:`.
fn safe_url(url: &str) -> bool {
    let lower = url.trim().to_ascii_lowercase();
    match lower.split_once(':') {
        Some((scheme, _)) if !scheme.contains('/') && !scheme.contains('?') => {
            matches!(scheme, "http" | "https" | "mailto")
        }
        _ => true,
    }
}

/// A step summary's Markdown as HTML: GitHub's extensions (tables,
/// strikethrough, task lists), the author's raw HTML shown as text, links
/// only to web pages, images as links (nothing loads from elsewhere).
pub fn markdown(md: &str) -> String {
    let mut opts = Options::empty();
    opts.insert(Options::ENABLE_TABLES);
    opts.insert(Options::ENABLE_STRIKETHROUGH);
    opts.insert(Options::ENABLE_TASKLISTS);
    let events = Parser::new_ext(md, opts).map(|e| match e {
        Event::Html(s) | Event::InlineHtml(s) => Event::Text(s),
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }) => Event::Start(Tag::Link {
            link_type,
            dest_url: if safe_url(&dest_url) {
                dest_url
            } else {
                CowStr::Borrowed("#")
            },
            title,
            id,
        }),
        Event::Start(Tag::Image {
            dest_url,
            title,
            id,
            ..
        }) => Event::Start(Tag::Link {
            link_type: LinkType::Inline,
            dest_url: if safe_url(&dest_url) {
                dest_url
            } else {
                CowStr::Borrowed("#")
            },
            title,
            id,
        }),
        Event::End(pulldown_cmark::TagEnd::Image) => Event::End(pulldown_cmark::TagEnd::Link),
        other => other,
    });
    let mut out = String::new();
    pulldown_cmark::html::push_html(&mut out, events);
    out
}

/// Markdown as markup.
pub fn markdown_html(md: &str) -> Markup {
    PreEscaped(markdown(md))
}

/// `ms` since the epoch as `YYYY-MM-DD HH:MM:SS UTC` ("—" for 0).
pub fn time(ms: i64) -> String {
    let Ok(ms) = u64::try_from(ms) else {
        return "—".into();
    };
    if ms == 0 {
        return "—".into();
    }
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
    // The runner's RFC 3339 form, made easier to read.
    launchway_runner::store::rfc3339(t)
        .replace('T', " ")
        .replace('Z', " UTC")
}

/// A duration as people read it: `850ms`, `4.2s`, `3m 05s`, `2h 01m`.
pub fn duration(ms: u64) -> String {
    match ms {
        0..1_000 => format!("{ms}ms"),
        1_000..60_000 => format!("{:.1}s", ms as f64 / 1000.0),
        60_000..3_600_000 => format!("{}m {:02}s", ms / 60_000, ms % 60_000 / 1000),
        _ => format!("{}h {:02}m", ms / 3_600_000, ms % 3_600_000 / 60_000),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_and_escapes() {
        let s = ansi_spans(
            "a\u{1b}[1;31mred\u{1b}[0m b\u{1b}[38;5;2mg\u{1b}[38;2;1;2;3mx\u{1b}]8;;http://e\u{7}l\u{1b}[K",
        );
        let got: Vec<(&str, &str)> = s
            .iter()
            .map(|s| (s.classes.as_str(), s.text.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("", "a"),
                ("b f1", "red"),
                ("", " b"),
                ("f2", "g"),
                ("f2", "xl")
            ]
        );
        // Unterminated and junk sequences never panic.
        for junk in [
            "\u{1b}",
            "\u{1b}[",
            "\u{1b}[999;;m",
            "\u{1b}]",
            "x\u{1b}[38;5m",
        ] {
            let _ = ansi_spans(junk);
        }
    }

    #[test]
    fn groups_nest_and_close() {
        let t = "a\n##[group]Outer\nb\n##[group]Inner\nc\n##[endgroup]\n##[endgroup]\n##[error]bad\n##[group]Open\nd";
        let tree = parse_log(t);
        assert_eq!(tree.len(), 4);
        let Node::Group { title, children } = &tree[1] else {
            panic!("{tree:?}")
        };
        assert_eq!(title.spans[0].text, "Outer");
        assert!(matches!(&children[1], Node::Group { children, .. } if children.len() == 1));
        assert!(matches!(&tree[2], Node::Line(l) if l.kind == "error" && l.number == 8));
        assert!(matches!(&tree[3], Node::Group { children, .. } if children.len() == 1));
        let html = log_html("job", &tree).into_string();
        assert!(html.contains("id=\"job-L8\""));
        assert!(html.contains("<details class=\"group\">"));
    }

    #[test]
    fn log_text_is_escaped() {
        let html = log_html("j", &parse_log("<script>alert(1)</script>")).into_string();
        assert!(!html.contains("<script>"));
        assert!(html.contains("&lt;script&gt;"));
    }

    #[test]
    fn summaries_keep_no_html_or_script_links() {
        let out = markdown(
            "# Hi\n\n<img src=x onerror=alert(1)>\n\n[x](javascript:alert(1)) [y](https://e.com) ![i](data:image/png;base64,AA) <b onclick=x>b</b>\n\n| a |\n|---|\n| 1 |\n",
        );
        assert!(!out.contains("<img"), "{out}");
        assert!(out.contains("&lt;img"), "{out}");
        assert!(
            !out.to_ascii_lowercase().contains("href=\"javascript:"),
            "{out}"
        );
        assert!(!out.contains("href=\"data:"), "{out}");
        assert!(!out.contains("<b onclick"), "{out}");
        assert!(out.contains("href=\"https://e.com\""));
        assert!(out.contains("<table>"));
    }

    #[test]
    fn times_and_durations() {
        assert_eq!(time(0), "—");
        assert_eq!(time(1_764_547_200_000), "2025-12-01 00:00:00 UTC");
        assert_eq!(time(951_782_400_000), "2000-02-29 00:00:00 UTC");
        assert_eq!(duration(850), "850ms");
        assert_eq!(duration(4_200), "4.2s");
        assert_eq!(duration(185_000), "3m 05s");
        assert_eq!(duration(7_260_000), "2h 01m");
    }
}
