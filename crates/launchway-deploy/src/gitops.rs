//! Git as the only way an environment changes: `deploy` and `promote`
//! commit an edit of the environment file, `rollback` commits the file as
//! it was before (or at a revision). Every change is validated before it
//! is committed, and the commit touches only that file. The I/O edge:
//! it runs `git` in the repository.

use crate::config::Source;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Who makes the commit (`git`'s own identity when `None`).
#[derive(Debug, Clone, Default)]
pub struct Author {
    pub name: Option<String>,
    pub email: Option<String>,
}

pub(crate) fn git(root: &Path, args: &[&str], author: &Author) -> Result<String, String> {
    let mut c = Command::new("git");
    c.arg("-C").arg(root).args(args);
    if let Some(n) = &author.name {
        c.env("GIT_AUTHOR_NAME", n).env("GIT_COMMITTER_NAME", n);
    }
    if let Some(e) = &author.email {
        c.env("GIT_AUTHOR_EMAIL", e).env("GIT_COMMITTER_EMAIL", e);
    }
    let out = c.output().map_err(|e| format!("git: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "git {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The environment's file, relative to the repository root.
fn file_of(root: &Path, dir: &Path, env: &str) -> Result<PathBuf, String> {
    let (_, path) = crate::repo::environments(&root.join(dir))?
        .into_iter()
        .find(|(n, _)| n == env)
        .ok_or_else(|| format!("no environment '{env}' in {}", root.join(dir).display()))?;
    Ok(path.strip_prefix(root).unwrap_or(&path).to_path_buf())
}

/// Refuses to commit over someone's uncommitted edits of the file.
fn clean(root: &Path, rel: &Path) -> Result<(), String> {
    let status = git(
        root,
        &["status", "--porcelain", "--", &rel.to_string_lossy()],
        &Author::default(),
    )?;
    if !status.is_empty() {
        return Err(format!(
            "{} has uncommitted changes; commit or discard them first",
            rel.display()
        ));
    }
    Ok(())
}

/// Writes `text` as the environment's file after validating it, and
/// commits only that file. Returns the new commit.
fn commit_file(
    root: &Path,
    dir: &Path,
    env: &str,
    rel: &Path,
    text: &str,
    message: &str,
    author: &Author,
) -> Result<String, String> {
    let base_path = root.join(dir).join(crate::repo::BASE_FILE);
    let base = std::fs::read_to_string(&base_path).ok().map(|t| Source {
        path: crate::repo::BASE_FILE.into(),
        text: t,
    });
    let own = Source {
        path: rel.to_string_lossy().to_string(),
        text: text.to_string(),
    };
    let loaded = crate::config::load(env, &own, base.as_ref());
    if let Some(d) = loaded
        .diagnostics
        .iter()
        .find(|d| d.diagnostic.severity == launchway_workflow::Severity::Error)
    {
        return Err(format!(
            "the change would make {}:{}:{} invalid: {}; nothing was committed",
            d.file, d.diagnostic.span.start.line, d.diagnostic.span.start.col, d.diagnostic.message
        ));
    }
    let abs = root.join(rel);
    let before = std::fs::read_to_string(&abs).unwrap_or_default();
    if before == text {
        return Err(format!("{env} already has this; nothing to commit"));
    }
    std::fs::write(&abs, text).map_err(|e| format!("{}: {e}", abs.display()))?;
    let path = rel.to_string_lossy().to_string();
    let done = git(root, &["add", "--", &path], author)
        .and_then(|_| git(root, &["commit", "-q", "-m", message, "--", &path], author));
    if let Err(e) = done {
        // Leave the tree as it was.
        let _ = std::fs::write(&abs, before);
        let _ = git(root, &["reset", "-q", "--", &path], &Author::default());
        return Err(e);
    }
    git(root, &["rev-parse", "HEAD"], author)
}

/// `deploy ENV --release REV [--set key=value…]`.
pub fn deploy(
    root: &Path,
    dir: &Path,
    env: &str,
    release: Option<&str>,
    sets: &[(String, String)],
    author: &Author,
) -> Result<String, String> {
    let rel = file_of(root, dir, env)?;
    clean(root, &rel)?;
    let mut text = std::fs::read_to_string(root.join(&rel)).map_err(|e| e.to_string())?;
    let mut what = Vec::new();
    if let Some(r) = release {
        // A revision of this repository is pinned to its full commit.
        let pinned = git(
            root,
            &["rev-parse", "--verify", &format!("{r}^{{commit}}")],
            author,
        )
        .unwrap_or_else(|_| r.to_string());
        text = crate::edit::set(&text, &["release"], &pinned)?;
        what.push(format!("release {}", &pinned[..pinned.len().min(12)]));
    }
    for (k, v) in sets {
        let path: Vec<&str> = k.split('.').collect();
        text = crate::edit::set_inferred(&text, &path, v).map_err(|e| format!("--set {k}: {e}"))?;
        what.push(format!("{k}={v}"));
    }
    if what.is_empty() {
        return Err("nothing to deploy: give --release and/or --set key=value".into());
    }
    commit_file(
        root,
        dir,
        env,
        &rel,
        &text,
        &format!("deploy {env}: {}", what.join(", ")),
        author,
    )
}

/// `rollback ENV [--to REV]`: the file as it was before its last change,
/// or as it was at `to`.
pub fn rollback(
    root: &Path,
    dir: &Path,
    env: &str,
    to: Option<&str>,
    author: &Author,
) -> Result<String, String> {
    let rel = file_of(root, dir, env)?;
    clean(root, &rel)?;
    let path = rel.to_string_lossy().to_string();
    let target = match to {
        Some(r) => r.to_string(),
        None => {
            let last = git(
                root,
                &["log", "-n", "1", "--format=%H", "--", &path],
                author,
            )?;
            if last.is_empty() {
                return Err(format!("{path} has no history to roll back"));
            }
            format!("{last}~1")
        }
    };
    let old = git(root, &["show", &format!("{target}:{path}")], author)
        .map_err(|_| format!("{path} did not exist at {target}; nothing to roll back to"))?;
    let short = git(root, &["rev-parse", "--short", &target], author).unwrap_or(target.clone());
    commit_file(
        root,
        dir,
        env,
        &rel,
        &format!("{old}\n"),
        &format!("rollback {env} to {short}"),
        author,
    )
}

/// `promote FROM TO`: what runs in one environment (release, image,
/// model version) goes to the next.
pub fn promote(
    root: &Path,
    dir: &Path,
    from: &str,
    to: &str,
    author: &Author,
) -> Result<String, String> {
    let src = crate::repo::load_environment(&root.join(dir), from, root)?;
    if src.has_errors() {
        return Err(format!(
            "environment '{from}' has errors (launchway env validate)"
        ));
    }
    let src = src
        .environment
        .ok_or_else(|| format!("environment '{from}' did not load"))?;
    let mut sets = Vec::new();
    for key in ["release", "image", "model_version"] {
        if let Some(v) = src.merged.get(key).and_then(|v| match v {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Null => None,
            other => Some(other.to_string()),
        }) {
            sets.push((key.to_string(), v));
        }
    }
    if sets.is_empty() {
        return Err(format!(
            "environment '{from}' pins nothing to promote (no release, image or model_version)"
        ));
    }
    let rel = file_of(root, dir, to)?;
    clean(root, &rel)?;
    let mut text = std::fs::read_to_string(root.join(&rel)).map_err(|e| e.to_string())?;
    for (k, v) in &sets {
        text = if k == "model_version" {
            crate::edit::set_inferred(&text, &[k.as_str()], v)?
        } else {
            crate::edit::set(&text, &[k.as_str()], v)?
        };
    }
    let what: Vec<String> = sets
        .iter()
        .map(|(k, v)| format!("{k} {}", &v[..v.len().min(12)]))
        .collect();
    commit_file(
        root,
        dir,
        to,
        &rel,
        &text,
        &format!("promote {from} to {to}: {}", what.join(", ")),
        author,
    )
}
