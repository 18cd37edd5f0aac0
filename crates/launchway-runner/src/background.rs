//! GitHub's parallel steps — `background`, `wait`, `wait-all`, `cancel` and
//! `parallel` — and the loop over a job's steps that honours them.
//!
//! A background step runs on a copy of the job's state
//! ([`JobExec::for_background`]) in a task of its own, with its own runner
//! files and script. Joining it (a `wait` step, the end of a `parallel`
//! block, the end of the job) brings back what it changed, in the order the
//! workflow joins: its log lines, written together so that every step stays
//! one range of the job's log; `GITHUB_ENV`/`GITHUB_PATH` additions; state,
//! summary and post steps; its entry in the `steps` context. Until then
//! later steps see none of it, as with `&` and `wait` in a shell.
//!
//! At the end of the step list, background steps not joined yet are waited
//! for — unless the job already failed or was cancelled: then they are
//! stopped first (a service left running must not hold a failed job open).

use crate::cancel::Cancel;
use crate::job::{Defaults, JobExec, finish, pseudo_step_start, run_step};
use crate::record::{JobRecord, StepRecord, StepResult};
use indexmap::IndexMap;
use launchway_expr::{Value, interpolate};
use launchway_workflow::{Control, Step};
use std::io::Write;

/// A background step and what it started from.
struct Pending {
    id: Option<String>,
    cancel: Cancel,
    base_env: IndexMap<String, String>,
    base_path: usize,
    task: tokio::task::JoinHandle<Finished>,
}

struct Finished {
    exec: JobExec,
    record: StepRecord,
    steps_ctx: Value,
}

/// Runs a job's steps in order, starting background steps and joining them
/// where the workflow says; each step's record goes into `record` (saved as
/// it changes).
pub(crate) async fn run_steps(
    exec: &mut JobExec,
    steps: &[Step],
    defaults: &Defaults,
    steps_ctx: &mut Value,
    failed: &mut bool,
    record: &mut JobRecord,
) {
    let mut pending: Vec<Pending> = Vec::new();
    for step in steps {
        match &step.control {
            None if step.background => {
                start(exec, step, defaults, steps_ctx, *failed, &mut pending);
            }
            None => {
                let rec = run_step(exec, step, defaults, steps_ctx, failed, "").await;
                push(exec, record, rec);
            }
            Some(Control::Parallel(inner)) => {
                let mut group = Vec::new();
                for s in inner {
                    start(exec, s, defaults, steps_ctx, *failed, &mut group);
                }
                for p in group {
                    join(exec, p, steps_ctx, failed, record).await;
                }
            }
            Some(control) => {
                let name = control_name(exec, step);
                let (n, started, log_start) = pseudo_step_start(exec, &name);
                let chosen: Vec<Pending> = match control {
                    Control::Wait(ids) => take(&mut pending, |p| {
                        ids.iter().any(|i| {
                            p.id.as_ref()
                                .is_some_and(|id| id.eq_ignore_ascii_case(&i.value))
                        })
                    }),
                    Control::Cancel(id) => take(&mut pending, |p| {
                        p.id.as_ref()
                            .is_some_and(|i| i.eq_ignore_ascii_case(&id.value))
                    }),
                    _ => std::mem::take(&mut pending),
                };
                if chosen.is_empty() {
                    exec.log("No background step to wait for.");
                }
                let mut any_failed = false;
                for p in chosen {
                    if matches!(control, Control::Cancel(_)) {
                        exec.log(&format!(
                            "Cancelling {}",
                            p.id.as_deref().unwrap_or("a background step")
                        ));
                        p.cancel.cancel();
                    }
                    any_failed |=
                        join(exec, p, steps_ctx, failed, record).await == StepResult::Failure;
                }
                let outcome = if any_failed {
                    exec.error("A background step this step waited for failed.");
                    StepResult::Failure
                } else {
                    StepResult::Success
                };
                let coe = step
                    .continue_on_error
                    .as_ref()
                    .is_some_and(|c| crate::job::eval_bool(&c.value, &exec.ctx).unwrap_or(false));
                let conclusion = if outcome == StepResult::Failure && coe {
                    StepResult::Success
                } else {
                    outcome
                };
                if let Some(id) = &step.id {
                    steps_ctx.insert(
                        id.value.clone(),
                        crate::job::step_ctx_entry(outcome, conclusion, &IndexMap::new()),
                    );
                }
                let rec = finish(exec, n, name, outcome, conclusion, started, Some(log_start));
                push(exec, record, rec);
            }
        }
    }
    if !pending.is_empty() && (*failed || exec.cancel.is_cancelled()) {
        for p in &pending {
            p.cancel.cancel();
        }
    }
    for p in pending {
        join(exec, p, steps_ctx, failed, record).await;
    }
}

