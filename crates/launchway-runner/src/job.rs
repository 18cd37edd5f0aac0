//! One job instance: its contexts, its steps in order, status functions,
//! timeouts, `continue-on-error`, runner files, outputs and logs.

use crate::actions;
use crate::cancel::Cancel;
use crate::commands::{Command, CommandParser, Level};
use crate::context::{Ctx, Status};
use crate::environments::Protection;
use crate::files;
use crate::process::{self, Exit, Spec};
use crate::record::{JobRecord, JobResult, RunEvent, StepRecord, StepResult};
use crate::run::{Scope, Shared, elapsed_ms, error_annotation};
use crate::shell::Shell;
use crate::store::now_rfc3339;
use indexmap::IndexMap;
use launchway_expr::{Condition, Value, evaluate_template, interpolate, template};
use launchway_workflow::matrix::Combination;
use launchway_workflow::{Env, Spanned, Step};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// What the scheduler knows about an instance before it runs.
#[derive(Debug, Clone)]
pub(crate) struct JobSpec {
    pub id: String,
    pub key: String,
    /// Its place in the run's job list.
    pub ordinal: Vec<usize>,
    pub matrix: Option<Combination>,
    pub index: usize,
    pub total: usize,
    pub fail_fast: bool,
    pub max_parallel: usize,
    pub needs: Value,
    pub vars: Value,
}

/// How a job instance ended: its result and outputs.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct JobEnd {
    pub result: JobResult,
    pub outputs: IndexMap<String, String>,
}

impl JobEnd {
    pub fn cancelled() -> Self {
        JobEnd {
            result: JobResult::Cancelled,
            outputs: IndexMap::new(),
        }
    }

    pub fn failed() -> Self {
        JobEnd {
            result: JobResult::Failure,
            outputs: IndexMap::new(),
        }
    }
}

/// `runs-on` evaluated to labels: a label, a list of labels, or
/// `{group, labels}` (the group is one more label an agent must carry).
pub(crate) fn runs_on_labels(job: &launchway_workflow::Job, ctx: &Ctx) -> Vec<String> {
    fn add(out: &mut Vec<String>, v: Value) {
        match v {
            Value::Array(a) => a.into_iter().for_each(|x| add(out, x)),
            Value::Null => {}
            other => {
                let s = other.to_display_string();
                let s = s.trim();
                if !s.is_empty() {
                    out.push(s.to_string());
                }
            }
        }
    }
    fn node(out: &mut Vec<String>, n: &launchway_workflow::yaml::Node, ctx: &Ctx) {
        if let Some(items) = n.as_seq() {
            items.iter().for_each(|i| node(out, i, ctx));
        } else if let Some(s) = n.scalar_string() {
            match evaluate_template(&s, ctx) {
                Ok(v) => add(out, v),
                Err(_) => out.push(s),
            }
        }
    }
    let mut out = Vec::new();
    if let Some(n) = &job.runs_on {
        if n.as_map().is_some() {
            for k in ["group", "labels"] {
                if let Some(v) = n.get(k) {
                    node(&mut out, v, ctx);
                }
            }
        } else {
            node(&mut out, n, ctx);
        }
    }
    out
}

pub fn which(prog: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(prog))
        .find(|p| p.is_file())
}

/// `true`/`false` literals or an expression, by GitHub's truthiness.
pub(crate) fn eval_bool(s: &str, ctx: &Ctx) -> Result<bool, String> {
    if !template::has_expressions(s) {
        return Ok(s.trim() == "true");
    }
    match evaluate_template(s, ctx).map_err(|e| e.to_string())? {
        Value::String(v) if v == "false" => Ok(false),
        Value::String(v) if v == "true" => Ok(true),
        v => Ok(v.is_truthy()),
    }
}

fn strategy_ctx(spec: &JobSpec) -> Value {
    let mut s = Value::object();
    s.insert("fail-fast", Value::Bool(spec.fail_fast));
    #[allow(clippy::cast_precision_loss)]
    {
        s.insert("job-index", Value::Number(spec.index as f64));
        s.insert("job-total", Value::Number(spec.total as f64));
        s.insert(
            "max-parallel",
            Value::Number(if spec.max_parallel == usize::MAX {
                spec.total as f64
            } else {
                spec.max_parallel as f64
            }),
        );
    }
    s
}

/// The contexts available at the job level of an instance.
pub(crate) fn instance_ctx(shared: &Shared, scope: &Scope, spec: &JobSpec) -> Ctx {
    let mut c = Value::object();
    let mut github = shared.github.clone();
    github.insert("job", Value::str(&spec.id));
    c.insert("github", github);
    c.insert("needs", spec.needs.clone());
    c.insert("vars", spec.vars.clone());
    c.insert("inputs", scope.inputs.clone());
    c.insert("secrets", scope.secrets.clone());
    c.insert("strategy", strategy_ctx(spec));
    c.insert(
        "matrix",
        spec.matrix
            .as_ref()
            .map_or_else(Value::object, |m| Value::Object(m.clone())),
    );
    Ctx::new(c)
}

fn base_record(scope: &Scope, spec: &JobSpec, result: JobResult) -> JobRecord {
    let job = &scope.wf.jobs[&spec.id];
    JobRecord {
        key: spec.key.clone(),
        id: spec.id.clone(),
        name: job
            .name
            .as_ref()
            .map_or_else(|| spec.key.clone(), |n| n.value.clone()),
        ordinal: spec.ordinal.clone(),
        needs: job
            .needs
            .iter()
            .map(|n| format!("{}{}", scope.key_prefix, n.value))
            .collect(),
        result,
        started_at: None,
        duration_ms: 0,
        steps: Vec::new(),
        outputs: IndexMap::new(),
        environment: None,
        matrix: spec
            .matrix
            .as_ref()
            .map(|m| Value::Object(m.clone()).to_json()),
        message: None,
        summary: String::new(),
    }
}

pub(crate) fn fail_before_start(
    shared: &Shared,
    scope: &Scope,
    spec: &JobSpec,
    message: &str,
) -> JobEnd {
    let message = shared.masker.mask(message);
    let mut rec = base_record(scope, spec, JobResult::Failure);
    rec.message = Some(message.clone());
    shared.annotate(error_annotation(&spec.key, &message));
    shared.emit(RunEvent::JobFinished {
        key: spec.key.clone(),
        name: rec.name.clone(),
        result: JobResult::Failure,
        duration_ms: 0,
    });
    shared.save_job(rec);
    JobEnd {
        result: JobResult::Failure,
        outputs: IndexMap::new(),
    }
}

