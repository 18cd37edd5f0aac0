//! Repositories, `workflow_dispatch`, runs, their logs (plain or followed
//! over Server-Sent Events), cancel and re-run.

use super::{ApiError, AppState, Caller, record, valid_name};
use crate::auth::Role;
use crate::store::{NewRun, Repo, Run, RunFilter, RunStatus};
use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use launchway_runner::prepare;
use launchway_runner::source::Source;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

/// A run number from the path; anything else is a JSON 400.
pub struct RunId(pub i64);

impl axum::extract::FromRequestParts<AppState> for RunId {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<RunId, ApiError> {
        match Path::<i64>::from_request_parts(parts, state).await {
            Ok(Path(id)) => Ok(RunId(id)),
            Err(e) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("a run is named by its number: {}", e.body_text()),
            )),
        }
    }
}

/// Query parameters, or a JSON 400 saying what is wrong with them.
fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(v)| v)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))
}

pub async fn list_repos(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<Repo>>, ApiError> {
    caller.require(Role::Viewer)?;
    Ok(Json(state.store.repos().await?))
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRepo {
    name: String,
    location: String,
}

/// Registers a repository; the answer carries its webhook secret, shown
/// only this once (the store keeps it sealed).
pub async fn add_repo(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<NewRepo>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    if let Err(e) = caller.require(Role::Admin) {
        record(&state, &caller, "repo.add", "repo", "denied").await?;
        return Err(e);
    }
    let Json(new) = body?;
    if !valid_name(&new.name) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "repository names are 1-64 characters of letters, digits, '.', '_' and '-'",
        ));
    }
    let location = if crate::triggers::is_url(&new.location) {
        // Cloned under the data dir, fetched before each poll.
        let dest = state.engine.data_dir().join("repos").join(&new.name);
        if dest.exists() {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!("repository '{}' is already registered", new.name),
            ));
        }
        let url = new.location.clone();
        let d = dest.clone();
        tokio::task::spawn_blocking(move || crate::triggers::clone(&url, &d))
            .await
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
            .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e))?;
        new.location.clone()
    } else {
        let path = std::path::Path::new(&new.location);
        if !path.is_absolute() {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "location must be an absolute path to a git repository on the server, or a URL to clone",
            ));
        }
        let source = Source::open(path, None, false)
            .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
        if source.git_root.is_none() {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("{} is not a git repository with a commit", new.location),
            ));
        }
        source.dir.to_string_lossy().to_string()
    };
    let secret = crate::sealed::MasterKey::generate_hex()
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let sealed = state
        .key
        .seal(&webhook_scope(&new.name), secret.as_bytes())
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let target = format!("repo/{}", new.name);
    match state
        .store
        .add_repo(&new.name, &location, &sealed, crate::now_ms())
        .await
    {
        Ok(repo) => {
            record(&state, &caller, "repo.add", &target, "ok").await?;
            Ok((
                StatusCode::CREATED,
                Json(json!({"repo": repo, "webhook_secret": secret})),
            ))
        }
        Err(e) => {
            record(&state, &caller, "repo.add", &target, &format!("error: {e}")).await?;
            Err(e.into())
        }
    }
}

