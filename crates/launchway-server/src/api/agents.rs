//! Agents: registration, listing and disabling (admins), and the channel
//! an agent uses for its jobs — claim, report, finish, the commit's
//! objects, artifacts, deploy steps. Agent routes authenticate with the
//! agent's own credential (`lwa_…`), never a user token, and an agent can
//! only touch the jobs assigned to it.

use super::{ApiError, AppState, Caller, record, valid_name};
use crate::agents::{AgentError, Assignment, Report, ReportAnswer};
use crate::auth::{self, Denied, Role};
use crate::store::agents::{AGENT_PREFIX, Agent};
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use launchway_runner::job::JobEnd;
use serde_json::{Value, json};

impl From<AgentError> for ApiError {
    fn from(e: AgentError) -> ApiError {
        match e {
            AgentError::NotYours(_) => ApiError::new(StatusCode::CONFLICT, e.to_string()),
            AgentError::NotHere(_) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
            AgentError::Store(s) => s.into(),
            AgentError::Other(m) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, m),
        }
    }
}

fn hub(state: &AppState) -> Result<&std::sync::Arc<crate::agents::Hub>, ApiError> {
    Ok(&state.hub)
}

/// The agent behind a request (its credential in `Authorization`).
#[derive(Debug, Clone)]
pub struct AgentCaller(pub Agent);

impl FromRequestParts<AppState> for AgentCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let token = auth::bearer(header)?;
        if !token.starts_with(AGENT_PREFIX) {
            return Err(Denied::InvalidToken.into());
        }
        let agent = state
            .store
            .authenticate_agent(token)
            .await?
            .ok_or(Denied::InvalidToken)?;
        Ok(AgentCaller(agent))
    }
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRegistration {
    #[serde(default)]
    label: String,
    /// Minutes the token stays valid (default 60, at most a week).
    #[serde(default)]
    expires_minutes: Option<i64>,
}

/// An admin issues a registration token (shown once).
pub async fn create_registration(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<NewRegistration>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    if let Err(e) = caller.require(Role::Admin) {
        record(&state, &caller, "agent.registration", "agents", "denied").await?;
        return Err(e);
    }
    let Json(b) = body?;
    let minutes = b.expires_minutes.unwrap_or(60);
    if !(1..=7 * 24 * 60).contains(&minutes) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "expires_minutes must be between 1 and 10080 (a week)",
        ));
    }
    let now = crate::now_ms();
    let (id, token) = state
        .store
        .create_registration(&b.label, &caller.user.name, now, now + minutes * 60_000)
        .await?;
    record(
        &state,
        &caller,
        "agent.registration",
        &format!("registration/{id}"),
        "ok",
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "id": id, "token": token, "expires_ms": now + minutes * 60_000 })),
    ))
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    name: String,
    #[serde(default)]
    labels: Vec<String>,
    #[serde(default)]
    version: String,
    /// Take over an existing agent of this name (new credential).
    #[serde(default)]
    replace: bool,
}

/// An agent exchanges a registration token for its own credential.
pub async fn register(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    body: Result<Json<Registration>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let token = auth::bearer(header)?;
    // Who asks comes before what they ask.
    if !state
        .store
        .registration_is_live(token, crate::now_ms())
        .await?
    {
        return Err(Denied::InvalidToken.into());
    }
    let Json(r) = body?;
    if !valid_name(&r.name) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "agent names are 1-64 characters of letters, digits, '.', '_' and '-'",
        ));
    }
    let (agent, credential) = state
        .store
        .register_agent(
            token,
            &r.name,
            &r.labels,
            &r.version,
            r.replace,
            crate::now_ms(),
        )
        .await?;
    state
        .store
        .audit(
            crate::now_ms(),
            crate::audit::Event {
                actor: format!("agent:{}", agent.name),
                action: "agent.register".into(),
                target: format!("agent/{}", agent.id),
                source: "agent".into(),
                outcome: "ok".into(),
            },
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "agent": agent, "token": credential })),
    ))
}

