//! The audit log for admins: filterable, newest first, with the state of
//! the chain's verification (from the API's handler, so the same check).

use super::render;
use super::{Web, WebError, page};
use crate::api::AppState;
use axum::Json;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use maud::html;

#[derive(serde::Deserialize, Default)]
pub struct AuditQuery {
    actor: Option<String>,
    action: Option<String>,
    target: Option<String>,
}

pub async fn show(
    State(state): State<AppState>,
    web: Web,
    Query(q): Query<AuditQuery>,
) -> Result<Response, WebError> {
    let caller = web.caller(&state, None).await?;
    let Json(v) = crate::api::audit_log(State(state.clone()), caller).await?;
    let want = |field: &str, have: &str| {
        let w = match field {
            "actor" => q.actor.as_deref(),
            "action" => q.action.as_deref(),
            _ => q.target.as_deref(),
        };
        w.map(str::trim)
            .filter(|w| !w.is_empty())
            .is_none_or(|w| have.to_lowercase().contains(&w.to_lowercase()))
    };
    let entries: Vec<&serde_json::Value> = v["entries"]
        .as_array()
        .into_iter()
        .flatten()
        .rev()
        .filter(|e| {
            want("actor", e["actor"].as_str().unwrap_or(""))
                && want("action", e["action"].as_str().unwrap_or(""))
                && want("target", e["target"].as_str().unwrap_or(""))
        })
        .take(500)
        .collect();
    let ok = v["verify"]["ok"].as_bool().unwrap_or(false);
    let body = html! {
        h1 { "Audit log" }
        @if ok {
            p.verified role="status" { "✓ The chain verifies: " (v["verify"]["entries"].as_u64().unwrap_or(0)) " entries, none changed or removed." }
        } @else {
            p.error role="alert" { "✗ The chain does not verify: " (v["verify"]["problem"].as_str().unwrap_or("unknown problem")) }
        }
        form.filters method="get" action="/audit" role="search" aria-label="Filter the audit log" {
            label { "Actor " input name="actor" value=[q.actor.as_deref()]; }
            label { "Action " input name="action" value=[q.action.as_deref()]; }
            label { "Target " input name="target" value=[q.target.as_deref()]; }
            button type="submit" { "Filter" }
        }
        table.audit {
            caption.visually-hidden { "Audit entries, newest first" }
            thead { tr { th scope="col" { "#" } th scope="col" { "When" } th scope="col" { "Actor" } th scope="col" { "Action" } th scope="col" { "Target" } th scope="col" { "Outcome" } th scope="col" { "Source" } } }
            tbody {
                @for e in &entries {
                    tr {
                        td { (e["seq"].as_u64().unwrap_or(0)) }
                        td { (render::time(e["at_ms"].as_i64().unwrap_or(0))) }
                        td { (e["actor"].as_str().unwrap_or("")) }
                        td { code { (e["action"].as_str().unwrap_or("")) } }
                        td { (e["target"].as_str().unwrap_or("")) }
                        td { (e["outcome"].as_str().unwrap_or("")) }
                        td { (e["source"].as_str().unwrap_or("")) }
                    }
                }
            }
        }
    };
    Ok(page("Audit log", Some(&web), body).into_response())
}
