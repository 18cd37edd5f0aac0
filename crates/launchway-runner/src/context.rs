//! The expression host for a point in a run: contexts, status functions and
//! `hashFiles` over the job's workspace.

use launchway_expr::{Host, Value};
use regex::Regex;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Status as the status functions see it at this point.
#[derive(Debug, Clone, Copy, Default)]
pub struct Status {
    pub success: bool,
    pub failure: bool,
    pub cancelled: bool,
}

#[derive(Debug, Clone)]
pub struct Ctx {
    pub contexts: Value,
    pub status: Status,
    pub workspace: Option<PathBuf>,
}

impl Ctx {
    pub fn new(contexts: Value) -> Self {
        Ctx {
            contexts,
            status: Status {
                success: true,
                ..Status::default()
            },
            workspace: None,
        }
    }

    pub fn set(&mut self, name: &str, v: Value) {
        self.contexts.insert(name, v);
    }
}

impl Host for Ctx {
    fn context(&self, name: &str) -> Option<&Value> {
        self.contexts.get(name)
    }
    fn success(&self) -> bool {
        self.status.success && !self.status.cancelled
    }
    fn failure(&self) -> bool {
        self.status.failure
    }
    fn cancelled(&self) -> bool {
        self.status.cancelled
    }
    fn hash_files(&self, patterns: &[String]) -> Result<String, String> {
        let ws = self
            .workspace
            .as_deref()
            .ok_or("hashFiles needs a workspace")?;
        hash_files(ws, patterns)
    }
}

/// `@actions/glob` syntax: `*`, `**`, `?`, `[...]`, leading `!` to exclude.
fn glob_regex(pattern: &str) -> Result<Regex, String> {
    let mut re = String::from("^");
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' if chars.get(i + 1) == Some(&'*') => {
                if chars.get(i + 2) == Some(&'/') {
                    re.push_str("(?:.*/)?");
                    i += 3;
                } else {
                    re.push_str(".*");
                    i += 2;
                }
                continue;
            }
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            '[' => {
                let close = chars[i..].iter().position(|&c| c == ']').map(|p| p + i);
                match close {
                    Some(c) if c > i + 1 => {
                        re.push('[');
                        for ch in &chars[i + 1..c] {
                            if matches!(ch, '\\' | '[' | '&' | '~') {
                                re.push('\\');
                            }
                            re.push(*ch);
                        }
                        re.push(']');
                        i = c + 1;
                        continue;
                    }
                    _ => re.push_str("\\["),
                }
            }
            c => re.push_str(&regex::escape(&c.to_string())),
        }
        i += 1;
    }
    re.push('$');
    Regex::new(&re).map_err(|e| format!("hashFiles: bad pattern '{pattern}': {e}"))
}

/// Matches workspace-relative files against include/exclude glob patterns.
pub fn glob_files(root: &Path, patterns: &[String]) -> Result<Vec<PathBuf>, String> {
    let mut include = Vec::new();
    let mut exclude = Vec::new();
    for p in patterns
        .iter()
        .flat_map(|p| p.lines())
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let (neg, body) = match p.strip_prefix('!') {
            Some(b) => (true, b),
            None => (false, p),
        };
        let body = body.trim_start_matches("./");
        let body = Path::new(body)
            .strip_prefix(root)
            .map(|r| r.to_string_lossy().to_string())
            .unwrap_or_else(|_| body.to_string());
        let re = glob_regex(body.trim_end_matches('/'))?;
        // A directory pattern matches everything below it.
        let below = glob_regex(&format!("{}/**", body.trim_end_matches('/')))?;
        if neg {
            exclude.push((re, below));
        } else {
            include.push((re, below));
        }
    }
    let mut out = Vec::new();
    for entry in walkdir::WalkDir::new(root)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.file_name() != ".git")
        .filter_map(Result::ok)
    {
        if !entry.file_type().is_file() {
            continue;
        }
        let Ok(rel) = entry.path().strip_prefix(root) else {
            continue;
        };
        let rel = rel.to_string_lossy();
        let hit = |set: &[(Regex, Regex)]| {
            set.iter()
                .any(|(a, b)| a.is_match(&rel) || b.is_match(&rel))
        };
        if hit(&include) && !hit(&exclude) {
            out.push(entry.path().to_path_buf());
        }
    }
    Ok(out)
}

/// GitHub's `hashFiles`: SHA-256 over the SHA-256 of each matched file in
/// path order; empty when nothing matches.
pub fn hash_files(root: &Path, patterns: &[String]) -> Result<String, String> {
    let files = glob_files(root, patterns)?;
    if files.is_empty() {
        return Ok(String::new());
    }
    let mut outer = Sha256::new();
    for f in files {
        let bytes = std::fs::read(&f).map_err(|e| format!("hashFiles: {}: {e}", f.display()))?;
        outer.update(Sha256::digest(&bytes));
    }
    Ok(hex(&outer.finalize()))
}

pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_files_matches_and_excludes() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("a/b")).unwrap();
        std::fs::write(d.path().join("a/b/req.txt"), "x").unwrap();
        std::fs::write(d.path().join("req.txt"), "y").unwrap();
        let all = hash_files(d.path(), &["**/req.txt".into()]).unwrap();
        let one = hash_files(d.path(), &["**/req.txt".into(), "!a/**".into()]).unwrap();
        assert_eq!(all.len(), 64);
        assert_ne!(all, one);
        assert_eq!(hash_files(d.path(), &["nothing*".into()]).unwrap(), "");
        let files = glob_files(d.path(), &["a".into()]).unwrap();
        assert_eq!(files.len(), 1, "a directory matches its contents");
    }
}
