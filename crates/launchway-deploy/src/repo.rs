//! Reading a repository's environment configs from a directory on disk:
//! `<dir>/<name>.yaml` per environment, `_base.yaml` shared by all. (A
//! revision's files are read through [`crate::tree`].)

use crate::config::Loaded;
use crate::tree::{self, Tree};
use std::path::{Path, PathBuf};

pub use crate::config::{BASE_FILE, DEFAULT_DIR};

/// The environments in `dir`: names (file stems) and files, sorted.
/// Files starting with `_` are shared, not environments.
pub fn environments(dir: &Path) -> Result<Vec<(String, PathBuf)>, String> {
    Ok(
        tree::environments(&Tree::Work(dir.to_path_buf()), Path::new(""))?
            .into_iter()
            .map(|(n, p)| (n, dir.join(p)))
            .collect(),
    )
}

/// Loads one environment by name from `dir`; paths in diagnostics are
/// shown relative to `shown_from`.
pub fn load_environment(dir: &Path, name: &str, shown_from: &Path) -> Result<Loaded, String> {
    let rel = dir.strip_prefix(shown_from).unwrap_or(dir);
    Ok(tree::load_environment(
        &Tree::Work(shown_from.to_path_buf()),
        rel,
        name,
    )?)
}
