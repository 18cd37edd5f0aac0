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
    let Some(path) = uses.value.strip_prefix("./") else {
        return job::fail_before_start(
            shared,
            scope,
            spec,
            &format!(
                "'{}' is a remote reusable workflow; Launchway runs local ones only (uses: ./.github/workflows/<file>.yml)",
                uses.value
            ),
        );
    };
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
