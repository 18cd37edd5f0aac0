//! Where environment files are read from: the working tree (what a person
//! is editing) or a revision of the repository (what is committed — the
//! desired state the reconciler follows). The I/O edge: it reads files or
//! runs `git`.

use crate::config::{Loaded, Source, load};
use crate::gitops::{Author, git};
use std::path::{Path, PathBuf};

/// A directory of a repository, as files on disk or as of a revision.
#[derive(Debug, Clone)]
pub enum Tree {
    /// The files on disk under this directory.
    Work(PathBuf),
    /// The files at `rev` (a branch, tag or commit) under `dir`, which is
    /// a directory inside the repository's work tree.
    Rev { dir: PathBuf, rev: String },
}

impl Tree {
    /// The directory commands run in.
    pub fn dir(&self) -> &Path {
        match self {
            Tree::Work(d) | Tree::Rev { dir: d, .. } => d,
        }
    }

    /// The files directly in `rel` (relative to [`Tree::dir`]): names, sorted.
    pub fn list(&self, rel: &Path) -> Result<Vec<String>, String> {
        match self {
            Tree::Work(d) => {
                let path = d.join(rel);
                let entries =
                    std::fs::read_dir(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                let mut out: Vec<String> = entries
                    .flatten()
                    .filter(|e| e.path().is_file())
                    .map(|e| e.file_name().to_string_lossy().to_string())
                    .collect();
                out.sort();
                Ok(out)
            }
            Tree::Rev { dir, rev } => {
                let spec = format!("{rev}:./{}", rel.to_string_lossy());
                let listing = git(dir, &["ls-tree", "--full-tree", &spec], &Author::default())
                    .map_err(|_| format!("{} does not exist at {rev}", rel.display()))?;
                let mut out: Vec<String> = listing
                    .lines()
                    .filter_map(|l| {
                        let (meta, name) = l.split_once('\t')?;
                        meta.contains(" blob ").then(|| name.to_string())
                    })
                    .collect();
                out.sort();
                Ok(out)
            }
        }
    }

    /// A file's text, `None` when it does not exist; text that is not
    /// UTF-8 is an error that says where.
    pub fn read(&self, rel: &Path) -> Result<Option<String>, String> {
        match self.read_bytes(rel)? {
            None => Ok(None),
            Some(b) => decode(&rel.to_string_lossy(), b)
                .map(Some)
                .map_err(|(_, msg)| msg),
        }
    }

    /// A file's bytes, `None` when it does not exist.
    pub fn read_bytes(&self, rel: &Path) -> Result<Option<Vec<u8>>, String> {
        match self {
            Tree::Work(d) => {
                let path = d.join(rel);
                match std::fs::read(&path) {
                    Ok(t) => Ok(Some(t)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(format!("{}: {e}", path.display())),
                }
            }
            Tree::Rev { dir, rev } => {
                let spec = format!("{rev}:./{}", rel.to_string_lossy());
                if git(dir, &["cat-file", "-e", &spec], &Author::default()).is_err() {
                    return Ok(None);
                }
                let out = std::process::Command::new("git")
                    .arg("-C")
                    .arg(dir)
                    .args(["cat-file", "blob", &spec])
                    .stdin(std::process::Stdio::null())
                    .output()
                    .map_err(|e| format!("git: {e}"))?;
                if !out.status.success() {
                    return Err(format!(
                        "git cat-file blob {spec}: {}",
                        String::from_utf8_lossy(&out.stderr).trim()
                    ));
                }
                Ok(Some(out.stdout))
            }
        }
    }
}

/// UTF-8 text, or where it stops being UTF-8 (the position and a message
/// naming `path:line:column`).
pub fn decode(path: &str, bytes: Vec<u8>) -> Result<String, (launchway_yaml::Pos, String)> {
    String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = valid.iter().filter(|b| **b == b'\n').count() + 1;
        let start = valid.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let col = String::from_utf8_lossy(&valid[start..]).chars().count() + 1;
        let byte = e.as_bytes().get(valid.len()).copied().unwrap_or(0);
        let pos = launchway_yaml::Pos {
            line: u32::try_from(line).unwrap_or(u32::MAX),
            col: u32::try_from(col).unwrap_or(u32::MAX),
        };
        (
            pos,
            format!(
                "{path}:{line}:{col}: not UTF-8 text (byte 0x{byte:02x}); save the file as UTF-8"
            ),
        )
    })
}

