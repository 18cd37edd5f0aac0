//! The web UI: server-rendered pages (readable without JavaScript; a small
//! script adds live logs and statuses), served by `launchway serve` with
//! its assets compiled in.
//!
//! Trust: a page or form acts as the signed-in user through the very API
//! handlers the JSON API uses (`crate::api`), so role checks, repository
//! roles and the audit log are the API's. A session is an ordinary API
//! token of its own (12 hours, revoked at sign-out) in a cookie that is
//! `HttpOnly`, `SameSite=Strict` and `Secure` under TLS; every state change
//! also needs the session's CSRF token — a form field, or the
//! `X-CSRF-Token` header for the JSON API — derived from the session with
//! a key derived from the master key.
//!
//! One module per area: [`account`] (sign-in, sign-out, invites), [`runs`],
//! [`environments`], [`audit`]; [`render`] holds the pure rendering.

use crate::api::{ApiError, AppState, Caller};
use crate::auth::Role;
use crate::store::User;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Router, middleware};
use hmac::{Hmac, Mac};
use maud::{DOCTYPE, Markup, html};
use sha2::Sha256;

mod account;
mod audit;
mod dispatch;
mod environments;
pub mod render;
mod runs;

/// The session cookie.
pub const COOKIE: &str = "launchway_session";
/// The header a script sends the CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// How long a web session lasts.
const SESSION_MS: i64 = 12 * 3600 * 1000;

const CSS: &str = include_str!("assets/app.css");
const JS: &str = include_str!("assets/app.js");

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/runs") }))
        .route("/login", get(account::login_page).post(account::login))
        .route("/logout", post(account::logout))
        .route(
            "/invite/{code}",
            get(account::invite_page).post(account::redeem),
        )
        .route("/runs", get(runs::list))
        .route("/runs/{id}", get(runs::show))
        .route("/runs/{id}/cancel", post(runs::cancel))
        .route("/runs/{id}/rerun", post(runs::rerun))
        .route("/runs/{id}/review", post(runs::review))
        .route(
            "/repos/{name}/dispatch",
            get(dispatch::form).post(dispatch::dispatch),
        )
        .route("/changes/{id}/{verdict}", post(environments::decide))
        .route(
            "/repos/{name}/environments/{env}/rollout/{action}",
            post(environments::rollout_action),
        )
        .route("/environments", get(environments::index))
        .route("/repos/{name}/environments", get(environments::show))
        .route(
            "/repos/{name}/environments/{env}/{change}",
            post(environments::change),
        )
        .route("/audit", get(audit::show))
        .route("/assets/app.css", get(|| async { asset("text/css", CSS) }))
        .route(
            "/assets/app.js",
            get(|| async { asset("text/javascript", JS) }),
        )
        .layer(middleware::from_fn(security_headers))
}

