//! Environments per repository: sync and health, revision, model, address
//! and replicas; what differs between git and what runs; the history with
//! the commit behind each deployment; and a rollback that shows the change
//! it will commit (or the change request, when reviewers are required).
//! Changes go through the API's handler (`crate::api::environments`).

use super::render;
use super::{Web, WebError, badge, notice, page, redirect_with};
use crate::api::AppState;
use crate::api::environments::{self as api, ChangeBody};
use crate::auth::Role;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use maud::html;

pub async fn index(State(state): State<AppState>, web: Web) -> Result<Response, WebError> {
    let caller = web.caller(&state, None).await?;
    caller.require(Role::Viewer)?;
    let repos = state.store.repos().await?;
    let body = html! {
        h1 { "Environments" }
        @if repos.is_empty() { p { "No repositories yet." } }
        ul.repos {
            @for r in &repos {
                li { a href={ "/repos/" (r.name) "/environments" } { (r.name) } }
            }
        }
    };
    Ok(page("Environments", Some(&web), body).into_response())
}

#[derive(serde::Deserialize, Default)]
pub struct NoticeQuery {
    notice: Option<String>,
}

pub async fn show(
    State(state): State<AppState>,
    web: Web,
    Path(name): Path<String>,
    Query(q): Query<NoticeQuery>,
) -> Result<Response, WebError> {
    let caller = web.caller(&state, Some(&name)).await?;
    let Json(list) = api::list(State(state.clone()), caller.clone(), Path(name.clone())).await?;
    let may_change = caller.user.role >= Role::Deployer;
    let mut envs = Vec::new();
    for e in list["environments"].as_array().into_iter().flatten() {
        let env = e["environment"].as_str().unwrap_or("").to_string();
        let Json(h) = api::history(
            State(state.clone()),
            caller.clone(),
            Path((name.clone(), env.clone())),
        )
        .await?;
        let history: Vec<serde_json::Value> = h["history"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .rev()
            .collect();
        let preview = if may_change {
            Some(api::rollback_preview(&state, &name, &env, None).await)
        } else {
            None
        };
        envs.push((env, e.clone(), history, preview));
    }
    let body = html! {
        h1 { "Environments of " (name) }
        (notice(q.notice.as_deref()))
        @if envs.is_empty() { p { "No environment is reconciled for this repository (configs/environments/ on its tracked branch)." } }
        @else {
            table.envs {
                caption.visually-hidden { "Environments" }
                thead { tr { th scope="col" { "Environment" } th scope="col" { "Sync" } th scope="col" { "Health" } th scope="col" { "Revision" } th scope="col" { "Model" } th scope="col" { "Address" } th scope="col" { "Replicas" } } }
                tbody {
                    @for (env, e, _, _) in &envs {
                        tr {
                            th scope="row" { a href={ "#env-" (env) } { (env) } }
                            td { (badge(&e["sync"].as_str().unwrap_or("unknown").to_ascii_lowercase())) }
                            td { (e["health"].as_str().unwrap_or("")) }
                            td { code { (short(e["deployed_revision"].as_str())) } }
                            td { (e["model"].as_str().unwrap_or("—")) }
                            td { (e["address"].as_str().unwrap_or("—")) }
                            td { (e["replicas"].as_array().map_or(0, Vec::len)) }
                        }
                    }
                }
            }
        }
        @for (env, e, history, preview) in &envs {
            section.env id={ "env-" (env) } aria-labelledby={ "env-h-" (env) } {
                h2 id={ "env-h-" (env) } { (env) }
                @if !e["message"].as_str().unwrap_or("").is_empty() { p.message { (e["message"].as_str().unwrap_or("")) } }
                h3 { "Git and what runs" }
                @let wanted = e["revision"].as_str();
                @let running = e["deployed_revision"].as_str();
                @if wanted == running {
                    p { "What runs is what git says: revision " code { (short(running)) } "." }
                } @else {
                    p.drift { "Git says revision " code { (short(wanted)) } ", what runs is " code { (short(running)) } ". The reconciler brings it in line (or the last attempt failed: see its message)." }
                }
                h3 { "History" }
                @if history.is_empty() { p { "No deployment yet." } }
                @else {
                    table.history {
                        thead { tr { th scope="col" { "When" } th scope="col" { "Revision" } th scope="col" { "Author" } th scope="col" { "Commit message" } th scope="col" { "Result" } } }
                        tbody {
                            @for h in history.iter().take(20) {
                                tr {
                                    td { (render::time(i64::try_from(h["finished_at"].as_u64().unwrap_or(0)).unwrap_or(0) * 1000)) }
                                    td { code { (short(h["revision"].as_str())) } }
                                    td { (h["author"].as_str().unwrap_or("")) }
                                    td { (h["subject"].as_str().unwrap_or("")) }
                                    td { (h["result"].as_str().unwrap_or("")) }
                                }
                            }
                        }
                    }
                }
                @if let Some(p) = preview {
                    h3 { "Roll back" }
                    @match p {
                        Ok((diff, rules)) => {
                            @if diff.is_empty() {
                                p { "Nothing to roll back to: the previous revision configures the same." }
                            } @else {
                                p { "Rolling back to the previous revision commits this change to " code { "configs/environments/" (env) ".yaml" } ":" }
                                table.diff {
                                    thead { tr { th scope="col" { "Key" } th scope="col" { "Now" } th scope="col" { "After" } } }
                                    tbody { @for d in diff { tr { td { code { (d.path) } } td { (d.left.as_deref().unwrap_or("—")) } td { (d.right.as_deref().unwrap_or("—")) } } } }
                                }
                                @if rules.needs_approval() {
                                    p.hint { "This environment requires a review (" (rules.required_reviewers.join(", ")) "): the rollback becomes a change request that waits for one of them." }
                                }
                                form method="post" action={ "/repos/" (name) "/environments/" (env) "/rollback" } {
                                    input type="hidden" name="csrf" value=(web.csrf);
                                    button.danger type="submit" { "Roll back " (env) }
                                }
                            }
                        }
                        Err(err) => p.hint { "Rollback is not available: " (err.message()) }
                    }
                }
            }
        }
    };
    Ok(page(&format!("Environments of {name}"), Some(&web), body).into_response())
}

fn short(rev: Option<&str>) -> String {
    rev.map_or_else(|| "—".to_string(), |r| r.chars().take(12).collect())
}

#[derive(serde::Deserialize)]
pub struct ChangeForm {
    csrf: String,
    to: Option<String>,
}

pub async fn change(
    State(state): State<AppState>,
    web: Web,
    Path((name, env, kind)): Path<(String, String, String)>,
    Form(f): Form<ChangeForm>,
) -> Result<Response, WebError> {
    web.check(&state, &f.csrf)?;
    let caller = web.caller(&state, Some(&name)).await?;
    let back = format!("/repos/{name}/environments");
    let body = ChangeBody {
        to: f.to.filter(|t| !t.is_empty()),
        ..Default::default()
    };
    match api::change(
        State(state),
        caller,
        Path((name, env.clone(), kind.clone())),
        Ok(Json(body)),
    )
    .await
    {
        Ok((_, Json(v))) => {
            let msg = match (v["commit"].as_str(), v["change"].as_i64()) {
                (Some(c), _) => format!("{kind} of {env}: committed {}", &c[..c.len().min(12)]),
                (None, Some(id)) => {
                    format!("{kind} of {env}: change request {id} waits for a reviewer")
                }
                _ => format!("{kind} of {env}: done"),
            };
            Ok(redirect_with(&back, &msg))
        }
        Err(e) => Ok(redirect_with(&back, e.message())),
    }
}
