//! Environments per repository: sync and health, revision, model, address
//! and replicas; what differs between git and what runs; the history with
//! the commit behind each deployment; and a rollback that shows the change
//! it will commit (or the change request, when reviewers are required).
//! Changes go through the API's handler (`crate::api::environments`).

use super::render;
use super::{Web, WebError, badge, notice, page, redirect_with};
use crate::api::AppState;
use crate::api::environments::{self as api, ChangeBody, ChangesQuery, DecisionBody};
use crate::auth::Role;
use crate::environments::ENV_DIR;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use maud::html;

pub async fn index(State(state): State<AppState>, web: Web) -> Result<Response, WebError> {
    let caller = web.caller(&state, None).await?;
    let Json(repos) = crate::api::runs::list_repos(State(state.clone()), caller).await?;
    let body = html! {
        h1 { "Environments" }
        @if repos.is_empty() { p { "No repositories yet." } }
        ul.repos {
            @for r in &repos {
                li {
                    a href={ "/repos/" (r.name) "/environments" } { (r.name) }
                    " · " a href={ "/repos/" (r.name) "/dispatch" } { "run a workflow" }
                }
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
        let rollout = api::rollout(
            State(state.clone()),
            caller.clone(),
            Path((name.clone(), env.clone())),
        )
        .await
        .ok()
        .map(|Json(v)| v);
        // Git against what runs, key by key, when they differ.
        let drift = match (e["revision"].as_str(), e["deployed_revision"].as_str()) {
            (Some(w), Some(r)) if w != r => Some(
                api::drift(&state, &name, &env, w, r)
                    .await
                    .map_err(|e| e.message().to_string()),
            ),
            _ => None,
        };
        envs.push((env, e.clone(), history, preview, rollout, drift));
    }
    let Json(changes) = api::list_changes(
        State(state.clone()),
        caller.clone(),
        Query(ChangesQuery {
            status: Some("waiting".into()),
        }),
    )
    .await?;
    let waiting: Vec<&serde_json::Value> = changes["changes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["repo"] == name.as_str())
        .collect();
    let body = html! {
        h1 { "Environments of " (name) }
        (notice(q.notice.as_deref()))
        @if envs.is_empty() { p { "No environment is reconciled for this repository (configs/environments/ on its tracked branch)." } }
        @else {
            table.envs {
                caption.visually-hidden { "Environments" }
                thead { tr { th scope="col" { "Environment" } th scope="col" { "Sync" } th scope="col" { "Health" } th scope="col" { "Revision" } th scope="col" { "Model" } th scope="col" { "Address" } th scope="col" { "Replicas" } } }
                tbody {
                    @for (env, e, _, _, _, _) in &envs {
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
        @if !waiting.is_empty() {
            section aria-labelledby="changes-h" {
                h2 #changes-h { "Changes waiting for a reviewer" }
                @for c in &waiting {
                    @let id = c["id"].as_i64().unwrap_or(0);
                    div.change-request {
                        p { strong { "#" (id) " " (c["kind"].as_str().unwrap_or("")) " of " (c["environment"].as_str().unwrap_or("")) } " asked by " (c["requested_by"].as_str().unwrap_or("")) " at " (render::time(c["created_ms"].as_i64().unwrap_or(0))) }
                        @if let Some(diff) = c["params"]["preview"].as_array() {
                            table.diff {
                                thead { tr { th scope="col" { "Key" } th scope="col" { "Now" } th scope="col" { "After" } } }
                                tbody { @for d in diff { tr { td { code { (d["path"].as_str().unwrap_or("")) } } td { (d["before"].as_str().unwrap_or("—")) } td { (d["after"].as_str().unwrap_or("—")) } } } }
                            }
                        }
                        @if may_change {
                            form method="post" action={ "/changes/" (id) "/approve" } {
                                input type="hidden" name="csrf" value=(web.csrf);
                                label for={ "cc-" (id) } { "Comment" }
                                input id={ "cc-" (id) } name="comment";
                                button.approve type="submit" { "Approve and commit" }
                                button.danger type="submit" formaction={ "/changes/" (id) "/reject" } { "Reject" }
                            }
                        }
                    }
                }
            }
        }
        @for (env, e, history, preview, rollout, drift) in &envs {
            section.env id={ "env-" (env) } aria-labelledby={ "env-h-" (env) } {
                h2 id={ "env-h-" (env) } { (env) }
                @if !e["message"].as_str().unwrap_or("").is_empty() { p.message { (e["message"].as_str().unwrap_or("")) } }
                h3 { "Git and what runs" }
                @let wanted = e["revision"].as_str();
                @let running = e["deployed_revision"].as_str();
                @if running.is_none() {
                    p { "Nothing runs yet; git is at revision " code { (short(wanted)) } "." }
                } @else if wanted == running {
                    p { "What runs is what git says: revision " code { (short(running)) } "." }
                } @else {
                    p.drift { "Git says revision " code { (short(wanted)) } ", what runs is " code { (short(running)) } ". The reconciler brings it in line (or the last attempt failed: see its message)." }
                    @match drift {
                        Some(Ok(d)) if !d.is_empty() => {
                            table.diff {
                                thead { tr { th scope="col" { "Key" } th scope="col" { "Running" } th scope="col" { "In git" } } }
                                tbody { @for x in d { tr { td { code { (x.path) } } td { (x.left.as_deref().unwrap_or("—")) } td { (x.right.as_deref().unwrap_or("—")) } } } }
                            }
                        }
                        Some(Ok(_)) => p { "The two revisions configure the same." }
                        Some(Err(why)) => p.hint { "No key-by-key comparison: " (why) }
                        None => {}
                    }
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
                @if let Some(r) = rollout {
                    (rollout_html(&name, env, r, may_change, &web.csrf))
                }
                @if may_change {
                    h3 { "Deploy or promote" }
                    div.actions {
                        form method="post" action={ "/repos/" (name) "/environments/" (env) "/deploy" } {
                            input type="hidden" name="csrf" value=(web.csrf);
                            label for={ "rel-" (env) } { "Release (commit, branch or tag)" }
                            input id={ "rel-" (env) } name="release" required;
                            button type="submit" { "Deploy to " (env) }
                        }
                        @let others: Vec<&String> = envs.iter().map(|x| &x.0).filter(|o| *o != env).collect();
                        @if !others.is_empty() {
                            form method="post" action={ "/repos/" (name) "/environments/" (env) "/promote" } {
                                input type="hidden" name="csrf" value=(web.csrf);
                                label for={ "from-" (env) } { "Promote what runs in" }
                                select id={ "from-" (env) } name="from" {
                                    @for o in &others { option value=(o) { (o) } }
                                }
                                button type="submit" { "Promote to " (env) }
                            }
                        }
                    }
                    p.hint { "Each is a commit to " code { (ENV_DIR) "/" (env) ".yaml" } " on the tracked branch; where reviewers are required it becomes a change request." }
                }
                @if let Some(p) = preview {
                    h3 { "Roll back" }
                    @match p {
                        Ok((diff, rules)) => {
                            @if diff.is_empty() {
                                p { "Nothing to roll back to: the previous revision configures the same." }
                            } @else {
                                p { "Rolling back to the previous revision commits this change to " code { (ENV_DIR) "/" (env) ".yaml" } ":" }
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
    release: Option<String>,
    from: Option<String>,
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
    let given = |v: Option<String>| v.map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    let body = ChangeBody {
        to: given(f.to),
        release: given(f.release),
        from: given(f.from),
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

/// A progressive rollout: phase, step, weight, each analysis's measurements
/// as a small chart, and the commands the rollout takes now.
fn rollout_html(
    repo: &str,
    env: &str,
    r: &serde_json::Value,
    may: bool,
    csrf: &str,
) -> maud::Markup {
    let phase = r["phase"].as_str().unwrap_or("");
    let live = launchway_deploy::local::rollout_is_live(phase);
    let weight = r["weight"].as_u64().unwrap_or(0);
    let mut by_template: std::collections::BTreeMap<&str, Vec<&serde_json::Value>> =
        std::collections::BTreeMap::new();
    for m in r["measurements"].as_array().into_iter().flatten() {
        by_template
            .entry(m["template"].as_str().unwrap_or(""))
            .or_default()
            .push(m);
    }
    html! {
        section.rollout aria-label={ "Rollout of " (env) } {
            h3 { "Rollout: " (r["strategy"].as_str().unwrap_or("")) " " span.badge.(phase.to_ascii_lowercase()) { (phase) } }
            p {
                "Step " (r["step"].as_u64().unwrap_or(0) + 1) " of " (r["steps"].as_u64().unwrap_or(0))
                " · stable " code { (short(r["stable"].as_str())) } " · canary " code { (short(r["canary"].as_str())) }
            }
            label for={ "w-" (env) } { "Canary weight " (weight) "%" }
            " " meter id={ "w-" (env) } min="0" max="100" value=(weight) { (weight) "%" }
            @if !r["message"].as_str().unwrap_or("").is_empty() { p.message { (r["message"].as_str().unwrap_or("")) } }
            @for (template, ms) in &by_template {
                figure.analysis {
                    figcaption { "Analysis " code { (template) } ": " (ms.len()) " measurements" }
                    (sparkline(ms))
                    ul.visually-hidden {
                        @for m in ms { li { (m["outcome"].as_str().unwrap_or("")) ": " (m["value"].as_str().unwrap_or("")) } }
                    }
                }
            }
            @if may && live {
                div.actions {
                    @for (act, label) in [("promote", "Promote a step"), ("promote-full", "Promote fully"), ("abort", "Abort")] {
                        form method="post" action={ "/repos/" (repo) "/environments/" (env) "/rollout/" (act) } {
                            input type="hidden" name="csrf" value=(csrf);
                            button.danger[act == "abort"] type="submit" { (label) }
                        }
                    }
                }
            } @else if may {
                div.actions {
                    form method="post" action={ "/repos/" (repo) "/environments/" (env) "/rollout/undo" } {
                        input type="hidden" name="csrf" value=(csrf);
                        button type="submit" { "Undo (back to the previous release)" }
                    }
                }
            }
        }
    }
}

/// Measurements as an inline SVG: one bar per measurement, its height the
/// value relative to the largest, failed ones marked.
fn sparkline(ms: &[&serde_json::Value]) -> maud::Markup {
    let values: Vec<Option<f64>> = ms
        .iter()
        .map(|m| {
            m["value"]
                .as_str()
                .and_then(|v| v.trim().parse::<f64>().ok())
        })
        .collect();
    let max = values
        .iter()
        .flatten()
        .fold(0.0_f64, |a, b| a.max(b.abs()))
        .max(f64::MIN_POSITIVE);
    let w = 6 * ms.len().max(1);
    html! {
        svg.spark width=(w) height="32" viewBox={ "0 0 " (w) " 32" } role="img" aria-label="measurements over time" {
            @for (i, (m, v)) in ms.iter().zip(&values).enumerate() {
                @let h = v.map_or(2.0, |v| (v.abs() / max * 30.0).max(2.0));
                @let ok = m["outcome"].as_str() == Some("Successful");
                rect x=(i * 6) y=(format!("{:.1}", 32.0 - h)) width="4" height=(format!("{h:.1}")) class=(if ok { "ok" } else { "bad" }) {}
            }
        }
    }
}

#[derive(serde::Deserialize)]
pub struct ActionForm {
    csrf: String,
}

pub async fn rollout_action(
    State(state): State<AppState>,
    web: Web,
    Path((name, env, act)): Path<(String, String, String)>,
    Form(f): Form<ActionForm>,
) -> Result<Response, WebError> {
    web.check(&state, &f.csrf)?;
    let caller = web.caller(&state, Some(&name)).await?;
    let back = format!("/repos/{name}/environments");
    let msg =
        match api::rollout_action(State(state), caller, Path((name, env.clone(), act.clone())))
            .await
        {
            Ok(_) => format!("{act} of the {env} rollout requested."),
            Err(e) => e.message().to_string(),
        };
    Ok(redirect_with(&back, &msg))
}

#[derive(serde::Deserialize)]
pub struct DecideForm {
    csrf: String,
    comment: Option<String>,
}

pub async fn decide(
    State(state): State<AppState>,
    web: Web,
    Path((id, verdict)): Path<(i64, String)>,
    Form(f): Form<DecideForm>,
) -> Result<Response, WebError> {
    web.check(&state, &f.csrf)?;
    let change = state
        .store
        .change(id)
        .await?
        .ok_or_else(|| WebError::Page(StatusCode::NOT_FOUND, format!("no change {id}")))?;
    let caller = web.caller(&state, Some(&change.repo)).await?;
    let back = format!("/repos/{}/environments", change.repo);
    let body = DecisionBody {
        comment: f.comment.filter(|c| !c.trim().is_empty()),
    };
    let msg = match api::decide(
        State(state),
        caller,
        Path((id, verdict.clone())),
        Ok(Json(body)),
    )
    .await
    {
        Ok((_, Json(v))) => format!(
            "Change {id}: {}{}",
            v["status"].as_str().unwrap_or(&verdict),
            v["commit"]
                .as_str()
                .map(|c| format!(", commit {}", &c[..c.len().min(12)]))
                .unwrap_or_default()
        ),
        Err(e) => e.message().to_string(),
    };
    Ok(redirect_with(&back, &msg))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rollout(phase: &str) -> serde_json::Value {
        serde_json::json!({
            "strategy": "canary", "phase": phase, "step": 1, "steps": 4, "weight": 25,
            "stable": "aaaaaaaaaaaaaaaa", "canary": "bbbbbbbbbbbbbbbb", "message": "analysing",
            "measurements": [
                {"template": "errors", "outcome": "Successful", "value": "0.01", "at": 1},
                {"template": "errors", "outcome": "Failed", "value": "0.2", "at": 2},
                {"template": "latency", "outcome": "Successful", "value": "n/a", "at": 3}
            ]
        })
    }

    #[test]
    fn a_rollout_shows_its_step_weight_measurements_and_the_commands_it_takes() {
        let live = rollout_html("web", "prod", &rollout("Paused"), true, "tok").into_string();
        assert!(live.contains("Step 2 of 4"), "{live}");
        assert!(
            live.contains(r#"<meter id="w-prod" min="0" max="100" value="25">"#),
            "{live}"
        );
        // One chart per analysis, a bar per measurement, failures marked.
        assert_eq!(live.matches("<svg").count(), 2, "{live}");
        assert_eq!(live.matches(r#"class="bad""#).count(), 1, "{live}");
        for act in ["promote", "promote-full", "abort"] {
            assert!(live.contains(&format!("/rollout/{act}\"")), "{act}: {live}");
        }
        assert!(!live.contains("/rollout/undo"), "{live}");
        assert!(live.contains(r#"name="csrf" value="tok""#));
        // Finished: only undo. Without the role: no command at all.
        let done = rollout_html("web", "prod", &rollout("Promoted"), true, "tok").into_string();
        assert!(
            done.contains("/rollout/undo") && !done.contains("/rollout/abort"),
            "{done}"
        );
        let viewer = rollout_html("web", "prod", &rollout("Paused"), false, "tok").into_string();
        assert!(!viewer.contains("<form"), "{viewer}");
    }
}
