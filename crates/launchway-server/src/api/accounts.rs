//! Accounts over the API: tokens (a user's own, or anyone's for an admin)
//! created with an expiry, listed without their values, revoked; users
//! whose role changes, who are disabled, enabled or removed (admins); a
//! repository's webhook secret rotated (admins). Every change and every
//! refusal is audited.

use super::{ApiError, AppState, Caller, record, valid_name};
use crate::auth::Role;
use crate::store::accounts::{Account, TokenInfo};
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

/// The longest a token may live, in days (and the default for new ones
/// without `expires_in_days`: none).
pub const MAX_TOKEN_DAYS: u64 = 3650;

#[derive(Debug, serde::Deserialize)]
pub struct TokensQuery {
    user: Option<String>,
}

/// `GET /api/tokens`: an admin sees every token (or one user's), anyone
/// else their own.
pub async fn list_tokens(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<TokensQuery>,
) -> Result<Json<Vec<TokenInfo>>, ApiError> {
    caller.require(Role::Viewer)?;
    let user = match (caller.user.role >= Role::Admin, q.user) {
        (true, u) => u,
        (false, Some(u)) if u != caller.user.name => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "only an admin sees other users' tokens",
            ));
        }
        (false, _) => Some(caller.user.name.clone()),
    };
    Ok(Json(state.store.tokens(user.as_deref()).await?))
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// Whose (default: the caller's; another user's: admins only).
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    label: Option<String>,
    /// Days until it stops working (default: never).
    #[serde(default)]
    expires_in_days: Option<u64>,
}

/// `POST /api/tokens`: the value is in the answer, once.
pub async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<NewToken>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(b) = body?;
    let user = b.user.unwrap_or_else(|| caller.user.name.clone());
    let target = format!("user/{user}");
    if user != caller.user.name
        && let Err(e) = caller.require(Role::Admin)
    {
        record(&state, &caller, "token.create", &target, "denied").await?;
        return Err(e);
    }
    let label = b.label.unwrap_or_else(|| "api".into());
    if label.len() > 64 || label.chars().any(char::is_control) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "label: at most 64 printable characters",
        ));
    }
    let expires_ms = match b.expires_in_days {
        None => 0,
        Some(d) if (1..=MAX_TOKEN_DAYS).contains(&d) => {
            crate::now_ms() + i64::try_from(d * 86_400_000).unwrap_or(i64::MAX)
        }
        Some(_) => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("expires_in_days: 1 to {MAX_TOKEN_DAYS}"),
            ));
        }
    };
    let (id, token) = state
        .store
        .create_token_until(&user, &label, expires_ms)
        .await?;
    record(
        &state,
        &caller,
        "token.create",
        &target,
        &format!("ok: token/{id}"),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "id": id, "user": user, "token": token, "expires_ms": expires_ms })),
    ))
}

/// `POST /api/tokens/{id}/revoke`: the owner or an admin.
pub async fn revoke_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let target = format!("token/{id}");
    let t = state.store.token(id).await?;
    let mine = t.as_ref().is_some_and(|t| t.user == caller.user.name);
    if !mine && caller.require(Role::Admin).is_err() {
        record(&state, &caller, "token.revoke", &target, "denied").await?;
        // Someone else's token, or none: the same answer for a non-admin.
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no token {id}"),
        ));
    }
    state.store.revoke_token(id).await?;
    record(&state, &caller, "token.revoke", &target, "ok").await?;
    Ok(Json(json!({ "id": id, "revoked": true })))
}

/// `GET /api/accounts`: users with their state (admins).
pub async fn list_accounts(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<Account>>, ApiError> {
    caller.require(Role::Admin)?;
    Ok(Json(state.store.accounts().await?))
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserChange {
    #[serde(default)]
    role: Option<Role>,
    #[serde(default)]
    disabled: Option<bool>,
}

/// `PATCH /api/users/{name}`: role and disabled (admins; the last enabled
/// admin stays one).
pub async fn change_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    body: Result<Json<UserChange>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let target = format!("user/{name}");
    if let Err(e) = caller.require(Role::Admin) {
        record(&state, &caller, "user.change", &target, "denied").await?;
        return Err(e);
    }
    if !valid_name(&name) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no user '{name}'"),
        ));
    }
    let Json(c) = body?;
    if c.role.is_none() && c.disabled.is_none() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "nothing to change: give role and/or disabled",
        ));
    }
    let mut what = Vec::new();
    if let Some(r) = c.role {
        state.store.set_role(&name, r).await?;
        what.push(format!("role {r}"));
    }
    if let Some(d) = c.disabled {
        state.store.set_user_disabled(&name, d).await?;
        what.push(if d { "disabled" } else { "enabled" }.to_string());
    }
    record(
        &state,
        &caller,
        "user.change",
        &target,
        &format!("ok: {}", what.join(", ")),
    )
    .await?;
    let a = state
        .store
        .accounts()
        .await?
        .into_iter()
        .find(|a| a.name == name);
    Ok(Json(json!(a)))
}