pub(crate) fn record_cancelled_before_start(shared: &Shared, scope: &Scope, spec: &JobSpec) {
    let rec = base_record(scope, spec, JobResult::Cancelled);
    shared.emit(RunEvent::JobFinished {
        key: spec.key.clone(),
        name: rec.name.clone(),
        result: JobResult::Cancelled,
        duration_ms: 0,
    });
    shared.save_job(rec);
}

pub(crate) fn wait_for_approval(
    shared: &Shared,
    scope: &Scope,
    spec: &JobSpec,
    env: &str,
    p: &Protection,
) -> JobEnd {
    let mut rec = base_record(scope, spec, JobResult::Waiting);
    rec.environment = Some(env.to_string());
    rec.message = Some(format!(
        "waiting for approval to deploy to '{env}' (required reviewers: {}); approve with --approve {env}",
        p.required_reviewers.join(", ")
    ));
    shared.emit(RunEvent::Waiting {
        key: spec.key.clone(),
        environment: env.to_string(),
    });
    shared.save_job(rec);
    JobEnd {
        result: JobResult::Waiting,
        outputs: IndexMap::new(),
    }
}

/// A step's result before `continue-on-error` is applied.
#[derive(Debug, Default)]
pub(crate) struct StepRun {
    pub failed: bool,
    pub cancelled: bool,
    pub outputs: IndexMap<String, String>,
}

impl StepRun {
    pub fn ok(outputs: IndexMap<String, String>) -> Self {
        StepRun {
            outputs,
            ..Default::default()
        }
    }
    pub fn failed() -> Self {
        StepRun {
            failed: true,
            ..Default::default()
        }
    }
}

/// Work queued to run after the main steps (e.g. `actions/cache` saving).
pub(crate) struct PostStep {
    pub name: String,
    pub kind: PostKind,
    /// The `if` the post step runs under (GitHub's `post-if`).
    pub condition: String,
    /// The action's `inputs` context for that condition.
    pub inputs: Option<Value>,
}

pub(crate) enum PostKind {
    CacheSave {
        key: String,
        paths: Vec<String>,
    },
    Node {
        dir: PathBuf,
        script: String,
        env: Vec<(String, String)>,
        /// Where this use of the action keeps its `GITHUB_STATE`.
        state_key: String,
    },
    /// `docker/login-action`'s logout.
    Logout {
        registry: String,
        auth_file: PathBuf,
    },
}

/// The mutable state of a running job instance.
pub(crate) struct JobExec {
    pub shared: Arc<Shared>,
    pub key: String,
    pub job_dir: PathBuf,
    pub workspace: PathBuf,
    pub temp: PathBuf,
    /// Where this step's runner files and script go: the job's temp dir,
    /// or a directory of its own for a background step.
    pub scratch: PathBuf,
    /// The job's log file, relative to the run directory.
    pub log_rel: String,
    /// Bytes written to the job log so far.
    pub log_pos: u64,
    /// `env` context at job level plus `GITHUB_ENV` updates.
    pub env: IndexMap<String, String>,
    pub path_prepend: Vec<String>,
    pub ctx: Ctx,
    pub cancel: Cancel,
    /// How long steps that run after a cancellation (`always()`) may take
    /// (`cancel-timeout-minutes`, 5 minutes by default as on GitHub).
    pub cancel_timeout: Duration,
    pub timed_out: Arc<AtomicBool>,
    pub pgids: Vec<u32>,
    pub summary: String,
    pub post: Vec<PostStep>,
    pub log: Option<std::fs::File>,
    /// A background step's log lines, kept until it is joined so that the
    /// job's log holds each step's lines together.
    pub capture: Option<Vec<String>>,
    pub step_no: usize,
    pub group_depth: usize,
    pub echo: bool,
    pub states: IndexMap<String, IndexMap<String, String>>,
    /// The job container `run:` steps execute in (`container:`).
    pub container: Option<crate::container::InContainer>,
    /// Registry credentials from `docker/login-action` steps.
    pub registry_logins: crate::actions::docker::Logins,
}

impl JobExec {
    /// Writes a masked line to the step log and the live display.
    pub fn log(&mut self, text: &str) {
        let text = self.shared.masker.mask(text);
        for line in text.split('\n') {
            self.write_line(line);
        }
    }

    /// Appends one line that is already masked.
    pub(crate) fn write_line(&mut self, line: &str) {
        if let Some(buf) = &mut self.capture {
            buf.push(line.to_string());
            self.log_pos += line.len() as u64 + 1;
            return;
        }
        if let Some(f) = &mut self.log
            && writeln!(f, "{line}").is_ok()
        {
            self.log_pos += line.len() as u64 + 1;
        }
        self.shared.emit(RunEvent::Log {
            key: self.key.clone(),
            line: line.to_string(),
        });
    }

    /// This job's state as a background step numbered `n` starts from: its
    /// own runner files and script, its log kept until it is joined, its
    /// own cancellation under the job's.
    pub(crate) fn for_background(&self, n: usize) -> std::io::Result<JobExec> {
        let scratch = self.temp.join("_background").join(n.to_string());
        crate::private::dir(&scratch)?;
        Ok(JobExec {
            shared: self.shared.clone(),
            key: self.key.clone(),
            job_dir: self.job_dir.clone(),
            workspace: self.workspace.clone(),
            temp: self.temp.clone(),
            scratch,
            log_rel: self.log_rel.clone(),
            log_pos: 0,
            env: self.env.clone(),
            path_prepend: self.path_prepend.clone(),
            ctx: self.ctx.clone(),
            cancel: self.cancel.child(),
            cancel_timeout: self.cancel_timeout,
            timed_out: self.timed_out.clone(),
            pgids: Vec::new(),
            summary: String::new(),
            post: Vec::new(),
            log: None,
            capture: Some(Vec::new()),
            step_no: n.saturating_sub(1),
            group_depth: 0,
            echo: self.echo,
            states: IndexMap::new(),
            container: self.container.clone(),
            registry_logins: self.registry_logins.clone(),
        })
    }

