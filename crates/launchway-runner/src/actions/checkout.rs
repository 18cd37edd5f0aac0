//! `actions/checkout`: the run's commit into the workspace (or `path:`).

use super::Inputs;
use crate::job::{JobExec, StepRun};
use crate::source::git;
use indexmap::IndexMap;

pub(crate) async fn run(exec: &mut JobExec, with: &Inputs) -> StepRun {
    let source = exec.shared.cfg.source.clone();
    if let Some(repo) = with.get("repository")
        && !repo.eq_ignore_ascii_case(&source.repository)
    {
        exec.error(&format!(
            "actions/checkout of another repository ('{repo}') needs the network; Launchway checks out only the run's repository ({})",
            source.repository
        ));
        return StepRun::failed();
    }
    let mut src = source.clone();
    if let Some(r) = with.get("ref") {
        let Some(root) = &source.git_root else {
            exec.error("'ref' needs a git repository");
            return StepRun::failed();
        };
        match git(root, &["rev-parse", "--verify", &format!("{r}^{{commit}}")]) {
            Ok(sha) => src.sha = sha,
            Err(e) => {
                exec.error(&format!("cannot resolve ref '{r}': {e}"));
                return StepRun::failed();
            }
        }
    }
    let rel = with.get_or("path", ".");
    if rel.contains("..") || rel.starts_with('/') {
        exec.error(&format!(
            "checkout path '{rel}' must stay inside the workspace"
        ));
        return StepRun::failed();
    }
    let dest = exec.workspace.join(rel);
    if with.bool("clean", true)
        && let Ok(rd) = std::fs::read_dir(&dest)
    {
        for e in rd.flatten() {
            let p = e.path();
            let _ = if p.is_dir() {
                std::fs::remove_dir_all(&p)
            } else {
                std::fs::remove_file(&p)
            };
        }
    }
    exec.log(&format!("Syncing repository: {}", src.repository));
    let what = if src.dirty {
        "working tree (with uncommitted changes)".to_string()
    } else {
        format!("commit {}", src.sha)
    };
    exec.log(&format!("Checking out {what} into {}", dest.display()));
    let result = tokio::task::spawn_blocking({
        let dest = dest.clone();
        move || src.checkout(&dest)
    })
    .await;
    match result {
        Ok(Ok(())) => {
            let mut out = IndexMap::new();
            out.insert("ref".to_string(), exec.shared.cfg.event.git_ref.clone());
            out.insert("commit".to_string(), source.sha.clone());
            StepRun::ok(out)
        }
        Ok(Err(e)) => {
            exec.error(&format!("checkout failed: {e}"));
            StepRun::failed()
        }
        Err(e) => {
            exec.error(&format!("checkout failed: {e}"));
            StepRun::failed()
        }
    }
}
