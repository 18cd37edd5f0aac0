//! Environments through the server: what runs where (status, history),
//! a manual sync, and changes (deploy, rollback, promote) that become
//! commits — at once, or after one of the target environment's required
//! reviewers approves. Every change and refusal is audited.

use super::{ApiError, AppState, Caller, record};
use crate::auth::Role;
use crate::environments::Environments;
use crate::store::changes::Change;
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use launchway_deploy::gitops::{self, Author, ChangeError, Place};
use launchway_deploy::reconcile;
use launchway_runner::environments::Protection;
use serde_json::{Value, json};
use std::sync::Arc;

fn envs(state: &AppState) -> Result<&Arc<Environments>, ApiError> {
    state.environments.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "this server does not run environments",
        )
    })
}

fn env_name_ok(name: &str) -> Result<(), ApiError> {
    if super::valid_name(name) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "environment names are 1-64 characters of letters, digits, '.', '_' and '-'",
        ))
    }
}

async fn repo_or_404(state: &AppState, name: &str) -> Result<crate::store::Repo, ApiError> {
    Ok(state
        .store
        .repo(name)
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no repository '{name}'")))?
        .0)
}

/// `GET /api/repos/{name}/environments`
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Viewer)?;
    repo_or_404(&state, &name).await?;
    // Read-only: the reconcilers are started by the server, not by a GET.
    let data = envs(&state)?.of_repo(&name).await.map(|(_, d)| d);
    let list = data.map_or_else(Vec::new, |d| reconcile::statuses(&d));
    Ok(Json(json!({ "environments": list })))
}

/// `GET /api/repos/{name}/environments/{env}/history`
pub async fn history(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, env)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Viewer)?;
    env_name_ok(&env)?;
    repo_or_404(&state, &name).await?;
    let data = envs(&state)?.of_repo(&name).await.map(|(_, d)| d);
    let list = data.map_or_else(Vec::new, |d| reconcile::history(&d, &env));
    Ok(Json(json!({ "history": list })))
}

/// `POST /api/repos/{name}/environments/{env}/sync`: heal drift and
/// retry a failed deployment now.
pub async fn sync(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, env)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let target = format!("repo/{name}/env/{env}");
    if let Err(e) = caller.require(Role::Deployer) {
        record(&state, &caller, "env.sync", &target, "denied").await?;
        return Err(e);
    }
    env_name_ok(&env)?;
    repo_or_404(&state, &name).await?;
    let (rec, _) = envs(&state)?.of_repo(&name).await.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("'{name}' has no environments"),
        )
    })?;
    rec.force(&env);
    record(&state, &caller, "env.sync", &target, "ok").await?;
    Ok(Json(json!({ "sync": "requested" })))
}

/// Refuses (403, audited) a caller who may not review deployments under
/// `rules` — the same check for approving a change and for steering a
/// protected environment's rollout.
async fn require_reviewer(
    state: &AppState,
    caller: &Caller,
    rules: &Protection,
    triggered_by: &str,
    action: &str,
    target: &str,
) -> Result<(), ApiError> {
    let groups = state.store.groups_of(&caller.user.name).await?;
    let who = crate::approval::Reviewer {
        name: &caller.user.name,
        role: caller.user.role,
        groups: &groups,
    };
    if let Err(refusal) = crate::approval::may_review(rules, &who, triggered_by) {
        record(state, caller, action, target, &format!("denied: {refusal}")).await?;
        return Err(ApiError::new(StatusCode::FORBIDDEN, refusal.to_string()));
    }
    Ok(())
}

/// `GET /api/repos/{name}/environments/{env}/rollout`: the progressive
/// rollout in progress or last finished (step, weight, measurements).
pub async fn rollout(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, env)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Viewer)?;
    env_name_ok(&env)?;
    repo_or_404(&state, &name).await?;
    let running = envs(&state)?.of_repo(&name).await;
    let r = running
        .as_ref()
        .and_then(|(_, d)| launchway_deploy::local::read_rollout(d, &env))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!("'{env}' has had no progressive rollout"),
            )
        })?;
    let mut v = serde_json::to_value(r).unwrap_or_default();
    // What each revision has answered, from the data plane.
    if let Some((rec, _)) = running {
        let backends = rec
            .plane_status()
            .await
            .into_iter()
            .find(|s| s.environment == env)
            .map(|s| s.backends)
            .unwrap_or_default();
        v["traffic"] = serde_json::to_value(launchway_deploy::analysis::traffic(&backends))
            .unwrap_or_default();
    }
    Ok(Json(v))
}