/// What a repository's webhook secret is sealed under.
pub(crate) fn webhook_scope(repo: &str) -> String {
    format!("repo/{repo}/webhook")
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dispatch {
    pub(crate) workflow: String,
    #[serde(default, rename = "ref")]
    pub(crate) git_ref: Option<String>,
    #[serde(default)]
    pub(crate) inputs: BTreeMap<String, String>,
}

/// `workflow_dispatch`: queues a run of one workflow at a ref.
pub async fn dispatch(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    body: Result<Json<Dispatch>, JsonRejection>,
) -> Result<(StatusCode, Json<Run>), ApiError> {
    let target = format!("repo/{name}");
    if let Err(e) = caller.require(Role::Developer) {
        record(&state, &caller, "run.dispatch", &target, "denied").await?;
        return Err(e);
    }
    let Json(d) = body?;
    let (repo, _) =
        state.store.repo(&name).await?.ok_or_else(|| {
            ApiError::new(StatusCode::NOT_FOUND, format!("no repository '{name}'"))
        })?;
    let dir = crate::triggers::current_dir(state.engine.data_dir(), &repo).await;
    let unprocessable =
        |e: &dyn std::fmt::Display| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string());
    let git_ref = match d.git_ref.as_deref() {
        None | Some("") => None,
        Some(r) => Some(prepare::full_ref(r, Some(&dir))),
    };
    let source = Source::open(&dir, git_ref.as_deref(), false).map_err(|e| unprocessable(&e))?;
    let git_ref = git_ref
        .or_else(|| source.head_ref.clone())
        .unwrap_or_else(|| "refs/heads/main".into());
    let workflow = d.workflow.trim_start_matches("./").to_string();
    let wf = prepare::workflow(&source, &workflow, &git_ref).map_err(|e| unprocessable(&e))?;
    let inputs: indexmap::IndexMap<String, String> = d.inputs.clone().into_iter().collect();
    prepare::check_dispatch(&wf, &workflow, &inputs).map_err(|e| unprocessable(&e))?;
    let new = NewRun {
        repo: name,
        workflow,
        event: "workflow_dispatch".into(),
        git_ref,
        sha: source.sha.clone(),
        inputs: d.inputs,
        actor: caller.user.name.clone(),
        rerun_of: 0,
        base_ref: String::new(),
        action: String::new(),
        resume_dir: String::new(),
    };
    let run = state.engine.enqueue(&new).await?;
    record(
        &state,
        &caller,
        "run.dispatch",
        &format!("run/{}", run.id),
        "ok",
    )
    .await?;
    Ok((StatusCode::CREATED, Json(run)))
}

#[derive(Debug, serde::Deserialize)]
pub struct RunsQuery {
    pub(crate) repo: Option<String>,
    pub(crate) status: Option<String>,
    pub(crate) limit: Option<i64>,
}

pub async fn list_runs(
    State(state): State<AppState>,
    caller: Caller,
    q: Result<Query<RunsQuery>, QueryRejection>,
) -> Result<Json<Vec<Run>>, ApiError> {
    caller.require(Role::Viewer)?;
    let q = query(q)?;
    let status = match q.status.as_deref() {
        None | Some("") => None,
        Some(s) => Some(
            s.parse::<RunStatus>()
                .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e))?,
        ),
    };
    let filter = RunFilter {
        repo: q.repo.filter(|r| !r.is_empty()),
        status,
        limit: page_limit(q.limit)?,
    };
    Ok(Json(state.store.runs(&filter).await?))
}

/// A list's `limit`: 1 to 1000, default 100 (`limit=-1` is not "all").
fn page_limit(limit: Option<i64>) -> Result<i64, ApiError> {
    match limit {
        None => Ok(100),
        Some(n) if (1..=1000).contains(&n) => Ok(n),
        Some(n) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("limit: 1 to 1000, not {n}"),
        )),
    }
}

pub(crate) async fn run_or_404(state: &AppState, id: i64) -> Result<Run, ApiError> {
    state
        .store
        .run(id)
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no run {id}")))
}

/// The runner's record of a run (jobs, steps, annotations), when started.
pub(crate) fn runner_record(run: &Run) -> Option<Value> {
    if run.run_dir.is_empty() {
        return None;
    }
    let text = std::fs::read_to_string(std::path::Path::new(&run.run_dir).join("run.json")).ok()?;
    serde_json::from_str(&text).ok()
}

pub async fn show_run(
    State(state): State<AppState>,
    caller: Caller,
    RunId(id): RunId,
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Viewer)?;
    let run = run_or_404(&state, id).await?;
    let rec = runner_record(&run).unwrap_or(Value::Null);
    let mut v = serde_json::to_value(&run).unwrap_or(Value::Null);
    v["jobs"] = rec.get("jobs").cloned().unwrap_or_else(|| json!([]));
    v["annotations"] = rec.get("annotations").cloned().unwrap_or_else(|| json!([]));
    Ok(Json(v))
}

#[derive(Debug, serde::Deserialize)]
pub struct LogsQuery {
    job: Option<String>,
    follow: Option<bool>,
    /// Skip this many lines (pagination).
    offset: Option<u64>,
    /// At most this many lines.
    limit: Option<u64>,
}

/// What a log response reads at once: a plain response passes a longer
/// line on in pieces of this size (one line still), a follower reads this
/// much per file per poll.
const MAX_LINE: u64 = 1 << 20;

/// The longest line a follower's event carries whole; longer ones are
/// split (the buffer per follower stays bounded).
const MAX_EVENT_LINE: usize = 16 << 20;