    pub fn error(&mut self, message: &str) {
        let message = self.shared.masker.mask(message);
        self.log(&format!("##[error]{message}"));
        self.shared.annotate(error_annotation(&self.key, &message));
    }

    /// The environment for a process: the host's, GitHub's defaults, then
    /// the workflow's, in precedence order.
    pub fn process_env(
        &self,
        step_env: &IndexMap<String, String>,
        files: &RunnerFiles,
    ) -> Vec<(String, String)> {
        let mut env: IndexMap<String, String> = std::env::vars()
            .filter(|(k, _)| {
                !k.starts_with("GITHUB_") && !k.starts_with("RUNNER_") && !k.starts_with("INPUT_")
            })
            .collect();
        let host_path = env.get("PATH").cloned();
        env.extend(self.runner_env(step_env, files, host_path.as_deref()));
        env.into_iter().collect()
    }

    /// GitHub's defaults and the workflow's variables, without the host's
    /// environment (what a job container gets). `base_path` is the `PATH`
    /// that `GITHUB_PATH` additions go in front of.
    pub fn runner_env(
        &self,
        step_env: &IndexMap<String, String>,
        files: &RunnerFiles,
        base_path: Option<&str>,
    ) -> IndexMap<String, String> {
        let mut env: IndexMap<String, String> = IndexMap::new();
        let g = |k: &str| {
            self.ctx
                .contexts
                .get("github")
                .and_then(|g| g.get(k))
                .map(Value::to_display_string)
                .unwrap_or_default()
        };
        for k in [
            "action",
            "actor",
            "actor_id",
            "api_url",
            "base_ref",
            "event_name",
            "event_path",
            "graphql_url",
            "head_ref",
            "job",
            "ref",
            "ref_name",
            "ref_type",
            "repository",
            "repository_id",
            "repository_owner",
            "repository_owner_id",
            "retention_days",
            "run_attempt",
            "run_id",
            "run_number",
            "server_url",
            "sha",
            "triggering_actor",
            "workflow",
            "workflow_ref",
            "workflow_sha",
            "workspace",
        ] {
            env.insert(format!("GITHUB_{}", k.to_ascii_uppercase()), g(k));
        }
        env.insert("GITHUB_REF_PROTECTED".into(), "false".into());
        env.insert("GITHUB_ACTIONS".into(), "true".into());
        env.insert("CI".into(), "true".into());
        env.insert("LAUNCHWAY".into(), "true".into());
        env.insert("RUNNER_OS".into(), "Linux".into());
        env.insert("RUNNER_ARCH".into(), runner_arch().into());
        env.insert("RUNNER_NAME".into(), self.shared.runner_name.clone());
        env.insert("RUNNER_ENVIRONMENT".into(), "self-hosted".into());
        env.insert(
            "RUNNER_TEMP".into(),
            self.temp.to_string_lossy().to_string(),
        );
        env.insert(
            "RUNNER_TOOL_CACHE".into(),
            self.job_dir.join("tool").to_string_lossy().to_string(),
        );
        if self.shared.cfg.debug {
            env.insert("RUNNER_DEBUG".into(), "1".into());
        }
        env.insert(
            "GITHUB_OUTPUT".into(),
            files.output.to_string_lossy().to_string(),
        );
        env.insert("GITHUB_ENV".into(), files.env.to_string_lossy().to_string());
        env.insert(
            "GITHUB_PATH".into(),
            files.path.to_string_lossy().to_string(),
        );
        env.insert(
            "GITHUB_STATE".into(),
            files.state.to_string_lossy().to_string(),
        );
        env.insert(
            "GITHUB_STEP_SUMMARY".into(),
            files.summary.to_string_lossy().to_string(),
        );
        for (k, v) in self.env.iter().chain(step_env) {
            if !k.is_empty() {
                env.insert(k.clone(), v.clone());
            }
        }
        if !self.path_prepend.is_empty() {
            let mut parts: Vec<String> = self.path_prepend.iter().rev().cloned().collect();
            if let Some(p) = env.get("PATH").map(String::as_str).or(base_path) {
                parts.push(p.to_string());
            }
            env.insert("PATH".into(), parts.join(":"));
        }
        env
    }

    /// Runs a process for a step on this machine, handling workflow
    /// commands and runner files.
    pub async fn exec(
        &mut self,
        argv: &[String],
        cwd: &Path,
        step_env: &IndexMap<String, String>,
        timeout: Option<Duration>,
        state_key: &str,
    ) -> StepRun {
        self.exec_in(argv, cwd, step_env, timeout, state_key, false)
            .await
    }

