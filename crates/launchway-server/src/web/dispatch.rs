//! "Run workflow": the repository's `workflow_dispatch` workflows, and the
//! chosen one's inputs as a form (text, number, a checkbox for a boolean, a
//! list for a choice), sent through the API's dispatch handler — so the
//! inputs are checked (type, `choice`, required) and the run audited as any
//! dispatch.

use super::{Web, WebError, notice, page, redirect_with};
use crate::api::AppState;
use crate::api::runs::{self as api, Dispatch};
use crate::auth::Role;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use launchway_workflow::{InputType, Workflow};
use maud::html;
use std::collections::BTreeMap;

#[derive(serde::Deserialize, Default)]
pub struct DispatchQuery {
    workflow: Option<String>,
    notice: Option<String>,
}

/// The repository's workflows that take `workflow_dispatch`, at its
/// current head.
async fn dispatchable(state: &AppState, name: &str) -> Result<Vec<(String, Workflow)>, WebError> {
    let (repo, _) =
        state.store.repo(name).await?.ok_or_else(|| {
            WebError::Page(StatusCode::NOT_FOUND, format!("no repository '{name}'"))
        })?;
    let dir = crate::triggers::current_dir(state.engine.data_dir(), &repo).await;
    let source = launchway_runner::source::Source::open(&dir, None, false)
        .map_err(|e| WebError::Page(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
    Ok(launchway_runner::prepare::workflows(&source)
        .ok
        .into_iter()
        .filter(|(_, wf)| wf.on.events.contains_key("workflow_dispatch"))
        .collect())
}

pub async fn form(
    State(state): State<AppState>,
    web: Web,
    Path(name): Path<String>,
    Query(q): Query<DispatchQuery>,
) -> Result<Response, WebError> {
    let caller = web.caller(&state, Some(&name)).await?;
    caller.require(Role::Viewer)?;
    let may = caller.user.role >= Role::Developer;
    let workflows = dispatchable(&state, &name).await?;
    let chosen = q
        .workflow
        .as_deref()
        .and_then(|w| workflows.iter().find(|(p, _)| p == w))
        .or(workflows.first());
    let body = html! {
        h1 { "Run a workflow of " (name) }
        (notice(q.notice.as_deref()))
        @if workflows.is_empty() {
            p { "No workflow of this repository takes " code { "workflow_dispatch" } "." }
        } @else {
            nav aria-label="Workflows" {
                ul.repos {
                    @for (path, wf) in &workflows {
                        li {
                            a href={ "/repos/" (name) "/dispatch?workflow=" (super::url_escape(path)) }
                              aria-current=[chosen.is_some_and(|(p, _)| p == path).then_some("page")] {
                                (wf.name.as_deref().unwrap_or(path))
                            }
                            " " code { (path) }
                        }
                    }
                }
            }
            @if let Some((path, wf)) = chosen {
                @if !may {
                    p.refusal role="note" { "Running a workflow needs the developer role; you have " (caller.user.role.as_str()) "." }
                } @else {
                    form.card method="post" action={ "/repos/" (name) "/dispatch" } {
                        input type="hidden" name="csrf" value=(web.csrf);
                        input type="hidden" name="workflow" value=(path);
                        label for="ref" { "Branch or tag" }
                        input #ref name="ref" placeholder="the default branch";
                        @for (input_name, i) in wf.on.events.get("workflow_dispatch").map(|e| &e.inputs).into_iter().flatten() {
                            @let id = format!("input-{input_name}");
                            @let field = format!("input.{input_name}");
                            @let default = i.default.as_ref().map(|d| d.to_display_string()).unwrap_or_default();
                            @match &i.kind {
                                InputType::Boolean => {
                                    input type="hidden" name=(field) value="false";
                                    label for=(id) {
                                        input id=(id) type="checkbox" name=(field) value="true" checked[default == "true"];
                                        " " (input_name)
                                    }
                                }
                                InputType::Choice(options) => {
                                    label for=(id) { (input_name) @if i.required { " (required)" } }
                                    select id=(id) name=(field) required[i.required] {
                                        @for o in options { option value=(o) selected[*o == default] { (o) } }
                                    }
                                }
                                InputType::Number => {
                                    label for=(id) { (input_name) @if i.required { " (required)" } }
                                    input id=(id) type="number" step="any" name=(field) value=(default) required[i.required];
                                }
                                _ => {
                                    label for=(id) { (input_name) @if i.required { " (required)" } }
                                    input id=(id) name=(field) value=(default) required[i.required];
                                }
                            }
                            @if let Some(d) = &i.description { p.hint { (d) } }
                        }
                        button type="submit" { "Run workflow" }
                    }
                }
            }
        }
    };
    Ok(page(&format!("Run a workflow of {name}"), Some(&web), body).into_response())
}

pub async fn dispatch(
    State(state): State<AppState>,
    web: Web,
    Path(name): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let get = |k: &str| {
        fields
            .iter()
            .rev()
            .find(|(f, _)| f == k)
            .map(|(_, v)| v.clone())
    };
    web.check(&state, &get("csrf").unwrap_or_default())?;
    let workflow = get("workflow").unwrap_or_default();
    // The last value of a field wins: a checked box after its hidden "false".
    let mut inputs = BTreeMap::new();
    for (k, v) in &fields {
        if let Some(input) = k.strip_prefix("input.") {
            inputs.insert(input.to_string(), v.clone());
        }
    }
    let caller = web.caller(&state, Some(&name)).await?;
    let body = Dispatch {
        workflow: workflow.clone(),
        git_ref: get("ref").filter(|r| !r.trim().is_empty()),
        inputs,
    };
    match api::dispatch(State(state), caller, Path(name.clone()), Ok(Json(body))).await {
        Ok((_, Json(run))) => Ok(redirect_with(
            &format!("/runs/{}", run.id),
            &format!("{workflow} queued."),
        )),
        Err(e) => Ok(redirect_with(
            &format!(
                "/repos/{name}/dispatch?workflow={}",
                super::url_escape(&workflow)
            ),
            e.message(),
        )),
    }
}