/// `POST /api/repos/{name}/environments/{env}/rollout/{action}`: promote
/// (`promote`, `promote-full`), `abort` or `undo` the rollout in progress.
/// A deployer may; in a protected environment only someone who may
/// approve its deployments. Audited either way.
pub async fn rollout_action(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, env, act)): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    use launchway_deploy::local::RolloutCommand as C;
    let target = format!("repo/{name}/env/{env}");
    let action = format!("rollout.{act}");
    if let Err(e) = caller.require(Role::Deployer) {
        record(&state, &caller, &action, &target, "denied").await?;
        return Err(e);
    }
    let command = match act.as_str() {
        "promote" => Some(C::Promote),
        "promote-full" => Some(C::PromoteFull),
        "abort" => Some(C::Abort),
        "undo" => Some(C::Undo),
        // A manual sync: a held, aborted revision rolls out again.
        "retry" => None,
        _ => return Err(ApiError::new(StatusCode::NOT_FOUND, "no such endpoint")),
    };
    env_name_ok(&env)?;
    let repo = repo_or_404(&state, &name).await?;
    let place = place_of(&state, &repo)?;
    let rules = protection(&place, &env)?;
    if rules.needs_approval() {
        require_reviewer(&state, &caller, &rules, "", &action, &target).await?;
    }
    let (rec, _) = envs(&state)?.of_repo(&name).await.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("'{name}' has no environments"),
        )
    })?;
    match command {
        Some(c) => {
            if let Err(e) = rec.rollout_command(&env, c) {
                record(&state, &caller, &action, &target, &format!("failed: {e}")).await?;
                return Err(ApiError::new(StatusCode::CONFLICT, e));
            }
        }
        None => rec.force(&env),
    }
    record(&state, &caller, &action, &target, "ok").await?;
    Ok(Json(json!({ "rollout": act, "requested": true })))
}

/// Keys a deploy through the API may not `set` (`release` goes by its own
/// field, which must name a commit).
const PROTECTED_KEYS: &[&str] = &[
    "run",
    "protection",
    "target",
    "self_heal",
    "namespace",
    "release",
    "image",
    "environment",
];

/// A change as a client asks for it.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeBody {
    /// `deploy`: a commit of the repository (pinned to its full hash).
    #[serde(default)]
    pub(crate) release: Option<String>,
    /// `deploy`: other keys (`replicas`, `model_version`…).
    #[serde(default)]
    pub(crate) set: std::collections::BTreeMap<String, String>,
    /// `rollback`: the revision whose file to restore.
    #[serde(default)]
    pub(crate) to: Option<String>,
    /// `promote`: the environment whose release goes here.
    #[serde(default)]
    pub(crate) from: Option<String>,
}