    /// As [`JobExec::exec`]; with `in_container`, inside the job container.
    pub async fn exec_in(
        &mut self,
        argv: &[String],
        cwd: &Path,
        step_env: &IndexMap<String, String>,
        timeout: Option<Duration>,
        state_key: &str,
        in_container: bool,
    ) -> StepRun {
        let files = match RunnerFiles::create(&self.scratch) {
            Ok(f) => f,
            Err(e) => {
                self.error(&format!("cannot create runner files: {e}"));
                return StepRun::failed();
            }
        };
        let (argv, env) = match self.container.as_ref().filter(|_| in_container) {
            // `exec -e NAME`: values travel in the engine client's
            // environment, never on a command line.
            Some(c) => {
                let inner = self.runner_env(step_env, &files, Some(&c.path));
                let mut a: Vec<String> = vec![
                    "exec".into(),
                    "-w".into(),
                    cwd.to_string_lossy().to_string(),
                ];
                for k in inner.keys() {
                    a.push("-e".into());
                    a.push(k.clone());
                }
                a.push(c.name.clone());
                a.extend(argv.iter().cloned());
                let mut full = vec![c.engine.to_string()];
                full.extend(a);
                let mut env: IndexMap<String, String> = std::env::vars().collect();
                env.extend(inner);
                (full, env.into_iter().collect::<Vec<_>>())
            }
            None => (argv.to_vec(), self.process_env(step_env, &files)),
        };
        let argv = &argv[..];
        // After a cancellation, steps that still run (`always()`, `cancelled()`)
        // run to completion, bounded like GitHub's cancel-timeout-minutes.
        let (cancel, timeout) = if self.cancel.is_cancelled() {
            let bound = self.cancel_timeout;
            (Cancel::new(), Some(timeout.map_or(bound, |t| t.min(bound))))
        } else {
            (self.cancel.child(), timeout)
        };
        let mut parser = CommandParser::default();
        let mut outputs = IndexMap::new();
        let grace = self.shared.cfg.grace;
        let mut unsecure = Unsecure {
            allowed: env.iter().any(|(k, v)| {
                k == "ACTIONS_ALLOW_UNSECURE_COMMANDS" && v.eq_ignore_ascii_case("true")
            }),
            refused: false,
        };
        // A container's steps go through its engine client, started here.
        let (shared, job_dir) = (self.shared.clone(), self.job_dir.clone());
        let spawner = match (&shared.spawner, self.container.is_some() && in_container) {
            (Some(s), false) => Some((&**s, job_dir.as_path())),
            _ => None,
        };
        let (exit, pgid) = process::run(
            Spec {
                argv,
                cwd,
                env: &env,
                timeout,
                grace,
            },
            spawner,
            &cancel,
            |line| {
                self.handle_line(&line, &mut parser, &mut outputs, state_key, &mut unsecure);
            },
        )
        .await;
        if let Some(p) = pgid {
            self.pgids.push(p);
        }
        let mut run = StepRun {
            failed: unsecure.refused,
            ..StepRun::default()
        };
        match exit {
            Exit::Code(0) => {}
            Exit::Code(c) => {
                self.error(&format!("Process completed with exit code {c}."));
                run.failed = true;
            }
            Exit::Signal(s) => {
                self.error(&format!("Process was killed by signal {s}."));
                run.failed = true;
            }
            Exit::TimedOut => {
                self.error(&format!(
                    "The action has timed out after {} minutes.",
                    timeout.map_or(0.0, |t| t.as_secs_f64() / 60.0)
                ));
                run.failed = true;
            }
            Exit::Cancelled => {
                if self.timed_out.load(Ordering::SeqCst) {
                    run.failed = true;
                } else {
                    self.log("##[error]The operation was canceled.");
                    run.cancelled = true;
                }
            }
            Exit::SpawnFailed(m) => {
                self.error(&m);
                run.failed = true;
            }
        }
        if let Err(e) = self.read_files(&files, &mut outputs, state_key) {
            self.error(&e);
            run.failed = true;
        }
        run.outputs = outputs;
        run
    }

    /// A disabled `set-env`/`add-path` without the opt-in: the step fails
    /// with GitHub's message.
    fn refuse_unsecure(&mut self, name: &str, line: &str, unsecure: &mut Unsecure) {
        self.error(&format!(
            "Unable to process command '{}' successfully. The `{name}` command is disabled. Please upgrade to using Environment Files or opt into unsecure command execution by setting the `ACTIONS_ALLOW_UNSECURE_COMMANDS` environment variable to `true`.",
            self.shared.masker.mask(line.trim())
        ));
        unsecure.refused = true;
    }

    fn handle_line(
        &mut self,
        line: &str,
        parser: &mut CommandParser,
        outputs: &mut IndexMap<String, String>,
        state_key: &str,
        unsecure: &mut Unsecure,
    ) {
        match parser.parse(line) {
            None => self.log(line),
            Some(cmd) => {
                if self.echo {
                    self.log(line);
                }
                match cmd {
                    Command::AddMask(v) => self.shared.masker.add(&v),
                    Command::Group(title) => {
                        self.group_depth += 1;
                        self.log(&format!("##[group]{title}"));
                    }
                    Command::EndGroup => {
                        self.group_depth = self.group_depth.saturating_sub(1);
                        self.log("##[endgroup]");
                    }
                    Command::Debug(m) => {
                        if self.shared.cfg.debug {
                            self.log(&format!("##[debug]{m}"));
                        }
                    }
                    Command::Annotate(mut a) => {
                        a.message = self.shared.masker.mask(&a.message);
                        a.title = a.title.map(|t| self.shared.masker.mask(&t));
                        a.file = a.file.map(|t| self.shared.masker.mask(&t));
                        a.job = self.key.clone();
                        let tag = match a.level {
                            Level::Error => "error",
                            Level::Warning => "warning",
                            Level::Notice => "notice",
                        };
                        let msg = a.message.clone();
                        self.log(&format!("##[{tag}]{msg}"));
                        self.shared.annotate(a);
                    }
                    Command::StopCommands(_) => {}
                    Command::SetOutput(k, v) => {
                        outputs.insert(k, v);
                    }
                    Command::SaveState(k, v) => {
                        self.states
                            .entry(state_key.to_string())
                            .or_default()
                            .insert(k, v);
                    }
                    Command::Echo(on) => self.echo = on,
                    Command::SetEnv(k, v) if unsecure.allowed => {
                        self.env.insert(k, v);
                    }
                    Command::AddPath(p) if unsecure.allowed => self.path_prepend.push(p),
                    Command::SetEnv(..) => self.refuse_unsecure("set-env", line, unsecure),
                    Command::AddPath(_) => self.refuse_unsecure("add-path", line, unsecure),
                }
            }
        }
    }

    fn read_files(
        &mut self,
        files: &RunnerFiles,
        outputs: &mut IndexMap<String, String>,
        state_key: &str,
    ) -> Result<(), String> {
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        let out = files::parse_key_values(&read(&files.output))
            .map_err(|e| format!("GITHUB_OUTPUT {e}"))?;
        outputs.extend(out);
        let env =
            files::parse_key_values(&read(&files.env)).map_err(|e| format!("GITHUB_ENV {e}"))?;
        for (k, v) in env {
            if k == "NODE_OPTIONS" {
                self.log("##[warning]Can't store NODE_OPTIONS output parameter using '$GITHUB_ENV' command.");
                continue;
            }
            self.env.insert(k, v);
        }
        let state = files::parse_key_values(&read(&files.state))
            .map_err(|e| format!("GITHUB_STATE {e}"))?;
        if !state.is_empty() {
            self.states
                .entry(state_key.to_string())
                .or_default()
                .extend(state);
        }
        self.path_prepend
            .extend(files::parse_paths(&read(&files.path)));
        let summary = read(&files.summary);
        if !summary.trim().is_empty() {
            // GitHub caps a step summary at 1 MiB.
            if summary.len() > 1024 * 1024 {
                self.log("##[warning]The step summary is larger than 1 MiB and was not added.");
            } else {
                let masked = self.shared.masker.mask(&summary);
                self.summary.push_str(&masked);
                if !masked.ends_with('\n') {
                    self.summary.push('\n');
                }
            }
        }
        Ok(())
    }

