//! `launchway/deploy`: a GitOps deployment from a workflow. The step
//! commits the release (and any `set:` keys) to the environment's file,
//! then waits until the reconciler serves it — the same path as
//! `launchway deploy`, so git stays the only way an environment changes.
//!
//! Inputs: `environment` (the file's name, e.g. `dev`), `release`
//! (default: the run's commit), `set` (lines of `key=value`), `branch`
//! (where environment commits go; default: the checked-out branch),
//! `directory` (default `configs/environments`), `wait` (default true),
//! `timeout-minutes` (default 10). Outputs: `commit`, `revision`, `url`.

use super::Inputs;
use crate::deployer::DeployRequest;
use crate::job::{JobExec, StepRun};
use indexmap::IndexMap;
use std::time::Duration;

pub(crate) async fn run(exec: &mut JobExec, with: &Inputs) -> StepRun {
    let Some(deployer) = exec.shared.cfg.deployer.clone() else {
        exec.error("launchway/deploy: this runner has no deployment target configured");
        return StepRun::failed();
    };
    let Some(environment) = with.get("environment").map(str::to_string) else {
        exec.error("launchway/deploy: the 'environment' input is required (the environment file's name, e.g. dev)");
        return StepRun::failed();
    };
    let mut sets = Vec::new();
    for line in with.lines("set") {
        match line.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                sets.push((k.trim().to_string(), v.trim().to_string()));
            }
            _ => {
                exec.error(&format!(
                    "launchway/deploy: 'set' line '{line}': expected key=value"
                ));
                return StepRun::failed();
            }
        }
    }
    let minutes = match with.get_or("timeout-minutes", "10").trim().parse::<f64>() {
        Ok(m) if m > 0.0 && m.is_finite() => m,
        _ => {
            exec.error("launchway/deploy: 'timeout-minutes' must be a positive number");
            return StepRun::failed();
        }
    };
    let source = &exec.shared.cfg.source;
    let request = DeployRequest {
        root: source.dir.clone(),
        dir: with
            .get_or("directory", crate::environments::CONFIG_DIR)
            .into(),
        environment: environment.clone(),
        release: Some(with.get_or("release", &source.sha).to_string()),
        sets,
        branch: with.get("branch").map(str::to_string),
        create_from: Some(source.sha.clone()),
        actor: format!("{} <{}>", source.commit_author.0, source.commit_author.1),
        // `wait`: true / promoted (until it serves everything), started
        // (until its rollout has begun), false.
        wait: with.get("wait").is_none_or(|w| w.trim() != "false"),
        wait_started: with.get("wait").is_some_and(|w| w.trim() == "started"),
        timeout: Duration::from_secs_f64(minutes * 60.0),
    };
    exec.log(&format!(
        "deploying {} to '{environment}' through git",
        request.release.as_deref().unwrap_or("-")
    ));
    match deployer.deploy(request).await {
        Ok(outcome) => {
            for l in &outcome.log {
                exec.log(l);
            }
            let mut outputs = IndexMap::new();
            outputs.insert("commit".into(), outcome.commit.clone().unwrap_or_default());
            outputs.insert("revision".into(), outcome.revision.unwrap_or_default());
            if let Some(url) = &outcome.url {
                let commit = outcome.commit.as_deref().map_or(String::new(), |c| {
                    format!(" (commit {})", &c[..c.len().min(12)])
                });
                exec.summary.push_str(&format!(
                    "Deployed to `{environment}` through git{commit}: {url}\n\n"
                ));
                for l in &outcome.log {
                    if let Some(r) = l.strip_prefix(crate::deployer::ROLLOUT_LINE) {
                        exec.summary
                            .push_str(&format!("Progressive rollout: {r}\n\n"));
                    }
                }
                exec.summary.push_str(&format!(
                    "`launchway env status` shows it, `launchway env history {environment}` its deployments, `launchway sync --stop` stops the environments.\n"
                ));
            }
            outputs.insert("url".into(), outcome.url.unwrap_or_default());
            StepRun::ok(outputs)
        }
        Err(e) => {
            exec.error(&format!("launchway/deploy: {e}"));
            StepRun::failed()
        }
    }
}