/// What rolling `env` back (to `to`, else the revision before the
/// current one) would change, key by key, and whether it needs a review;
/// nothing is committed. For the web page's preview.
pub(crate) async fn rollback_preview(
    state: &AppState,
    name: &str,
    env: &str,
    to: Option<String>,
) -> Result<(Vec<launchway_deploy::diff::Difference>, Protection), ApiError> {
    env_name_ok(env)?;
    let repo = repo_or_404(state, name).await?;
    let place = place_of(state, &repo)?;
    let rules = protection(&place, env)?;
    let env = env.to_string();
    let diff = tokio::task::spawn_blocking(move || {
        gitops::plan(
            &place,
            &env,
            &gitops::Change::Rollback { to: to.as_deref() },
            &Author::default(),
        )
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    Ok((diff, rules))
}

/// What differs, key by key, between `env` as git has it (revision
/// `wanted`) and as it runs (revision `running`): the merged documents of
/// both commits compared. For the web page.
pub(crate) async fn drift(
    state: &AppState,
    name: &str,
    env: &str,
    wanted: &str,
    running: &str,
) -> Result<Vec<launchway_deploy::diff::Difference>, ApiError> {
    env_name_ok(env)?;
    let repo = repo_or_404(state, name).await?;
    let place = place_of(state, &repo)?;
    let (env, wanted, running) = (env.to_string(), wanted.to_string(), running.to_string());
    tokio::task::spawn_blocking(move || {
        let at = |rev: &str| {
            let tree = launchway_deploy::tree::Tree::Rev {
                dir: place.root.clone(),
                rev: rev.to_string(),
            };
            launchway_deploy::tree::load_environment(&tree, &place.dir, &env)
                .map_err(|e| ApiError::from(ChangeError::from(e)))?
                .environment
                .map(|e| e.merged)
                .ok_or_else(|| {
                    ApiError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        format!("'{env}' has errors at {rev}"),
                    )
                })
        };
        Ok(launchway_deploy::diff::diff(&at(&running)?, &at(&wanted)?))
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
}

/// The target environment's protection rules at the tracked head.
fn protection(place: &Place, env: &str) -> Result<Protection, ApiError> {
    let tree = match &place.branch {
        Some(b) => launchway_deploy::tree::Tree::Rev {
            dir: place.root.clone(),
            rev: format!("refs/heads/{b}"),
        },
        None => launchway_deploy::tree::Tree::Rev {
            dir: place.root.clone(),
            rev: "HEAD".into(),
        },
    };
    let loaded = launchway_deploy::tree::load_environment(&tree, &place.dir, env)
        .map_err(ChangeError::from)?;
    let e = loaded.environment.ok_or_else(|| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("environment '{env}' has errors (launchway env validate)"),
        )
    })?;
    Ok(e.protection)
}

/// Where an API change commits: what runs and who approves stay as they
/// are, whatever the change (a rollback to any revision included).
fn place_of(state: &AppState, repo: &crate::store::Repo) -> Result<Place, ApiError> {
    let mut place = envs(state)?.place(repo, None);
    place.frozen = launchway_deploy::gitops::FROZEN_FOR_API
        .iter()
        .map(|k| (*k).to_string())
        .collect();
    Ok(place)
}

/// Makes the commit a change stands for; `author` is who asked.
async fn apply(state: &AppState, change: &Change) -> Result<String, ChangeError> {
    let repo = repo_or_404(state, &change.repo)
        .await
        .map_err(|e| ChangeError::NotFound(e.message))?;
    let place = place_of(state, &repo).map_err(|e| ChangeError::Internal(e.message))?;
    let author = Author {
        name: Some(change.requested_by.clone()),
        email: Some(format!("{}@launchway.invalid", change.requested_by)),
    };
    let c = change.clone();
    let commit = tokio::task::spawn_blocking(move || {
        let p = &c.params;
        match c.kind.as_str() {
            "deploy" => {
                let sets: Vec<(String, String)> = p["set"]
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                            .collect()
                    })
                    .unwrap_or_default();
                gitops::deploy(
                    &place,
                    &c.environment,
                    p["release"].as_str(),
                    &sets,
                    &author,
                )
            }
            "rollback" => gitops::rollback(&place, &c.environment, p["to"].as_str(), &author),
            "promote" => gitops::promote(
                &place,
                p["from"].as_str().unwrap_or_default(),
                &c.environment,
                &author,
            ),
            other => Err(ChangeError::Invalid(format!("unknown change '{other}'"))),
        }
    })
    .await
    .map_err(|e| ChangeError::Internal(e.to_string()))??
    .ok_or_else(|| {
        ChangeError::Conflict(format!(
            "{} already has this; nothing to commit",
            change.environment
        ))
    })?;
    if let Some(envs) = &state.environments
        && let Ok(Some((rec, _))) = envs.ensure(&repo, None).await
    {
        rec.wake();
    }
    Ok(commit)
}

/// `POST /api/repos/{name}/environments/{env}/{deploy|rollback|promote}`
pub async fn change(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, env, kind)): Path<(String, String, String)>,
    body: Result<Json<ChangeBody>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let target = format!("repo/{name}/env/{env}");
    let action = format!("env.{kind}");
    if !matches!(kind.as_str(), "deploy" | "rollback" | "promote") {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "no such endpoint"));
    }
    if let Err(e) = caller.require(Role::Deployer) {
        record(&state, &caller, &action, &target, "denied").await?;
        return Err(e);
    }
    env_name_ok(&env)?;
    let Json(b) = body?;
    let params = match kind.as_str() {
        "deploy" => {
            // What runs and who approves are the repository's to change, by a
            // reviewed commit — not a deployer's through the API (a deployer
            // could otherwise run any command, or lift the approval rules).
            if let Some(k) = b.set.keys().find(|k| {
                let top = k.split('.').next().unwrap_or("");
                PROTECTED_KEYS.contains(&top)
            }) {
                record(
                    &state,
                    &caller,
                    &action,
                    &target,
                    &format!("denied: set {k}"),
                )
                .await?;
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    format!(
                        "'{k}' cannot be set through the server; change it with a reviewed commit (keys it refuses: {})",
                        PROTECTED_KEYS.join(", ")
                    ),
                ));
            }
            if b.release.is_none() && b.set.is_empty() {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "nothing to deploy: give release and/or set",
                ));
            }
            json!({ "release": b.release, "set": b.set })
        }
        "rollback" => json!({ "to": b.to }),
        _ => {
            let from = b.from.ok_or_else(|| {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "promote needs 'from'")
            })?;
            env_name_ok(&from)?;
            json!({ "from": from })
        }
    };
    let repo = repo_or_404(&state, &name).await?;
    let place = place_of(&state, &repo)?;
    let rules = protection(&place, &env)?;
    let now = crate::now_ms();
    if rules.needs_approval() {
        // What it would do, checked now (a refusal comes before the wait)
        // and shown to the reviewer.
        let planned = {
            let (place, env, params, kind) =
                (place.clone(), env.clone(), params.clone(), kind.clone());
            tokio::task::spawn_blocking(move || {
                use launchway_deploy::gitops::Change;
                let sets: Vec<(String, String)> = params["set"]
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                            .collect()
                    })
                    .unwrap_or_default();
                let change = match kind.as_str() {
                    "deploy" => Change::Deploy {
                        release: params["release"].as_str(),
                        sets,
                    },
                    "rollback" => Change::Rollback {
                        to: params["to"].as_str(),
                    },
                    _ => Change::Promote {
                        from: params["from"].as_str().unwrap_or_default(),
                    },
                };
                launchway_deploy::gitops::plan(&place, &env, &change, &Author::default())
            })
            .await
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        };
        let diff = match planned {
            Ok(d) => d,
            Err(e) => {
                record(&state, &caller, &action, &target, &format!("denied: {e}")).await?;
                return Err(e.into());
            }
        };
        let diff: Vec<Value> = diff
            .iter()
            .map(|d| json!({ "path": d.path, "before": d.left, "after": d.right }))
            .collect();
        let mut params = params;
        params["preview"] = json!(diff);
        let id = state
            .store
            .add_change(&name, &env, &kind, &params, &caller.user.name, now)
            .await?;
        record(
            &state,
            &caller,
            &action,
            &target,
            &format!("waiting: change {id}"),
        )
        .await?;
        return Ok((
            StatusCode::ACCEPTED,
            Json(json!({
                "change": id,
                "status": "waiting",
                "required_reviewers": rules.required_reviewers,
                "diff": params["preview"],
            })),
        ));
    }
    let id = state
        .store
        .add_change(&name, &env, &kind, &params, &caller.user.name, now)
        .await?;
    state
        .store
        .decide_change(id, "approved", "", "no approval required", now)
        .await?;
    finish(&state, &caller, id, &action, &target).await
}

