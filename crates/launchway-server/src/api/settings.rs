//! Secrets and variables of a repository or one of its environments.
//! Secret values go in and never come out: listing shows names only, the
//! store holds them sealed, runs get them masked.

use super::{ApiError, AppState, Caller, record, valid_name};
use crate::auth::Role;
use crate::store::settings::Kind;
use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

/// GitHub's limit for one secret.
const MAX_VALUE: usize = 48 * 1024;

/// Names as GitHub allows them: letters, digits and `_`, not starting
/// with a digit or `GITHUB_`.
fn valid_setting_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 128
        && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !n.as_bytes()[0].is_ascii_digit()
        && !n.to_ascii_uppercase().starts_with("GITHUB_")
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutBody {
    value: String,
    #[serde(default)]
    environment: String,
}

#[derive(Debug, serde::Deserialize)]
pub struct EnvQuery {
    #[serde(default)]
    environment: String,
}

async fn known_repo(state: &AppState, repo: &str) -> Result<(), ApiError> {
    match state.store.repo(repo).await? {
        Some(_) => Ok(()),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no repository '{repo}'"),
        )),
    }
}

fn check(name: &str, environment: &str) -> Result<(), ApiError> {
    if !valid_setting_name(name) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "names are letters, digits and '_', not starting with a digit or 'GITHUB_'",
        ));
    }
    if !environment.is_empty() && !valid_name(environment) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "environment names are 1-64 characters of letters, digits, '.', '_' and '-'",
        ));
    }
    Ok(())
}

fn label(kind: Kind) -> &'static str {
    match kind {
        Kind::Secret => "secret",
        Kind::Variable => "variable",
    }
}

fn target(repo: &str, environment: &str, kind: Kind, name: &str) -> String {
    if environment.is_empty() {
        format!("repo/{repo}/{}/{name}", label(kind))
    } else {
        format!("repo/{repo}/env/{environment}/{}/{name}", label(kind))
    }
}

async fn list(
    state: AppState,
    caller: Caller,
    repo: String,
    kind: Kind,
) -> Result<Json<Value>, ApiError> {
    caller.require(if kind == Kind::Secret {
        Role::Developer
    } else {
        Role::Viewer
    })?;
    known_repo(&state, &repo).await?;
    let items: Vec<Value> = state
        .store
        .settings(&repo, kind)
        .await?
        .into_iter()
        .map(|s| {
            let mut v =
                json!({"environment": s.environment, "name": s.name, "updated_ms": s.updated_ms});
            if kind == Kind::Variable {
                v["value"] = json!(s.value);
            }
            v
        })
        .collect();
    Ok(Json(Value::Array(items)))
}

async fn put(
    state: AppState,
    caller: Caller,
    (repo, name): (String, String),
    body: Result<Json<PutBody>, JsonRejection>,
    kind: Kind,
) -> Result<StatusCode, ApiError> {
    let action = format!("{}.set", label(kind));
    if let Err(e) = caller.require(Role::Admin) {
        record(&state, &caller, &action, &format!("repo/{repo}"), "denied").await?;
        return Err(e);
    }
    let Json(b) = body?;
    check(&name, &b.environment)?;
    if b.value.len() > MAX_VALUE {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("values are at most {MAX_VALUE} bytes"),
        ));
    }
    known_repo(&state, &repo).await?;
    let stored = match kind {
        Kind::Secret => state
            .key
            .seal(
                &crate::engine::secret_scope(&repo, &b.environment, &name),
                b.value.as_bytes(),
            )
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?,
        Kind::Variable => b.value,
    };
    state
        .store
        .put_setting(&repo, &b.environment, kind, &name, &stored, crate::now_ms())
        .await?;
    record(
        &state,
        &caller,
        &action,
        &target(&repo, &b.environment, kind, &name),
        "ok",
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn delete(
    state: AppState,
    caller: Caller,
    (repo, name): (String, String),
    q: Result<Query<EnvQuery>, QueryRejection>,
    kind: Kind,
) -> Result<StatusCode, ApiError> {
    let action = format!("{}.delete", label(kind));
    if let Err(e) = caller.require(Role::Admin) {
        record(&state, &caller, &action, &format!("repo/{repo}"), "denied").await?;
        return Err(e);
    }
    let Query(q) = q.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    check(&name, &q.environment)?;
    known_repo(&state, &repo).await?;
    let t = target(&repo, &q.environment, kind, &name);
    if !state
        .store
        .delete_setting(&repo, &q.environment, kind, &name)
        .await?
    {
        return Err(ApiError::new(StatusCode::NOT_FOUND, format!("no {t}")));
    }
    record(&state, &caller, &action, &t, "ok").await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_secrets(
    State(s): State<AppState>,
    c: Caller,
    Path(repo): Path<String>,
) -> Result<Json<Value>, ApiError> {
    list(s, c, repo, Kind::Secret).await
}
pub async fn list_variables(
    State(s): State<AppState>,
    c: Caller,
    Path(repo): Path<String>,
) -> Result<Json<Value>, ApiError> {
    list(s, c, repo, Kind::Variable).await
}
pub async fn put_secret(
    State(s): State<AppState>,
    c: Caller,
    Path(p): Path<(String, String)>,
    b: Result<Json<PutBody>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    put(s, c, p, b, Kind::Secret).await
}
pub async fn put_variable(
    State(s): State<AppState>,
    c: Caller,
    Path(p): Path<(String, String)>,
    b: Result<Json<PutBody>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    put(s, c, p, b, Kind::Variable).await
}
pub async fn delete_secret(
    State(s): State<AppState>,
    c: Caller,
    Path(p): Path<(String, String)>,
    q: Result<Query<EnvQuery>, QueryRejection>,
) -> Result<StatusCode, ApiError> {
    delete(s, c, p, q, Kind::Secret).await
}
pub async fn delete_variable(
    State(s): State<AppState>,
    c: Caller,
    Path(p): Path<(String, String)>,
    q: Result<Query<EnvQuery>, QueryRejection>,
) -> Result<StatusCode, ApiError> {
    delete(s, c, p, q, Kind::Variable).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setting_names() {
        for ok in ["DB_PASSWORD", "_x", "a1"] {
            assert!(valid_setting_name(ok), "{ok}");
        }
        for bad in ["", "1A", "A-B", "GITHUB_TOKEN", "github_x", "a b", "../x"] {
            assert!(!valid_setting_name(bad), "{bad}");
        }
    }
}