/// The job log files of a run (job key, path): every `logs/*.log` the
/// runner has opened, named by the record's job keys (the record lists a
/// job's steps only as they finish; the file exists from the job's start).
fn log_files(run: &Run, job: Option<&str>) -> Vec<(String, std::path::PathBuf)> {
    if run.run_dir.is_empty() {
        return Vec::new();
    }
    let dir = std::path::Path::new(&run.run_dir);
    let jobs: Vec<(String, String)> = runner_record(run)
        .and_then(|rec| {
            rec["jobs"].as_array().map(|jobs| {
                jobs.iter()
                    .filter_map(|j| {
                        Some((
                            j["key"].as_str()?.to_string(),
                            j["id"].as_str()?.to_string(),
                        ))
                    })
                    .collect()
            })
        })
        .unwrap_or_default();
    let mut files: Vec<(usize, String, std::path::PathBuf)> = std::fs::read_dir(dir.join("logs"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            let stem = name.strip_suffix(".log")?.to_string();
            let found = jobs
                .iter()
                .position(|(k, _)| launchway_runner::store::slug(k) == stem);
            let (key, id) = found.map_or((stem.clone(), stem.clone()), |i| jobs[i].clone());
            if job.is_some_and(|want| want != key && want != id) {
                return None;
            }
            Some((found.unwrap_or(usize::MAX), key, e.path()))
        })
        .collect();
    files.sort();
    files.into_iter().map(|(_, k, p)| (k, p)).collect()
}

pub async fn logs(
    State(state): State<AppState>,
    caller: Caller,
    RunId(id): RunId,
    q: Result<Query<LogsQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    caller.require(Role::Viewer)?;
    let q = query(q)?;
    let run = run_or_404(&state, id).await?;
    if q.follow.unwrap_or(false) {
        return Ok(follow(state, id, q.job).into_response());
    }
    // Streamed file by file, line by line: a 100 MB log costs each reader
    // a buffer, not the log.
    let files: std::collections::VecDeque<_> = log_files(&run, q.job.as_deref()).into();
    let start = PlainLogs {
        files,
        current: None,
        skip: q.offset.unwrap_or(0),
        left: q.limit,
        mid_line: false,
        skipping: false,
    };
    let stream = futures_util::stream::unfold(start, |mut s| async move {
        let chunk = s.next_chunk().await?;
        Some((Ok::<_, std::io::Error>(axum::body::Bytes::from(chunk)), s))
    });
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        axum::body::Body::from_stream(stream),
    )
        .into_response())
}

/// A plain log response being written.
struct PlainLogs {
    files: std::collections::VecDeque<(String, std::path::PathBuf)>,
    current: Option<(String, tokio::io::BufReader<tokio::fs::File>)>,
    skip: u64,
    left: Option<u64>,
    /// The last piece did not end its line: the next one continues it.
    mid_line: bool,
    /// The line being continued is skipped (pagination).
    skipping: bool,
}

impl PlainLogs {
    /// The next ~64 KiB of `job | line` lines; `None` at the end.
    async fn next_chunk(&mut self) -> Option<Vec<u8>> {
        use tokio::io::{AsyncBufReadExt, AsyncReadExt};
        let mut out = Vec::with_capacity(64 << 10);
        while out.len() < 64 << 10 {
            if self.left == Some(0) && !self.mid_line {
                break;
            }
            let Some((key, reader)) = self.current.as_mut() else {
                let Some((key, path)) = self.files.pop_front() else {
                    break;
                };
                if let Ok(f) = tokio::fs::File::open(&path).await {
                    self.current = Some((key, tokio::io::BufReader::with_capacity(64 << 10, f)));
                }
                continue;
            };
            let mut line = Vec::new();
            let n = (&mut *reader)
                .take(MAX_LINE)
                .read_until(b'\n', &mut line)
                .await
                .unwrap_or(0);
            if n == 0 {
                if self.mid_line && !self.skipping {
                    out.push(b'\n');
                }
                self.current = None;
                self.mid_line = false;
                continue;
            }
            let ends = line.last() == Some(&b'\n');
            if !self.mid_line {
                // A new line: counted, prefixed.
                self.skipping = self.skip > 0;
                if self.skipping {
                    self.skip -= 1;
                } else {
                    if let Some(l) = self.left.as_mut() {
                        *l -= 1;
                    }
                    out.extend_from_slice(key.as_bytes());
                    out.extend_from_slice(b" | ");
                }
            }
            if !self.skipping {
                out.extend_from_slice(&line);
            }
            self.mid_line = !ends;
        }
        (!out.is_empty()).then_some(out)
    }
}