    /// Evaluates a map of templated strings (env, with).
    pub fn eval_map(&self, m: &Env, ctx: &Ctx) -> Result<IndexMap<String, String>, String> {
        let mut out = IndexMap::new();
        for (k, v) in m {
            // A whole mapping given as an expression (`env: ${{ fromJSON(…) }}`,
            // stored under an empty key) or a `${{ insert }}` key: the
            // mapping its value evaluates to is merged here.
            if k.is_empty() || launchway_expr::template::is_insert(k) {
                match evaluate_template(&v.value, ctx).map_err(|e| e.to_string())? {
                    Value::Object(o) => {
                        for (ok, ov) in o {
                            out.insert(ok, ov.to_display_string());
                        }
                    }
                    other => return Err(format!("expected a mapping, got {:?}", other.kind())),
                }
                continue;
            }
            // A key may itself be an expression.
            let key = if k.contains("${{") {
                interpolate(k, ctx).map_err(|e| format!("{k}: {e}"))?
            } else {
                k.clone()
            };
            out.insert(
                key,
                interpolate(&v.value, ctx).map_err(|e| format!("{k}: {e}"))?,
            );
        }
        Ok(out)
    }

    pub fn env_value(&self) -> Value {
        Value::Object(
            self.env
                .iter()
                .map(|(k, v)| (k.clone(), Value::str(v)))
                .collect(),
        )
    }
}

fn runner_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "X64",
        "aarch64" => "ARM64",
        "x86" => "X86",
        "arm" => "ARM",
        other => other,
    }
}

pub(crate) struct RunnerFiles {
    pub output: PathBuf,
    pub env: PathBuf,
    pub path: PathBuf,
    pub state: PathBuf,
    pub summary: PathBuf,
}

impl RunnerFiles {
    /// The files for the next process. They are truncated, not recreated:
    /// on ext4 creating inodes dominates the per-step cost.
    fn create(temp: &Path) -> std::io::Result<Self> {
        let dir = temp.join("_runner_file_commands");
        crate::private::dir(&dir)?;
        let f = |name: &str| -> std::io::Result<PathBuf> {
            let p = dir.join(name);
            crate::private::write(&p, "")?;
            Ok(p)
        };
        Ok(RunnerFiles {
            output: f("set_output")?,
            env: f("set_env")?,
            path: f("add_path")?,
            state: f("save_state")?,
            summary: f("step_summary")?,
        })
    }
}

