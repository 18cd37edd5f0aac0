//! Calling a local reusable workflow (`jobs.<id>.uses: ./.github/workflows/x.yml`).

use crate::cancel::Cancel;
use crate::context::Ctx;
use crate::job::{self, JobEnd, JobSpec};
use crate::record::JobResult;
use crate::run::{Scope, Shared, called_secrets, needs_context, run_graph};
use indexmap::IndexMap;
use launchway_expr::{Value, evaluate_template, interpolate};
use launchway_workflow::{InputType, Spanned};
use std::sync::Arc;

/// GitHub allows four levels of nested workflow calls.
const MAX_DEPTH: usize = 4;

pub(crate) async fn call(
    shared: &Arc<Shared>,
    scope: &Scope,
    spec: &JobSpec,
    uses: &Spanned<String>,
    ctx: Ctx,
    _cancel: Cancel,
) -> JobEnd {
    let job = &scope.wf.jobs[&spec.id];
    let path = match uses.value.strip_prefix("./") {
        Some(p) => p.to_string(),
        None => match mapped_workflow(&uses.value, &shared.cfg.action_map) {
            Some(p) => p,
            None => {
                return job::fail_before_start(
                    shared,
                    scope,
                    spec,
                    &format!(
                        "'{}' is a remote reusable workflow; Launchway runs offline: call a local one (uses: ./.github/workflows/<file>.yml), or put a copy of its repository in this one and map it in .launchway/actions.yaml (actions: {{owner/repo@ref: ./path/to/copy}})",
                        uses.value
                    ),
                );
            }
        },
    };
    let path = path.as_str();
    if scope.depth >= MAX_DEPTH {
        return job::fail_before_start(
            shared,
            scope,
            spec,
            "reusable workflows nested more than 4 levels deep",
        );
    }
    let Some(text) = shared.cfg.source.read_file(path) else {
        return job::fail_before_start(
            shared,
            scope,
            spec,
            &format!("reusable workflow '{path}' not found in the repository"),
        );
    };
    let loaded = launchway_workflow::load(path, &text);
    if loaded.has_errors() {
        let first = loaded
            .diagnostics
            .iter()
            .find(|d| d.severity == launchway_workflow::Severity::Error);
        return job::fail_before_start(
            shared,
            scope,
            spec,
            &format!(
                "{path}:{}",
                first.map(ToString::to_string).unwrap_or_default()
            ),
        );
    }
    let Some(wf) = loaded.workflow else {
        return job::fail_before_start(shared, scope, spec, &format!("{path} could not be loaded"));
    };
    let Some(call) = wf.on.get("workflow_call").cloned() else {
        return job::fail_before_start(
            shared,
            scope,
            spec,
            &format!("{path} has no 'on: workflow_call' and cannot be called"),
        );
    };
    // Inputs: typed, with defaults; unknown or missing required ones fail.
    let mut inputs = Value::object();
    for (k, v) in &job.with {
        if !call.inputs.contains_key(k) {
            return job::fail_before_start(
                shared,
                scope,
                spec,
                &format!("{path} has no input '{k}'"),
            );
        }
        let value = match evaluate_template(&v.value, &ctx) {
            Ok(v) => v,
            Err(e) => {
                return job::fail_before_start(shared, scope, spec, &format!("with.{k}: {e}"));
            }
        };
        inputs.insert(k.clone(), value);
    }
    for (name, input) in &call.inputs {
        if inputs.get(name).is_some() {
            let coerced = match (&input.kind, inputs.get(name).cloned().unwrap_or_default()) {
                (InputType::Boolean, Value::String(s)) => Value::Bool(s == "true"),
                (InputType::Number, Value::String(s)) => {
                    Value::Number(launchway_expr::parse_number(&s).unwrap_or(f64::NAN))
                }
                (InputType::String, v @ (Value::Number(_) | Value::Bool(_))) => {
                    Value::String(v.to_display_string())
                }
                (_, v) => v,
            };
            inputs.insert(name.clone(), coerced);
            continue;
        }
        if input.required {
            return job::fail_before_start(
                shared,
                scope,
                spec,
                &format!("input '{name}' of {path} is required"),
            );
        }
        let default = match &input.default {
            Some(Value::String(s)) => evaluate_template(s, &ctx).unwrap_or_else(|_| Value::str(s)),
            Some(v) => v.clone(),
            None => match input.kind {
                InputType::Boolean => Value::Bool(false),
                InputType::Number => Value::Number(0.0),
                _ => Value::str(""),
            },
        };
        inputs.insert(name.clone(), default);
    }
    let secrets = called_secrets(job, scope, &ctx);
    for (name, required) in &call.secrets {
        if *required && secrets.get(name).is_none() {
            return job::fail_before_start(
                shared,
                scope,
                spec,
                &format!("secret '{name}' of {path} is required"),
            );
        }
    }
    let inner = Scope {
        wf: Arc::new(wf),
        text: Arc::from(text.as_str()),
        inputs,
        secrets,
        key_prefix: format!("{} / ", spec.key),
        depth: scope.depth + 1,
        ordinal: spec.ordinal.clone(),
    };
    let results = run_graph(shared, &inner, None).await;
    // `jobs` context for the workflow's outputs: the same shape as `needs`.
    let jobs = needs_context(&results);
    let mut octx = ctx.clone();
    octx.set("jobs", jobs);
    octx.set("inputs", inner.inputs.clone());
    let mut outputs = IndexMap::new();
    for (k, v) in &call.outputs {
        if let Ok(s) = interpolate(&v.value, &octx) {
            outputs.insert(k.clone(), s);
        }
    }
    let result = JobResult::combine(results.values().map(|o| o.result));
    JobEnd { result, outputs }
}