/// The environments in `env_dir`: names (file stems) and their files
/// (relative to the tree's directory), sorted. Files starting with `_`
/// are shared, not environments.
pub fn environments(tree: &Tree, env_dir: &Path) -> Result<Vec<(String, PathBuf)>, String> {
    Ok(tree
        .list(env_dir)?
        .into_iter()
        .filter_map(|name| {
            let stem = name
                .strip_suffix(".yaml")
                .or_else(|| name.strip_suffix(".yml"))?
                .to_string();
            (!stem.starts_with('_')).then(|| (stem, env_dir.join(&name)))
        })
        .collect())
}

/// Why an environment could not be read at all (its problems as a
/// config are diagnostics of the [`Loaded`] instead).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{0}")]
    NoSuchEnvironment(String),
    /// Git or the file system failed.
    #[error("{0}")]
    Unreadable(String),
}

impl From<LoadError> for String {
    fn from(e: LoadError) -> String {
        e.to_string()
    }
}

impl From<LoadError> for crate::gitops::ChangeError {
    fn from(e: LoadError) -> Self {
        match e {
            LoadError::NoSuchEnvironment(m) => crate::gitops::ChangeError::NotFound(m),
            LoadError::Unreadable(m) => crate::gitops::ChangeError::Internal(m),
        }
    }
}

/// Loads one environment by name; diagnostics name files relative to the
/// tree's directory.
pub fn load_environment(tree: &Tree, env_dir: &Path, name: &str) -> Result<Loaded, LoadError> {
    let all = environments(tree, env_dir).map_err(LoadError::Unreadable)?;
    let Some((_, file)) = all.iter().find(|(n, _)| n == name) else {
        let known: Vec<&str> = all.iter().map(|(n, _)| n.as_str()).collect();
        return Err(LoadError::NoSuchEnvironment(format!(
            "no environment '{name}' in {}{} (environments: {})",
            env_dir.display(),
            match tree {
                Tree::Rev { rev, .. } => format!(" at {rev}"),
                Tree::Work(_) => String::new(),
            },
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        )));
    };
    let base_rel = env_dir.join(crate::repo::BASE_FILE);
    let mut texts = Vec::new();
    for rel in [file.as_path(), base_rel.as_path()] {
        let path = rel.to_string_lossy().to_string();
        let Some(bytes) = tree.read_bytes(rel).map_err(LoadError::Unreadable)? else {
            if rel == file.as_path() {
                return Err(LoadError::NoSuchEnvironment(format!(
                    "{} disappeared",
                    file.display()
                )));
            }
            continue;
        };
        match decode(&path, bytes) {
            Ok(text) => texts.push(Source { path, text }),
            // Reported at its place, for this environment only.
            Err((pos, msg)) => {
                let message = msg.splitn(4, ':').nth(3).unwrap_or(&msg).trim().to_string();
                return Ok(Loaded {
                    environment: None,
                    diagnostics: vec![crate::config::FileDiagnostic {
                        file: path,
                        diagnostic: launchway_workflow::Diagnostic::error(
                            "encoding",
                            launchway_yaml::Span {
                                start: pos,
                                end: pos,
                            },
                            message,
                        ),
                    }],
                });
            }
        }
    }
    let mut texts = texts.into_iter();
    let Some(own) = texts.next() else {
        return Err(LoadError::NoSuchEnvironment(format!(
            "{} disappeared",
            file.display()
        )));
    };
    Ok(load(name, &own, texts.next().as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_that_is_not_utf8_says_where() {
        let (pos, msg) = decode("a.yaml", b"x: 1\ny: caf\xe9\n".to_vec()).unwrap_err();
        assert_eq!((pos.line, pos.col), (2, 7));
        assert!(msg.starts_with("a.yaml:2:7: not UTF-8"), "{msg}");
        assert_eq!(decode("a.yaml", b"ok".to_vec()).unwrap(), "ok");
    }
}
