//! What the secrets engine reads: files of a tree (honouring `.gitignore`,
//! skipping binary and huge files, never following symlinks) and the lines
//! each commit of a git repository added.

use super::engine::{Commit, Engine, Finding};
use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;

#[derive(Debug, Clone)]
pub struct DirOptions {
    /// Files larger than this are skipped (bytes).
    pub max_file: u64,
    pub threads: usize,
}

impl Default for DirOptions {
    fn default() -> Self {
        DirOptions {
            max_file: 25 * 1024 * 1024,
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
        }
    }
}

#[derive(Debug, Default)]
pub struct DirScan {
    pub findings: Vec<Finding>,
    pub files: usize,
    pub bytes: u64,
    pub skipped: Vec<String>,
}

fn looks_binary(data: &[u8]) -> bool {
    data[..data.len().min(8000)].contains(&0)
}

/// Scans every text file under `root` (or `root` itself when it is a file).
pub fn scan_dir(root: &Path, engine: &Engine, opts: &DirOptions) -> DirScan {
    let out = Mutex::new(DirScan::default());
    let walker = ignore::WalkBuilder::new(root)
        .hidden(false)
        .git_ignore(true)
        .git_global(false)
        .require_git(false)
        .follow_links(false)
        .threads(opts.threads.max(1))
        .filter_entry(|e| e.file_name() != ".git")
        .build_parallel();
    walker.run(|| {
        let out = &out;
        Box::new(move |entry| {
            let Ok(entry) = entry else {
                return ignore::WalkState::Continue;
            };
            if !entry.file_type().is_some_and(|t| t.is_file()) {
                return ignore::WalkState::Continue;
            }
            let rel = entry
                .path()
                .strip_prefix(root)
                .ok()
                .filter(|r| !r.as_os_str().is_empty())
                .map_or_else(
                    || entry.path().display().to_string(),
                    |r| r.display().to_string(),
                );
            if engine.skips_path(&rel) {
                return ignore::WalkState::Continue;
            }
            if entry.metadata().is_ok_and(|m| m.len() > opts.max_file) {
                if let Ok(mut o) = out.lock() {
                    o.skipped
                        .push(format!("{rel}: larger than {} MiB", opts.max_file >> 20));
                }
                return ignore::WalkState::Continue;
            }
            let Ok(data) = std::fs::read(entry.path()) else {
                return ignore::WalkState::Continue;
            };
            if looks_binary(&data) {
                return ignore::WalkState::Continue;
            }
            let found = engine.scan(&rel, &data, None, None);
            if let Ok(mut o) = out.lock() {
                o.files += 1;
                o.bytes += data.len() as u64;
                o.findings.extend(found);
            }
            ignore::WalkState::Continue
        })
    });
    let mut result = out.into_inner().unwrap_or_default();
    result.findings.sort_by(|a, b| {
        a.file
            .cmp(&b.file)
            .then(a.line.cmp(&b.line))
            .then(a.column.cmp(&b.column))
            .then(a.rule_id.cmp(&b.rule_id))
    });
    result.skipped.sort();
    result
}

/// A path as git writes it in a diff header: C-quoted (`"…"` with octal
/// and backslash escapes) when it is not plain ASCII.
fn unquote(raw: &[u8]) -> Vec<u8> {
    let Some(inner) = raw.strip_prefix(b"\"").and_then(|r| r.strip_suffix(b"\"")) else {
        return raw.to_vec();
    };
    let mut out = Vec::with_capacity(inner.len());
    let mut i = 0;
    while i < inner.len() {
        if inner[i] != b'\\' || i + 1 >= inner.len() {
            out.push(inner[i]);
            i += 1;
            continue;
        }
        let c = inner[i + 1];
        let octal = inner
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        if let Some(d) = octal {
            out.push(
                d.iter()
                    .fold(0u8, |acc, b| acc.wrapping_mul(8).wrapping_add(b - b'0')),
            );
            i += 4;
            continue;
        }
        out.push(match c {
            b'n' => b'\n',
            b't' => b'\t',
            b'r' => b'\r',
            b'a' => 7,
            b'b' => 8,
            b'f' => 12,
            b'v' => 11,
            other => other,
        });
        i += 2;
    }
    out
}

/// Scans the lines every commit added, on every ref.
pub fn scan_git(repo: &Path, engine: &Engine) -> Result<Vec<Finding>, String> {
    run_patch(
        repo,
        &[
            "log",
            "--all",
            "-p",
            "-U0",
            "--no-color",
            "--no-ext-diff",
            "--no-renames",
            "--format=%x1e%H%x1f%an%x1f%ae%x1f%aI%x1f%s",
        ],
        engine,
    )
}

/// Scans the lines the index adds (what `git commit` would commit): the
/// pre-commit check.
pub fn scan_staged(repo: &Path, engine: &Engine) -> Result<Vec<Finding>, String> {
    run_patch(
        repo,
        &[
            "diff",
            "--cached",
            "-U0",
            "--no-color",
            "--no-ext-diff",
            "--no-renames",
        ],
        engine,
    )
}