/// What a follower has read so far.
struct Follow {
    state: AppState,
    id: i64,
    job: Option<String>,
    /// Bytes read per log file, and a partial last line held back.
    read: BTreeMap<std::path::PathBuf, (u64, String)>,
    pending: std::collections::VecDeque<SseEvent>,
    done: bool,
}

impl Follow {
    /// New complete lines since the last poll.
    /// Returns whether a file has more to read than this poll took.
    fn poll_files(&mut self, run: &Run) -> bool {
        use std::io::{Read, Seek, SeekFrom};
        let mut more = false;
        for (key, path) in log_files(run, self.job.as_deref()) {
            let entry = self.read.entry(path.clone()).or_default();
            let Ok(mut f) = std::fs::File::open(&path) else {
                continue;
            };
            if f.seek(SeekFrom::Start(entry.0)).is_err() {
                continue;
            }
            // At most 1 MiB per file per poll: a late follower of a long
            // log catches up in steps, never holding the whole log.
            let mut buf = Vec::new();
            if f.take(MAX_LINE).read_to_end(&mut buf).is_err() {
                continue;
            }
            more |= buf.len() as u64 == MAX_LINE;
            entry.0 += buf.len() as u64;
            entry.1.push_str(&String::from_utf8_lossy(&buf));
            while let Some(nl) = entry.1.find('\n') {
                let line: String = entry.1.drain(..=nl).collect();
                let data = json!({"job": key, "line": line.trim_end_matches('\n')});
                self.pending
                    .push_back(SseEvent::default().event("log").data(data.to_string()));
            }
            // A line longer than that goes in pieces.
            if entry.1.len() >= MAX_EVENT_LINE {
                let piece = std::mem::take(&mut entry.1);
                let data = json!({"job": key, "line": piece});
                self.pending
                    .push_back(SseEvent::default().event("log").data(data.to_string()));
            }
        }
        more
    }
}

/// Streams a run's log lines as they are written, then an `end` event
/// with the run's final status. Lines come from the log files on disk, so
/// nothing is missed between polls and a follower that joins late gets
/// everything from the start.
fn follow(
    state: AppState,
    id: i64,
    job: Option<String>,
) -> Sse<impl futures_util::Stream<Item = Result<SseEvent, std::convert::Infallible>>> {
    let start = Follow {
        state,
        id,
        job,
        read: BTreeMap::new(),
        pending: std::collections::VecDeque::new(),
        done: false,
    };
    let stream = futures_util::stream::unfold(start, |mut f| async move {
        loop {
            if let Some(ev) = f.pending.pop_front() {
                return Some((Ok(ev), f));
            }
            if f.done {
                return None;
            }
            let run = match f.state.store.run(f.id).await {
                Ok(Some(r)) => r,
                _ => {
                    f.done = true;
                    continue;
                }
            };
            // Read the files after the status: a final status means the
            // files are complete, so this read gets their last lines.
            if f.poll_files(&run) {
                // Catching up: the rest of the file next, status later.
                continue;
            }
            if run.status.is_final() {
                f.done = true;
                let data = json!({"status": run.status, "message": run.message});
                f.pending
                    .push_back(SseEvent::default().event("end").data(data.to_string()));
                continue;
            }
            if f.pending.is_empty() {
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    RunId(id): RunId,
) -> Result<Json<Value>, ApiError> {
    let target = format!("run/{id}");
    if let Err(e) = caller.require(Role::Developer) {
        record(&state, &caller, "run.cancel", &target, "denied").await?;
        return Err(e);
    }
    run_or_404(&state, id).await?;
    let cancelled = state.engine.cancel(id).await?;
    record(
        &state,
        &caller,
        "run.cancel",
        &target,
        if cancelled { "ok" } else { "already finished" },
    )
    .await?;
    if !cancelled {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("run {id} has already finished"),
        ));
    }
    Ok(Json(json!({"cancelled": id})))
}

#[derive(Debug, serde::Deserialize)]
pub struct RerunQuery {
    pub(crate) failed: Option<bool>,
}

/// Queues the same workflow at the same commit with the same inputs;
/// with `failed=true` only the jobs that did not succeed (and what needs
/// them) run again, the others' results and outputs are reused.
pub async fn rerun(
    State(state): State<AppState>,
    caller: Caller,
    RunId(id): RunId,
    q: Result<Query<RerunQuery>, QueryRejection>,
) -> Result<(StatusCode, Json<Run>), ApiError> {
    let q = query(q)?;
    let target = format!("run/{id}");
    if let Err(e) = caller.require(Role::Developer) {
        record(&state, &caller, "run.rerun", &target, "denied").await?;
        return Err(e);
    }
    let old = run_or_404(&state, id).await?;
    if !old.status.is_final() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("run {id} is still {}", old.status.as_str()),
        ));
    }
    let new = NewRun {
        repo: old.repo,
        workflow: old.workflow,
        event: old.event,
        git_ref: old.git_ref,
        sha: old.sha,
        inputs: old.inputs,
        actor: caller.user.name.clone(),
        rerun_of: id,
        base_ref: old.base_ref,
        action: old.action,
        resume_dir: if q.failed.unwrap_or(false) {
            old.run_dir
        } else {
            String::new()
        },
    };
    let run = state.engine.enqueue(&new).await?;
    record(
        &state,
        &caller,
        "run.rerun",
        &target,
        &format!("run/{}", run.id),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(run)))
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewBody {
    pub(crate) environment: String,
    #[serde(default)]
    pub(crate) comment: Option<String>,
}