/// Agents with their status: `busy` (holds a job), `idle` (heard from
/// within the lease), `offline`, or `disabled`.
pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Viewer)?;
    let lease = i64::try_from(state.hub.settings().lease.as_millis()).unwrap_or(30_000);
    let now = crate::now_ms();
    let mut out = Vec::new();
    for a in state.store.agents().await? {
        let jobs = state.store.assigned_jobs(a.id).await?;
        let status = if a.disabled {
            "disabled"
        } else if now - a.last_contact_ms > lease {
            "offline"
        } else if jobs.is_empty() {
            "idle"
        } else {
            "busy"
        };
        let mut v = serde_json::to_value(&a).unwrap_or_default();
        v["status"] = json!(status);
        v["jobs"] = json!(jobs.iter().map(|j| j.id).collect::<Vec<_>>());
        out.push(v);
    }
    Ok(Json(Value::Array(out)))
}

/// An admin disables (`disable`) or re-enables (`enable`) an agent.
pub async fn set_disabled(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, verb)): Path<(i64, String)>,
) -> Result<Json<Agent>, ApiError> {
    let disabled = match verb.as_str() {
        "disable" => true,
        "enable" => false,
        _ => return Err(ApiError::new(StatusCode::NOT_FOUND, "no such endpoint")),
    };
    let target = format!("agent/{id}");
    if let Err(e) = caller.require(Role::Admin) {
        record(&state, &caller, &format!("agent.{verb}"), &target, "denied").await?;
        return Err(e);
    }
    state.store.set_agent_disabled(id, disabled).await?;
    record(&state, &caller, &format!("agent.{verb}"), &target, "ok").await?;
    let agent = state
        .store
        .agent(id)
        .await?
        .ok_or(crate::store::StoreError::NoAgent(id))?;
    Ok(Json(agent))
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claim {
    #[serde(default)]
    labels: Vec<String>,
    #[serde(default)]
    version: String,
    /// Names this run of the agent process: jobs it took in an earlier one
    /// are lost.
    #[serde(default)]
    session: String,
}

/// Long-polls for a job: 200 with the assignment, 204 when none came.
pub async fn claim(
    State(state): State<AppState>,
    AgentCaller(agent): AgentCaller,
    body: Result<Json<Claim>, JsonRejection>,
) -> Result<Response, ApiError> {
    let hub = hub(&state)?.clone();
    let Json(c) = body?;
    state
        .store
        .touch_agent(agent.id, Some(&c.labels), Some(&c.version), crate::now_ms())
        .await?;
    let labels = crate::store::agents::normalize_labels(&c.labels)?;
    if c.session.len() > 128 {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "session: at most 128 characters",
        ));
    }
    match hub.claim(agent.id, &c.session, &labels).await? {
        Some(a) => Ok(Json::<Assignment>(a).into_response()),
        None => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reports {
    #[serde(default)]
    reports: Vec<Report>,
}

/// An agent reports on its job (and renews its lease).
pub async fn report(
    State(state): State<AppState>,
    AgentCaller(agent): AgentCaller,
    Path(id): Path<i64>,
    body: Result<Json<Reports>, JsonRejection>,
) -> Result<Json<ReportAnswer>, ApiError> {
    let hub = hub(&state)?.clone();
    let Json(r) = body?;
    state
        .store
        .touch_agent(agent.id, None, None, crate::now_ms())
        .await?;
    Ok(Json(hub.report(agent.id, id, r.reports).await?))
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Finish {
    end: JobEnd,
}

pub async fn finish(
    State(state): State<AppState>,
    AgentCaller(agent): AgentCaller,
    Path(id): Path<i64>,
    body: Result<Json<Finish>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    let hub = hub(&state)?.clone();
    let Json(f) = body?;
    hub.finish(agent.id, id, f.end).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, serde::Deserialize)]
pub struct SourceQuery {
    /// Commits the agent already has, comma-separated.
    #[serde(default)]
    have: String,
}

fn is_sha(s: &str) -> bool {
    (7..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The objects of the job's commit as a git pack (without what the agent
/// says it has).
pub async fn source(
    State(state): State<AppState>,
    AgentCaller(agent): AgentCaller,
    Path(id): Path<i64>,
    Query(q): Query<SourceQuery>,
) -> Result<Response, ApiError> {
    let paths = hub(&state)?.job_paths(agent.id, id).await?;
    let root = paths.git_root.clone();
    let have: Vec<String> = q
        .have
        .split(',')
        .filter(|h| is_sha(h))
        .take(64)
        .map(str::to_string)
        .collect();
    let pack = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, String> {
        let known: Vec<String> = have
            .into_iter()
            .filter(|h| {
                launchway_runner::source::git(
                    &root,
                    &["cat-file", "-e", &format!("{h}^{{commit}}")],
                )
                .is_ok()
            })
            .collect();
        let mut revs = format!("{}\n", paths.sha);
        if !known.is_empty() {
            revs.push_str("--not\n");
            for k in known {
                revs.push_str(&k);
                revs.push('\n');
            }
        }
        let mut child = std::process::Command::new("git")
            .arg("-C")
            .arg(&root)
            .args(["pack-objects", "--revs", "--stdout", "-q"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| e.to_string())?;
        if let Some(mut stdin) = child.stdin.take() {
            use std::io::Write;
            stdin
                .write_all(revs.as_bytes())
                .map_err(|e| e.to_string())?;
        }
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
        Ok(out.stdout)
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    .map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("git pack-objects: {e}"),
        )
    })?;
    Ok((
        [(header::CONTENT_TYPE, "application/x-git-packed-objects")],
        pack,
    )
        .into_response())
}

/// A relative path of plain components (no `..`, no root, no empty parts).
fn safe_relative(path: &str) -> bool {
    !path.is_empty()
        && path.len() <= 4096
        && path
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != ".." && !c.contains('\0'))
}

fn valid_artifact_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.contains([
            '/', '\\', ':', '"', '<', '>', '|', '*', '?', '\r', '\n', '\0',
        ])
        && name != "."
        && name != ".."
}