/// Runs one job instance's steps and records the result.
pub(crate) async fn run_job(
    shared: &Arc<Shared>,
    scope: &Scope,
    spec: JobSpec,
    environment: Option<String>,
    cancel: Cancel,
) -> JobEnd {
    let job = &scope.wf.jobs[&spec.id];
    let started = Instant::now();
    let mut record = base_record(scope, &spec, JobResult::Running);
    record.started_at = Some(now_rfc3339());
    record.environment.clone_from(&environment);
    let mut ctx = instance_ctx(shared, scope, &spec);
    // Past the environment's gate: its secrets and variables join (and
    // override) the repository's.
    if let Some(env) = &environment
        && let Some(c) = ctx.contexts.as_object_mut()
    {
        for (name, extra) in [
            ("secrets", shared.cfg.environment_secrets.get(env)),
            ("vars", shared.cfg.environment_vars.get(env)),
        ] {
            if let (Some(extra), Some(target)) = (extra, c.get_mut(name)) {
                for (k, v) in extra {
                    target.insert(k, Value::str(v));
                }
            }
        }
    }
    if let Some(n) = &job.name
        && let Ok(name) = interpolate(&n.value, &ctx)
    {
        record.name = name;
    }
    if spec.total > 1 && job.name.is_none() {
        record.name.clone_from(&spec.key);
    }
    shared.emit(RunEvent::JobStarted {
        key: spec.key.clone(),
        name: record.name.clone(),
    });
    // The record says the job runs (on a server, in place of its "queued"
    // placeholder) before its first step ends.
    shared.save_job(record.clone());

    let job_dir = crate::store::job_dir(&shared.run_dir, &spec.key);
    let repo_name = shared.cfg.source.name().to_string();
    let workspace = job_dir.join("work").join(&repo_name).join(&repo_name);
    let temp = job_dir.join("temp");
    // One log file per job; steps are byte ranges of it (creating a file
    // per step costs more than running most steps).
    let log_rel = crate::store::job_log(&spec.key);
    let log_dir = shared.run_dir.join("logs");
    for d in [&workspace, &temp, &log_dir, &job_dir.join("tool")] {
        if let Err(e) = crate::private::dir(d) {
            return fail_before_start(
                shared,
                scope,
                &spec,
                &format!("cannot create {}: {e}", d.display()),
            );
        }
    }
    if let Some(g) = ctx
        .contexts
        .as_object_mut()
        .and_then(|c| c.get_mut("github"))
    {
        g.insert("workspace", Value::str(workspace.to_string_lossy()));
    }
    ctx.workspace = Some(workspace.clone());
    let mut runner = Value::object();
    runner.insert("os", Value::str("Linux"));
    runner.insert("arch", Value::str(runner_arch()));
    runner.insert("name", Value::str(&shared.runner_name));
    runner.insert("environment", Value::str("self-hosted"));
    runner.insert("temp", Value::str(temp.to_string_lossy()));
    runner.insert(
        "tool_cache",
        Value::str(job_dir.join("tool").to_string_lossy()),
    );
    runner.insert("debug", Value::str(if shared.cfg.debug { "1" } else { "" }));
    ctx.set("runner", runner);
    let mut job_ctx = Value::object();
    job_ctx.insert("status", Value::str("success"));
    job_ctx.insert("container", Value::object());
    job_ctx.insert("services", Value::object());
    ctx.set("job", job_ctx);
    ctx.set("steps", Value::object());

    let mut exec = JobExec {
        shared: shared.clone(),
        key: spec.key.clone(),
        job_dir,
        workspace,
        scratch: temp.clone(),
        temp,
        capture: None,
        log: crate::private::create(&shared.run_dir.join(&log_rel)).ok(),
        log_rel,
        log_pos: 0,
        env: IndexMap::new(),
        path_prepend: Vec::new(),
        ctx,
        cancel: cancel.clone(),
        cancel_timeout: Duration::from_secs(300),
        timed_out: Arc::new(AtomicBool::new(false)),
        pgids: Vec::new(),
        summary: String::new(),
        post: Vec::new(),
        step_no: 0,
        group_depth: 0,
        echo: false,
        states: IndexMap::new(),
        container: None,
        registry_logins: Default::default(),
    };

    // Workflow env, then job env: each evaluated with what is visible there.
    let mut setup_error = None;
    let wf_ctx = {
        let mut c = exec.ctx.clone();
        c.contexts = {
            let mut v = Value::object();
            for k in ["github", "secrets", "inputs", "vars"] {
                if let Some(x) = exec.ctx.contexts.get(k) {
                    v.insert(k, x.clone());
                }
            }
            v
        };
        c
    };
    match exec.eval_map(&scope.wf.env, &wf_ctx) {
        Ok(m) => exec.env.extend(m),
        Err(e) => setup_error = Some(format!("workflow env: {e}")),
    }
    match exec.eval_map(&job.env, &exec.ctx) {
        Ok(m) => exec.env.extend(m),
        Err(e) => setup_error = Some(format!("job env: {e}")),
    }
    let env_ctx = exec.env_value();
    exec.ctx.set("env", env_ctx);

    let timeout_minutes = match &job.timeout_minutes {
        Some(t) => evaluate_template(&t.value, &exec.ctx)
            .map(|v| v.to_number())
            .unwrap_or(360.0),
        None => 360.0,
    };
    if let Some(t) = &job.cancel_timeout_minutes
        && let Ok(v) = evaluate_template(&t.value, &exec.ctx)
    {
        let minutes = v.to_number();
        if minutes.is_finite() && minutes >= 0.0 {
            exec.cancel_timeout = Duration::from_secs_f64((minutes * 60.0).min(1e9));
        }
    }
    let continue_on_error = job
        .continue_on_error
        .as_ref()
        .is_some_and(|c| eval_bool(&c.value, &exec.ctx).unwrap_or(false));

    // Job timeout: cancel the job's steps, remember that it was a timeout.
    let timer = {
        let cancel = cancel.clone();
        let flag = exec.timed_out.clone();
        let dur = Duration::from_secs_f64((timeout_minutes.max(0.0) * 60.0).min(1e9));
        tokio::spawn(async move {
            tokio::time::sleep(dur).await;
            flag.store(true, Ordering::SeqCst);
            cancel.cancel();
        })
    };

    let mut failed = false;
    if let Some(e) = setup_error {
        exec.error(&e);
        failed = true;
    }
    // Services and the job container start before any step; if they do
    // not, no step runs (not even `always()` ones: they would run on the
    // host instead).
    let mut containers = crate::container::JobContainers::default();
    let mut run_steps = true;
    if !failed && (job.container.is_some() || !job.services.is_empty()) {
        let (n, started, log_start) = pseudo_step_start(&mut exec, "Initialize containers");
        let outcome = match crate::container::start(&mut exec, job, &mut containers).await {
            Ok(()) => StepResult::Success,
            Err(e) => {
                exec.error(&e);
                failed = true;
                run_steps = false;
                StepResult::Failure
            }
        };
        // Nothing was needed (every image expression was empty): no step.
        if !containers.engine.is_empty() || outcome == StepResult::Failure {
            let rec = finish(
                &mut exec,
                n,
                "Initialize containers".into(),
                outcome,
                outcome,
                started,
                Some(log_start),
            );
            record.steps.push(rec);
            shared.save_job(record.clone());
        } else {
            exec.step_no -= 1;
        }
    }
    let defaults = match Defaults::for_job(scope, job, &exec.ctx) {
        Ok(d) => d,
        Err(e) => {
            exec.error(&e);
            failed = true;
            run_steps = false;
            Defaults {
                shell: None,
                working_directory: None,
            }
        }
    };
    let mut steps_ctx = Value::object();
    if run_steps {
        crate::background::run_steps(
            &mut exec,
            &job.steps,
            &defaults,
            &mut steps_ctx,
            &mut failed,
            &mut record,
        )
        .await;
    }
    // Post steps, in reverse order.
    let posts: Vec<PostStep> = std::mem::take(&mut exec.post);
    for post in posts.into_iter().rev() {
        let rec = actions::run_post(&mut exec, post, failed).await;
        // A failing post step fails the job, as on GitHub (act's
        // `post-step-failure-is-job-failure`).
        failed |= rec.conclusion == StepResult::Failure;
        record.steps.push(rec);
    }
    timer.abort();
    for pg in std::mem::take(&mut exec.pgids) {
        process::kill_group(pg);
    }
    if !containers.engine.is_empty() {
        let (n, started, log_start) = pseudo_step_start(&mut exec, "Stop containers");
        for problem in crate::container::remove(&containers).await {
            exec.log(&format!("##[warning]{problem}"));
        }
        let ok = StepResult::Success;
        let rec = finish(
            &mut exec,
            n,
            "Stop containers".into(),
            ok,
            ok,
            started,
            Some(log_start),
        );
        record.steps.push(rec);
    }
    // Step scripts and runner command files carry substituted secrets: they
    // do not outlive the job (GitHub's runner empties `_temp` the same way).
    if let Err(e) = std::fs::remove_dir_all(&exec.temp)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        exec.log(&format!(
            "##[warning]cannot remove the job's temp directory: {e}"
        ));
    }

    let timed_out = exec.timed_out.load(Ordering::SeqCst);
    let mut result = if timed_out {
        let msg = format!(
            "The job running on launchway has exceeded the maximum execution time of {timeout_minutes} minutes."
        );
        exec.shared.annotate(error_annotation(&spec.key, &msg));
        record.message = Some(msg);
        JobResult::Failure
    } else if cancel.is_cancelled() {
        JobResult::Cancelled
    } else if failed {
        JobResult::Failure
    } else {
        JobResult::Success
    };
    if result == JobResult::Failure && continue_on_error {
        record.message = Some("failed, but continue-on-error is set".into());
        result = JobResult::Success;
    }

    // Job outputs, evaluated against the final steps context.
    exec.ctx.set("steps", steps_ctx);
    let mut outputs = IndexMap::new();
    for (k, v) in &job.outputs {
        match interpolate(&v.value, &exec.ctx) {
            Ok(val) => {
                if exec.shared.masker.reveals(&val) {
                    let msg = format!("Skip output '{k}' since it may contain secret.");
                    let mut a = error_annotation(&spec.key, &msg);
                    a.level = Level::Warning;
                    exec.shared.annotate(a);
                } else {
                    outputs.insert(k.clone(), val);
                }
            }
            Err(e) => exec.error(&format!("output '{k}': {e}")),
        }
    }
    record.result = result;
    record.outputs = outputs.clone();
    record.summary = std::mem::take(&mut exec.summary);
    record.duration_ms = elapsed_ms(started);
    shared.emit(RunEvent::JobFinished {
        key: spec.key.clone(),
        name: record.name.clone(),
        result,
        duration_ms: record.duration_ms,
    });
    shared.save_job(record);
    JobEnd { result, outputs }
}