pub async fn approve(
    state: State<AppState>,
    caller: Caller,
    id: RunId,
    body: Result<Json<ReviewBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    review(state, caller, id, body, true).await
}

pub async fn reject(
    state: State<AppState>,
    caller: Caller,
    id: RunId,
    body: Result<Json<ReviewBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    review(state, caller, id, body, false).await
}

/// The protection rules a run's deployment to `environment` is held by:
/// from the repository's default (or tracked) branch, never the run's.
pub(crate) async fn deployment_rules(
    state: &AppState,
    run: &Run,
    environment: &str,
) -> Result<launchway_runner::environments::Protection, ApiError> {
    let (repo, _) = state.store.repo(&run.repo).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no repository '{}'", run.repo),
        )
    })?;
    let dir = crate::triggers::checkout_dir(state.engine.data_dir(), &repo);
    let source = Source::open(&dir, Some(&run.sha), false)
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
    let rules = crate::environments::rules_source(state.engine.data_dir(), &repo, &source)
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
    Ok(
        launchway_runner::environments::protection(&rules.source, environment)
            .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e))?
            .map(|r| r.protection)
            .unwrap_or_default(),
    )
}

/// Approves or rejects a run's pending deployment to an environment, as
/// the environment's protection rules allow: required reviewers (users or
/// roles), no self-review when the rules say so. Refusals are audited.
async fn review(
    State(state): State<AppState>,
    caller: Caller,
    RunId(id): RunId,
    body: Result<Json<ReviewBody>, JsonRejection>,
    approved: bool,
) -> Result<Json<Value>, ApiError> {
    let action = if approved {
        "deploy.approve"
    } else {
        "deploy.reject"
    };
    let Json(b) = body?;
    let target = format!("run/{id}/env/{}", b.environment);
    let run = run_or_404(&state, id).await?;
    let pending = run.status == RunStatus::Waiting
        && runner_record(&run).is_some_and(|rec| {
            rec["jobs"].as_array().is_some_and(|jobs| {
                jobs.iter()
                    .any(|j| j["result"] == "waiting" && j["environment"] == b.environment.as_str())
            })
        });
    if !pending {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "run {id} is not waiting for a deployment to '{}'",
                b.environment
            ),
        ));
    }
    let protection = deployment_rules(&state, &run, &b.environment).await?;
    let groups = state.store.groups_of(&caller.user.name).await?;
    let who = crate::approval::Reviewer {
        name: &caller.user.name,
        role: caller.user.role,
        groups: &groups,
    };
    if let Err(refusal) = crate::approval::may_review(&protection, &who, &run.actor) {
        record(
            &state,
            &caller,
            action,
            &target,
            &format!("denied: {refusal}"),
        )
        .await?;
        return Err(ApiError::new(StatusCode::FORBIDDEN, refusal.to_string()));
    }
    let review = crate::approval::Review {
        by: caller.user.name.clone(),
        approved,
        at_ms: crate::now_ms(),
        comment: b.comment.filter(|c| !c.is_empty()),
    };
    state.store.add_review(id, &b.environment, &review).await?;
    let reviews = state.store.reviews(id, &b.environment).await?;
    let gate = crate::approval::gate(
        &protection,
        &run.git_ref,
        run.created_ms,
        &reviews,
        crate::now_ms(),
    );
    let outcome = match gate {
        crate::approval::Gate::Rejected { by } => {
            let msg = format!(
                "the deployment to '{}' was rejected by {by}{}",
                b.environment,
                review
                    .comment
                    .as_ref()
                    .map(|c| format!(": {c}"))
                    .unwrap_or_default()
            );
            state
                .store
                .finish_run(id, RunStatus::Failure, &msg, crate::now_ms())
                .await?;
            "rejected"
        }
        crate::approval::Gate::RefNotAllowed(r) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!("{r} may not deploy to '{}'", b.environment),
            ));
        }
        // Approved (a wait timer, if any, runs in the resumed job).
        _ => {
            if state.store.resume_approved(id, &b.environment).await? {
                state.engine.wake();
            }
            "approved"
        }
    };
    record(&state, &caller, action, &target, outcome).await?;
    Ok(Json(
        json!({"run": id, "environment": b.environment, "decision": outcome}),
    ))
}

