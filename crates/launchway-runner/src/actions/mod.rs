//! `uses:` steps: built-in native equivalents of popular actions, local
//! actions (composite and node), and a clear error for anything else.

mod artifact;
mod cache;
mod checkout;
mod deploy;
pub(crate) mod docker;
mod docker_meta;
mod local;
mod register_model;
mod security;
mod setup_python;

use crate::context::Ctx;
use crate::job::{JobExec, PostKind, PostStep, StepRun};
use crate::record::{StepRecord, StepResult};
use indexmap::IndexMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Actions people use in security jobs, which become native in `launchway scan`.
const SECURITY_ACTIONS: &[&str] = &["anchore/scan-action", "github/codeql-action/upload-sarif"];

/// The built-in actions, by `owner/repo[/path]`.
pub const BUILTINS: &[&str] = &[
    "actions/checkout",
    "actions/setup-python",
    "actions/upload-artifact",
    "actions/download-artifact",
    "actions/cache",
    "actions/cache/restore",
    "actions/cache/save",
    "anchore/sbom-action",
    "aquasecurity/trivy-action",
    "docker/build-push-action",
    "docker/login-action",
    "docker/metadata-action",
    "docker/setup-buildx-action",
    "docker/setup-qemu-action",
    "gitleaks/gitleaks-action",
    "launchway/deploy",
    "launchway/register-model",
];

/// How a `uses:` reference will be run, decided before the run starts so
/// unsupported actions are reported up front.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolution {
    Builtin(&'static str),
    /// Path relative to the workspace (`./x`) — only known after checkout.
    Workspace(String),
    /// A mapped local copy, relative to the repository directory.
    Mapped(PathBuf),
    Unsupported(String),
}

pub fn resolve(
    uses: &str,
    action_map: &IndexMap<String, String>,
    repo_dir: &std::path::Path,
) -> Resolution {
    if let Some(rel) = uses.strip_prefix("./") {
        return Resolution::Workspace(rel.to_string());
    }
    if uses.starts_with("docker://") {
        return Resolution::Unsupported(format!(
            "'{uses}' is a container action; Launchway runs without Docker"
        ));
    }
    let (name, _ref) = uses.split_once('@').unwrap_or((uses, ""));
    if let Some(path) = action_map.get(uses).or_else(|| action_map.get(name)) {
        return Resolution::Mapped(repo_dir.join(path));
    }
    if let Some(b) = BUILTINS.iter().find(|b| b.eq_ignore_ascii_case(name)) {
        return Resolution::Builtin(b);
    }
    let hint = format!(
        "Launchway runs offline and does not download actions; put a copy of the action in the repository and map it in .launchway/actions.yaml:\n  actions:\n    {uses}: ./path/to/local/copy"
    );
    if SECURITY_ACTIONS
        .iter()
        .any(|s| s.eq_ignore_ascii_case(name))
    {
        return Resolution::Unsupported(format!(
            "'{uses}' talks to GitHub's or Anchore's services and cannot run offline; `launchway scan` covers what it checks.\n{hint}"
        ));
    }
    Resolution::Unsupported(format!("'{uses}' is a remote action.\n{hint}"))
}

/// Reads `.launchway/actions.yaml` (`actions: {owner/repo@ref: ./path}`).
pub fn load_action_map(text: &str) -> Result<IndexMap<String, String>, String> {
    let root = launchway_workflow::yaml::parse(text)
        .map_err(|e| format!("{}:{}: {}", e.pos.line, e.pos.col, e.message))?;
    let mut out = IndexMap::new();
    if let Some(m) = root.get("actions").and_then(|a| a.as_map()) {
        for (k, v) in m {
            if let (Some(k), Some(v)) = (k.as_str(), v.scalar_string()) {
                out.insert(k.to_string(), v);
            }
        }
    }
    Ok(out)
}

