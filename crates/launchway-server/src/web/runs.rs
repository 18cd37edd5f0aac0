//! The runs list (with filters) and a run's page: the job graph, each
//! job's steps and log, annotations, summaries, artifacts, the "Review
//! deployments" panel, and re-run / cancel. Actions go through the API's
//! handlers (`crate::api::runs`), so they are checked and audited the same.

use super::render::{self, Node};
use super::{Web, WebError, badge, notice, page, redirect_with};
use crate::api::AppState;
use crate::api::runs::{self as api, RerunQuery, ReviewBody, RunId, RunsQuery};
use crate::auth::Role;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use maud::html;
use serde_json::Value;
use std::collections::BTreeMap;

/// The most of one job's log a page shows; the rest is a download.
const PAGE_LOG_BYTES: usize = 2 << 20;

#[derive(serde::Deserialize, Default)]
pub struct ListQuery {
    repo: Option<String>,
    workflow: Option<String>,
    branch: Option<String>,
    status: Option<String>,
    actor: Option<String>,
    notice: Option<String>,
}

fn some(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

pub async fn list(
    State(state): State<AppState>,
    web: Web,
    Query(q): Query<ListQuery>,
) -> Result<Response, WebError> {
    let caller = web.caller(&state, None).await?;
    let Json(runs) = api::list_runs(
        State(state.clone()),
        caller.clone(),
        Ok(Query(RunsQuery {
            repo: some(&q.repo).map(str::to_string),
            status: some(&q.status).map(str::to_string),
            limit: Some(500),
        })),
    )
    .await?;
    let contains = |have: &str, want: Option<&str>| {
        want.is_none_or(|w| have.to_lowercase().contains(&w.to_lowercase()))
    };
    let runs: Vec<_> = runs
        .into_iter()
        .filter(|r| {
            contains(&r.workflow, some(&q.workflow))
                && contains(&r.git_ref, some(&q.branch))
                && contains(&r.actor, some(&q.actor))
        })
        .take(100)
        .collect();
    let Json(repos) = api::list_repos(State(state.clone()), caller).await?;
    let statuses = [
        "queued",
        "running",
        "waiting",
        "success",
        "failure",
        "cancelled",
    ];
    let body = html! {
        h1 { "Runs" }
        (notice(q.notice.as_deref()))
        @if web.user.role >= Role::Developer && !repos.is_empty() {
            p.run-workflow { "Run a workflow: "
                @for (i, r) in repos.iter().enumerate() {
                    @if i > 0 { ", " }
                    a href={ "/repos/" (r.name) "/dispatch" } { (r.name) }
                }
            }
        }
        form.filters method="get" action="/runs" role="search" aria-label="Filter runs" {
            label { "Repository "
                select name="repo" {
                    option value="" { "all" }
                    @for r in &repos {
                        option value=(r.name) selected[some(&q.repo) == Some(r.name.as_str())] { (r.name) }
                    }
                }
            }
            label { "Workflow " input name="workflow" value=[some(&q.workflow)]; }
            label { "Branch " input name="branch" value=[some(&q.branch)]; }
            label { "Status "
                select name="status" {
                    option value="" { "any" }
                    @for s in statuses {
                        option value=(s) selected[some(&q.status) == Some(s)] { (s) }
                    }
                }
            }
            label { "Actor " input name="actor" value=[some(&q.actor)]; }
            button type="submit" { "Filter" }
        }
        @if runs.is_empty() {
            p { "No runs match." }
        } @else {
            table.runs {
                caption.visually-hidden { "Runs, newest first" }
                thead { tr { th scope="col" { "Run" } th scope="col" { "Status" } th scope="col" { "Repository" } th scope="col" { "Event" } th scope="col" { "Branch" } th scope="col" { "Actor" } th scope="col" { "Started" } } }
                tbody {
                    @for r in &runs {
                        tr data-run=(r.id) {
                            td { a href={ "/runs/" (r.id) } { (r.workflow) " #" (r.id) } }
                            td { (badge(r.status.as_str())) }
                            td { (r.repo) }
                            td { (r.event) }
                            td { code { (r.git_ref.trim_start_matches("refs/heads/")) } }
                            td { (r.actor) }
                            td { (render::time(r.created_ms)) }
                        }
                    }
                }
            }
        }
    };
    Ok(page("Runs", Some(&web), body).into_response())
}

#[derive(serde::Deserialize, Default)]
pub struct NoticeQuery {
    notice: Option<String>,
}

/// A job of the record, with what the page needs.
struct JobView<'a> {
    key: &'a str,
    name: &'a str,
    result: &'a str,
    group: String,
    v: &'a Value,
}

