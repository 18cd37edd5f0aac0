//! Which contexts and functions GitHub allows in each workflow key
//! (the "Context availability" table of GitHub's documentation).

use launchway_expr::{Expr, Function};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    RunName,
    WorkflowEnv,
    WorkflowDefaults,
    WorkflowConcurrency,
    WorkflowCallInputDefault,
    WorkflowCallOutput,
    JobName,
    JobIf,
    JobRunsOn,
    JobEnvironment,
    JobEnvironmentUrl,
    JobConcurrency,
    JobOutputs,
    JobEnv,
    JobDefaults,
    JobTimeout,
    JobStrategy,
    JobContinueOnError,
    JobWith,
    JobSecrets,
    /// `container:` / `services.<id>:` image, ports, volumes, options.
    JobContainer,
    /// `container.credentials` / `services.<id>.credentials`.
    JobContainerCredentials,
    /// `container.env` / `services.<id>.env`.
    JobContainerEnv,
    StepIf,
    /// Every other step key: run, with, env, name, working-directory, …
    Step,
}

impl Place {
    pub fn key(self) -> &'static str {
        match self {
            Place::RunName => "run-name",
            Place::WorkflowEnv => "env",
            Place::WorkflowDefaults => "defaults.run",
            Place::WorkflowConcurrency => "concurrency",
            Place::WorkflowCallInputDefault => "on.workflow_call.inputs.<id>.default",
            Place::WorkflowCallOutput => "on.workflow_call.outputs.<id>.value",
            Place::JobName => "jobs.<id>.name",
            Place::JobIf => "jobs.<id>.if",
            Place::JobRunsOn => "jobs.<id>.runs-on",
            Place::JobEnvironment => "jobs.<id>.environment",
            Place::JobEnvironmentUrl => "jobs.<id>.environment.url",
            Place::JobConcurrency => "jobs.<id>.concurrency",
            Place::JobOutputs => "jobs.<id>.outputs",
            Place::JobEnv => "jobs.<id>.env",
            Place::JobDefaults => "jobs.<id>.defaults.run",
            Place::JobTimeout => "jobs.<id>.timeout-minutes",
            Place::JobStrategy => "jobs.<id>.strategy",
            Place::JobContinueOnError => "jobs.<id>.continue-on-error",
            Place::JobWith => "jobs.<id>.with",
            Place::JobSecrets => "jobs.<id>.secrets",
            Place::JobContainer => "jobs.<id>.container",
            Place::JobContainerCredentials => "jobs.<id>.container.credentials",
            Place::JobContainerEnv => "jobs.<id>.container.env",
            Place::StepIf => "jobs.<id>.steps.if",
            Place::Step => "jobs.<id>.steps.*",
        }
    }

    pub fn contexts(self) -> &'static [&'static str] {
        const JOB_BASE: &[&str] = &["github", "needs", "strategy", "matrix", "vars", "inputs"];
        match self {
            Place::RunName | Place::WorkflowConcurrency | Place::WorkflowCallInputDefault => {
                &["github", "inputs", "vars"]
            }
            Place::WorkflowEnv => &["github", "secrets", "inputs", "vars"],
            Place::WorkflowDefaults => &["github", "inputs", "vars", "env"],
            Place::WorkflowCallOutput => &["github", "jobs", "vars", "inputs"],
            Place::JobIf => &["github", "needs", "vars", "inputs"],
            Place::JobStrategy => &["github", "needs", "vars", "inputs"],
            Place::JobName
            | Place::JobRunsOn
            | Place::JobEnvironment
            | Place::JobConcurrency
            | Place::JobTimeout
            | Place::JobContinueOnError
            | Place::JobWith
            | Place::JobContainer => JOB_BASE,
            Place::JobContainerCredentials => &[
                "github", "needs", "strategy", "matrix", "env", "vars", "secrets", "inputs",
            ],
            Place::JobContainerEnv => &[
                "github", "needs", "strategy", "matrix", "job", "runner", "env", "vars", "secrets",
                "inputs",
            ],
            Place::JobEnv | Place::JobSecrets => &[
                "github", "needs", "strategy", "matrix", "vars", "inputs", "secrets",
            ],
            Place::JobDefaults => &[
                "github", "needs", "strategy", "matrix", "vars", "inputs", "env",
            ],
            Place::JobEnvironmentUrl => &[
                "github", "needs", "strategy", "matrix", "job", "runner", "env", "vars", "steps",
                "inputs",
            ],
            Place::JobOutputs => &[
                "github", "needs", "strategy", "matrix", "job", "runner", "env", "vars", "secrets",
                "steps", "inputs",
            ],
            Place::StepIf => &[
                "github", "needs", "strategy", "matrix", "job", "runner", "env", "vars", "steps",
                "inputs",
            ],
            Place::Step => &[
                "github", "needs", "strategy", "matrix", "job", "runner", "env", "vars", "secrets",
                "steps", "inputs",
            ],
        }
    }

    fn allows(self, f: Function) -> bool {
        match f {
            Function::HashFiles => matches!(self, Place::Step | Place::StepIf),
            f if f.is_status() => matches!(self, Place::JobIf | Place::StepIf),
            _ => true,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// Text to locate in the source for the diagnostic position.
    pub needle: String,
    pub message: String,
    pub hint: String,
}

/// Reports contexts and functions used where GitHub does not allow them.
pub fn check(expr: &Expr, place: Place) -> Vec<Problem> {
    let allowed = place.contexts();
    let mut out = Vec::new();
    for name in expr.contexts() {
        if !allowed.iter().any(|a| a.eq_ignore_ascii_case(name)) {
            let known = [
                "github", "env", "vars", "job", "jobs", "steps", "runner", "secrets", "strategy",
                "matrix", "needs", "inputs",
            ];
            let (message, hint) = if known.iter().any(|k| k.eq_ignore_ascii_case(name)) {
                (
                    format!("the '{name}' context is not available in '{}'", place.key()),
                    format!("available here: {}", allowed.join(", ")),
                )
            } else {
                (
                    format!("unknown context '{name}'"),
                    match crate::diag::suggest(name, known) {
                        Some(s) => format!("did you mean '{s}'?"),
                        None => format!("available here: {}", allowed.join(", ")),
                    },
                )
            };
            out.push(Problem {
                needle: name.to_string(),
                message,
                hint,
            });
        }
    }
    for f in expr.functions() {
        if !place.allows(f) {
            out.push(Problem {
                needle: f.name().to_string(),
                message: format!("'{}()' is not available in '{}'", f.name(), place.key()),
                hint: if f.is_status() {
                    "status functions are only allowed in 'if' conditions".into()
                } else {
                    "hashFiles is only available in step keys".into()
                },
            });
        }
    }
    out
}
