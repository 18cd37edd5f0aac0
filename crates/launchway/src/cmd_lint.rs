//! `launchway lint`: diagnostics for workflow files.

use crate::diagnostics;
use clap::Args;
use launchway_workflow::Severity;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct LintArgs {
    /// Workflow files or directories (default: .github/workflows).
    paths: Vec<PathBuf>,
    /// Print diagnostics as JSON.
    #[arg(long)]
    json: bool,
    /// Treat warnings as errors.
    #[arg(long)]
    deny_warnings: bool,
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
    let (mut errors, mut warnings) = (0usize, 0usize);
    let mut json = Vec::new();
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
            if args.json {
                json.push(diagnostics::to_json(&path, d));
            } else {
                eprint!("{}", diagnostics::render(&path, &src, d, color));
                eprintln!();
            }
        }
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json).unwrap_or_default()
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