/// The key without its matrix suffix: `build (3.11, ubuntu)` → `build`.
fn group_of(key: &str) -> String {
    match key.rfind(" (") {
        Some(i) if key.ends_with(')') => key[..i].to_string(),
        _ => key.to_string(),
    }
}

/// Columns of the job graph: a job sits one column right of the last job
/// it needs.
fn levels(jobs: &[JobView<'_>]) -> Vec<Vec<String>> {
    let mut needs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    for j in jobs {
        if !order.contains(&j.group) {
            order.push(j.group.clone());
        }
        let e = needs.entry(j.group.clone()).or_default();
        for n in j.v["needs"].as_array().into_iter().flatten() {
            if let Some(n) = n.as_str()
                && !e.iter().any(|x| x == n)
            {
                e.push(n.to_string());
            }
        }
    }
    let mut level: BTreeMap<String, usize> = BTreeMap::new();
    // At most as many passes as jobs (a cycle cannot get further).
    for _ in 0..=order.len() {
        let mut changed = false;
        for g in &order {
            let l = needs
                .get(g)
                .into_iter()
                .flatten()
                .filter_map(|n| level.get(n).map(|l| l + 1))
                .max()
                .unwrap_or(0);
            if level.get(g) != Some(&l) {
                level.insert(g.clone(), l);
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let depth = level.values().copied().max().unwrap_or(0);
    let mut cols = vec![Vec::new(); depth + 1];
    for g in order {
        cols[level.get(&g).copied().unwrap_or(0)].push(g);
    }
    cols
}

fn slug(key: &str) -> String {
    launchway_runner::store::slug(key)
}

/// The last [`PAGE_LOG_BYTES`] of a job's log (only those are read), and
/// whether anything before them was left out.
fn log_tail(path: &std::path::Path) -> Option<(Vec<u8>, bool)> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    let limit = PAGE_LOG_BYTES as u64;
    let cut = len > limit;
    if cut {
        f.seek(SeekFrom::Start(len - limit)).ok()?;
    }
    let mut bytes = Vec::new();
    f.take(limit).read_to_end(&mut bytes).ok()?;
    Some((bytes, cut))
}

/// The line (1-based) a byte offset of a log falls on.
fn line_at(log: &[u8], offset: u64) -> usize {
    let end = usize::try_from(offset).unwrap_or(usize::MAX).min(log.len());
    log[..end].iter().filter(|b| **b == b'\n').count() + 1
}

pub async fn show(
    State(state): State<AppState>,
    web: Web,
    Path(id): Path<i64>,
    Query(q): Query<NoticeQuery>,
) -> Result<Response, WebError> {
    let run = api::run_or_404(&state, id).await?;
    let caller = web.caller(&state, Some(&run.repo)).await?;
    let Json(v) = api::show_run(State(state.clone()), caller.clone(), RunId(id)).await?;
    let Json(artifacts) = api::artifacts(State(state.clone()), caller.clone(), RunId(id)).await?;
    let run_dir = std::path::PathBuf::from(&run.run_dir);
    let jobs: Vec<JobView<'_>> = v["jobs"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|j| JobView {
            key: j["key"].as_str().unwrap_or(""),
            name: j["name"].as_str().unwrap_or(""),
            result: j["result"].as_str().unwrap_or(""),
            group: group_of(j["key"].as_str().unwrap_or("")),
            v: j,
        })
        .collect();
    let cols = levels(&jobs);
    let status = run.status.as_str();
    // Live: the page follows the log (a run paused for a review is not).
    let live = !run.status.is_final();
    let active = live || status == "waiting";
    let may_act = caller.user.role >= Role::Developer;

    // Deployments waiting for a review, and whether this user may give it.
    let mut reviews = Vec::new();
    if run.status == crate::store::RunStatus::Waiting {
        let mut seen = Vec::new();
        for j in &jobs {
            let Some(env) = j.v["environment"].as_str() else {
                continue;
            };
            if j.result != "waiting" || seen.contains(&env) {
                continue;
            }
            seen.push(env);
            let rules = api::deployment_rules(&state, &run, env).await;
            let groups = state.store.groups_of(&caller.user.name).await?;
            let verdict = match &rules {
                Ok(p) => crate::approval::may_review(
                    p,
                    &crate::approval::Reviewer {
                        name: &caller.user.name,
                        role: caller.user.role,
                        groups: &groups,
                    },
                    &run.actor,
                )
                .map_err(|r| r.to_string()),
                Err(e) => Err(e.message().to_string()),
            };
            let given = state.store.reviews(id, env).await?;
            reviews.push((env.to_string(), rules.ok(), verdict, given));
        }
    }

    // Each job's log, read once: the steps' places in it and the page's part.
    let mut logs: BTreeMap<String, (Vec<u8>, bool)> = BTreeMap::new();
    if !run.run_dir.is_empty() {
        for j in &jobs {
            let path = run_dir.join(launchway_runner::store::job_log(j.key));
            if let Some(tail) = log_tail(&path) {
                logs.insert(j.key.to_string(), tail);
            }
        }
    }
    let annotations: Vec<&Value> = v["annotations"].as_array().into_iter().flatten().collect();
    // The log line an annotation was written on (each job's log decoded once).
    let mut texts: BTreeMap<&str, String> = BTreeMap::new();
    let annotation_lines: Vec<Option<usize>> = annotations
        .iter()
        .map(|a| {
            let job = a["job"].as_str().unwrap_or("");
            let msg = a["message"].as_str().unwrap_or("");
            let text = texts.entry(job).or_insert_with(|| {
                logs.get(job)
                    .map(|(b, _)| String::from_utf8_lossy(b).into_owned())
                    .unwrap_or_default()
            });
            text.lines()
                .position(|l| l.starts_with("##[") && l.contains(msg))
                .map(|p| p + 1)
        })
        .collect();

    let body = html! {
        div #run data-run=(id) data-live=(live) data-csrf=(web.csrf) {
            h1 { (run.workflow) " #" (id) " " (badge(status)) }
            (notice(q.notice.as_deref()))
            @if !run.message.is_empty() { p.message { (run.message) } }
            dl.meta {
                dt { "Repository" } dd { (run.repo) }
                dt { "Event" } dd { (run.event) }
                dt { "Ref" } dd { code { (run.git_ref) } }
                dt { "Commit" } dd { code { (run.sha.get(..12).unwrap_or(&run.sha)) } }
                dt { "Actor" } dd { (run.actor) }
                dt { "Queued" } dd { (render::time(run.created_ms)) }
                @if run.finished_ms > 0 && run.started_ms > 0 {
                    dt { "Duration" } dd { (render::duration(u64::try_from(run.finished_ms - run.started_ms).unwrap_or(0))) }
                }
            }
            @if may_act {
                div.actions {
                    @if active {
                        form method="post" action={ "/runs/" (id) "/cancel" } {
                            input type="hidden" name="csrf" value=(web.csrf);
                            button.danger type="submit" { "Cancel run" }
                        }
                    } @else {
                        form method="post" action={ "/runs/" (id) "/rerun" } {
                            input type="hidden" name="csrf" value=(web.csrf);
                            button type="submit" { "Re-run all jobs" }
                        }
                        @if status == "failure" || status == "cancelled" {
                            form method="post" action={ "/runs/" (id) "/rerun" } {
                                input type="hidden" name="csrf" value=(web.csrf);
                                input type="hidden" name="failed" value="true";
                                button type="submit" { "Re-run failed jobs" }
                            }
                        }
                    }
                }
            }
            @if !reviews.is_empty() {
                section.review aria-labelledby="review-h" {
                    h2 #review-h { "Review deployments" }
                    @for (env, rules, verdict, given) in &reviews {
                        div.env-review data-environment=(env) {
                            h3 { (env) }
                            @if let Some(p) = rules {
                                ul.rules {
                                    li { "Required reviewers: " (if p.required_reviewers.is_empty() { "none".to_string() } else { p.required_reviewers.join(", ") }) }
                                    @if p.prevent_self_review { li { "The run's author may not approve it (" (run.actor) ")" } }
                                    @if p.wait_timer_minutes > 0 { li { "Wait timer: " (p.wait_timer_minutes) " min after approval" } }
                                    @if !p.branches.is_empty() { li { "Branches: " (p.branches.join(", ")) } }
                                }
                            }
                            @for r in given {
                                p.given { (r.by) (if r.approved { " approved" } else { " rejected" }) " at " (render::time(r.at_ms)) @if let Some(c) = &r.comment { ": " q { (c) } } }
                            }
                            @match verdict {
                                Ok(()) => {
                                    form.review-form method="post" action={ "/runs/" (id) "/review" } {
                                        input type="hidden" name="csrf" value=(web.csrf);
                                        input type="hidden" name="environment" value=(env);
                                        label for={ "comment-" (env) } { "Comment" }
                                        textarea id={ "comment-" (env) } name="comment" rows="2" {}
                                        div.buttons {
                                            button.approve type="submit" name="decision" value="approve" { "Approve and deploy" }
                                            button.danger type="submit" name="decision" value="reject" { "Reject" }
                                        }
                                    }
                                }
                                Err(why) => p.refusal role="note" { "You cannot review this deployment: " (why) }
                            }
                        }
                    }
                }
            }
            section aria-labelledby="graph-h" {
                h2 #graph-h { "Jobs" }
                ol.graph {
                    @for col in &cols {
                        li.column {
                            ul {
                                @for g in col {
                                    @let members: Vec<&JobView<'_>> = jobs.iter().filter(|j| &j.group == g).collect();
                                    li.node {
                                        @if members.len() > 1 {
                                            details.matrix open {
                                                summary { (g) " " span.count { "(" (members.len()) ")" } }
                                                ul { @for j in &members { li { a href={ "#job-" (slug(j.key)) } data-job=(j.key) { (badge(j.result)) " " (j.name) } } } }
                                            }
                                        } @else {
                                            @for j in &members { a href={ "#job-" (slug(j.key)) } data-job=(j.key) { (badge(j.result)) " " (j.name) } }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if !annotations.is_empty() {
                section aria-labelledby="ann-h" {
                    h2 #ann-h { "Annotations" }
                    ul.annotations {
                        @for (a, line) in annotations.iter().zip(&annotation_lines) {
                            @let level = a["level"].as_str().unwrap_or("notice");
                            @let job = a["job"].as_str().unwrap_or("");
                            @let msg = a["message"].as_str().unwrap_or("");
                            li class={ "ann-" (level) } {
                                strong { (level) } " "
                                @if let Some(n) = line { a href={ "#" (slug(job)) "-L" (n) } { (job) } } @else { (job) }
                                ": " (msg)
                            }
                        }
                    }
                }
            }
            @for j in &jobs {
                section.job id={ "job-" (slug(j.key)) } data-job=(j.key) aria-labelledby={ "h-" (slug(j.key)) } {
                    h2 id={ "h-" (slug(j.key)) } { (j.name) " " (badge(j.result)) }
                    @if let Some(m) = j.v["message"].as_str() { p.message { (m) } }
                    @let log = logs.get(j.key);
                    table.steps {
                        caption.visually-hidden { "Steps of " (j.name) }
                        thead { tr { th scope="col" { "Step" } th scope="col" { "Result" } th scope="col" { "Time" } } }
                        tbody {
                            @for s in j.v["steps"].as_array().into_iter().flatten() {
                                @let conclusion = s["conclusion"].as_str().unwrap_or("");
                                @let outcome = s["outcome"].as_str().unwrap_or(conclusion);
                                tr {
                                    td {
                                        @match (log, s["log"].as_str()) {
                                            (Some((bytes, false)), Some(_)) => {
                                                a href={ "#" (slug(j.key)) "-L" (line_at(bytes, s["log_start"].as_u64().unwrap_or(0))) } { (s["name"].as_str().unwrap_or("")) }
                                            }
                                            _ => (s["name"].as_str().unwrap_or("")),
                                        }
                                    }
                                    td {
                                        (badge(outcome))
                                        @if outcome != conclusion { " (continue-on-error)" }
                                    }
                                    td { (render::duration(s["duration_ms"].as_u64().unwrap_or(0))) }
                                }
                            }
                        }
                    }
                    div.log-tools {
                        label { "Search " input.log-search type="search" data-for=(slug(j.key)); }
                        a href={ "/api/runs/" (id) "/logs?job=" (super::url_escape(j.key)) } download={ (slug(j.key)) ".log" } { "Download log" }
                    }
                    @if let Some((_, true)) = log { p.hint { "The first part of this log is left out here; download it for all of it." } }
                    pre.log id={ "log-" (slug(j.key)) } data-job=(j.key) tabindex="0" role="region" aria-label={ "Log of " (j.name) } {
                        @if let Some((bytes, _)) = log {
                            @let tree: Vec<Node> = render::parse_log(&String::from_utf8_lossy(bytes));
                            (render::log_html(&slug(j.key), &tree))
                        }
                    }
                    @if let Some(summary) = j.v["summary"].as_str().filter(|s| !s.is_empty()) {
                        section.summary aria-label={ "Summary of " (j.name) } {
                            (render::markdown_html(summary))
                        }
                    }
                    @if let Some(outputs) = j.v["outputs"].as_object().filter(|o| !o.is_empty()) {
                        details { summary { "Outputs" }
                            dl { @for (k, val) in outputs { dt { (k) } dd { code { (val.as_str().unwrap_or("")) } } } }
                        }
                    }
                }
            }
            @if let Some(list) = artifacts.as_array().filter(|a| !a.is_empty()) {
                section aria-labelledby="art-h" {
                    h2 #art-h { "Artifacts" }
                    table.artifacts {
                        thead { tr { th scope="col" { "Artifact / file" } th scope="col" { "Size" } th scope="col" { "SHA-256" } } }
                        tbody {
                            @for a in list {
                                @let name = a["name"].as_str().unwrap_or("");
                                tr.artifact { th scope="row" { (name) } td { (a["bytes"].as_u64().unwrap_or(0)) " B" } td { code { (a["sha256"].as_str().unwrap_or("")) } } }
                                @for f in a["files"].as_array().into_iter().flatten() {
                                    @let path = f["path"].as_str().unwrap_or("");
                                    tr {
                                        td { a href={ "/api/runs/" (id) "/artifacts/" (super::url_escape(name)) "/" (super::url_escape(path)) } { (path) } }
                                        td { (f["size"].as_u64().unwrap_or(0)) " B" }
                                        td { code { (f["sha256"].as_str().unwrap_or("")) } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(page(&format!("{} #{id}", run.workflow), Some(&web), body).into_response())
}

#[derive(serde::Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

/// An API refusal as a notice on the run's page (or an error page when
/// the run itself is not there).
fn outcome(id: i64, r: Result<String, crate::api::ApiError>) -> Response {
    match r {
        Ok(msg) => redirect_with(&format!("/runs/{id}"), &msg),
        Err(e) if e.status() == StatusCode::NOT_FOUND => WebError::from(e).into_response(),
        Err(e) => redirect_with(&format!("/runs/{id}"), e.message()),
    }
}

pub async fn cancel(
    State(state): State<AppState>,
    web: Web,
    Path(id): Path<i64>,
    Form(f): Form<CsrfForm>,
) -> Result<Response, WebError> {
    web.check(&state, &f.csrf)?;
    let run = api::run_or_404(&state, id).await?;
    let caller = web.caller(&state, Some(&run.repo)).await?;
    let r = api::cancel(State(state), caller, RunId(id))
        .await
        .map(|_| "The run is being cancelled.".to_string());
    Ok(outcome(id, r))
}

#[derive(serde::Deserialize)]
pub struct RerunForm {
    csrf: String,
    failed: Option<bool>,
}

pub async fn rerun(
    State(state): State<AppState>,
    web: Web,
    Path(id): Path<i64>,
    Form(f): Form<RerunForm>,
) -> Result<Response, WebError> {
    web.check(&state, &f.csrf)?;
    let run = api::run_or_404(&state, id).await?;
    let caller = web.caller(&state, Some(&run.repo)).await?;
    match api::rerun(
        State(state),
        caller,
        RunId(id),
        Ok(Query(RerunQuery { failed: f.failed })),
    )
    .await
    {
        Ok((_, Json(new))) => Ok(redirect_with(
            &format!("/runs/{}", new.id),
            &format!("Re-run of #{id} queued."),
        )),
        Err(e) => Ok(outcome(id, Err(e))),
    }
}

#[derive(serde::Deserialize)]
pub struct ReviewForm {
    csrf: String,
    environment: String,
    comment: Option<String>,
    decision: String,
}

pub async fn review(
    State(state): State<AppState>,
    web: Web,
    Path(id): Path<i64>,
    Form(f): Form<ReviewForm>,
) -> Result<Response, WebError> {
    web.check(&state, &f.csrf)?;
    let run = api::run_or_404(&state, id).await?;
    let caller = web.caller(&state, Some(&run.repo)).await?;
    let body = ReviewBody {
        environment: f.environment.clone(),
        comment: f.comment.filter(|c| !c.trim().is_empty()),
    };
    let r = match f.decision.as_str() {
        "approve" => api::approve(State(state), caller, RunId(id), Ok(Json(body))).await,
        "reject" => api::reject(State(state), caller, RunId(id), Ok(Json(body))).await,
        _ => {
            return Err(WebError::Page(
                StatusCode::BAD_REQUEST,
                "decision: approve or reject".into(),
            ));
        }
    };
    let r = r.map(|Json(v)| {
        format!(
            "Deployment to {}: {}.",
            f.environment,
            v["decision"].as_str().unwrap_or("recorded")
        )
    });
    Ok(outcome(id, r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrix_keys_group_and_levels_follow_needs() {
        let j = |key: &'static str, needs: &[&str]| serde_json::json!({"key": key, "needs": needs});
        let vals = [
            j("lint", &[]),
            j("test (a)", &["lint"]),
            j("test (b)", &["lint"]),
            j("deploy", &["test"]),
            j("notify", &[]),
        ];
        let jobs: Vec<JobView<'_>> = vals
            .iter()
            .map(|v| JobView {
                key: v["key"].as_str().unwrap_or(""),
                name: "",
                result: "",
                group: group_of(v["key"].as_str().unwrap_or("")),
                v,
            })
            .collect();
        assert_eq!(
            levels(&jobs),
            vec![
                vec!["lint".to_string(), "notify".to_string()],
                vec!["test".to_string()],
                vec!["deploy".to_string()]
            ]
        );
        assert_eq!(line_at(b"a\nb\nc", 2), 2);
        assert_eq!(line_at(b"a\nb\nc", 0), 1);
    }
}
