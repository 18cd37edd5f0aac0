//! Signing in with a token, signing out, and the one-time invite page that
//! gives an admin-created user a personal token.

use super::{Web, WebError, page, session_cookie};
use crate::api::{AppState, Caller, record};
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;

#[derive(serde::Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

/// Only a path on this server (never `//elsewhere` or a scheme).
fn local_path(next: Option<&str>) -> &str {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n,
        _ => "/runs",
    }
}

pub async fn login_page(Query(q): Query<NextQuery>) -> Response {
    login_form(q.next.as_deref(), None, StatusCode::OK)
}

fn login_form(next: Option<&str>, error: Option<&str>, status: StatusCode) -> Response {
    let body = html! {
        h1 { "Sign in" }
        @if let Some(e) = error { p.error role="alert" { (e) } }
        form.card method="post" action="/login" {
            input type="hidden" name="next" value=(local_path(next));
            label for="token" { "API token" }
            input #token type="password" name="token" autocomplete="current-password" required;
            p.hint { "An admin gives you an invite link, or a token from " code { "launchway admin token create" } "." }
            button type="submit" { "Sign in" }
        }
    };
    (status, page("Sign in", None, body)).into_response()
}

#[derive(serde::Deserialize)]
pub struct LoginForm {
    token: String,
    next: Option<String>,
}

/// Where a sign-in attempt came from (for the audit and the rate limit).
/// A form another site's page sent is refused: signing a browser in to
/// someone else's account is an attack of its own (login CSRF), and these
/// forms have no session yet to carry a CSRF token.
pub struct Source(String);

impl axum::extract::FromRequestParts<AppState> for Source {
    type Rejection = WebError;
    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Source, WebError> {
        if from_another_site(&parts.headers) {
            return Err(WebError::Page(
                StatusCode::FORBIDDEN,
                "This form was sent from another site.".into(),
            ));
        }
        Ok(Source(crate::api::source_of(parts)))
    }
}

/// Whether a browser says the request comes from another site's page:
/// `Sec-Fetch-Site` where the browser sends it, else an `Origin` (sent with
/// every cross-origin POST) that is not this server's host. A client that
/// sends neither is no browser acting for someone else.
fn from_another_site(headers: &axum::http::HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return !matches!(site.to_str(), Ok("same-origin" | "none"));
    }
    let Some(origin) = headers.get(axum::http::header::ORIGIN) else {
        return false;
    };
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok());
    // `null` (an opaque origin) has no host: refused.
    let origin_host = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .map(|(_, rest)| rest);
    match (origin_host, host) {
        (Some(o), Some(h)) => !o.eq_ignore_ascii_case(h),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::from_another_site;
    use axum::http::HeaderMap;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap_or_else(|_| unreachable!()));
        }
        h
    }

    #[test]
    fn another_sites_form_is_told_apart() {
        for (pairs, refused) in [
            (vec![], false),
            (vec![("sec-fetch-site", "same-origin")], false),
            (vec![("sec-fetch-site", "none")], false),
            (vec![("sec-fetch-site", "cross-site")], true),
            (vec![("sec-fetch-site", "same-site")], true),
            // Sec-Fetch-Site decides when there.
            (
                vec![
                    ("sec-fetch-site", "same-origin"),
                    ("origin", "https://ci.example"),
                    ("host", "ci.example"),
                ],
                false,
            ),
            // Browsers without it: the Origin against the Host.
            (
                vec![
                    ("origin", "https://ci.example:8080"),
                    ("host", "ci.example:8080"),
                ],
                false,
            ),
            (
                vec![("origin", "https://CI.example"), ("host", "ci.example")],
                false,
            ),
            (
                vec![("origin", "https://evil.example"), ("host", "ci.example")],
                true,
            ),
            (
                vec![
                    ("origin", "https://ci.example.evil.example"),
                    ("host", "ci.example"),
                ],
                true,
            ),
            (vec![("origin", "null"), ("host", "ci.example")], true),
            (vec![("origin", "https://ci.example")], true),
        ] {
            assert_eq!(from_another_site(&headers(&pairs)), refused, "{pairs:?}");
        }
    }
}