fn asset(kind: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

/// Pages load nothing from elsewhere and run only this server's script;
/// they are never framed and send no referrer.
async fn security_headers(req: axum::extract::Request, next: middleware::Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    res
}

/// The session token in a request's cookies.
pub fn session_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

fn csrf_mac(state: &AppState, session: &str) -> Hmac<Sha256> {
    // The audit key is itself derived from the master key; this adds a
    // purpose so the two never coincide.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&state.key.audit_key())
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(b"launchway-web-csrf-v1\0");
    mac.update(crate::auth::token_digest(session).as_bytes());
    mac
}

/// The CSRF token of a session.
pub fn csrf_token(state: &AppState, session: &str) -> String {
    crate::hex(&csrf_mac(state, session).finalize().into_bytes())
}

/// Whether `given` is the session's CSRF token (compared in constant time).
pub fn csrf_ok(state: &AppState, session: &str, given: Option<&str>) -> bool {
    let Some(bytes) = given.and_then(crate::unhex) else {
        return false;
    };
    csrf_mac(state, session).verify_slice(&bytes).is_ok()
}

/// The `Set-Cookie` value for a session (an empty token clears it).
fn session_cookie(state: &AppState, token: &str) -> String {
    let secure = if state.secure_cookies { "; Secure" } else { "" };
    let age = if token.is_empty() {
        0
    } else {
        SESSION_MS / 1000
    };
    format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={age}{secure}")
}

/// A page or form failed: where to go instead, or what to say.
#[derive(Debug)]
pub enum WebError {
    SignIn(String),
    Page(StatusCode, String),
}

impl From<ApiError> for WebError {
    fn from(e: ApiError) -> WebError {
        WebError::Page(e.status(), e.message().to_string())
    }
}

impl From<crate::store::StoreError> for WebError {
    fn from(e: crate::store::StoreError) -> WebError {
        ApiError::from(e).into()
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        match self {
            WebError::SignIn(next) => {
                Redirect::to(&format!("/login?next={}", url_escape(&next))).into_response()
            }
            WebError::Page(status, message) => {
                let title = status.canonical_reason().unwrap_or("Error").to_string();
                let body = html! {
                    h1 { (title) }
                    p.error role="alert" { (message) }
                    p { a href="/runs" { "Back to the runs" } }
                };
                (status, page(&title, None, body)).into_response()
            }
        }
    }
}

/// Percent-encodes for a query value.
pub fn url_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The signed-in user of a page request.
pub struct Web {
    pub user: User,
    pub session: String,
    pub csrf: String,
    pub source: String,
}

impl FromRequestParts<AppState> for Web {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Web, WebError> {
        let here = parts
            .uri
            .path_and_query()
            .map_or("/runs", |p| p.as_str())
            .to_string();
        let Some(session) = session_token(&parts.headers).map(str::to_string) else {
            return Err(WebError::SignIn(here));
        };
        let Some(user) = state.store.authenticate(&session).await? else {
            return Err(WebError::SignIn(here));
        };
        Ok(Web {
            csrf: csrf_token(state, &session),
            user,
            session,
            source: crate::api::source_of(parts),
        })
    }
}

impl Web {
    /// The caller the API handlers see, in `repo` (its repository role).
    pub async fn caller(&self, state: &AppState, repo: Option<&str>) -> Result<Caller, WebError> {
        Ok(Caller::in_repo(state, self.user.clone(), self.source.clone(), repo).await?)
    }

    /// Refuses a form whose CSRF token is not this session's.
    pub fn check(&self, state: &AppState, given: &str) -> Result<(), WebError> {
        if csrf_ok(state, &self.session, Some(given)) {
            Ok(())
        } else {
            Err(WebError::Page(
                StatusCode::FORBIDDEN,
                "This form is out of date or was not sent from this site (CSRF token missing or wrong). Reload the page and try again.".into(),
            ))
        }
    }
}

/// A page: the layout around `body`.
pub fn page(title: &str, web: Option<&Web>, body: Markup) -> Html<String> {
    Html(layout(title, web, body).into_string())
}

fn layout(title: &str, web: Option<&Web>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Launchway" }
                link rel="stylesheet" href="/assets/app.css";
                script src="/assets/app.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    nav aria-label="Main" {
                        a.brand href="/runs" { "Launchway" }
                        @if let Some(w) = web {
                            a href="/runs" { "Runs" }
                            a href="/environments" { "Environments" }
                            @if w.user.role >= Role::Admin { a href="/audit" { "Audit log" } }
                        }
                    }
                    @if let Some(w) = web {
                        div.who {
                            span { (w.user.name) " (" (w.user.role.as_str()) ")" }
                            form method="post" action="/logout" {
                                input type="hidden" name="csrf" value=(w.csrf);
                                button type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                main #main {
                    (body)
                }
            }
        }
    }
}

/// A status as a badge (text, not colour alone).
pub fn badge(status: &str) -> Markup {
    let symbol = match status {
        "success" => "✓",
        "failure" => "✗",
        "cancelled" => "⊘",
        "skipped" => "–",
        "waiting" => "‖",
        "running" | "queued" => "●",
        _ => "",
    };
    html! { span.badge.(status) data-status=(status) { span aria-hidden="true" { (symbol) } " " (status) } }
}

/// A notice carried to the next page (`?notice=`).
pub fn notice(text: Option<&str>) -> Markup {
    html! {
        @if let Some(t) = text.filter(|t| !t.is_empty()) {
            p.notice role="status" { (t) }
        }
    }
}

/// Back to `to` with a notice.
pub fn redirect_with(to: &str, text: &str) -> Response {
    let sep = if to.contains('?') { '&' } else { '?' };
    Redirect::to(&format!("{to}{sep}notice={}", url_escape(text))).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; launchway_session=lw_x"),
        );
        h.append(header::COOKIE, HeaderValue::from_static("b=2"));
        assert_eq!(session_token(&h), Some("lw_x"));
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("launchway_session_other=1"),
        );
        assert_eq!(session_token(&h), None);
    }

    #[test]
    fn url_escaping() {
        assert_eq!(url_escape("/runs?x=1&y=<"), "/runs%3Fx%3D1%26y%3D%3C");
    }
}