/// Where a remote reusable workflow (`owner/repo/path/to/file.yml@ref`) has
/// a local copy, from `.launchway/actions.yaml`: either the file itself
/// (the whole `uses` or it without `@ref`) or a copy of its repository
/// (`owner/repo@ref` or `owner/repo`). A path in this repository.
fn mapped_workflow(uses: &str, map: &IndexMap<String, String>) -> Option<String> {
    let (name, git_ref) = uses.split_once('@')?;
    let mut parts = name.splitn(3, '/');
    let (owner, repo, file) = (parts.next()?, parts.next()?, parts.next()?);
    let local = |p: &str| p.trim_start_matches("./").trim_end_matches('/').to_string();
    if let Some(p) = map.get(uses).or_else(|| map.get(name)) {
        return Some(local(p));
    }
    let repo_key = format!("{owner}/{repo}");
    map.get(&format!("{repo_key}@{git_ref}"))
        .or_else(|| map.get(&repo_key))
        .map(|dir| {
            let dir = local(dir);
            if dir.is_empty() || dir == "." {
                file.to_string()
            } else {
                format!("{dir}/{file}")
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_workflows_map_to_local_copies() {
        let map: IndexMap<String, String> = [
            ("org/shared@v1", "./vendor/shared/"),
            ("org/one/.github/workflows/x.yml@main", "ci/x.yml"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(
            mapped_workflow("org/shared/.github/workflows/build.yml@v1", &map).as_deref(),
            Some("vendor/shared/.github/workflows/build.yml")
        );
        assert_eq!(
            mapped_workflow("org/one/.github/workflows/x.yml@main", &map).as_deref(),
            Some("ci/x.yml")
        );
        // Another ref, another repository, no path: not mapped.
        assert_eq!(
            mapped_workflow("org/shared/.github/workflows/build.yml@v2", &map),
            None
        );
        assert_eq!(
            mapped_workflow("org/other/.github/workflows/b.yml@v1", &map),
            None
        );
        assert_eq!(mapped_workflow("org/shared@v1", &map), None);
    }
}