/// The pending steps `pick` chooses, in the order they started.
fn take(pending: &mut Vec<Pending>, pick: impl Fn(&Pending) -> bool) -> Vec<Pending> {
    let (chosen, rest): (Vec<_>, Vec<_>) = std::mem::take(pending).into_iter().partition(pick);
    *pending = rest;
    chosen
}

fn control_name(exec: &JobExec, step: &Step) -> String {
    let name = match &step.name {
        Some(n) => {
            let mut ctx = exec.ctx.clone();
            ctx.set("env", exec.env_value());
            interpolate(&n.value, &ctx).unwrap_or_else(|_| n.value.clone())
        }
        None => step.display_name(),
    };
    exec.shared.masker.mask(&name)
}

/// Starts `step` in the background as the job's next step.
fn start(
    exec: &mut JobExec,
    step: &Step,
    defaults: &Defaults,
    steps_ctx: &Value,
    failed: bool,
    pending: &mut Vec<Pending>,
) {
    exec.step_no += 1;
    let n = exec.step_no;
    let mut child = match exec.for_background(n) {
        Ok(c) => c,
        Err(e) => {
            exec.step_no -= 1;
            exec.error(&format!("cannot start a background step: {e}"));
            return;
        }
    };
    let id = step.id.as_ref().map(|i| i.value.clone());
    let (step, defaults, mut child_ctx) = (step.clone(), defaults.clone(), steps_ctx.clone());
    let cancel = child.cancel.clone();
    let (base_env, base_path) = (exec.env.clone(), exec.path_prepend.len());
    let task = tokio::spawn(async move {
        let mut child_failed = failed;
        let record = run_step(
            &mut child,
            &step,
            &defaults,
            &mut child_ctx,
            &mut child_failed,
            "",
        )
        .await;
        Finished {
            exec: child,
            record,
            steps_ctx: child_ctx,
        }
    });
    pending.push(Pending {
        id,
        cancel,
        base_env,
        base_path,
        task,
    });
}

/// Waits for a background step and brings back what it changed; returns
/// its conclusion.
async fn join(
    exec: &mut JobExec,
    p: Pending,
    steps_ctx: &mut Value,
    failed: &mut bool,
    record: &mut JobRecord,
) -> StepResult {
    let Finished {
        exec: child,
        record: mut rec,
        steps_ctx: child_ctx,
    } = match p.task.await {
        Ok(f) => f,
        Err(e) => {
            exec.error(&format!("a background step stopped unexpectedly: {e}"));
            *failed = true;
            return StepResult::Failure;
        }
    };
    let offset = absorb(exec, child, &p.base_env, p.base_path);
    if rec.log.is_some() {
        rec.log_start += offset;
        rec.log_end += offset;
    }
    if rec.conclusion == StepResult::Failure {
        *failed = true;
    }
    if let Some(id) = &p.id
        && let Some(entry) = child_ctx.get(id)
    {
        steps_ctx.insert(id.clone(), entry.clone());
    }
    let conclusion = rec.conclusion;
    push(exec, record, rec);
    conclusion
}

/// Merges a finished background step's state into the job's; returns where
/// its log lines start in the job's log.
fn absorb(
    exec: &mut JobExec,
    child: JobExec,
    base_env: &IndexMap<String, String>,
    base_path: usize,
) -> u64 {
    let offset = exec.log_pos;
    for line in child.capture.unwrap_or_default() {
        exec.write_line(&line);
    }
    for (k, v) in child.env {
        if base_env.get(&k) != Some(&v) {
            exec.env.insert(k, v);
        }
    }
    exec.path_prepend
        .extend(child.path_prepend.into_iter().skip(base_path));
    exec.states.extend(child.states);
    exec.summary.push_str(&child.summary);
    exec.pgids.extend(child.pgids);
    exec.post.extend(child.post);
    exec.registry_logins
        .by_host
        .extend(child.registry_logins.by_host);
    if let Some(f) = &mut exec.log {
        let _ = f.flush();
    }
    offset
}

/// Records a step, in step order, and saves the job's record.
fn push(exec: &JobExec, record: &mut JobRecord, rec: StepRecord) {
    let at = record.steps.partition_point(|s| s.index <= rec.index);
    record.steps.insert(at, rec);
    exec.shared.save_job(record.clone());
}