/// `defaults.run` resolved for a job (job over workflow).
#[derive(Debug, Clone, Default)]
pub(crate) struct Defaults {
    pub shell: Option<String>,
    pub working_directory: Option<String>,
}

/// Whether a step may use the disabled `set-env`/`add-path` commands, and
/// whether it tried to without being allowed (the step then fails).
struct Unsecure {
    allowed: bool,
    refused: bool,
}

impl Defaults {
    /// The job's `defaults.run`, else the workflow's. A job's may hold
    /// expressions (`shell: ${{ env.SHELL }}`, `working-directory: ${{
    /// matrix.dir }}`, the monorepo pattern): evaluated in the job's
    /// context.
    fn for_job(scope: &Scope, job: &launchway_workflow::Job, ctx: &Ctx) -> Result<Self, String> {
        let pick = |own: Option<&Spanned<String>>, top: Option<&Spanned<String>>| match own {
            Some(s) => interpolate(&s.value, ctx)
                .map(Some)
                .map_err(|e| format!("defaults.run: {e}")),
            None => Ok(top.map(|s| s.value.clone())),
        };
        Ok(Defaults {
            shell: pick(
                job.defaults.shell.as_ref(),
                scope.wf.defaults.shell.as_ref(),
            )?,
            working_directory: pick(
                job.defaults.working_directory.as_ref(),
                scope.wf.defaults.working_directory.as_ref(),
            )?,
        })
    }
}

pub(crate) fn step_ctx_entry(
    outcome: StepResult,
    conclusion: StepResult,
    outputs: &IndexMap<String, String>,
) -> Value {
    let mut v = Value::object();
    v.insert("outcome", Value::str(outcome.as_str()));
    v.insert("conclusion", Value::str(conclusion.as_str()));
    v.insert(
        "outputs",
        Value::Object(
            outputs
                .iter()
                .map(|(k, v)| (k.clone(), Value::str(v)))
                .collect(),
        ),
    );
    v
}

fn eval_opt(s: Option<&Spanned<String>>, ctx: &Ctx) -> Result<Option<String>, String> {
    s.map(|s| interpolate(&s.value, ctx).map_err(|e| e.to_string()))
        .transpose()
}

