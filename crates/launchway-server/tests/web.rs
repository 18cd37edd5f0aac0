//! The web UI's sessions through the router, on a real SQLite store: the
//! cookie's attributes, CSRF on forms and on the JSON API through the
//! cookie, sign-out ending the session, one-time invites, the pages'
//! security headers, and pages refusing what the API refuses.

#![allow(clippy::unwrap_used)]

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use launchway_server::api::router;
use launchway_server::auth::Role;
use tower::ServiceExt;

mod common;
use common::Server;

async fn server() -> Server {
    common::server("web-test", false).await
}

struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

impl Server {
    async fn send(
        &self,
        method: &str,
        path: &str,
        cookie: Option<&str>,
        extra: &[(&str, &str)],
        form: Option<&str>,
    ) -> Reply {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(c) = cookie {
            req = req.header(header::COOKIE, format!("launchway_session={c}"));
        }
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        if form.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        }
        let req = req
            .body(form.map_or_else(Body::empty, |f| Body::from(f.to_string())))
            .unwrap();
        let res = router(self.state.clone()).oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    /// Signs in with `token`; the session cookie's value.
    async fn sign_in(&self, token: &str) -> String {
        let r = self
            .send("POST", "/login", None, &[], Some(&format!("token={token}")))
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        let cookie = r.headers[header::SET_COOKIE].to_str().unwrap().to_string();
        assert!(cookie.contains("HttpOnly"), "{cookie}");
        assert!(cookie.contains("SameSite=Strict"), "{cookie}");
        assert!(cookie.contains("Path=/"), "{cookie}");
        assert!(!cookie.contains("Secure"), "no TLS here: {cookie}");
        let value = cookie
            .split(';')
            .next()
            .unwrap()
            .strip_prefix("launchway_session=")
            .unwrap()
            .to_string();
        assert_ne!(value, token, "the session is a token of its own");
        value
    }
}

fn csrf_of(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").unwrap() + "name=\"csrf\" value=\"".len();
    page[at..at + 64].to_string()
}

