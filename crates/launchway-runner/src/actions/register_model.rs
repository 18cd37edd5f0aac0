//! `launchway/register-model`: a model file as a new version of a model
//! in the built-in registry (the same content is the same version), and
//! aliases pointed at it — what an environment's `model_stage` resolves
//! to when a deployment is committed.
//!
//! Inputs: `name`, `path` (a file in the workspace) or `version` (alias
//! an existing version), `alias` (lines or commas). Output: `version`.

use super::Inputs;
use crate::deployer::ModelRequest;
use crate::job::{JobExec, StepRun};
use indexmap::IndexMap;

pub(crate) fn run(exec: &mut JobExec, with: &Inputs) -> StepRun {
    let Some(deployer) = exec.shared.cfg.deployer.clone() else {
        exec.error("launchway/register-model: this runner has no model registry configured");
        return StepRun::failed();
    };
    let Some(name) = with.get("name").map(str::to_string) else {
        exec.error("launchway/register-model: the 'name' input is required");
        return StepRun::failed();
    };
    let version = match with.get("version").map(|v| v.trim().parse::<u64>()) {
        None => None,
        Some(Ok(v)) => Some(v),
        Some(Err(_)) => {
            exec.error("launchway/register-model: 'version' must be a version number");
            return StepRun::failed();
        }
    };
    let rel = with.get("path").map(std::path::PathBuf::from);
    if rel.as_ref().is_some_and(|r| {
        r.components().any(|c| {
            matches!(
                c,
                std::path::Component::ParentDir | std::path::Component::RootDir
            )
        })
    }) {
        exec.error("launchway/register-model: 'path' must be inside the workspace");
        return StepRun::failed();
    }
    let file = rel.map(|r| exec.workspace.join(r));
    if file.is_some() == version.is_some() {
        exec.error("launchway/register-model: give either 'path' (a new version) or 'version' (an existing one)");
        return StepRun::failed();
    }
    let aliases: Vec<String> = with
        .lines("alias")
        .iter()
        .flat_map(|l| l.split(','))
        .map(|a| a.trim().to_string())
        .filter(|a| !a.is_empty())
        .collect();
    let source = format!(
        "{}@{} (run {})",
        exec.shared.cfg.source.repository,
        &exec.shared.cfg.source.sha[..exec.shared.cfg.source.sha.len().min(12)],
        exec.shared.run_id
    );
    match deployer.register_model(ModelRequest {
        name: name.clone(),
        file,
        version,
        aliases: aliases.clone(),
        source,
    }) {
        Ok(v) => {
            exec.log(&format!(
                "{name} version {v}{}",
                if aliases.is_empty() {
                    String::new()
                } else {
                    format!(" (aliases: {})", aliases.join(", "))
                }
            ));
            let mut outputs = IndexMap::new();
            outputs.insert("version".into(), v.to_string());
            StepRun::ok(outputs)
        }
        Err(e) => {
            exec.error(&format!("launchway/register-model: {e}"));
            StepRun::failed()
        }
    }
}
