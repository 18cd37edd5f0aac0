//! Reading a repository's environment configs from a directory (the I/O
//! edge): `<dir>/<name>.yaml` per environment, `_base.yaml` shared by all.

use crate::config::{Loaded, Source, load};
use std::path::{Path, PathBuf};

/// Where environment configs live unless told otherwise.
pub const DEFAULT_DIR: &str = "configs/environments";
/// The shared file every environment is laid over.
pub const BASE_FILE: &str = "_base.yaml";

/// The environments in `dir`: names (file stems) and files, sorted.
/// Files starting with `_` are shared, not environments.
pub fn environments(dir: &Path) -> Result<Vec<(String, PathBuf)>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut out: Vec<(String, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            let stem = name
                .strip_suffix(".yaml")
                .or_else(|| name.strip_suffix(".yml"))?
                .to_string();
            (!stem.starts_with('_') && e.path().is_file()).then(|| (stem, e.path()))
        })
        .collect();
    out.sort();
    Ok(out)
}

fn read(path: &Path, shown_as: &str) -> Result<Source, String> {
    Ok(Source {
        path: shown_as.to_string(),
        text: std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?,
    })
}

/// Loads one environment by name from `dir`; paths in diagnostics are
/// shown relative to `shown_from`.
pub fn load_environment(dir: &Path, name: &str, shown_from: &Path) -> Result<Loaded, String> {
    let shown = |p: &Path| {
        p.strip_prefix(shown_from)
            .unwrap_or(p)
            .to_string_lossy()
            .to_string()
    };
    let (_, file) = environments(dir)?
        .into_iter()
        .find(|(n, _)| n == name)
        .ok_or_else(|| {
            let known: Vec<String> = environments(dir)
                .unwrap_or_default()
                .into_iter()
                .map(|(n, _)| n)
                .collect();
            format!(
                "no environment '{name}' in {} (environments: {})",
                dir.display(),
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )
        })?;
    let own = read(&file, &shown(&file))?;
    let base_path = dir.join(BASE_FILE);
    let base = if base_path.is_file() {
        Some(read(&base_path, &shown(&base_path))?)
    } else {
        None
    };
    Ok(load(name, &own, base.as_ref()))
}