pub(crate) async fn run_uses(
    exec: &mut JobExec,
    uses: &str,
    with: IndexMap<String, String>,
    step_env: &IndexMap<String, String>,
    ctx: &Ctx,
    timeout: Option<Duration>,
    step_id: Option<&str>,
) -> StepRun {
    let res = resolve(
        uses,
        &exec.shared.cfg.action_map,
        &exec.shared.cfg.source.dir,
    );
    let with = Inputs(with);
    match res {
        Resolution::Builtin("actions/checkout") => checkout::run(exec, &with).await,
        Resolution::Builtin("actions/setup-python") => setup_python::run(exec, &with).await,
        Resolution::Builtin("actions/upload-artifact") => artifact::upload(exec, &with),
        Resolution::Builtin("actions/download-artifact") => artifact::download(exec, &with),
        Resolution::Builtin(
            b @ ("actions/cache" | "actions/cache/restore" | "actions/cache/save"),
        ) => cache::run(exec, b, &with),
        Resolution::Builtin("anchore/sbom-action") => security::sbom_action(exec, &with, step_env),
        Resolution::Builtin("aquasecurity/trivy-action") => security::trivy_action(exec, &with),
        Resolution::Builtin("gitleaks/gitleaks-action") => {
            security::gitleaks_action(exec, step_env)
        }
        Resolution::Builtin("docker/login-action") => docker::login(exec, &with),
        Resolution::Builtin("docker/setup-buildx-action") => docker::setup_buildx(exec),
        Resolution::Builtin("docker/setup-qemu-action") => docker::setup_qemu(exec, &with),
        Resolution::Builtin("docker/metadata-action") => docker::metadata(exec, &with),
        Resolution::Builtin("docker/build-push-action") => {
            docker::build_push(exec, &with, step_env, timeout).await
        }
        Resolution::Builtin("launchway/deploy") => deploy::run(exec, &with).await,
        Resolution::Builtin("launchway/register-model") => register_model::run(exec, &with),
        Resolution::Builtin(other) => {
            exec.error(&format!("internal: no implementation for {other}"));
            StepRun::failed()
        }
        Resolution::Workspace(rel) => {
            let dir = exec.workspace.join(rel);
            local::run(exec, uses, dir, with.0, step_env, ctx, timeout, step_id).await
        }
        Resolution::Mapped(dir) => {
            local::run(exec, uses, dir, with.0, step_env, ctx, timeout, step_id).await
        }
        Resolution::Unsupported(msg) => {
            exec.error(&msg);
            StepRun::failed()
        }
    }
}

/// `with:` values with the accessors actions use.
pub(crate) struct Inputs(pub IndexMap<String, String>);

impl Inputs {
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }
    pub fn get_or<'a>(&'a self, k: &str, default: &'a str) -> &'a str {
        self.get(k).unwrap_or(default)
    }
    pub fn bool(&self, k: &str, default: bool) -> bool {
        self.get(k)
            .map_or(default, |v| v.trim().eq_ignore_ascii_case("true"))
    }
    /// A multi-line input as its non-empty lines.
    pub fn lines(&self, k: &str) -> Vec<String> {
        self.get(k)
            .map(|v| {
                v.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Runs a queued post step.
pub(crate) async fn run_post(exec: &mut JobExec, post: PostStep, job_failed: bool) -> StepRecord {
    let started = Instant::now();
    exec.step_no += 1;
    let n = exec.step_no;
    let name = format!("Post {}", post.name);
    let cancelled = exec.cancel.is_cancelled();
    let mut ctx = exec.ctx.clone();
    if let Some(inputs) = post.inputs.clone() {
        ctx.set("inputs", inputs);
    }
    ctx.status = crate::context::Status {
        success: !job_failed && !cancelled,
        failure: job_failed,
        cancelled,
    };
    let run_it = launchway_expr::Condition::parse(&post.condition)
        .ok()
        .and_then(|c| c.evaluate(&ctx).ok())
        .unwrap_or(false);
    if !run_it {
        return crate::job::finish(
            exec,
            n,
            name,
            StepResult::Skipped,
            StepResult::Skipped,
            started,
            None,
        );
    }
    let log_start = exec.log_pos;
    exec.shared.emit(crate::record::RunEvent::StepStarted {
        key: exec.key.clone(),
        index: n,
        name: name.clone(),
    });
    let run = match post.kind {
        PostKind::CacheSave { key, paths } => cache::save(exec, &key, &paths),
        PostKind::Node {
            dir,
            script,
            env,
            state_key,
        } => local::run_node_script(exec, &dir, &script, env, &state_key, None).await,
        PostKind::Logout {
            registry,
            auth_file,
        } => docker::logout(exec, &registry, &auth_file),
    };
    let conclusion = if run.failed {
        StepResult::Failure
    } else {
        StepResult::Success
    };
    crate::job::finish(
        exec,
        n,
        name,
        conclusion,
        conclusion,
        started,
        Some(log_start),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolution() {
        let map: IndexMap<String, String> = [("org/act@v1".to_string(), "vendor/act".to_string())]
            .into_iter()
            .collect();
        let dir = std::path::Path::new("/repo");
        assert_eq!(
            resolve("actions/checkout@v4", &map, dir),
            Resolution::Builtin("actions/checkout")
        );
        assert_eq!(
            resolve("actions/cache/save@v4", &map, dir),
            Resolution::Builtin("actions/cache/save")
        );
        assert_eq!(resolve("./x", &map, dir), Resolution::Workspace("x".into()));
        assert_eq!(
            resolve("org/act@v1", &map, dir),
            Resolution::Mapped(PathBuf::from("/repo/vendor/act"))
        );
        assert!(
            matches!(resolve("org/other@v1", &map, dir), Resolution::Unsupported(m) if m.contains(".launchway/actions.yaml"))
        );
        assert_eq!(
            resolve("aquasecurity/trivy-action@master", &map, dir),
            Resolution::Builtin("aquasecurity/trivy-action")
        );
        assert!(
            matches!(resolve("github/codeql-action/upload-sarif@v3", &map, dir), Resolution::Unsupported(m) if m.contains("launchway scan"))
        );
    }
}
