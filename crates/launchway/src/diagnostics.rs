//! Rendering diagnostics with the source line and a caret, rustc-style.

use launchway_workflow::{Diagnostic, Severity};
use std::fmt::Write;

pub fn render(path: &str, src: &str, d: &Diagnostic, color: bool) -> String {
    let (sev, code) = match d.severity {
        Severity::Error => ("error", "\x1b[1;31m"),
        Severity::Warning => ("warning", "\x1b[1;33m"),
    };
    let (c, bold, blue, reset) = if color {
        (code, "\x1b[1m", "\x1b[1;34m", "\x1b[0m")
    } else {
        ("", "", "", "")
    };
    let line = d.span.start.line.max(1) as usize;
    let col = d.span.start.col.max(1) as usize;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{c}{sev}[{}]{reset}{bold}: {}{reset}",
        d.code, d.message
    );
    let gutter = line.to_string().len();
    let pad = " ".repeat(gutter);
    let _ = writeln!(out, "{pad}{blue}-->{reset} {path}:{line}:{col}");
    if let Some(text) = src.lines().nth(line - 1) {
        let text = text.replace('\t', " ");
        let width = if d.span.end.line == d.span.start.line && d.span.end.col > d.span.start.col {
            (d.span.end.col - d.span.start.col) as usize
        } else {
            text.chars()
                .skip(col - 1)
                .take_while(|c| !c.is_whitespace() && *c != ':')
                .count()
                .max(1)
        };
        let width = width.min(text.chars().count().saturating_sub(col - 1).max(1));
        let _ = writeln!(out, "{pad} {blue}|{reset}");
        let _ = writeln!(out, "{blue}{line}{reset} {blue}|{reset} {text}");
        let _ = writeln!(
            out,
            "{pad} {blue}|{reset} {}{c}{}{reset}",
            " ".repeat(col - 1),
            "^".repeat(width)
        );
    }
    if let Some(h) = &d.hint {
        let _ = writeln!(out, "{pad} {blue}={reset} {bold}hint{reset}: {h}");
    }
    out
}

pub fn to_json(path: &str, d: &Diagnostic) -> serde_json::Value {
    serde_json::json!({
        "file": path,
        "line": d.span.start.line,
        "column": d.span.start.col,
        "severity": match d.severity { Severity::Error => "error", Severity::Warning => "warning" },
        "code": d.code,
        "message": d.message,
        "hint": d.hint,
    })
}
