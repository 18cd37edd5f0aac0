//! `actions/cache` (and `/restore`, `/save`): directories kept in the data
//! directory between runs, found by exact key or by restore-key prefix.

use super::Inputs;
use crate::context::hex;
use crate::job::{JobExec, PostKind, PostStep, StepRun};
use crate::store::copy_tree;
use indexmap::IndexMap;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

fn entry_dir(root: &Path, key: &str) -> PathBuf {
    root.join(hex(&Sha256::digest(key.as_bytes())))
}

fn expand(exec: &JobExec, p: &str) -> PathBuf {
    if let Some(rest) = p.strip_prefix("~/") {
        return std::env::var_os("HOME")
            .map_or_else(|| PathBuf::from(p), |h| PathBuf::from(h).join(rest));
    }
    let path = Path::new(p);
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        exec.workspace.join(p)
    }
}

/// Finds the entry for a key: exact first, then newest entry whose key
/// starts with a restore key (in the order given).
fn lookup(root: &Path, key: &str, restore_keys: &[String]) -> Option<(String, PathBuf)> {
    let exact = entry_dir(root, key);
    if exact.join("key").is_file() {
        return Some((key.to_string(), exact));
    }
    let mut entries: Vec<(std::time::SystemTime, String, PathBuf)> = std::fs::read_dir(root)
        .ok()?
        .flatten()
        .filter_map(|e| {
            let k = std::fs::read_to_string(e.path().join("key")).ok()?;
            let t = e.metadata().and_then(|m| m.modified()).ok()?;
            Some((t, k, e.path()))
        })
        .collect();
    entries.sort_by_key(|e| std::cmp::Reverse(e.0));
    restore_keys.iter().find_map(|rk| {
        entries
            .iter()
            .find(|(_, k, _)| k.starts_with(rk.as_str()))
            .map(|(_, k, p)| (k.clone(), p.clone()))
    })
}

pub(crate) fn run(exec: &mut JobExec, which: &str, with: &Inputs) -> StepRun {
    let Some(key) = with.get("key").map(str::to_string) else {
        exec.error("cache: 'key' is required");
        return StepRun::failed();
    };
    if key.len() > 512 || key.contains(',') {
        exec.error("cache: the key must be at most 512 characters and contain no commas");
        return StepRun::failed();
    }
    let paths = with.lines("path");
    if paths.is_empty() {
        exec.error("cache: 'path' is required");
        return StepRun::failed();
    }
    if which == "actions/cache/save" {
        return save(exec, &key, &paths);
    }
    let root = exec.shared.cfg.store.cache_dir();
    let restore_keys = with.lines("restore-keys");
    let mut out = IndexMap::new();
    out.insert("cache-primary-key".to_string(), key.clone());
    let hit = lookup(&root, &key, &restore_keys);
    let exact = hit.as_ref().is_some_and(|(k, _)| *k == key);
    match &hit {
        Some((matched, dir)) => {
            if !with.bool("lookup-only", false) {
                for (i, p) in paths.iter().enumerate() {
                    let from = dir.join("files").join(i.to_string());
                    let to = expand(exec, p);
                    let res = if from.is_file() {
                        to.parent()
                            .map_or(Ok(()), std::fs::create_dir_all)
                            .and_then(|()| std::fs::copy(&from, &to).map(|_| 0))
                    } else if from.is_dir() {
                        copy_tree(&from, &to)
                    } else {
                        Ok(0)
                    };
                    if let Err(e) = res {
                        exec.error(&format!("cache restore: {e}"));
                        return StepRun::failed();
                    }
                }
            }
            exec.log(&format!("Cache restored from key: {matched}"));
            out.insert("cache-matched-key".to_string(), matched.clone());
        }
        None => {
            if with.bool("fail-on-cache-miss", false) {
                exec.error(&format!("Failed to restore cache entry. Exiting as fail-on-cache-miss is set. Input key: {key}"));
                return StepRun::failed();
            }
            exec.log(&format!(
                "Cache not found for input keys: {}",
                std::iter::once(key.clone())
                    .chain(restore_keys)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    out.insert("cache-hit".to_string(), exact.to_string());
    if which == "actions/cache" && !exact {
        exec.post.push(PostStep {
            inputs: None,
            name: "Cache".into(),
            kind: PostKind::CacheSave { key, paths },
            condition: "success()".into(),
        });
    }
    StepRun::ok(out)
}

pub(crate) fn save(exec: &mut JobExec, key: &str, paths: &[String]) -> StepRun {
    let root = exec.shared.cfg.store.cache_dir();
    let dir = entry_dir(&root, key);
    if dir.join("key").is_file() {
        exec.log(&format!(
            "Cache entry for key '{key}' already exists; not saving."
        ));
        return StepRun::ok(IndexMap::new());
    }
    // Build in a temp dir, then rename: a crash never leaves half an entry.
    let tmp = root.join(format!(".tmp-{}-{}", std::process::id(), exec.step_no));
    let _ = std::fs::remove_dir_all(&tmp);
    let mut n = 0;
    for (i, p) in paths.iter().enumerate() {
        let from = expand(exec, p);
        if !from.exists() {
            exec.log(&format!(
                "##[warning]Path does not exist: {}",
                from.display()
            ));
            continue;
        }
        let to = tmp.join("files").join(i.to_string());
        let res = if from.is_dir() {
            copy_tree(&from, &to).map(|c| n += c)
        } else {
            std::fs::create_dir_all(tmp.join("files"))
                .and_then(|()| std::fs::copy(&from, &to).map(|_| n += 1))
        };
        if let Err(e) = res {
            exec.error(&format!("cache save: {e}"));
            return StepRun::failed();
        }
    }
    if n == 0 {
        exec.log("##[warning]No files to cache; not saving.");
        let _ = std::fs::remove_dir_all(&tmp);
        return StepRun::ok(IndexMap::new());
    }
    let res = std::fs::write(tmp.join("key"), key).and_then(|()| std::fs::rename(&tmp, &dir));
    if let Err(e) = res {
        let _ = std::fs::remove_dir_all(&tmp);
        exec.log(&format!("##[warning]cache save: {e}"));
        return StepRun::ok(IndexMap::new());
    }
    exec.log(&format!("Cache saved with key: {key} ({n} files)"));
    StepRun::ok(IndexMap::new())
}