/// Runs a git command that prints a patch and scans its added lines
/// (with the commit of each when the patch has `\x1e` commit headers).
fn run_patch(repo: &Path, args: &[&str], engine: &Engine) -> Result<Vec<Finding>, String> {
    let mut child = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run git: {e}"))?;
    let stdout = child.stdout.take().ok_or("git produced no output")?;
    let mut findings = Vec::new();
    let mut commit: Option<Commit> = None;
    let mut file: Option<String> = None;
    let mut added: Vec<u8> = Vec::new();
    let mut numbers: Vec<usize> = Vec::new();
    let mut next_line = 0usize;
    // Lines left in the current hunk (old side, new side): while any are,
    // a line is content, whatever it starts with (an added line `++ x`
    // shows as `+++ x`, which is not a file header).
    let (mut old_left, mut new_left) = (0usize, 0usize);
    let flush = |file: &Option<String>,
                 commit: &Option<Commit>,
                 added: &mut Vec<u8>,
                 numbers: &mut Vec<usize>,
                 findings: &mut Vec<Finding>| {
        if let Some(f) = file
            && !added.is_empty()
        {
            findings.extend(engine.scan(f, added, Some(numbers), commit.as_ref()));
        }
        added.clear();
        numbers.clear();
    };
    let mut reader = std::io::BufReader::new(stdout);
    let mut raw = Vec::new();
    loop {
        raw.clear();
        match reader.read_until(b'\n', &mut raw) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => return Err(format!("reading git log: {e}")),
        }
        let line = raw.strip_suffix(b"\n").unwrap_or(&raw);
        if old_left > 0 || new_left > 0 {
            match line.first() {
                Some(b'+') => {
                    if file.is_some() {
                        added.extend_from_slice(&line[1..]);
                        added.push(b'\n');
                        numbers.push(next_line);
                    }
                    next_line += 1;
                    new_left -= 1.min(new_left);
                    continue;
                }
                Some(b'-') => {
                    old_left -= 1.min(old_left);
                    continue;
                }
                Some(b' ') => {
                    old_left -= 1.min(old_left);
                    new_left -= 1.min(new_left);
                    next_line += 1;
                    continue;
                }
                // `\ No newline at end of file`.
                Some(b'\\') => continue,
                // Counts that lied: read it as a header.
                _ => (old_left, new_left) = (0, 0),
            }
        }
        if let Some(header) = line.strip_prefix(b"\x1e") {
            flush(&file, &commit, &mut added, &mut numbers, &mut findings);
            file = None;
            let h = String::from_utf8_lossy(header);
            let mut parts = h.split('\x1f');
            commit = Some(Commit {
                hash: parts.next().unwrap_or("").to_string(),
                author: parts.next().unwrap_or("").to_string(),
                email: parts.next().unwrap_or("").to_string(),
                date: parts.next().unwrap_or("").to_string(),
                message: parts.next().unwrap_or("").to_string(),
            });
        } else if line.starts_with(b"diff --git ") {
            flush(&file, &commit, &mut added, &mut numbers, &mut findings);
            file = None;
        } else if let Some(p) = line.strip_prefix(b"+++ ") {
            // Quoted when the name has non-ASCII bytes, quotes or
            // control characters: `+++ "b/caf\303\251.env"`.
            // A name with a space gets a trailing tab (for `patch`).
            let p = p.strip_suffix(b"\t").unwrap_or(p);
            let p = String::from_utf8_lossy(&unquote(p)).into_owned();
            file = p.strip_prefix("b/").map(str::to_string);
        } else if line.starts_with(b"@@") {
            // @@ -a[,b] +c[,d] @@ (a count left out is 1)
            let text = String::from_utf8_lossy(line);
            let side = |sign: char| -> (usize, usize) {
                let Some(t) = text.split_whitespace().find_map(|t| t.strip_prefix(sign)) else {
                    return (1, 0);
                };
                let mut it = t.split(',');
                let start = it.next().and_then(|n| n.parse().ok()).unwrap_or(1);
                let count = it.next().map_or(Some(1), |n| n.parse().ok()).unwrap_or(0);
                (start, count)
            };
            (next_line, new_left) = side('+');
            old_left = side('-').1;
        }
    }
    flush(&file, &commit, &mut added, &mut numbers, &mut findings);
    let status = child.wait().map_err(|e| e.to_string())?;
    if !status.success() {
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            use std::io::Read;
            let _ = e.read_to_string(&mut err);
        }
        return Err(format!("git {} failed: {}", args[0], err.trim()));
    }
    Ok(findings)
}

/// Fingerprints from a baseline report (gitleaks' JSON or Launchway's).
pub fn baseline(text: &str) -> Result<Vec<String>, String> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
    let list = v
        .as_array()
        .or_else(|| v.get("secrets").and_then(|s| s.as_array()))
        .ok_or("expected a list of findings")?;
    Ok(list
        .iter()
        .filter_map(|f| {
            f.get("Fingerprint")
                .or_else(|| f.get("fingerprint"))
                .and_then(|x| x.as_str())
                .map(str::to_string)
        })
        .collect())
}
