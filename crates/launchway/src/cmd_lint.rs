//! `launchway lint`: diagnostics for workflow files.

use crate::diagnostics;
use clap::{Args, ValueEnum};
use launchway_workflow::Severity;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct LintArgs {
    /// Workflow files or directories (default: .github/workflows).
    paths: Vec<PathBuf>,
    /// How to print diagnostics: text (with source and carets), json (for
    /// editors and scripts), sarif (for code scanning).
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// The same as --format json.
    #[arg(long, conflicts_with = "format")]
    json: bool,
    /// Treat warnings as errors.
    #[arg(long)]
    deny_warnings: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Json,
    Sarif,
}

/// Diagnostics as a SARIF 2.1.0 log: one result per diagnostic, its code
/// as the rule, its span as the region.
fn sarif(found: &[(String, launchway_workflow::Diagnostic)]) -> serde_json::Value {
    let mut rules: Vec<&str> = found.iter().map(|(_, d)| d.code).collect();
    rules.sort_unstable();
    rules.dedup();
    let results: Vec<serde_json::Value> = found
        .iter()
        .map(|(path, d)| {
            let text = match &d.hint {
                Some(h) => format!("{} (hint: {h})", d.message),
                None => d.message.clone(),
            };
            serde_json::json!({
                "ruleId": d.code,
                "ruleIndex": rules.iter().position(|r| *r == d.code).unwrap_or(0),
                "level": match d.severity { Severity::Error => "error", Severity::Warning => "warning" },
                "message": {"text": text},
                "locations": [{"physicalLocation": {
                    "artifactLocation": {"uri": path},
                    "region": {
                        "startLine": d.span.start.line.max(1),
                        "startColumn": d.span.start.col.max(1),
                        "endLine": d.span.end.line.max(d.span.start.line).max(1),
                        "endColumn": d.span.end.col.max(1),
                    },
                }}],
            })
        })
        .collect();
    serde_json::json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "launchway",
                "informationUri": "https://github.com/launchway/launchway",
                "version": env!("CARGO_PKG_VERSION"),
                // SARIF wants a rule's name to differ from its id.
                "rules": rules.iter().map(|r| serde_json::json!({"id": r, "name": format!("Workflow{}", pascal(r))})).collect::<Vec<_>>(),
            }},
            "results": results,
        }],
    })
}

/// `duplicate-id` → `DuplicateId`.
fn pascal(code: &str) -> String {
    code.split(['-', '_'])
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// Workflow files under a path: a file as is; a directory's
/// `.github/workflows` if it has one, else its YAML files, recursively.
pub fn workflow_files(path: &Path) -> Vec<PathBuf> {
    if path.is_file() {
        return vec![path.to_path_buf()];
    }
    let dir = if path.join(".github/workflows").is_dir() {
        path.join(".github/workflows")
    } else {
        path.to_path_buf()
    };
    let mut out = Vec::new();
    let mut stack = vec![dir];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "yml" || x == "yaml") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

pub fn main(args: &LintArgs) -> u8 {
    let roots = if args.paths.is_empty() {
        vec![PathBuf::from(".github/workflows")]
    } else {
        args.paths.clone()
    };
    let mut files = Vec::new();
    for r in &roots {
        if !r.exists() {
            eprintln!("error: {} does not exist", r.display());
            return 2;
        }
        files.extend(workflow_files(r));
    }
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let format = if args.json { Format::Json } else { args.format };
    let (mut errors, mut warnings) = (0usize, 0usize);
    let mut json = Vec::new();
    let mut found = Vec::new();
    for f in &files {
        let path = f.to_string_lossy().to_string();
        let src = match std::fs::read(f) {
            Ok(b) => String::from_utf8_lossy(&b).to_string(),
            Err(e) => {
                eprintln!("error: {path}: {e}");
                errors += 1;
                continue;
            }
        };
        let loaded = launchway_workflow::load(&path, &src);
        for d in &loaded.diagnostics {
            match d.severity {
                Severity::Error => errors += 1,
                Severity::Warning => warnings += 1,
            }
            match format {
                Format::Json => json.push(diagnostics::to_json(&path, d)),
                Format::Sarif => found.push((path.clone(), d.clone())),
                Format::Text => {
                    eprint!("{}", diagnostics::render(&path, &src, d, color));
                    eprintln!();
                }
            }
        }
    }
    if format == Format::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json).unwrap_or_default()
        );
    } else if format == Format::Sarif {
        println!(
            "{}",
            serde_json::to_string_pretty(&sarif(&found)).unwrap_or_default()
        );
    } else {
        eprintln!(
            "{} file{} checked: {errors} error{}, {warnings} warning{}",
            files.len(),
            if files.len() == 1 { "" } else { "s" },
            if errors == 1 { "" } else { "s" },
            if warnings == 1 { "" } else { "s" }
        );
    }
    u8::from(errors > 0 || (args.deny_warnings && warnings > 0))
}