/// `DELETE /api/users/{name}` (admins; not the last enabled admin).
pub async fn delete_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let target = format!("user/{name}");
    if let Err(e) = caller.require(Role::Admin) {
        record(&state, &caller, "user.delete", &target, "denied").await?;
        return Err(e);
    }
    if !valid_name(&name) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no user '{name}'"),
        ));
    }
    state.store.delete_user(&name).await?;
    record(&state, &caller, "user.delete", &target, "ok").await?;
    Ok(Json(json!({ "deleted": name })))
}

/// `POST /api/repos/{name}/webhook-secret`: a new secret (shown once); the
/// old one stops verifying at once (admins).
pub async fn rotate_webhook_secret(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let target = format!("repo/{name}");
    if let Err(e) = caller.require(Role::Admin) {
        record(
            &state,
            &caller,
            "repo.rotate-webhook-secret",
            &target,
            "denied",
        )
        .await?;
        return Err(e);
    }
    if state.store.repo(&name).await?.is_none() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no repository '{name}'"),
        ));
    }
    let secret = crate::sealed::MasterKey::generate_hex()
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let sealed = state
        .key
        .seal(&super::runs::webhook_scope(&name), secret.as_bytes())
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    state.store.set_webhook_secret(&name, &sealed).await?;
    record(&state, &caller, "repo.rotate-webhook-secret", &target, "ok").await?;
    Ok(Json(json!({ "repo": name, "webhook_secret": secret })))
}

/// `GET /api/groups`: groups and their members (admins).
pub async fn list_groups(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Admin)?;
    Ok(Json(json!(state.store.groups().await?)))
}

/// `PUT|DELETE /api/groups/{group}/members/{user}` (admins). A group is
/// named as a reviewer in an environment's `required_reviewers`.
pub async fn group_member(
    State(state): State<AppState>,
    caller: Caller,
    method: axum::http::Method,
    Path((group, user)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let target = format!("group/{group}/{user}");
    let adding = method == axum::http::Method::PUT;
    let action = if adding { "group.add" } else { "group.remove" };
    if let Err(e) = caller.require(Role::Admin) {
        record(&state, &caller, action, &target, "denied").await?;
        return Err(e);
    }
    if !valid_name(&group) || !valid_name(&user) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "group and user names are 1-64 characters of letters, digits, '.', '_' and '-'",
        ));
    }
    if adding {
        state.store.add_group_member(&group, &user).await?;
    } else {
        state.store.remove_group_member(&group, &user).await?;
    }
    record(&state, &caller, action, &target, "ok").await?;
    Ok(Json(
        json!({ "group": group, "members": state.store.groups().await?.remove(&group).unwrap_or_default() }),
    ))
}

/// `GET /api/users/{name}/identities` (admins).
pub async fn list_identities(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Admin)?;
    let list: Vec<Value> = state
        .store
        .identities(&name)
        .await?
        .into_iter()
        .map(|(kind, value)| json!({ "kind": kind, "value": value }))
        .collect();
    Ok(Json(json!(list)))
}

/// `PUT|DELETE /api/users/{name}/identities/{kind}/{value}` (admins): a
/// push naming this email or login is this user's (its run's actor).
pub async fn identity(
    State(state): State<AppState>,
    caller: Caller,
    method: axum::http::Method,
    Path((name, kind, value)): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    let target = format!("user/{name}");
    let adding = method == axum::http::Method::PUT;
    let action = if adding {
        "identity.add"
    } else {
        "identity.remove"
    };
    if let Err(e) = caller.require(Role::Admin) {
        record(&state, &caller, action, &target, "denied").await?;
        return Err(e);
    }
    let kind: crate::store::accounts::IdentityKind = kind
        .parse()
        .map_err(|e: String| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e))?;
    if value.is_empty() || value.len() > 254 || value.chars().any(char::is_control) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "an identity is 1-254 printable characters",
        ));
    }
    if adding {
        state.store.add_identity(&name, kind, &value).await?;
    } else {
        state.store.remove_identity(&name, kind, &value).await?;
    }
    record(
        &state,
        &caller,
        action,
        &target,
        &format!("ok: {} {value}", kind.as_str()),
    )
    .await?;
    Ok(Json(json!({ "user": name, "kind": kind, "value": value })))
}