/// Where an artifact file of the agent's job's run lives on this server;
/// the name and path are checked before anything else.
async fn artifact_file(
    state: &AppState,
    agent: i64,
    id: i64,
    name: &str,
    path: &str,
) -> Result<std::path::PathBuf, ApiError> {
    if !valid_artifact_name(name) || !safe_relative(path) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad artifact path",
        ));
    }
    let paths = hub(state)?.job_paths(agent, id).await?;
    Ok(paths.run_dir.join("artifacts").join(name).join(path))
}

/// The run's artifact manifests, for `download-artifact` on the agent.
pub async fn list_artifacts(
    State(state): State<AppState>,
    AgentCaller(agent): AgentCaller,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let paths = hub(&state)?.job_paths(agent.id, id).await?;
    let dir = paths.run_dir.join("artifact-manifests");
    let mut out = Vec::new();
    let mut names: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    names.sort();
    for p in names {
        if let Some(v) = std::fs::read_to_string(&p)
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        {
            out.push(v);
        }
    }
    Ok(Json(Value::Array(out)))
}

/// One artifact file of the job's run.
pub async fn get_artifact_file(
    State(state): State<AppState>,
    AgentCaller(agent): AgentCaller,
    Path((id, name, path)): Path<(i64, String, String)>,
) -> Result<Response, ApiError> {
    let file = artifact_file(&state, agent.id, id, &name, &path).await?;
    let meta = tokio::fs::symlink_metadata(&file)
        .await
        .map_err(|_| ApiError::new(StatusCode::NOT_FOUND, "no such artifact file"))?;
    if !meta.is_file() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no such artifact file",
        ));
    }
    let data = tokio::fs::read(&file)
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], data).into_response())
}

/// An artifact file the job uploaded.
pub async fn put_artifact_file(
    State(state): State<AppState>,
    AgentCaller(agent): AgentCaller,
    Path((id, name, path)): Path<(i64, String, String)>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let file = artifact_file(&state, agent.id, id, &name, &path).await?;
    if let Some(parent) = file.parent() {
        launchway_runner::private::dir(parent)
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    }
    launchway_runner::private::write(&file, &body)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(StatusCode::NO_CONTENT)
}

