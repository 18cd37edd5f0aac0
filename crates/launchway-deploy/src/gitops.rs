//! Git as the only way an environment changes: `deploy` and `promote`
//! commit an edit of the environment file, `rollback` commits the file as
//! it was before (or at a revision). Every change is validated before it
//! is committed, and the commit touches only that file. The I/O edge:
//! it runs `git` in the repository.
//!
//! Changes go to the checked-out branch (the file is edited in place) or,
//! when another branch tracks the environments (say `environments`, so
//! deploy commits never land on `main` nor retrigger its pipeline), are
//! committed to that branch directly — the work tree is not touched, and
//! the branch moves only if nobody moved it meanwhile.

use crate::tree::Tree;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Who makes the commit (`git`'s own identity when `None`).
#[derive(Debug, Clone, Default)]
pub struct Author {
    pub name: Option<String>,
    pub email: Option<String>,
}

impl Author {
    /// `Name <email>`; `None` when it is not written so.
    pub fn parse(s: &str) -> Option<Author> {
        let (name, email) = s.split_once('<')?;
        Some(Author {
            name: Some(name.trim().to_string()).filter(|n| !n.is_empty()),
            email: Some(email.strip_suffix('>')?.trim().to_string()),
        })
    }
}

/// `git` output, trimmed.
pub(crate) fn git(root: &Path, args: &[&str], author: &Author) -> Result<String, String> {
    git_env(root, args, author, &[]).map(|o| o.trim().to_string())
}

/// `git` output exactly as printed (file contents keep their last newline).
pub(crate) fn git_raw(root: &Path, args: &[&str]) -> Result<String, String> {
    git_env(root, args, &Author::default(), &[])
}

fn git_env(
    root: &Path,
    args: &[&str],
    author: &Author,
    env: &[(&str, &Path)],
) -> Result<String, String> {
    let mut c = Command::new("git");
    c.arg("-C")
        .arg(root)
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(std::process::Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
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
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Why a change (deploy, rollback, promote, plan) was not committed,
/// by what the caller can do about it; the server maps each kind to one
/// HTTP status in one place.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// No such environment (404).
    #[error("{0}")]
    NotFound(String),
    /// The request or what it would make is invalid: a key, a release, a
    /// model version, a file that would not validate (422).
    #[error("{0}")]
    Invalid(String),
    /// The change would alter what this caller may not (403).
    #[error("refused: {0}")]
    Refused(String),
    /// Someone else's change got there first: uncommitted edits, the
    /// branch moved, the remote refused (409: try again).
    #[error("{0}")]
    Conflict(String),
    /// Git or the file system failed (500).
    #[error("{0}")]
    Internal(String),
}

impl From<String> for ChangeError {
    fn from(e: String) -> Self {
        ChangeError::Internal(e)
    }
}

/// Where environment changes are committed.
#[derive(Debug, Clone)]
pub struct Place {
    /// The repository (or a folder of it that is run as its own).
    pub root: PathBuf,
    /// The environment files' directory, relative to `root`.
    pub dir: PathBuf,
    /// The branch that tracks the environments (default: the checked-out one).
    pub branch: Option<String>,
    /// Where to start `branch` when it does not exist yet (default: HEAD).
    pub create_from: Option<String>,
    /// The built-in model registry, for pinning `model_stage` to a version.
    pub registry: Option<PathBuf>,
    /// Push each commit to this remote (for a clone kept without a work
    /// tree, such as the server's of a repository registered by URL); a
    /// refused push undoes the commit.
    pub remote: Option<String>,
    /// Top-level keys a change through this place may not alter, whatever
    /// the operation (deploy, rollback, promote): checked on the file the
    /// change would commit. The server's API freezes what runs and who
    /// approves ([`FROZEN_FOR_API`]); those change by a reviewed commit.
    pub frozen: Vec<String>,
    /// Plan only: a change checks everything, commits nothing, and leaves
    /// the environment's merged settings before and after here.
    pub preview: Option<Preview>,
    /// The reconciler's data directory, whose history tells which
    /// versions of a file served successfully (what a rollback goes to).
    pub history: Option<PathBuf>,
}

/// Where a planned change leaves what it would do.
pub type Preview = std::sync::Arc<std::sync::Mutex<Option<(serde_json::Value, serde_json::Value)>>>;

/// What a change would do to an environment, key by key (nothing is
/// committed): `kind` is deploy, rollback or promote, with the same
/// parameters the change itself takes.
pub fn plan(
    place: &Place,
    env: &str,
    change: &Change<'_>,
    author: &Author,
) -> Result<Vec<crate::diff::Difference>, ChangeError> {
    let preview: Preview = Default::default();
    let mut p = place.clone();
    p.preview = Some(preview.clone());
    match change {
        Change::Deploy { release, sets } => deploy(&p, env, *release, sets, author),
        Change::Rollback { to } => rollback(&p, env, *to, author),
        Change::Promote { from } => promote(&p, from, env, author),
    }?;
    let seen = preview
        .lock()
        .map_err(|_| ChangeError::Internal("preview lock poisoned".into()))?
        .take();
    Ok(seen.map_or_else(Vec::new, |(before, after)| {
        crate::diff::diff(&before, &after)
    }))
}

/// A change to plan.
#[derive(Debug, Clone)]
pub enum Change<'a> {
    Deploy {
        release: Option<&'a str>,
        sets: Vec<(String, String)>,
    },
    Rollback {
        to: Option<&'a str>,
    },
    Promote {
        from: &'a str,
    },
}

/// What a change through the server's API may never alter.
pub const FROZEN_FOR_API: &[&str] = &[
    "run",
    "protection",
    "target",
    "self_heal",
    "namespace",
    "image",
    "environment",
];

impl Place {
    pub fn new(root: &Path, dir: &Path) -> Place {
        Place {
            root: root.to_path_buf(),
            dir: dir.to_path_buf(),
            branch: None,
            create_from: None,
            registry: None,
            remote: None,
            frozen: Vec::new(),
            preview: None,
            history: None,
        }
    }

    /// The tree changes are read from and written to: the work tree for
    /// the checked-out branch, the branch's head otherwise (created first
    /// when missing).
    fn tree(&self) -> Result<Tree, String> {
        let current = git(
            &self.root,
            &["symbolic-ref", "-q", "--short", "HEAD"],
            &Author::default(),
        )
        .unwrap_or_default();
        let branch = match (&self.branch, &self.remote) {
            (Some(b), _) => b.clone(),
            // A clone without a work tree: HEAD's branch, committed directly.
            (None, Some(_)) if !current.is_empty() => current.clone(),
            (None, Some(_)) => return Err("the clone's HEAD is not on a branch".into()),
            (None, None) => return Ok(Tree::Work(self.root.clone())),
        };
        let branch = &branch;
        if &current == branch && self.remote.is_none() {
            return Ok(Tree::Work(self.root.clone()));
        }
        let full = format!("refs/heads/{branch}");
        if git(
            &self.root,
            &["rev-parse", "-q", "--verify", &full],
            &Author::default(),
        )
        .is_err()
        {
            let from = self.create_from.as_deref().unwrap_or("HEAD");
            let start = git(
                &self.root,
                &["rev-parse", "--verify", &format!("{from}^{{commit}}")],
                &Author::default(),
            )
            .map_err(|_| format!("cannot start branch '{branch}' at '{from}': no such commit"))?;
            // Created only if still absent (another deploy may race us).
            let _ = git(
                &self.root,
                &["update-ref", &full, &start, &"0".repeat(40)],
                &Author::default(),
            );
        }
        Ok(Tree::Rev {
            dir: self.root.clone(),
            rev: full,
        })
    }
}

/// The environment's file, relative to the place's root.
fn file_of(tree: &Tree, dir: &Path, env: &str) -> Result<PathBuf, String> {
    crate::tree::environments(tree, dir)?
        .into_iter()
        .find(|(n, _)| n == env)
        .map(|(_, p)| p)
        .ok_or_else(|| match tree {
            Tree::Rev { rev, .. } => {
                format!("no environment '{env}' in {} at {rev}", dir.display())
            }
            Tree::Work(root) => format!("no environment '{env}' in {}", root.join(dir).display()),
        })
}

/// Refuses to commit over someone's uncommitted edits of the file.
fn clean(tree: &Tree, rel: &Path) -> Result<(), String> {
    let Tree::Work(root) = tree else {
        return Ok(());
    };
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

fn read(tree: &Tree, rel: &Path) -> Result<String, String> {
    tree.read(rel)?
        .ok_or_else(|| format!("{} does not exist", rel.display()))
}

/// Writes `text` as the environment's file after validating it, and
/// commits only that file. Returns the new commit, `None` when the file
/// already says exactly this.
#[allow(clippy::too_many_arguments)]
fn commit_file(
    tree: &Tree,
    remote: Option<&str>,
    frozen: &[String],
    preview: Option<&Preview>,
    dir: &Path,
    env: &str,
    rel: &Path,
    text: &str,
    message: &str,
    author: &Author,
) -> Result<Option<String>, ChangeError> {
    let base_rel = dir.join(crate::repo::BASE_FILE);
    let base = tree.read(&base_rel)?.map(|t| crate::config::Source {
        path: base_rel.to_string_lossy().to_string(),
        text: t,
    });
    let own = crate::config::Source {
        path: rel.to_string_lossy().to_string(),
        text: text.to_string(),
    };
    let loaded = crate::config::load(env, &own, base.as_ref());
    if let Some(d) = loaded
        .diagnostics
        .iter()
        .find(|d| d.diagnostic.severity == launchway_workflow::Severity::Error)
    {
        return Err(ChangeError::Invalid(format!(
            "the change would make {}:{}:{} invalid: {}; nothing was committed",
            d.file, d.diagnostic.span.start.line, d.diagnostic.span.start.col, d.diagnostic.message
        )));
    }
    let before = tree.read(rel)?.unwrap_or_default();
    if before == text {
        return Ok(None);
    }
    if !frozen.is_empty() || preview.is_some() {
        let old = crate::config::load(
            env,
            &crate::config::Source {
                path: rel.to_string_lossy().to_string(),
                text: before.clone(),
            },
            base.as_ref(),
        );
        let merged = |l: &crate::config::Loaded| {
            l.environment
                .as_ref()
                .map(|e| e.merged.clone())
                .unwrap_or_default()
        };
        let (was, will) = (merged(&old), merged(&loaded));
        if let Some(k) = frozen
            .iter()
            .find(|k| was.get(k.as_str()) != will.get(k.as_str()))
        {
            return Err(ChangeError::Refused(format!(
                "the change would alter '{k}' in {}; what runs and who approves change only by a reviewed commit (keys it keeps: {}); nothing was committed",
                rel.display(),
                frozen.join(", ")
            )));
        }
        if let Some(p) = preview {
            if let Ok(mut slot) = p.lock() {
                *slot = Some((was, will));
            }
            return Ok(None);
        }
    }
    match tree {
        Tree::Work(root) => Ok(Some(commit_in_work_tree(
            root, rel, &before, text, message, author,
        )?)),
        Tree::Rev { dir, rev } => {
            let commit = commit_to_branch(dir, rev, rel, text, message, author)?;
            if let Some(remote) = remote {
                push(dir, rev, &commit, remote)?;
            }
            Ok(Some(commit))
        }
    }
}

fn commit_in_work_tree(
    root: &Path,
    rel: &Path,
    before: &str,
    text: &str,
    message: &str,
    author: &Author,
) -> Result<String, String> {
    let abs = root.join(rel);
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

/// Commits `text` as `rel` on top of `branch` (a full ref) without a work
/// tree: a blob, a tree from a private index, a commit, and a
/// compare-and-swap of the ref.
fn commit_to_branch(
    dir: &Path,
    branch: &str,
    rel: &Path,
    text: &str,
    message: &str,
    author: &Author,
) -> Result<String, ChangeError> {
    let none = Author::default();
    let parent = git(dir, &["rev-parse", "--verify", branch], &none)?;
    let prefix = git(dir, &["rev-parse", "--show-prefix"], &none)?;
    let path = format!("{prefix}{}", rel.to_string_lossy());
    let blob = {
        use std::io::Write;
        let mut child = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["hash-object", "-w", "--stdin"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| format!("git: {e}"))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(text.as_bytes())
                .map_err(|e| format!("git hash-object: {e}"))?;
        }
        let out = child
            .wait_with_output()
            .map_err(|e| format!("git hash-object: {e}"))?;
        if !out.status.success() {
            return Err(ChangeError::Internal("git hash-object failed".into()));
        }
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let scratch = tempdir_in_git(dir)?;
    let index = scratch.join("index");
    let with_index = [("GIT_INDEX_FILE", index.as_path())];
    let result = (|| -> Result<String, ChangeError> {
        git_env(dir, &["read-tree", &parent], &none, &with_index)?;
        git_env(
            dir,
            &[
                "update-index",
                "--add",
                "--cacheinfo",
                &format!("100644,{blob},{path}"),
            ],
            &none,
            &with_index,
        )?;
        let tree = git_env(dir, &["write-tree"], &none, &with_index)?
            .trim()
            .to_string();
        let commit = git(
            dir,
            &["commit-tree", &tree, "-p", &parent, "-m", message],
            author,
        )?;
        git(dir, &["update-ref", branch, &commit, &parent], &none).map_err(|_| {
            ChangeError::Conflict(format!(
                "{branch} moved while committing; nothing was committed (try again)"
            ))
        })?;
        Ok(commit)
    })();
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

/// Pushes `commit` as `branch` to `remote`; when the remote refuses (it
/// moved meanwhile, or rejects the push), the local branch goes back to
/// the commit's parent, so nothing is half-done.
fn push(dir: &Path, branch: &str, commit: &str, remote: &str) -> Result<(), ChangeError> {
    let none = Author::default();
    if let Err(e) = git(
        dir,
        &["push", "-q", remote, &format!("{commit}:{branch}")],
        &none,
    ) {
        let _ = git(
            dir,
            &["update-ref", branch, &format!("{commit}~1"), commit],
            &none,
        );
        return Err(ChangeError::Conflict(format!(
            "{remote} refused the change ({e}); nothing was committed"
        )));
    }
    Ok(())
}

/// A private scratch directory inside the repository's git dir.
fn tempdir_in_git(dir: &Path) -> Result<PathBuf, String> {
    let git_dir = git(
        dir,
        &["rev-parse", "--absolute-git-dir"],
        &Author::default(),
    )?;
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let p = PathBuf::from(git_dir).join(format!("launchway-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&p).map_err(|e| format!("{}: {e}", p.display()))?;
    Ok(p)
}

/// Pins the model an environment names by stage or alias
/// (`model_stage: Production`) to the version it resolves to now, in
/// `text` (the environment's file after the change): the version is what
/// gets reviewed and deployed. An already pinned version is kept unless
/// `repin` (the change names the model or its stage): a `--set replicas`
/// never moves the model silently. The pinned version must exist where it
/// will be served. Returns the new text and what was pinned.
fn pin_model(
    place: &Place,
    tree: &Tree,
    env: &str,
    rel: &Path,
    text: &str,
    repin: bool,
) -> Result<(String, Option<String>), String> {
    let base_rel = place.dir.join(crate::repo::BASE_FILE);
    let base = tree.read(&base_rel)?.map(|t| crate::config::Source {
        path: base_rel.to_string_lossy().to_string(),
        text: t,
    });
    let own = crate::config::Source {
        path: rel.to_string_lossy().to_string(),
        text: text.to_string(),
    };
    let Some(e) = crate::config::load(env, &own, base.as_ref()).environment else {
        return Ok((text.to_string(), None));
    };
    let get = |k: &str| match &e.merged[k] {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    let registry = place.registry.as_deref().map(crate::models::Registry::new);
    let check = |e: &crate::config::Environment| {
        crate::models::check_pinned(registry.as_ref(), e)
            .map_err(|why| format!("{why}; nothing was committed"))
    };
    let (Some(name), Some(stage)) = (get("model_name"), get("model_stage")) else {
        check(&e)?;
        return Ok((text.to_string(), None));
    };
    if get("model_version").is_some() && !repin {
        check(&e)?;
        return Ok((text.to_string(), None));
    }
    let version = crate::models::resolve(
        registry.as_ref(),
        get("mlflow_uri").as_deref(),
        e.target == crate::config::Target::Local,
        &name,
        &stage,
    )
    .map_err(|e| format!("cannot pin {name}@{stage} to a version: {e}; nothing was committed"))?;
    if get("model_version").as_deref() == Some(version.to_string().as_str()) {
        check(&e)?;
        return Ok((text.to_string(), None));
    }
    let text = crate::edit::set_inferred(text, &["model_version"], &version.to_string())?;
    let mut pinned = e.clone();
    pinned
        .config
        .insert("MODEL_VERSION".into(), version.to_string());
    check(&pinned)?;
    Ok((text, Some(format!("model {name}@{stage} = {version}"))))
}

/// Applies `--set key=value` edits to an environment file's text. A key
/// is a dotted path the schema knows, or a service variable (`env.NAME`,
/// or an UPPER_CASE key): a typo or `=5` is refused here, not found at
/// reconcile time. Returns the text and a summary of each edit.
pub fn apply_sets(text: &str, sets: &[(String, String)]) -> Result<(String, Vec<String>), String> {
    let mut text = text.to_string();
    let mut what = Vec::new();
    for (k, v) in sets {
        // A key is a dotted path of plain names: `=5`, `a..b` or `a b` are
        // refused here, not found at reconcile time.
        let plain = |p: &str| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        };
        if !k.split('.').all(plain) {
            return Err(format!(
                "--set {k}={v}: the key must be a dotted path of names (letters, digits, '_' and '-'), such as replicas or resources.limits.cpu"
            ));
        }
        let path: Vec<&str> = k.split('.').collect();
        // A key the schema knows, a service variable (`env.NAME`, or an
        // UPPER_CASE key): a typo is refused, not committed as a no-op.
        let top = path[0];
        let upper = top.bytes().all(|b| !b.is_ascii_lowercase() && b != b'-');
        if !crate::config::KNOWN_KEYS.contains(&top) && !upper {
            let hint =
                launchway_workflow::diag::suggest(top, crate::config::KNOWN_KEYS.iter().copied())
                    .map_or_else(
                        || " (service variables: --set env.NAME=value)".to_string(),
                        |s| format!(" (did you mean '{s}'?)"),
                    );
            return Err(format!("--set {k}={v}: unknown key '{top}'{hint}"));
        }
        if top == "env" && path.len() != 2 {
            return Err(format!(
                "--set {k}={v}: service variables are set as env.NAME=value"
            ));
        }
        text = crate::edit::set_inferred(&text, &path, v).map_err(|e| format!("--set {k}: {e}"))?;
        what.push(format!("{k}={v}"));
    }
    Ok((text, what))
}

/// `deploy ENV --release REV [--set key=value…]`: the new commit, or
/// `None` when the environment already has exactly this.
pub fn deploy(
    place: &Place,
    env: &str,
    release: Option<&str>,
    sets: &[(String, String)],
    author: &Author,
) -> Result<Option<String>, ChangeError> {
    let tree = place.tree()?;
    let rel = file_of(&tree, &place.dir, env).map_err(ChangeError::NotFound)?;
    clean(&tree, &rel).map_err(ChangeError::Conflict)?;
    let mut text = read(&tree, &rel)?;
    let mut what = Vec::new();
    if let Some(r) = release {
        // A revision of this repository is pinned to its full commit.
        let pinned = git(
            &place.root,
            &[
                "rev-parse",
                "--verify",
                "--end-of-options",
                &format!("{r}^{{commit}}"),
            ],
            author,
        )
        .map_err(|_| {
            ChangeError::Invalid(format!(
                "release '{r}' is not a commit of this repository; nothing was committed"
            ))
        })?;
        text = crate::edit::set(&text, &["release"], &pinned)?;
        what.push(format!("release {}", &pinned[..pinned.len().min(12)]));
    }
    let (edited, done) = apply_sets(&text, sets).map_err(ChangeError::Invalid)?;
    text = edited;
    what.extend(done);
    // An image named by the change is pinned to its digest: a tag moves.
    if let Some((_, image)) = sets.iter().find(|(k, _)| k == "image") {
        let pinned = pin_image(&place.root, image).map_err(ChangeError::Invalid)?;
        if pinned != *image {
            text = crate::edit::set(&text, &["image"], &pinned)?;
            what.push(format!(
                "image pinned to {}",
                pinned.rsplit('@').next().unwrap_or("")
            ));
        }
    }
    if what.is_empty() {
        return Err(ChangeError::Invalid(
            "nothing to deploy: give --release and/or --set key=value".into(),
        ));
    }
    // The model is pinned anew only when the change names it; a version
    // given explicitly is checked, never resolved over.
    let repin = sets
        .iter()
        .any(|(k, _)| k == "model_stage" || k == "model_name");
    let explicit = sets.iter().any(|(k, _)| k == "model_version");
    let (pinned, note) = pin_model(place, &tree, env, &rel, &text, repin && !explicit)
        .map_err(ChangeError::Invalid)?;
    text = pinned;
    what.extend(note);
    commit_file(
        &tree,
        place.remote.as_deref(),
        &place.frozen,
        place.preview.as_ref(),
        &place.dir,
        env,
        &rel,
        &text,
        &format!("deploy {env}: {}", what.join(", ")),
        author,
    )
}

/// `REF` with its digest (`name:tag@sha256:…`): from the registry (its
/// mirror from `.launchway/registries.yaml`), else from the local
/// containers storage (an image built on this machine). Neither: an
/// error, and nothing is committed.
pub fn pin_image(root: &Path, image: &str) -> Result<String, String> {
    let r = launchway_oci::Reference::parse(image).map_err(|e| e.to_string())?;
    if r.digest.is_some() {
        return Ok(image.to_string());
    }
    let regs = launchway_oci::mirrors::Registries::load(root).map_err(|e| e.to_string())?;
    let from_registry = launchway_oci::registry::Registry::new(&regs).resolve_digest(&r);
    let digest = match from_registry {
        Ok(d) => d,
        Err(e) => {
            let local = ["podman", "docker"]
                .into_iter()
                .filter(|t| launchway_oci::auth::on_path(t))
                .find_map(|t| {
                    let out = std::process::Command::new(t)
                        .args(["image", "inspect", "--format", "{{.Digest}}", image])
                        .output()
                        .ok()?;
                    let d = String::from_utf8_lossy(&out.stdout).trim().to_string();
                    (out.status.success() && d.starts_with("sha256:")).then_some(d)
                });
            local.ok_or_else(|| {
                format!("image '{image}' could not be pinned to a digest ({e}; not in the local image storage either); nothing was committed")
            })?
        }
    };
    Ok(format!("{image}@{digest}"))
}

/// What the history says of one version of an environment's file (by
/// content): it served, or every deployment of it failed (absent: unknown).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    Served,
    Failed(String),
}

/// The verdict per file content (blob id) from the reconciler's history.
fn verdicts(place: &Place, env: &str, path: &str) -> BTreeMap<String, Verdict> {
    let mut out: BTreeMap<String, Verdict> = BTreeMap::new();
    let Some(data) = &place.history else {
        return out;
    };
    for h in crate::reconcile::history(data, env) {
        let Some(rev) = h.revision.as_deref() else {
            continue;
        };
        let Ok(blob) = git_raw(&place.root, &["rev-parse", &format!("{rev}:./{path}")]) else {
            continue;
        };
        let blob = blob.trim().to_string();
        match h.result.as_str() {
            "succeeded" => {
                out.insert(blob, Verdict::Served);
            }
            "failed" | "aborted" if out.get(&blob) != Some(&Verdict::Served) => {
                out.insert(blob, Verdict::Failed(h.message.clone()));
            }
            _ => {}
        }
    }
    out
}

/// `rollback ENV [--to REV]`: the file as it was when it last served
/// successfully (by the reconciler's history; without any, as it was
/// before its last change), or as it was at `to` — refused when that
/// version's deployment failed. Rolling back twice never flips back to
/// the version that failed.
pub fn rollback(
    place: &Place,
    env: &str,
    to: Option<&str>,
    author: &Author,
) -> Result<Option<String>, ChangeError> {
    rollback_with(place, env, to, author, None)
}

/// The revert a rollout makes when its analysis fails (`on_failure:
/// revert`): a rollback to the last version that served, whose message
/// says why — so git says what runs.
pub fn revert_after_abort(
    place: &Place,
    env: &str,
    why: &str,
    author: &Author,
) -> Result<Option<String>, ChangeError> {
    rollback_with(
        place,
        env,
        None,
        author,
        Some(&format!("rollback {env}: rollout aborted: {why}")),
    )
}

fn rollback_with(
    place: &Place,
    env: &str,
    to: Option<&str>,
    author: &Author,
    message: Option<&str>,
) -> Result<Option<String>, ChangeError> {
    let tree = place.tree()?;
    let rel = file_of(&tree, &place.dir, env).map_err(ChangeError::NotFound)?;
    clean(&tree, &rel).map_err(ChangeError::Conflict)?;
    let path = rel.to_string_lossy().to_string();
    let head = match &tree {
        Tree::Rev { rev, .. } => rev.clone(),
        Tree::Work(_) => "HEAD".to_string(),
    };
    let known = verdicts(place, env, &path);
    let blob_at = |rev: &str| {
        git_raw(&place.root, &["rev-parse", &format!("{rev}:./{path}")])
            .ok()
            .map(|b| b.trim().to_string())
    };
    let target = match to {
        Some(r) => {
            // Only back along this branch: not to another branch's file.
            let earlier = git(
                &place.root,
                &["merge-base", "--is-ancestor", "--end-of-options", r, &head],
                author,
            )
            .is_ok();
            if !earlier {
                return Err(ChangeError::Invalid(format!(
                    "'{r}' is not an earlier revision of {path} on {head}; a rollback goes back along the tracked branch only"
                )));
            }
            if let Some(Verdict::Failed(why)) = blob_at(r).and_then(|b| known.get(&b).cloned()) {
                return Err(ChangeError::Invalid(format!(
                    "{path} as of {r} was deployed and failed ({why}); pick a version that served (launchway env history {env})"
                )));
            }
            r.to_string()
        }
        None => {
            let changes = git(
                &place.root,
                &["log", "--format=%H", &head, "--", &path],
                author,
            )?;
            let changes: Vec<&str> = changes.lines().collect();
            if changes.is_empty() {
                return Err(ChangeError::Invalid(format!(
                    "{path} has no history to roll back"
                )));
            }
            let current = blob_at(&head);
            // The file as it was after each earlier change, newest first.
            let mut skipped = Vec::new();
            let mut chosen = None;
            for c in changes.iter().skip(1) {
                let Some(blob) = blob_at(c) else { continue };
                if Some(&blob) == current.as_ref() {
                    continue;
                }
                match known.get(&blob) {
                    Some(Verdict::Served) => {
                        chosen = Some((*c).to_string());
                        break;
                    }
                    // Without any history (no reconciler ran here): the
                    // version before the last change.
                    None if known.is_empty() => {
                        chosen = Some((*c).to_string());
                        break;
                    }
                    Some(Verdict::Failed(why)) => {
                        skipped.push(format!("{} failed ({why})", &c[..c.len().min(12)]));
                    }
                    _ => skipped.push(format!("{} never deployed here", &c[..c.len().min(12)])),
                }
            }
            chosen.ok_or_else(|| {
                ChangeError::Invalid(format!(
                    "no earlier version of {path} served successfully{}; nothing was committed",
                    if skipped.is_empty() {
                        String::new()
                    } else {
                        format!(" (skipped: {})", skipped.join("; "))
                    }
                ))
            })?
        }
    };
    let old = git_raw(&place.root, &["show", &format!("{target}:./{path}")]).map_err(|_| {
        ChangeError::Invalid(format!(
            "{path} did not exist at {target}; nothing to roll back to"
        ))
    })?;
    let short = git(&place.root, &["rev-parse", "--short", &target], author)
        .unwrap_or_else(|_| target.clone());
    commit_file(
        &tree,
        place.remote.as_deref(),
        &place.frozen,
        place.preview.as_ref(),
        &place.dir,
        env,
        &rel,
        &old,
        &message.map_or_else(|| format!("rollback {env} to {short}"), str::to_string),
        author,
    )
}

/// `promote FROM TO`: what runs in one environment (release, image,
/// model version) goes to the next.
pub fn promote(
    place: &Place,
    from: &str,
    to: &str,
    author: &Author,
) -> Result<Option<String>, ChangeError> {
    let tree = place.tree()?;
    let src = crate::tree::load_environment(&tree, &place.dir, from)?;
    if src.has_errors() {
        return Err(ChangeError::Invalid(format!(
            "environment '{from}' has errors (launchway env validate)"
        )));
    }
    let src = src
        .environment
        .ok_or_else(|| ChangeError::Invalid(format!("environment '{from}' did not load")))?;
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
        return Err(ChangeError::Invalid(format!(
            "environment '{from}' pins nothing to promote (no release, image or model_version)"
        )));
    }
    let rel = file_of(&tree, &place.dir, to).map_err(ChangeError::NotFound)?;
    clean(&tree, &rel).map_err(ChangeError::Conflict)?;
    let mut text = read(&tree, &rel)?;
    // A target that names its own stage (prod: Production) resolves it:
    // the source's version (dev's Staging model) is not copied over it.
    let target_stage = crate::tree::load_environment(&tree, &place.dir, to)
        .ok()
        .and_then(|l| l.environment)
        .is_some_and(|e| !e.merged["model_stage"].is_null());
    if target_stage {
        sets.retain(|(k, _)| k != "model_version");
    }
    for (k, v) in &sets {
        text = if k == "model_version" {
            crate::edit::set_inferred(&text, &[k.as_str()], v)?
        } else {
            crate::edit::set(&text, &[k.as_str()], v)?
        };
    }
    let mut what: Vec<String> = sets
        .iter()
        .map(|(k, v)| format!("{k} {}", &v[..v.len().min(12)]))
        .collect();
    let (pinned, note) =
        pin_model(place, &tree, to, &rel, &text, target_stage).map_err(ChangeError::Invalid)?;
    text = pinned;
    what.extend(note);
    commit_file(
        &tree,
        place.remote.as_deref(),
        &place.frozen,
        place.preview.as_ref(),
        &place.dir,
        to,
        &rel,
        &text,
        &format!("promote {from} to {to}: {}", what.join(", ")),
        author,
    )
}

#[cfg(test)]
mod tests_support {
    pub use super::tests::{repo, sh};
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn sh(dir: &Path, args: &[&str]) -> String {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@x")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@x")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// A repository whose dev.yaml's command changed by a reviewed commit;
    /// a branch `evil` whose dev.yaml runs something else. Returns the
    /// commit before the change.
    pub fn repo(dir: &Path) -> String {
        let env = dir.join("configs/environments");
        std::fs::create_dir_all(&env).unwrap();
        std::fs::write(
            env.join("dev.yaml"),
            "replicas: 1\nrun:\n  command: ./serve\n",
        )
        .unwrap();
        sh(dir, &["init", "-q", "-b", "main"]);
        sh(dir, &["add", "-A"]);
        sh(dir, &["commit", "-qm", "first"]);
        let first = sh(dir, &["rev-parse", "HEAD"]);
        std::fs::write(
            env.join("dev.yaml"),
            "replicas: 1\nrun:\n  command: ./serve --fast\n",
        )
        .unwrap();
        sh(dir, &["commit", "-qam", "reviewed: faster"]);
        sh(dir, &["checkout", "-q", "-b", "evil"]);
        std::fs::write(
            env.join("dev.yaml"),
            "replicas: 2\nrun:\n  command: ./serve --fast\n",
        )
        .unwrap();
        sh(dir, &["commit", "-qam", "mine"]);
        sh(dir, &["checkout", "-q", "main"]);
        first
    }

    fn place(dir: &Path, frozen: bool) -> Place {
        let mut p = Place::new(dir, Path::new(crate::repo::DEFAULT_DIR));
        if frozen {
            p.frozen = FROZEN_FOR_API.iter().map(|k| (*k).to_string()).collect();
        }
        p
    }

    #[test]
    fn a_change_through_the_api_cannot_alter_what_runs_whatever_the_operation() {
        let tmp = tempfile::tempdir().unwrap();
        let first = repo(tmp.path());
        let who = Author::default();
        let api = place(tmp.path(), true);
        // Back to a revision with another command: refused, nothing committed.
        let head = sh(tmp.path(), &["rev-parse", "HEAD"]);
        let e = rollback(&api, "dev", Some(&first), &who).unwrap_err();
        assert!(
            matches!(&e, ChangeError::Refused(m) if m.contains("'run'")),
            "{e}"
        );
        assert_eq!(sh(tmp.path(), &["rev-parse", "HEAD"]), head);
        // Not along the branch: another branch's file is never copied.
        let e = rollback(&api, "dev", Some("evil"), &who).unwrap_err();
        assert!(
            matches!(&e, ChangeError::Invalid(m) if m.contains("not an earlier revision")),
            "{e}"
        );
        let e = rollback(&api, "dev", Some("--output=/tmp/x"), &who).unwrap_err();
        assert!(e.to_string().contains("not an earlier revision"), "{e}");
        // A release must be a commit of the repository.
        let e = deploy(&api, "dev", Some("anything-at-all"), &[], &who).unwrap_err();
        assert!(
            matches!(&e, ChangeError::Invalid(m) if m.contains("is not a commit of this repository")),
            "{e}"
        );
        // No such environment, and a typo'd key: told apart.
        let e = deploy(&api, "nope", Some(&first), &[], &who).unwrap_err();
        assert!(matches!(e, ChangeError::NotFound(_)), "{e}");
        let e = deploy(&api, "dev", None, &[("replcas".into(), "2".into())], &who).unwrap_err();
        assert!(matches!(e, ChangeError::Invalid(_)), "{e}");
        assert!(
            deploy(&api, "dev", Some(&first), &[], &who)
                .unwrap()
                .is_some()
        );
        // Where nothing is frozen (a reviewed local change), the rollback goes.
        let local = place(tmp.path(), false);
        assert!(
            rollback(&local, "dev", Some(&first), &who)
                .unwrap()
                .is_some()
        );
    }
}

#[cfg(test)]
mod plan_tests {
    use super::*;

    #[test]
    fn a_plan_shows_what_would_change_and_commits_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let first = tests_support::repo(tmp.path());
        let head = tests_support::sh(tmp.path(), &["rev-parse", "HEAD"]);
        let mut place = Place::new(tmp.path(), Path::new(crate::repo::DEFAULT_DIR));
        place.frozen = FROZEN_FOR_API.iter().map(|k| (*k).to_string()).collect();
        let diff = plan(
            &place,
            "dev",
            &Change::Deploy {
                release: Some(&first),
                sets: vec![("replicas".into(), "3".into())],
            },
            &Author::default(),
        )
        .unwrap();
        let paths: Vec<&str> = diff.iter().map(|d| d.path.as_str()).collect();
        assert_eq!(paths, ["release", "replicas"], "{diff:?}");
        assert_eq!(diff[0].right.as_deref(), Some(first.as_str()));
        assert_eq!(
            tests_support::sh(tmp.path(), &["rev-parse", "HEAD"]),
            head,
            "nothing committed"
        );
        // A plan that would alter what runs is refused like the change.
        let e = plan(
            &place,
            "dev",
            &Change::Rollback { to: Some(&first) },
            &Author::default(),
        )
        .unwrap_err();
        assert!(matches!(e, ChangeError::Refused(_)), "{e}");
    }
}
