//! `actions/upload-artifact` and `actions/download-artifact`, stored in the
//! run directory.

use super::Inputs;
use crate::context::{glob_files, hex};
use crate::job::{JobExec, StepRun};
use crate::store::copy_tree;
use indexmap::IndexMap;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name.contains(['/', '\\', ':', '"', '<', '>', '|', '*', '?', '\r', '\n'])
        && name != "."
        && name != ".."
}

/// The least common ancestor directory of the matched files.
fn common_root(files: &[PathBuf]) -> Option<PathBuf> {
    let mut root: PathBuf = files.first()?.parent()?.to_path_buf();
    for f in files {
        while !f.starts_with(&root) {
            root = root.parent()?.to_path_buf();
        }
    }
    Some(root)
}

pub(crate) fn upload(exec: &mut JobExec, with: &Inputs) -> StepRun {
    let name = with.get_or("name", "artifact").to_string();
    if !valid_name(&name) {
        exec.error(&format!("artifact name '{name}' contains a character that is not allowed (\" : < > | * ? \\r \\n \\ /)"));
        return StepRun::failed();
    }
    let patterns = with.lines("path");
    if patterns.is_empty() {
        exec.error("upload-artifact: 'path' is required");
        return StepRun::failed();
    }
    let include_hidden = with.bool("include-hidden-files", false);
    let mut files = match glob_files(&exec.workspace, &patterns) {
        Ok(f) => f,
        Err(e) => {
            exec.error(&e);
            return StepRun::failed();
        }
    };
    if !include_hidden {
        files.retain(|f| {
            f.strip_prefix(&exec.workspace)
                .map(|r| {
                    !r.components()
                        .any(|c| c.as_os_str().to_string_lossy().starts_with('.'))
                })
                .unwrap_or(true)
        });
    }
    if files.is_empty() {
        let msg = format!(
            "No files were found with the provided path: {}. No artifacts will be uploaded.",
            patterns.join(", ")
        );
        match with.get_or("if-no-files-found", "warn") {
            "error" => {
                exec.error(&msg);
                return StepRun::failed();
            }
            "ignore" => exec.log(&msg),
            _ => exec.log(&format!("##[warning]{msg}")),
        }
        return StepRun::ok(IndexMap::new());
    }
    let dest = exec.shared.run_dir.join("artifacts").join(&name);
    if dest.exists() {
        if with.bool("overwrite", false) {
            let _ = std::fs::remove_dir_all(&dest);
        } else {
            exec.error(&format!("an artifact named '{name}' already exists in this run; use a different name or 'overwrite: true'"));
            return StepRun::failed();
        }
    }
    let root = common_root(&files).unwrap_or_else(|| exec.workspace.clone());
    let mut digest = Sha256::new();
    let mut bytes = 0u64;
    let mut listed: Vec<serde_json::Value> = Vec::new();
    for f in &files {
        let Ok(rel) = f.strip_prefix(&root) else {
            continue;
        };
        let target = dest.join(rel);
        if let Some(p) = target.parent()
            && let Err(e) = std::fs::create_dir_all(p)
        {
            exec.error(&format!("upload-artifact: {e}"));
            return StepRun::failed();
        }
        match std::fs::read(f) {
            Ok(data) => {
                let file_sum = Sha256::digest(&data);
                digest.update(rel.to_string_lossy().as_bytes());
                digest.update([0]);
                digest.update(file_sum);
                bytes += data.len() as u64;
                listed.push(serde_json::json!({
                    "path": rel.to_string_lossy().replace('\\', "/"),
                    "size": data.len(),
                    "sha256": hex(&file_sum),
                }));
                if let Err(e) = std::fs::write(&target, &data) {
                    exec.error(&format!("upload-artifact: {e}"));
                    return StepRun::failed();
                }
            }
            Err(e) => {
                exec.error(&format!("upload-artifact: {}: {e}", f.display()));
                return StepRun::failed();
            }
        }
    }
    let sum = hex(&digest.finalize());
    // The manifest: what the artifact holds, with content hashes, for
    // serving and verifying it later.
    let manifest = serde_json::json!({
        "name": name,
        "job": exec.key,
        "files": listed,
        "bytes": bytes,
        "sha256": sum,
    });
    let manifests = exec.shared.run_dir.join("artifact-manifests");
    if let Err(e) = std::fs::create_dir_all(&manifests).and_then(|()| {
        std::fs::write(
            manifests.join(format!("{name}.json")),
            serde_json::to_vec_pretty(&manifest).unwrap_or_default(),
        )
    }) {
        exec.error(&format!("upload-artifact: cannot write the manifest: {e}"));
        return StepRun::failed();
    }
    if let Some(t) = exec.shared.artifacts.clone()
        && let Err(e) = tokio::task::block_in_place(|| t.publish(&name, &dest, &manifest))
    {
        exec.error(&format!("upload-artifact: {e}"));
        return StepRun::failed();
    }
    exec.log(&format!(
        "Uploaded artifact '{name}': {} file(s), {bytes} bytes, sha256:{sum}",
        files.len()
    ));
    let mut out = IndexMap::new();
    out.insert(
        "artifact-id".into(),
        format!("{}-{name}", exec.shared.run_id),
    );
    out.insert("artifact-url".into(), format!("file://{}", dest.display()));
    out.insert("artifact-digest".into(), sum);
    StepRun::ok(out)
}

pub(crate) fn download(exec: &mut JobExec, with: &Inputs) -> StepRun {
    let root = exec.shared.run_dir.join("artifacts");
    if let Some(t) = exec.shared.artifacts.clone()
        && let Err(e) = tokio::task::block_in_place(|| t.fetch(&root))
    {
        exec.error(&format!("download-artifact: {e}"));
        return StepRun::failed();
    }
    let target: PathBuf = match with.get("path") {
        Some(p) if Path::new(p).is_absolute() => PathBuf::from(p),
        Some(p) => exec.workspace.join(p),
        None => exec.workspace.clone(),
    };
    let mut names: Vec<String> = std::fs::read_dir(&root)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    let copy = |exec: &mut JobExec, from: &Path, to: &Path| -> bool {
        match copy_tree(from, to) {
            Ok(n) => {
                exec.log(&format!("Downloaded {n} file(s) to {}", to.display()));
                true
            }
            Err(e) => {
                exec.error(&format!("download-artifact: {e}"));
                false
            }
        }
    };
    if let Some(name) = with.get("name") {
        if !valid_name(name) || !names.iter().any(|n| n == name) {
            exec.error(&format!(
                "Artifact not found for name: {name}. Artifacts in this run: {}",
                if names.is_empty() {
                    "none".into()
                } else {
                    names.join(", ")
                }
            ));
            return StepRun::failed();
        }
        if !copy(exec, &root.join(name), &target) {
            return StepRun::failed();
        }
    } else {
        let pattern = with
            .get("pattern")
            .map(launchway_workflow::glob::Pattern::new);
        let pattern = match pattern.transpose() {
            Ok(p) => p,
            Err(e) => {
                exec.error(&format!("download-artifact pattern: {e}"));
                return StepRun::failed();
            }
        };
        let merge = with.bool("merge-multiple", false);
        for n in &names {
            if pattern.as_ref().is_some_and(|p| !p.is_match(n)) {
                continue;
            }
            let to = if merge {
                target.clone()
            } else {
                target.join(n)
            };
            if !copy(exec, &root.join(n), &to) {
                return StepRun::failed();
            }
        }
    }
    let mut out = IndexMap::new();
    out.insert("download-path".into(), target.to_string_lossy().to_string());
    StepRun::ok(out)
}