/// Commits an approved change and records the outcome.
async fn finish(
    state: &AppState,
    caller: &Caller,
    id: i64,
    action: &str,
    target: &str,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let change = state
        .store
        .change(id)
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no change {id}")))?;
    match apply(state, &change).await {
        Ok(commit) => {
            state.store.finish_change(id, "committed", &commit).await?;
            record(
                state,
                caller,
                action,
                target,
                &format!("committed {commit}"),
            )
            .await?;
            Ok((
                StatusCode::CREATED,
                Json(json!({ "change": id, "status": "committed", "commit": commit })),
            ))
        }
        Err(e) => {
            state
                .store
                .finish_change(id, "failed", &e.to_string())
                .await?;
            let outcome = match e {
                ChangeError::Refused(_) => "denied",
                _ => "failed",
            };
            record(state, caller, action, target, &format!("{outcome}: {e}")).await?;
            Err(e.into())
        }
    }
}

#[derive(Debug, serde::Deserialize)]
pub struct ChangesQuery {
    pub(crate) status: Option<String>,
}

/// `GET /api/changes`
pub async fn list_changes(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<ChangesQuery>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Viewer)?;
    Ok(Json(
        json!({ "changes": state.store.changes(q.status.as_deref()).await? }),
    ))
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionBody {
    #[serde(default)]
    pub(crate) comment: Option<String>,
}

/// `POST /api/changes/{id}/{approve|reject}`: by one of the target
/// environment's required reviewers (never the requester when the rules
/// prevent self-review); approval commits the change.
pub async fn decide(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, verdict)): Path<(i64, String)>,
    body: Result<Json<DecisionBody>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let approve = match verdict.as_str() {
        "approve" => true,
        "reject" => false,
        _ => return Err(ApiError::new(StatusCode::NOT_FOUND, "no such endpoint")),
    };
    let action = format!("change.{verdict}");
    let target = format!("change/{id}");
    let Json(b) = body?;
    let change = state
        .store
        .change(id)
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no change {id}")))?;
    if change.status != "waiting" {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("change {id} is {}, not waiting", change.status),
        ));
    }
    let repo = repo_or_404(&state, &change.repo).await?;
    let place = place_of(&state, &repo)?;
    let rules = protection(&place, &change.environment)?;
    require_reviewer(
        &state,
        &caller,
        &rules,
        &change.requested_by,
        &action,
        &target,
    )
    .await?;
    let comment = b.comment.unwrap_or_default();
    let status = if approve { "approved" } else { "rejected" };
    if !state
        .store
        .decide_change(id, status, &caller.user.name, &comment, crate::now_ms())
        .await?
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("change {id} was decided meanwhile"),
        ));
    }
    if !approve {
        record(&state, &caller, &action, &target, "rejected").await?;
        return Ok((
            StatusCode::OK,
            Json(json!({ "change": id, "status": "rejected" })),
        ));
    }
    finish(&state, &caller, id, &action, &target).await
}