#[derive(Debug, serde::Deserialize)]
pub struct DeploymentsQuery {
    repo: Option<String>,
    environment: Option<String>,
    limit: Option<i64>,
}

pub async fn deployments(
    State(state): State<AppState>,
    caller: Caller,
    q: Result<Query<DeploymentsQuery>, QueryRejection>,
) -> Result<Json<Vec<crate::store::Deployment>>, ApiError> {
    caller.require(Role::Viewer)?;
    let q = query(q)?;
    Ok(Json(
        state
            .store
            .deployments(
                q.repo.as_deref(),
                q.environment.as_deref(),
                page_limit(q.limit)?,
            )
            .await?,
    ))
}

/// Artifact names as the runner accepts them; anything else cannot exist.
fn valid_artifact_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains([
            '/', '\\', ':', '"', '<', '>', '|', '*', '?', '\r', '\n', '\0',
        ])
}

fn manifest(run: &Run, name: &str) -> Option<Value> {
    if run.run_dir.is_empty() || !valid_artifact_name(name) {
        return None;
    }
    let path = std::path::Path::new(&run.run_dir)
        .join("artifact-manifests")
        .join(format!("{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

/// A run's artifacts: names, files, sizes and SHA-256 digests.
pub async fn artifacts(
    State(state): State<AppState>,
    caller: Caller,
    RunId(id): RunId,
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Viewer)?;
    let run = run_or_404(&state, id).await?;
    let mut out = Vec::new();
    if !run.run_dir.is_empty() {
        let dir = std::path::Path::new(&run.run_dir).join("artifact-manifests");
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                e.file_name()
                    .to_string_lossy()
                    .strip_suffix(".json")
                    .map(str::to_string)
            })
            .collect();
        names.sort();
        out.extend(names.iter().filter_map(|n| manifest(&run, n)));
    }
    Ok(Json(Value::Array(out)))
}

/// One file of an artifact. Only paths its manifest lists are served (so
/// no path leads outside it), with the digest to check it against.
pub async fn artifact_file(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, name, path)): Path<(i64, String, String)>,
) -> Result<Response, ApiError> {
    caller.require(Role::Viewer)?;
    let run = run_or_404(&state, id).await?;
    let m = manifest(&run, &name).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("run {id} has no artifact '{name}'"),
        )
    })?;
    let entry = m["files"]
        .as_array()
        .and_then(|fs| fs.iter().find(|f| f["path"] == path.as_str()))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!("artifact '{name}' has no file '{path}'"),
            )
        })?;
    let file = std::path::Path::new(&run.run_dir)
        .join("artifacts")
        .join(&name)
        .join(&path);
    let data = tokio::fs::read(&file).await.map_err(|_| {
        ApiError::new(
            StatusCode::GONE,
            format!("the files of run {id} are no longer kept (retention)"),
        )
    })?;
    let sha = entry["sha256"].as_str().unwrap_or("").to_string();
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::HeaderName::from_static("x-content-sha256"), sha),
        ],
        data,
    )
        .into_response())
}
