//! Where environment files are read from: the working tree (what a person
//! is editing) or a revision of the repository (what is committed — the
//! desired state the reconciler follows). The I/O edge: it reads files or
//! runs `git`.

use crate::config::{Loaded, Source, load};
use crate::gitops::{Author, git, git_raw};
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

    /// A file's text, `None` when it does not exist.
    pub fn read(&self, rel: &Path) -> Result<Option<String>, String> {
        match self {
            Tree::Work(d) => {
                let path = d.join(rel);
                match std::fs::read_to_string(&path) {
                    Ok(t) => Ok(Some(t)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(format!("{}: {e}", path.display())),
                }
            }
            Tree::Rev { dir, rev } => {
                let spec = format!("{rev}:./{}", rel.to_string_lossy());
                match git(dir, &["cat-file", "-e", &spec], &Author::default()) {
                    Ok(_) => git_raw(dir, &["cat-file", "blob", &spec]).map(Some),
                    Err(_) => Ok(None),
                }
            }
        }
    }
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

/// Loads one environment by name; diagnostics name files relative to the
/// tree's directory.
pub fn load_environment(tree: &Tree, env_dir: &Path, name: &str) -> Result<Loaded, String> {
    let all = environments(tree, env_dir)?;
    let Some((_, file)) = all.iter().find(|(n, _)| n == name) else {
        let known: Vec<&str> = all.iter().map(|(n, _)| n.as_str()).collect();
        return Err(format!(
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
        ));
    };
    let text = tree
        .read(file)?
        .ok_or_else(|| format!("{} disappeared", file.display()))?;
    let own = Source {
        path: file.to_string_lossy().to_string(),
        text,
    };
    let base_rel = env_dir.join(crate::repo::BASE_FILE);
    let base = tree.read(&base_rel)?.map(|text| Source {
        path: base_rel.to_string_lossy().to_string(),
        text,
    });
    Ok(load(name, &own, base.as_ref()))
}