/// A presented token signs in: a session token of its own is issued (so
/// signing out ends the session, not the token) and audited.
pub async fn login(
    State(state): State<AppState>,
    Source(source): Source,
    Form(f): Form<LoginForm>,
) -> Result<Response, WebError> {
    // A 401 here counts against the source's rate limit (`api::limit`).
    let Some(user) = state.store.authenticate(f.token.trim()).await? else {
        return Ok(login_form(
            f.next.as_deref(),
            Some("That token is not valid (unknown, revoked or expired)."),
            StatusCode::UNAUTHORIZED,
        ));
    };
    let expires = crate::now_ms() + super::SESSION_MS;
    let (_, session) = state
        .store
        .create_token_until(&user.name, "web session", expires)
        .await?;
    let caller = Caller {
        user,
        source: source.clone(),
    };
    record(&state, &caller, "web.sign-in", "session", "ok").await?;
    Ok((
        [(header::SET_COOKIE, session_cookie(&state, &session))],
        Redirect::to(local_path(f.next.as_deref())),
    )
        .into_response())
}

#[derive(serde::Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

pub async fn logout(
    State(state): State<AppState>,
    web: Web,
    Form(f): Form<CsrfForm>,
) -> Result<Response, WebError> {
    web.check(&state, &f.csrf)?;
    state.store.revoke_token_value(&web.session).await?;
    let caller = web.caller(&state, None).await?;
    record(&state, &caller, "web.sign-out", "session", "ok").await?;
    Ok((
        [(header::SET_COOKIE, session_cookie(&state, ""))],
        Redirect::to("/login"),
    )
        .into_response())
}

pub async fn invite_page(
    State(state): State<AppState>,
    Path(code): Path<String>,
) -> Result<Response, WebError> {
    let Some(user) = state.store.invite_user(&code).await? else {
        return Err(WebError::Page(
            StatusCode::NOT_FOUND,
            "This invite is not valid: it was used already, has expired, or never existed. Ask an admin for a new one.".into(),
        ));
    };
    let body = html! {
        h1 { "Welcome, " (user) }
        p { "This one-time link makes your personal API token. You see the token once: keep it in a password manager. It signs you in here and works with the " code { "launchway" } " command line." }
        form.card method="post" action={ "/invite/" (code) } {
            button type="submit" { "Create my token and sign in" }
        }
    };
    Ok(page("Invite", None, body).into_response())
}

/// Uses the invite: the personal token is shown once, and the browser is
/// signed in with a session of its own.
pub async fn redeem(
    State(state): State<AppState>,
    Source(source): Source,
    Path(code): Path<String>,
) -> Result<Response, WebError> {
    let Some((name, token)) = state.store.redeem_invite(&code).await? else {
        return Err(WebError::Page(
            StatusCode::NOT_FOUND,
            "This invite is not valid: it was used already, has expired, or never existed. Ask an admin for a new one.".into(),
        ));
    };
    let Some(user) = state.store.authenticate(&token).await? else {
        return Err(WebError::Page(
            StatusCode::FORBIDDEN,
            "The account is disabled.".into(),
        ));
    };
    let expires = crate::now_ms() + super::SESSION_MS;
    let (_, session) = state
        .store
        .create_token_until(&name, "web session", expires)
        .await?;
    let caller = Caller { user, source };
    record(
        &state,
        &caller,
        "user.invite-redeemed",
        &format!("user/{name}"),
        "ok",
    )
    .await?;
    let body = html! {
        h1 { "Your token" }
        p { "Copy it now: it is not shown again." }
        p { output #new-token.token { (token) } }
        p { a href="/runs" { "Go to the runs" } }
    };
    Ok((
        [
            (header::SET_COOKIE, session_cookie(&state, &session)),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        page("Your token", None, body),
    )
        .into_response())
}