/// An artifact's manifest, once its files are up: every listed file must be
/// there with the listed size and SHA-256.
pub async fn put_manifest(
    State(state): State<AppState>,
    AgentCaller(agent): AgentCaller,
    Path((id, name)): Path<(i64, String)>,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    use sha2::Digest;
    let paths = hub(&state)?.job_paths(agent.id, id).await?;
    let Json(mut m) = body?;
    if !valid_artifact_name(&name) || m["name"] != name.as_str() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad artifact name",
        ));
    }
    let dir = paths.run_dir.join("artifacts").join(&name);
    for f in m["files"].as_array().cloned().unwrap_or_default() {
        let rel = f["path"].as_str().unwrap_or("");
        if !safe_relative(rel) {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "bad artifact path",
            ));
        }
        let data = std::fs::read(dir.join(rel)).map_err(|_| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("file '{rel}' was not uploaded"),
            )
        })?;
        let sum = sha2::Sha256::digest(&data);
        let hex: String = sum.iter().map(|b| format!("{b:02x}")).collect();
        if f["sha256"] != hex.as_str() || f["size"] != data.len() {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("file '{rel}' does not match its manifest"),
            ));
        }
    }
    m["job"] = json!(paths.key);
    let manifests = paths.run_dir.join("artifact-manifests");
    launchway_runner::private::dir(&manifests)
        .and_then(|()| {
            launchway_runner::private::write(
                &manifests.join(format!("{name}.json")),
                serde_json::to_vec_pretty(&m).unwrap_or_default(),
            )
        })
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deploy {
    environment: String,
    directory: String,
    #[serde(default)]
    release: Option<String>,
    #[serde(default)]
    sets: Vec<(String, String)>,
    #[serde(default)]
    branch: Option<String>,
    actor: String,
    wait: bool,
    #[serde(default)]
    wait_started: bool,
    timeout_ms: u64,
}

/// A `launchway/deploy` step of the agent's job, carried out by the
/// server's reconcilers for the run's repository.
pub async fn deploy(
    State(state): State<AppState>,
    AgentCaller(agent): AgentCaller,
    Path(id): Path<i64>,
    body: Result<Json<Deploy>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let paths = hub(&state)?.job_paths(agent.id, id).await?;
    let Json(d) = body?;
    let deployer = state
        .engine
        .deployer()
        .ok_or_else(|| ApiError::new(StatusCode::CONFLICT, "this server runs no environments"))?;
    let req = launchway_runner::deployer::DeployRequest {
        root: paths.source_dir.clone(),
        dir: d.directory.into(),
        environment: d.environment,
        release: d.release,
        sets: d.sets,
        branch: d.branch,
        create_from: Some(paths.sha.clone()),
        actor: d.actor,
        wait: d.wait,
        wait_started: d.wait_started,
        timeout: std::time::Duration::from_millis(d.timeout_ms.min(3_600_000)),
    };
    match deployer.deploy(req).await {
        Ok(o) => Ok(Json(json!({
            "commit": o.commit, "revision": o.revision, "url": o.url, "log": o.log,
        }))),
        Err(e) => Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e)),
    }
}

#[derive(Debug, serde::Deserialize)]
pub struct ModelQuery {
    name: String,
    #[serde(default)]
    version: Option<u64>,
    #[serde(default)]
    aliases: String,
    #[serde(default)]
    source: String,
}

/// A `launchway/register-model` step: the model file is the body (empty
/// when an existing `version` gets aliases).
pub async fn register_model(
    State(state): State<AppState>,
    AgentCaller(agent): AgentCaller,
    Path(id): Path<i64>,
    Query(q): Query<ModelQuery>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let paths = hub(&state)?.job_paths(agent.id, id).await?;
    let deployer = state
        .engine
        .deployer()
        .ok_or_else(|| ApiError::new(StatusCode::CONFLICT, "this server runs no model registry"))?;
    let file = if body.is_empty() {
        None
    } else {
        let dir = paths.run_dir.join("models");
        launchway_runner::private::dir(&dir)
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        let f = dir.join(format!("job-{id}.bin"));
        launchway_runner::private::write(&f, &body)
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        Some(f)
    };
    let req = launchway_runner::deployer::ModelRequest {
        name: q.name,
        file: file.clone(),
        version: q.version,
        aliases: q
            .aliases
            .split(',')
            .filter(|a| !a.is_empty())
            .map(str::to_string)
            .collect(),
        source: q.source,
    };
    let result = tokio::task::spawn_blocking(move || deployer.register_model(req))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    if let Some(f) = file {
        let _ = std::fs::remove_file(f);
    }
    match result {
        Ok(v) => Ok(Json(json!({ "version": v }))),
        Err(e) => Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e)),
    }
}
