//! Local actions (`uses: ./path`, or a mapped copy): composite actions run
//! their steps in this job; node actions run with the host's `node`.

use crate::context::Ctx;
use crate::job::{self, Defaults, JobExec, PostKind, PostStep, StepRun, which};
use indexmap::IndexMap;
use launchway_expr::{Value, interpolate};
use launchway_workflow::action::{self, Runs};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// GitHub's limit on nested composite actions.
const MAX_DEPTH: usize = 10;

fn input_env_name(name: &str) -> String {
    format!("INPUT_{}", name.replace(' ', "_").to_ascii_uppercase())
}

#[allow(clippy::too_many_arguments)]
pub(crate) async fn run(
    exec: &mut JobExec,
    uses: &str,
    dir: PathBuf,
    with: IndexMap<String, String>,
    step_env: &IndexMap<String, String>,
    ctx: &Ctx,
    timeout: Option<Duration>,
    step_id: Option<&str>,
) -> StepRun {
    let meta = ["action.yml", "action.yaml"]
        .iter()
        .map(|f| dir.join(f))
        .find(|p| p.is_file());
    let Some(meta) = meta else {
        exec.error(&format!(
            "cannot find action '{uses}': no action.yml or action.yaml in {} (a local action needs the repository checked out first: add an actions/checkout step before it)",
            dir.display()
        ));
        return StepRun::failed();
    };
    let text = match std::fs::read_to_string(&meta) {
        Ok(t) => t,
        Err(e) => {
            exec.error(&format!("{}: {e}", meta.display()));
            return StepRun::failed();
        }
    };
    let (action, diags) = action::load(&text);
    let errors: Vec<String> = diags
        .iter()
        .filter(|d| d.severity == launchway_workflow::Severity::Error)
        .map(|d| format!("{}:{d}", meta.display()))
        .collect();
    let Some(action) = action.filter(|_| errors.is_empty()) else {
        for e in &errors {
            exec.error(e);
        }
        return StepRun::failed();
    };

    // Inputs: given values, else defaults (which may be expressions).
    let mut inputs = IndexMap::new();
    for (name, decl) in &action.inputs {
        let given = with
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone());
        let value = match (given, &decl.default) {
            (Some(v), _) => v,
            (None, Some(d)) => interpolate(d, ctx).unwrap_or_else(|_| d.clone()),
            (None, None) => {
                if decl.required {
                    exec.log(&format!(
                        "##[warning]Input required and not supplied: {name}"
                    ));
                }
                String::new()
            }
        };
        inputs.insert(name.clone(), value);
    }
    let unexpected: Vec<&String> = with
        .keys()
        .filter(|k| !action.inputs.keys().any(|n| n.eq_ignore_ascii_case(k)))
        .collect();
    if !unexpected.is_empty() {
        let list: Vec<&str> = unexpected.iter().map(|s| s.as_str()).collect();
        exec.log(&format!(
            "##[warning]Unexpected input(s) '{}', valid inputs are [{}]",
            list.join("', '"),
            action.inputs.keys().cloned().collect::<Vec<_>>().join(", ")
        ));
    }

    match action.runs {
        Runs::Docker => {
            exec.error(&format!(
                "'{uses}' is a Docker container action; Launchway runs without Docker"
            ));
            StepRun::failed()
        }
        Runs::Node {
            using,
            main,
            pre,
            post,
            pre_if,
            post_if,
        } => {
            if which("node").is_none() {
                exec.error(&format!("'{uses}' is a JavaScript action (runs.using: {using}) and needs Node.js, but no `node` is on PATH; install it (e.g. `apt-get install nodejs`)"));
                return StepRun::failed();
            }
            let mut env: IndexMap<String, String> = step_env.clone();
            for (k, v) in &inputs {
                env.insert(input_env_name(k), v.clone());
            }
            // Each use of an action keeps its own state (two uses of one
            // action must not read each other's; act's GITHUB_STATE case).
            let state_key = format!("{}#{}", dir.display(), exec.step_no);
            // `pre-if`/`post-if` see the action's inputs.
            let input_value = Value::Object(
                inputs
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::str(v)))
                    .collect(),
            );
            if let Some(pre) = pre {
                let cond = pre_if.unwrap_or_else(|| "always()".into());
                let mut pre_ctx = ctx.clone();
                pre_ctx.set("inputs", input_value.clone());
                if launchway_expr::Condition::parse(&cond)
                    .ok()
                    .and_then(|c| c.evaluate(&pre_ctx).ok())
                    .unwrap_or(false)
                {
                    let r = node(exec, &dir, &pre, &env, None, &state_key).await;
                    if r.failed || r.cancelled {
                        return r;
                    }
                }
            }
            let r = run_node_script(
                exec,
                &dir,
                &main,
                env.clone().into_iter().collect(),
                &state_key,
                timeout,
            )
            .await;
            if let Some(post) = post {
                exec.post.push(PostStep {
                    name: step_id.map_or_else(|| uses.to_string(), str::to_string),
                    kind: PostKind::Node {
                        dir: dir.clone(),
                        script: post,
                        env: env.into_iter().collect(),
                        state_key,
                    },
                    condition: post_if.unwrap_or_else(|| "always()".into()),
                    inputs: Some(input_value),
                });
            }
            r
        }
        Runs::Composite(steps) => {
            let depth = exec
                .states
                .get("__composite_depth")
                .and_then(|m| m.get("d"))
                .and_then(|d| d.parse::<usize>().ok())
                .unwrap_or(0);
            if depth >= MAX_DEPTH {
                exec.error(&format!(
                    "composite actions nested deeper than {MAX_DEPTH} levels"
                ));
                return StepRun::failed();
            }
            if steps.is_empty() {
                // GitHub refuses it the same way.
                exec.error(&format!(
                    "{}: composite action '{uses}': no steps provided",
                    meta.display()
                ));
                return StepRun::failed();
            }
            if let Some(s) = steps.iter().find(|s| s.run.is_some() && s.shell.is_none()) {
                exec.error(&format!("{}: step {} of composite action '{uses}' has 'run' but no 'shell' (required in composite actions)", meta.display(), s.index + 1));
                return StepRun::failed();
            }
            exec.states
                .entry("__composite_depth".into())
                .or_default()
                .insert("d".into(), (depth + 1).to_string());
            let saved_ctx = exec.ctx.clone();
            let saved_env = exec.env.clone();
            let input_value = Value::Object(
                inputs
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::str(v)))
                    .collect(),
            );
            exec.ctx.set("inputs", input_value);
            if let Some(g) = exec
                .ctx
                .contexts
                .as_object_mut()
                .and_then(|c| c.get_mut("github"))
            {
                g.insert("action_path", Value::str(dir.to_string_lossy()));
            }
            for (k, v) in step_env {
                exec.env.insert(k.clone(), v.clone());
            }
            // `$GITHUB_ACTION_PATH` in the composite's steps, as
            // `github.action_path` in its expressions.
            exec.env.insert(
                "GITHUB_ACTION_PATH".into(),
                dir.to_string_lossy().to_string(),
            );
            let mut inner_steps = Value::object();
            let mut inner_failed = false;
            let defaults = Defaults::default();
            let prefix = format!("{} / ", uses);
            for step in &steps {
                let _ = job::run_step(
                    exec,
                    step,
                    &defaults,
                    &mut inner_steps,
                    &mut inner_failed,
                    &prefix,
                )
                .await;
            }
            // Outputs are evaluated against the composite's own steps, with
            // the calling step's env.
            let mut octx = exec.ctx.clone();
            octx.set("steps", inner_steps);
            octx.set("env", exec.env_value());
            let mut outputs = IndexMap::new();
            for (name, value) in &action.outputs {
                if let Some(v) = value {
                    match interpolate(&v.value, &octx) {
                        Ok(s) => {
                            outputs.insert(name.clone(), s);
                        }
                        Err(e) => exec.error(&format!("output '{name}': {e}")),
                    }
                }
            }
            // The uses-step's env applied only inside; GITHUB_ENV writes persist.
            match saved_env.get("GITHUB_ACTION_PATH") {
                Some(old) => exec.env.insert("GITHUB_ACTION_PATH".into(), old.clone()),
                None => exec.env.shift_remove("GITHUB_ACTION_PATH"),
            };
            for (k, v) in step_env {
                if exec.env.get(k) == Some(v) {
                    match saved_env.get(k) {
                        Some(old) => exec.env.insert(k.clone(), old.clone()),
                        None => exec.env.shift_remove(k),
                    };
                }
            }
            exec.ctx = saved_ctx;
            exec.states
                .entry("__composite_depth".into())
                .or_default()
                .insert("d".into(), depth.to_string());
            StepRun {
                failed: inner_failed,
                cancelled: false,
                outputs,
            }
        }
    }
}

async fn node(
    exec: &mut JobExec,
    dir: &Path,
    script: &str,
    env: &IndexMap<String, String>,
    timeout: Option<Duration>,
    state_key: &str,
) -> StepRun {
    let argv = vec![
        "node".to_string(),
        dir.join(script).to_string_lossy().to_string(),
    ];
    let cwd = exec.workspace.clone();
    exec.exec(&argv, &cwd, env, timeout, state_key).await
}

/// A node action's script, with the state its earlier stages saved.
pub(crate) async fn run_node_script(
    exec: &mut JobExec,
    dir: &Path,
    script: &str,
    env: Vec<(String, String)>,
    state_key: &str,
    timeout: Option<Duration>,
) -> StepRun {
    let mut env: IndexMap<String, String> = env.into_iter().collect();
    if let Some(state) = exec.states.get(state_key) {
        for (k, v) in state {
            env.insert(format!("STATE_{k}"), v.clone());
        }
    }
    node(exec, dir, script, &env, timeout, state_key).await
}