#[tokio::test]
async fn sessions_csrf_and_sign_out() {
    let s = server().await;
    // Not signed in: pages send to the sign-in page, the API says 401.
    let r = s.send("GET", "/runs", None, &[], None).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.headers[header::LOCATION], "/login?next=/runs");
    // A wrong token: 401 and the form again, no cookie.
    let r = s
        .send("POST", "/login", None, &[], Some("token=lwt_nope"))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.headers.get(header::SET_COOKIE).is_none());
    // Another site's form cannot sign a browser in (login CSRF).
    let r = s
        .send(
            "POST",
            "/login",
            None,
            &[("sec-fetch-site", "cross-site")],
            Some(&format!("token={}", s.admin)),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.headers.get(header::SET_COOKIE).is_none());
    // A browser that sends no Sec-Fetch-Site is told by its Origin.
    let r = s
        .send(
            "POST",
            "/login",
            None,
            &[("origin", "https://evil.example"), ("host", "ci.example")],
            Some(&format!("token={}", s.admin)),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.headers.get(header::SET_COOKIE).is_none());
    // `next` may only be a path here.
    let r = s
        .send(
            "POST",
            "/login",
            None,
            &[],
            Some(&format!("token={}&next=//evil.example/x", s.admin)),
        )
        .await;
    assert_eq!(r.headers[header::LOCATION], "/runs");

    let session = s.sign_in(&s.admin).await;
    let page = s.send("GET", "/runs", Some(&session), &[], None).await;
    assert_eq!(page.status, StatusCode::OK);
    for h in [
        "content-security-policy",
        "x-frame-options",
        "x-content-type-options",
        "referrer-policy",
    ] {
        assert!(page.headers.contains_key(h), "{h}");
    }
    assert!(
        page.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src 'self'")
    );
    let csrf = csrf_of(&page.body);

    // The JSON API through the cookie: reads work; a change needs the
    // CSRF header.
    let r = s.send("GET", "/api/me", Some(&session), &[], None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let add = |extra: Vec<(&'static str, String)>| {
        let s = &s;
        let session = session.clone();
        async move {
            let mut req = Request::builder()
                .method("POST")
                .uri("/api/users")
                .header(header::COOKIE, format!("launchway_session={session}"))
                .header(header::CONTENT_TYPE, "application/json");
            for (k, v) in extra {
                req = req.header(k, v);
            }
            let req = req
                .body(Body::from(r#"{"name":"eve","role":"viewer"}"#))
                .unwrap();
            router(s.state.clone()).oneshot(req).await.unwrap().status()
        }
    };
    assert_eq!(add(vec![]).await, StatusCode::FORBIDDEN);
    assert_eq!(
        add(vec![("x-csrf-token", "00".repeat(32))]).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        add(vec![("x-csrf-token", csrf.clone())]).await,
        StatusCode::CREATED
    );

    // A form without the session's CSRF token is refused, and so is
    // another session's token.
    let other = s.sign_in(&s.admin).await;
    let other_csrf = csrf_of(&s.send("GET", "/runs", Some(&other), &[], None).await.body);
    assert_ne!(other_csrf, csrf);
    for bad in ["", "zz", other_csrf.as_str()] {
        let r = s
            .send(
                "POST",
                "/logout",
                Some(&session),
                &[],
                Some(&format!("csrf={bad}")),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "csrf {bad:?}");
    }
    // Sign-out ends this session (its token is revoked), not the others.
    let r = s
        .send(
            "POST",
            "/logout",
            Some(&session),
            &[],
            Some(&format!("csrf={csrf}")),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(
        r.headers[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let r = s.send("GET", "/api/me", Some(&session), &[], None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = s.send("GET", "/runs", Some(&other), &[], None).await;
    assert_eq!(r.status, StatusCode::OK);
    // The admin's own token still works.
    assert!(
        s.state
            .store
            .authenticate(&s.admin)
            .await
            .unwrap()
            .is_some()
    );
    // Every sign-in and sign-out is in the audit log.
    let log = s.state.store.audit_log().await.unwrap();
    assert_eq!(
        log.iter()
            .filter(|e| e.event.action == "web.sign-in")
            .count(),
        3
    );
    assert!(log.iter().any(|e| e.event.action == "web.sign-out"));
}

#[tokio::test]
async fn invites_work_once_and_only_for_admins() {
    let s = server().await;
    s.state
        .store
        .add_user("nia", Role::Developer)
        .await
        .unwrap();
    s.state.store.add_user("vic", Role::Viewer).await.unwrap();
    let (_, vic) = s.state.store.create_token("vic", "t").await.unwrap();
    let call = |token: String, user: &'static str| {
        let s = &s;
        async move {
            let req = Request::builder()
                .method("POST")
                .uri(format!("/api/users/{user}/invites"))
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap();
            let res = router(s.state.clone()).oneshot(req).await.unwrap();
            let status = res.status();
            let b = res.into_body().collect().await.unwrap().to_bytes();
            (
                status,
                serde_json::from_slice::<serde_json::Value>(&b).unwrap(),
            )
        }
    };
    assert_eq!(call(vic.clone(), "nia").await.0, StatusCode::FORBIDDEN);
    assert_eq!(
        call(s.admin.clone(), "nobody").await.0,
        StatusCode::NOT_FOUND
    );
    let (status, inv) = call(s.admin.clone(), "nia").await;
    assert_eq!(status, StatusCode::CREATED, "{inv}");
    let path = inv["path"].as_str().unwrap().to_string();
    // The invite code is no API token.
    let code = path.trim_start_matches("/invite/");
    let r = s
        .send(
            "GET",
            "/api/me",
            None,
            &[("authorization", &format!("Bearer {code}"))],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    let page = s.send("GET", &path, None, &[], None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Welcome, nia"));
    let r = s.send("POST", &path, None, &[], Some("")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.headers[header::CACHE_CONTROL], "no-store");
    let after = &r.body[r.body.find("new-token").unwrap()..];
    let hex: String = after[after.find("lwt_").unwrap() + 4..]
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .collect();
    let token = format!("lwt_{hex}");
    let user = s.state.store.authenticate(&token).await.unwrap().unwrap();
    assert_eq!((user.name.as_str(), user.role), ("nia", Role::Developer));
    assert!(r.headers.contains_key(header::SET_COOKIE), "signed in too");
    // Once only.
    assert_eq!(
        s.send("POST", &path, None, &[], Some("")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.send("GET", &path, None, &[], None).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn pages_refuse_what_the_api_refuses() {
    let s = server().await;
    s.state.store.add_user("vic", Role::Viewer).await.unwrap();
    let (_, vic) = s.state.store.create_token("vic", "t").await.unwrap();
    let session = s.sign_in(&vic).await;
    // The audit log is for admins, on the page as in the API.
    let r = s.send("GET", "/audit", Some(&session), &[], None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert!(r.body.contains("admin"), "{}", r.body);
    // A viewer's page has no audit link; an admin's has.
    let runs = s.send("GET", "/runs", Some(&session), &[], None).await;
    assert!(!runs.body.contains("href=\"/audit\""));
    let admin = s.sign_in(&s.admin).await;
    let runs = s.send("GET", "/runs", Some(&admin), &[], None).await;
    assert!(runs.body.contains("href=\"/audit\""));
    let audit = s.send("GET", "/audit", Some(&admin), &[], None).await;
    assert_eq!(audit.status, StatusCode::OK);
    assert!(audit.body.contains("The chain verifies"), "{}", audit.body);
    // A run that does not exist: a page that says so.
    let r = s.send("GET", "/runs/999", Some(&admin), &[], None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.body.contains("no run 999"), "{}", r.body);
}

/// A page acts with the user's role in the repository it acts in, as the
/// API does: a global developer who is only a viewer in one repository is
/// refused a run there through the form, and a global viewer who is a
/// developer there gets past the role check.
#[tokio::test]
async fn pages_use_the_role_a_user_has_in_the_repository() {
    let s = server().await;
    s.state
        .store
        .add_repo("app", "/nonexistent", "sealed", 0)
        .await
        .unwrap();
    s.state
        .store
        .add_user("dee", Role::Developer)
        .await
        .unwrap();
    s.state.store.add_user("vi", Role::Viewer).await.unwrap();
    s.state
        .store
        .set_repo_role("app", "dee", Role::Viewer)
        .await
        .unwrap();
    s.state
        .store
        .set_repo_role("app", "vi", Role::Developer)
        .await
        .unwrap();
    let dispatch = |user: &'static str| {
        let s = &s;
        async move {
            let (_, token) = s.state.store.create_token(user, "t").await.unwrap();
            let session = s.sign_in(&token).await;
            let page = s.send("GET", "/runs", Some(&session), &[], None).await;
            let csrf = csrf_of(&page.body);
            let r = s
                .send(
                    "POST",
                    "/repos/app/dispatch",
                    Some(&session),
                    &[],
                    Some(&format!("csrf={csrf}&workflow=.github/workflows/ci.yml")),
                )
                .await;
            assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
            r.headers[header::LOCATION].to_str().unwrap().to_string()
        }
    };
    let refused = dispatch("dee").await;
    assert!(refused.contains("developer%20role"), "{refused}");
    let allowed = dispatch("vi").await;
    assert!(!allowed.contains("role"), "{allowed}");
    let log = s.state.store.audit_log().await.unwrap();
    assert!(log.iter().any(|e| e.event.actor == "dee"
        && e.event.action == "run.dispatch"
        && e.event.outcome == "denied"));
}
