//! `POST /api/hooks/git`: GitHub-style push notifications, signed with the
//! repository's webhook secret (`X-Hub-Signature-256`). A wrong or missing
//! signature is refused with 401 and nothing runs — and nothing is written:
//! until the signature holds, the request is anybody's, so a refusal is a
//! bounded line in the server's log, never a row in the database. A
//! delivery seen before (`X-GitHub-Delivery`) runs nothing again.

use super::{ApiError, AppState};
use crate::audit::Event as AuditEvent;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use launchway_workflow::Event;
use serde_json::{Value, json};
use std::net::SocketAddr;

const ZERO_SHA: &str = "0000000000000000000000000000000000000000";

fn field<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(v, |v, k| v.get(*k))
        .and_then(Value::as_str)
}

async fn audit(state: &AppState, repo: &str, source: &str, action: &str, outcome: &str) {
    let event = AuditEvent {
        actor: format!("webhook:{repo}"),
        action: action.to_string(),
        target: format!("repo/{repo}"),
        source: source.to_string(),
        outcome: outcome.to_string(),
    };
    if let Err(e) = state.store.audit(crate::now_ms(), event).await {
        eprintln!("audit: {e}");
    }
}

/// The Launchway user a signed push names (its pusher's email or login,
/// mapped by the users' identities), else `unknown`.
async fn actor_for(
    state: &AppState,
    hints: &[(crate::store::accounts::IdentityKind, Option<&str>)],
) -> Result<String, ApiError> {
    for (kind, value) in hints {
        if let Some(v) = value.filter(|v| !v.is_empty())
            && let Some(user) = state.store.user_for_identity(*kind, v).await?
        {
            return Ok(user);
        }
    }
    Ok(crate::store::accounts::UNKNOWN_ACTOR.to_string())
}

pub async fn git(
    State(state): State<AppState>,
    extensions: axum::http::Extensions,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let from = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "unknown".to_string(), |c| c.0.ip().to_string());
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    // Unsigned requests are refused before anything is read.
    if header("x-hub-signature-256").is_none() {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing X-Hub-Signature-256 header",
        ));
    }
    let kind = header("x-github-event")
        .ok_or_else(|| ApiError::new(StatusCode::BAD_REQUEST, "missing X-GitHub-Event header"))?
        .to_string();
    let payload: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("invalid JSON: {e}")))?;
    // The repository by its registered name: `name`, or the last part of
    // `full_name`.
    let name = field(&payload, &["repository", "name"])
        .or_else(|| {
            field(&payload, &["repository", "full_name"]).and_then(|f| f.rsplit('/').next())
        })
        .unwrap_or("")
        .to_string();
    // An unknown repository and a bad signature look the same from outside.
    let denied = || ApiError::new(StatusCode::UNAUTHORIZED, "the signature does not match");
    let refused = |why: &str| {
        let shown: String = name
            .chars()
            .take(64)
            .collect::<String>()
            .escape_debug()
            .to_string();
        eprintln!("webhook from {from}: repository \"{shown}\": refused ({why})");
    };
    let Some((repo, sealed)) = state.store.repo(&name).await? else {
        refused("unknown repository");
        return Err(denied());
    };
    let secret = state
        .key
        .open(&super::runs::webhook_scope(&name), &sealed)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    if let Err(e) = crate::webhook::verify(&secret, &body, header("x-hub-signature-256")) {
        refused(&e.to_string());
        return Err(denied());
    }
    // Signed: from here on the repository's owner speaks.
    if let Some(delivery) = header("x-github-delivery")
        && delivery.len() <= 128
        && !state
            .store
            .first_delivery(delivery, &name, crate::now_ms())
            .await?
    {
        return Ok((
            StatusCode::OK,
            Json(
                json!({"runs": [], "duplicate": format!("delivery {delivery} was handled before")}),
            ),
        ));
    }
    let (event, sha, actor) = match kind.as_str() {
        "ping" => return Ok((StatusCode::OK, Json(json!({"ok": "pong"})))),
        "push" => {
            let git_ref = field(&payload, &["ref"]).unwrap_or("").to_string();
            let after = field(&payload, &["after"]).unwrap_or("").to_string();
            if after.is_empty() || after == ZERO_SHA {
                // A deleted branch or tag runs nothing.
                return Ok((StatusCode::ACCEPTED, Json(json!({"runs": []}))));
            }
            use crate::store::accounts::IdentityKind::{Email, Login};
            let actor = actor_for(
                &state,
                &[
                    (Email, field(&payload, &["pusher", "email"])),
                    (Login, field(&payload, &["pusher", "name"])),
                    (Login, field(&payload, &["sender", "login"])),
                ],
            )
            .await?;
            let event = Event {
                name: "push".into(),
                git_ref,
                base_ref: None,
                action: None,
                changed_files: None,
            };
            (event, after, actor)
        }
        "pull_request" => {
            let number = payload.get("number").and_then(Value::as_u64).unwrap_or(0);
            let sha = field(&payload, &["pull_request", "head", "sha"])
                .unwrap_or("")
                .to_string();
            let base = field(&payload, &["pull_request", "base", "ref"])
                .unwrap_or("")
                .to_string();
            let actor = actor_for(
                &state,
                &[(
                    crate::store::accounts::IdentityKind::Login,
                    field(&payload, &["sender", "login"]),
                )],
            )
            .await?;
            let event = Event {
                name: "pull_request".into(),
                git_ref: format!("refs/pull/{number}/merge"),
                base_ref: Some(base),
                action: field(&payload, &["action"]).map(str::to_string),
                changed_files: None,
            };
            (event, sha, actor)
        }
        other => {
            return Ok((
                StatusCode::ACCEPTED,
                Json(json!({"runs": [], "ignored": format!("'{other}' events start nothing")})),
            ));
        }
    };
    let dir = crate::triggers::current_dir(state.engine.data_dir(), &repo).await;
    let before = field(&payload, &["before"]).filter(|b| *b != ZERO_SHA);
    let (ids, problems) =
        crate::triggers::queue_event(&state.engine, &repo, &dir, event, &sha, before, &actor)
            .await
            .map_err(|e| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("commit {sha}: {e}"),
                )
            })?;
    for id in &ids {
        audit(
            &state,
            &name,
            &from,
            &format!("hook.{kind}"),
            &format!("ok: run/{id}"),
        )
        .await;
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"runs": ids, "problems": problems})),
    ))
}