/// Runs one step (of a job or a composite action) and updates the steps
/// context. `failed` is the job's (or composite's) failure state.
pub(crate) fn run_step<'a>(
    exec: &'a mut JobExec,
    step: &'a Step,
    defaults: &'a Defaults,
    steps_ctx: &'a mut Value,
    failed: &'a mut bool,
    prefix: &'a str,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = StepRecord> + Send + 'a>> {
    Box::pin(async move {
        let started = Instant::now();
        exec.step_no += 1;
        let n = exec.step_no;
        let mut ctx = exec.ctx.clone();
        ctx.set("steps", steps_ctx.clone());
        ctx.set("env", exec.env_value());
        let cancelled = exec.cancel.is_cancelled();
        ctx.status = Status {
            success: !*failed && !cancelled,
            failure: *failed,
            cancelled,
        };
        if let Some(job) = ctx.contexts.as_object_mut().and_then(|c| c.get_mut("job")) {
            let status = if cancelled {
                "cancelled"
            } else if *failed {
                "failure"
            } else {
                "success"
            };
            job.insert("status", Value::str(status));
        }
        let name = match (&step.name, &step.run) {
            (Some(n), _) => interpolate(&n.value, &ctx).unwrap_or_else(|_| n.value.clone()),
            // GitHub names a run step after its first line, expressions evaluated.
            (None, Some(r)) => {
                let script = interpolate(&r.value, &ctx).unwrap_or_else(|_| r.value.clone());
                format!(
                    "Run {}",
                    script
                        .lines()
                        .map(str::trim)
                        .find(|l| !l.is_empty())
                        .unwrap_or("")
                )
            }
            (None, None) => step.display_name(),
        };
        let name = format!("{prefix}{}", exec.shared.masker.mask(&name));
        let rel_log = Some(exec.log_pos);

        let cond = step.if_.as_ref().map_or("", |s| s.value.as_str());
        let run = match Condition::parse(cond)
            .map_err(|e| e.message)
            .and_then(|c| c.evaluate(&ctx).map_err(|e| e.0))
        {
            Ok(true) => true,
            Ok(false) => false,
            Err(e) => {
                exec.shared.emit(RunEvent::StepStarted {
                    key: exec.key.clone(),
                    index: n,
                    name: name.clone(),
                });
                exec.error(&format!("The step's if: could not be evaluated: {e}"));
                *failed = true;
                let rec = finish(
                    exec,
                    n,
                    name,
                    StepResult::Failure,
                    StepResult::Failure,
                    started,
                    rel_log,
                );
                if let Some(id) = &step.id {
                    steps_ctx.insert(
                        id.value.clone(),
                        step_ctx_entry(StepResult::Failure, StepResult::Failure, &IndexMap::new()),
                    );
                }
                return rec;
            }
        };
        if !run {
            if let Some(id) = &step.id {
                steps_ctx.insert(
                    id.value.clone(),
                    step_ctx_entry(StepResult::Skipped, StepResult::Skipped, &IndexMap::new()),
                );
            }
            return finish(
                exec,
                n,
                name,
                StepResult::Skipped,
                StepResult::Skipped,
                started,
                None,
            );
        }
        exec.shared.emit(RunEvent::StepStarted {
            key: exec.key.clone(),
            index: n,
            name: name.clone(),
        });
        if let Some(g) = ctx
            .contexts
            .as_object_mut()
            .and_then(|c| c.get_mut("github"))
        {
            let action = step
                .id
                .as_ref()
                .map_or_else(|| format!("__run_{n}"), |i| i.value.clone());
            g.insert("action", Value::str(action));
        }

        if exec.shared.cfg.dry_run {
            exec.log("dry run: not executed");
            let outcome = StepResult::Success;
            if let Some(id) = &step.id {
                steps_ctx.insert(
                    id.value.clone(),
                    step_ctx_entry(outcome, outcome, &IndexMap::new()),
                );
            }
            return finish(exec, n, name, outcome, outcome, started, rel_log);
        }
        let result: Result<StepRun, String> = async {
            let step_env = exec.eval_map(&step.env, &ctx)?;
            let mut env_ctx = exec.env.clone();
            env_ctx.extend(step_env.clone());
            ctx.set(
                "env",
                Value::Object(
                    env_ctx
                        .iter()
                        .map(|(k, v)| (k.clone(), Value::str(v)))
                        .collect(),
                ),
            );
            let coe = match &step.continue_on_error {
                Some(c) => eval_bool(&c.value, &ctx)?,
                None => false,
            };
            let timeout = match &step.timeout_minutes {
                Some(t) => {
                    let m = evaluate_template(&t.value, &ctx)
                        .map_err(|e| e.to_string())?
                        .to_number();
                    (m.is_finite() && m > 0.0).then(|| Duration::from_secs_f64(m * 60.0))
                }
                None => None,
            };
            let _ = coe;
            if let Some(script) = &step.run {
                let script = interpolate(&script.value, &ctx).map_err(|e| e.to_string())?;
                let shell = eval_opt(step.shell.as_ref(), &ctx)?.or_else(|| defaults.shell.clone());
                let wd = eval_opt(step.working_directory.as_ref(), &ctx)?
                    .or_else(|| defaults.working_directory.clone());
                Ok(run_script(
                    exec,
                    &script,
                    shell.as_deref(),
                    wd.as_deref(),
                    &step_env,
                    timeout,
                    n,
                )
                .await)
            } else if let Some(uses) = &step.uses {
                let with = exec.eval_map(&step.with, &ctx)?;
                Ok(actions::run_uses(
                    exec,
                    &uses.value,
                    with,
                    &step_env,
                    &ctx,
                    timeout,
                    step.id.as_ref().map(|i| i.value.as_str()),
                )
                .await)
            } else {
                Err("a step needs 'run' or 'uses'".into())
            }
        }
        .await;
        let run = match result {
            Ok(r) => r,
            Err(e) => {
                exec.error(&e);
                StepRun::failed()
            }
        };
        let coe = step
            .continue_on_error
            .as_ref()
            .is_some_and(|c| eval_bool(&c.value, &ctx).unwrap_or(false));
        let outcome = if run.cancelled {
            StepResult::Cancelled
        } else if run.failed {
            StepResult::Failure
        } else {
            StepResult::Success
        };
        let conclusion = if outcome == StepResult::Failure && coe {
            StepResult::Success
        } else {
            outcome
        };
        if conclusion == StepResult::Failure {
            *failed = true;
        }
        if let Some(id) = &step.id {
            steps_ctx.insert(
                id.value.clone(),
                step_ctx_entry(outcome, conclusion, &run.outputs),
            );
        }
        finish(exec, n, name, outcome, conclusion, started, rel_log)
    })
}

/// Starts a step the runner adds itself (container setup and teardown).
pub(crate) fn pseudo_step_start(exec: &mut JobExec, name: &str) -> (usize, Instant, u64) {
    exec.step_no += 1;
    exec.shared.emit(RunEvent::StepStarted {
        key: exec.key.clone(),
        index: exec.step_no,
        name: name.to_string(),
    });
    (exec.step_no, Instant::now(), exec.log_pos)
}

/// Records a finished (or skipped) step and tells the live display.
pub(crate) fn finish(
    exec: &mut JobExec,
    n: usize,
    name: String,
    outcome: StepResult,
    conclusion: StepResult,
    started: Instant,
    log_start: Option<u64>,
) -> StepRecord {
    let duration_ms = elapsed_ms(started);
    if outcome != StepResult::Skipped {
        exec.shared.emit(RunEvent::StepFinished {
            key: exec.key.clone(),
            index: n,
            conclusion,
            outcome: Some(outcome),
            duration_ms,
        });
    }
    StepRecord {
        index: n,
        name,
        outcome,
        conclusion,
        duration_ms,
        log: log_start.map(|_| exec.log_rel.clone()),
        log_start: log_start.unwrap_or(0),
        log_end: log_start.map_or(0, |_| exec.log_pos),
    }
}

async fn run_script(
    exec: &mut JobExec,
    script: &str,
    shell: Option<&str>,
    working_directory: Option<&str>,
    step_env: &IndexMap<String, String>,
    timeout: Option<Duration>,
    n: usize,
) -> StepRun {
    static HAS_BASH: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let has_bash = match &exec.container {
        Some(c) => c.has_bash,
        None => *HAS_BASH.get_or_init(|| which("bash").is_some()),
    };
    let shell = match Shell::resolve(shell, has_bash) {
        Ok(s) => s,
        Err(e) => {
            exec.error(&e.0);
            return StepRun::failed();
        }
    };
    let cwd = match working_directory {
        Some(wd) => exec.workspace.join(wd),
        None => exec.workspace.clone(),
    };
    if !cwd.is_dir() {
        exec.error(&format!(
            "working-directory '{}' does not exist",
            cwd.display()
        ));
        return StepRun::failed();
    }
    let ext = if shell.extension.is_empty() {
        String::new()
    } else {
        format!(".{}", shell.extension)
    };
    // One script path per job, overwritten: no new inode per step.
    let _ = n;
    let path = exec.scratch.join(format!("step{ext}"));
    if let Err(e) = crate::private::write(&path, script) {
        exec.error(&format!("cannot write the script: {e}"));
        return StepRun::failed();
    }
    let argv = shell.argv(&path.to_string_lossy());
    for line in script.lines() {
        exec.log(&format!("##[command]{line}"));
    }
    exec.exec_in(&argv, &cwd, step_env, timeout, "", true).await
}