/// `GET /api/repos/{name}/roles`: who has a role of their own here (admins).
pub async fn list_repo_roles(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Admin)?;
    let roles: Vec<Value> = state
        .store
        .repo_roles(&name)
        .await?
        .into_iter()
        .map(|(user, role)| json!({ "user": user, "role": role }))
        .collect();
    Ok(Json(json!(roles)))
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepoRoleBody {
    role: Role,
}

/// `PUT /api/repos/{name}/roles/{user}` {role}: the user's role in this
/// repository in place of their global one (admins; never admin).
pub async fn set_repo_role(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, user)): Path<(String, String)>,
    body: Result<Json<RepoRoleBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let target = format!("repo/{name}/role/{user}");
    if let Err(e) = caller.require(Role::Admin) {
        record(&state, &caller, "repo.role", &target, "denied").await?;
        return Err(e);
    }
    let Json(b) = body?;
    state.store.set_repo_role(&name, &user, b.role).await?;
    record(
        &state,
        &caller,
        "repo.role",
        &target,
        &format!("ok: {}", b.role),
    )
    .await?;
    Ok(Json(json!({ "repo": name, "user": user, "role": b.role })))
}

/// `DELETE /api/repos/{name}/roles/{user}`: back to their global role.
pub async fn remove_repo_role(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, user)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let target = format!("repo/{name}/role/{user}");
    if let Err(e) = caller.require(Role::Admin) {
        record(&state, &caller, "repo.role", &target, "denied").await?;
        return Err(e);
    }
    state.store.remove_repo_role(&name, &user).await?;
    record(&state, &caller, "repo.role", &target, "ok: removed").await?;
    Ok(Json(json!({ "repo": name, "user": user, "role": null })))
}

/// `DELETE /api/repos/{name}` (admins): the repository, its runs and their
/// files, its settings and changes. Refused while a run of it is in
/// progress, or while this server serves its environments (remove their
/// files with a commit first: the replicas stop, then delete).
pub async fn delete_repo(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let target = format!("repo/{name}");
    if let Err(e) = caller.require(Role::Admin) {
        record(&state, &caller, "repo.delete", &target, "denied").await?;
        return Err(e);
    }
    let Some((repo, _)) = state.store.repo(&name).await? else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no repository '{name}'"),
        ));
    };
    if let Some(envs) = &state.environments
        && envs.serves(&repo).await
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "this server serves '{name}''s environments: remove their files with a commit first (their replicas stop), then delete it"
            ),
        ));
    }
    let dirs = state.store.delete_repo(&name).await?;
    let runs_root = state.engine.data_dir().join("runs");
    for d in &dirs {
        let p = std::path::Path::new(d);
        // Only the server's own run directories.
        if p.starts_with(&runs_root) {
            let _ = std::fs::remove_dir_all(p);
        }
    }
    if crate::triggers::is_url(&repo.location) {
        let _ = std::fs::remove_dir_all(crate::triggers::checkout_dir(
            state.engine.data_dir(),
            &repo,
        ));
    }
    record(
        &state,
        &caller,
        "repo.delete",
        &target,
        &format!("ok: {} run(s) removed", dirs.len()),
    )
    .await?;
    Ok(Json(json!({ "deleted": name, "runs_removed": dirs.len() })))
}

/// How long an invite link stays valid.
const INVITE_MS: i64 = 7 * 24 * 3600 * 1000;

/// `POST /api/users/{name}/invites`: a one-time link (`/invite/<code>`)
/// with which the user makes a personal token in the web UI; admins only.
pub async fn invite(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let target = format!("user/{name}");
    if let Err(e) = caller.require(Role::Admin) {
        record(&state, &caller, "user.invite", &target, "denied").await?;
        return Err(e);
    }
    let expires = crate::now_ms() + INVITE_MS;
    let code = state
        .store
        .create_invite(&name, &caller.user.name, expires)
        .await?;
    record(&state, &caller, "user.invite", &target, "ok").await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "user": name, "path": format!("/invite/{code}"), "expires_ms": expires })),
    ))
}
