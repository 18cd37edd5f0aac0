//! The HTTP API through its router, on a real SQLite store: authentication,
//! roles, bad input and the audit trail.

#![allow(clippy::unwrap_used)]

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use launchway_server::api::{MAX_BODY, OPENAPI, ROUTES, router};
use launchway_server::auth::Role;
use serde_json::{Value, json};
use tower::ServiceExt;

mod common;
use common::Server;

async fn server() -> Server {
    common::server("api-test", true).await
}

impl Server {
    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<String>,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        let req = req.body(body.map_or_else(Body::empty, Body::from)).unwrap();
        let res = router(self.state.clone()).oneshot(req).await.unwrap();
        let status = res.status();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let v = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        (status, v)
    }
}

#[tokio::test]
async fn tokens_and_roles_guard_every_endpoint() {
    let s = server().await;
    assert_eq!(
        s.call("GET", "/healthz", None, None).await.0,
        StatusCode::OK
    );
    let (status, body) = s.call("GET", "/api/users", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["error"].as_str().unwrap().contains("Bearer"), "{body}");
    let forged = format!("lwt_{}", "0".repeat(64));
    assert_eq!(
        s.call("GET", "/api/me", Some(&forged), None).await.0,
        StatusCode::UNAUTHORIZED
    );

    let (status, me) = s.call("GET", "/api/me", Some(&s.admin), None).await;
    assert_eq!(
        (status, me),
        (StatusCode::OK, json!({"name": "admin", "role": "admin"}))
    );

    s.state.store.add_user("bo", Role::Viewer).await.unwrap();
    let (_, viewer) = s.state.store.create_token("bo", "t").await.unwrap();
    let (status, body) = s.call("GET", "/api/users", Some(&viewer), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"], "this needs the admin role; you have viewer");
    let (status, _) = s
        .call(
            "POST",
            "/api/users",
            Some(&viewer),
            Some(r#"{"name":"eve","role":"admin"}"#.into()),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        s.state.store.users().await.unwrap().len(),
        2,
        "nothing changed"
    );

    let (status, body) = s
        .call(
            "POST",
            "/api/users",
            Some(&s.admin),
            Some(r#"{"name":"cy","role":"deployer"}"#.into()),
        )
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::CREATED,
            json!({"name": "cy", "role": "deployer"})
        )
    );
    let (status, _) = s
        .call(
            "POST",
            "/api/users",
            Some(&s.admin),
            Some(r#"{"name":"cy","role":"viewer"}"#.into()),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn bad_input_gets_a_clear_4xx_and_changes_nothing() {
    let s = server().await;
    let a = Some(s.admin.as_str());
    for (body, want) in [
        ("{not json", StatusCode::BAD_REQUEST),
        (r#"{"name":"x"}"#, StatusCode::UNPROCESSABLE_ENTITY),
        (
            r#"{"name":"x","role":"root"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            r#"{"name":"x","role":"admin","extra":1}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            r#"{"name":"../../etc","role":"admin"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            r#"{"name":"","role":"admin"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let (status, v) = s.call("POST", "/api/users", a, Some(body.into())).await;
        assert_eq!(status, want, "{body}: {v}");
        assert!(
            v["error"].as_str().is_some_and(|m| !m.is_empty()),
            "{body}: {v}"
        );
    }
    let huge = format!(
        r#"{{"name":"x","role":"admin","pad":"{}"}}"#,
        "a".repeat(MAX_BODY)
    );
    assert_eq!(
        s.call("POST", "/api/users", a, Some(huge)).await.0,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    let (status, v) = s.call("GET", "/api/nothing", a, None).await;
    assert_eq!(
        (status, v["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("no such endpoint"))
    );
    assert_eq!(
        s.state.store.users().await.unwrap().len(),
        1,
        "only the admin"
    );
}

#[tokio::test]
async fn state_changes_and_refusals_are_audited() {
    let s = server().await;
    s.state.store.add_user("bo", Role::Developer).await.unwrap();
    let (_, dev) = s.state.store.create_token("bo", "t").await.unwrap();
    s.call(
        "POST",
        "/api/users",
        Some(&dev),
        Some(r#"{"name":"eve","role":"admin"}"#.into()),
    )
    .await;
    s.call(
        "POST",
        "/api/users",
        Some(&s.admin),
        Some(r#"{"name":"cy","role":"viewer"}"#.into()),
    )
    .await;
    let (status, v) = s.call("GET", "/api/audit", Some(&s.admin), None).await;
    assert_eq!(status, StatusCode::OK);
    let summary: Vec<(String, String, String)> = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap().into(),
                e["target"].as_str().unwrap().into(),
                e["outcome"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("bo".into(), "user".into(), "denied".into()),
            ("admin".into(), "user/cy".into(), "ok".into())
        ]
    );
    assert_eq!(v["verify"], json!({"ok": true, "entries": 2}));
}

#[tokio::test]
async fn openapi_document_matches_the_router() {
    let s = server().await;
    let (status, doc) = s.call("GET", "/api/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            documented.push((method.clone(), path.clone()));
        }
    }
    let mut routed: Vec<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    documented.sort();
    routed.sort();
    assert_eq!(documented, routed);
    // Every listed route is served: without a token it is public (200) or 401.
    for (method, path) in ROUTES {
        let body = (*method == "post").then(|| "{}".to_string());
        let (status, _) = s.call(&method.to_uppercase(), path, None, body).await;
        assert!(
            matches!(status, StatusCode::OK | StatusCode::UNAUTHORIZED),
            "{method} {path}: {status}"
        );
    }
}

/// The document passes `openapi-spec-validator` (installed from PyPI once
/// per target dir).
#[test]
fn openapi_document_is_valid() {
    use std::process::Command;
    let venv = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("openapi-validator");
    if !venv.join(".ready").exists() {
        assert!(
            Command::new("python3")
                .args(["-m", "venv"])
                .arg(&venv)
                .status()
                .unwrap()
                .success()
        );
        let out = Command::new(venv.join("bin/python"))
            .args(["-m", "pip", "install", "-q", "openapi-spec-validator"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::write(venv.join(".ready"), "").unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("openapi.json");
    std::fs::write(&good, OPENAPI).unwrap();
    let out = Command::new(venv.join("bin/openapi-spec-validator"))
        .arg(&good)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The validator is live: a dangling reference fails it.
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        OPENAPI.replace(
            "#/components/schemas/User\"",
            "#/components/schemas/Nobody\"",
        ),
    )
    .unwrap();
    assert!(
        !Command::new(venv.join("bin/openapi-spec-validator"))
            .arg(&bad)
            .output()
            .unwrap()
            .status
            .success()
    );
}

/// Bad input on the run endpoints: a JSON 4xx saying what is wrong, and
/// nothing queued or registered.
#[tokio::test]
async fn run_endpoints_refuse_bad_input_and_change_nothing() {
    let s = server().await;
    let a = Some(s.admin.as_str());
    let repo = tempfile::tempdir().unwrap();
    let dir = repo.path();
    std::fs::create_dir_all(dir.join(".github/workflows")).unwrap();
    std::fs::write(
        dir.join(".github/workflows/ci.yml"),
        "on: push\njobs:\n  a:\n    runs-on: x\n    steps: [{run: echo}]\n",
    )
    .unwrap();
    for args in [
        &["init", "-q", "-b", "main"][..],
        &["add", "-A"],
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-q",
            "-m",
            "x",
        ],
    ] {
        assert!(
            std::process::Command::new("git")
                .arg("-C")
                .arg(dir)
                .args(args)
                .status()
                .unwrap()
                .success()
        );
    }
    let loc = dir.to_string_lossy();
    let good = format!(r#"{{"name":"churn","location":"{loc}"}}"#);
    assert_eq!(
        s.call("POST", "/api/repos", a, Some(good.clone())).await.0,
        StatusCode::CREATED
    );
    let cases: Vec<(&str, String, Option<String>, StatusCode)> = vec![
        (
            "POST",
            "/api/repos".into(),
            Some("{nope".into()),
            StatusCode::BAD_REQUEST,
        ),
        (
            "POST",
            "/api/repos".into(),
            Some(good.clone()),
            StatusCode::CONFLICT,
        ),
        (
            "POST",
            "/api/repos".into(),
            Some(r#"{"name":"x","location":"relative/path"}"#.into()),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "POST",
            "/api/repos".into(),
            Some(r#"{"name":"x","location":"/nonexistent/dir"}"#.into()),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "POST",
            "/api/repos".into(),
            Some(format!(r#"{{"name":"../etc","location":"{loc}"}}"#)),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "POST",
            "/api/repos".into(),
            Some(format!(r#"{{"name":"y","location":"{loc}","x":1}}"#)),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "POST",
            "/api/repos/nope/dispatch".into(),
            Some(r#"{"workflow":"ci.yml"}"#.into()),
            StatusCode::NOT_FOUND,
        ),
        (
            "POST",
            "/api/repos/..%2F..%2Fetc/dispatch".into(),
            Some(r#"{"workflow":"ci.yml"}"#.into()),
            StatusCode::NOT_FOUND,
        ),
        (
            "POST",
            "/api/repos/churn/dispatch".into(),
            Some(r#"{"workflow":"../../../etc/passwd"}"#.into()),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "POST",
            "/api/repos/churn/dispatch".into(),
            Some(r#"{"workflow":".github/workflows/ci.yml"}"#.into()),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "POST",
            "/api/repos/churn/dispatch".into(),
            Some(r#"{"workflow":".github/workflows/ci.yml","ref":"no-such-branch"}"#.into()),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "POST",
            "/api/repos/churn/dispatch".into(),
            Some(r#"{"workflow":1}"#.into()),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "GET",
            "/api/runs?status=bogus".into(),
            None,
            StatusCode::BAD_REQUEST,
        ),
        (
            "GET",
            "/api/runs?limit=lots".into(),
            None,
            StatusCode::BAD_REQUEST,
        ),
        ("GET", "/api/runs/999".into(), None, StatusCode::NOT_FOUND),
        ("GET", "/api/runs/abc".into(), None, StatusCode::BAD_REQUEST),
        (
            "GET",
            "/api/runs/999/logs".into(),
            None,
            StatusCode::NOT_FOUND,
        ),
        (
            "GET",
            "/api/runs/1/logs?follow=maybe".into(),
            None,
            StatusCode::BAD_REQUEST,
        ),
        (
            "POST",
            "/api/runs/999/cancel".into(),
            Some("{}".into()),
            StatusCode::NOT_FOUND,
        ),
        (
            "POST",
            "/api/runs/999/rerun".into(),
            Some("{}".into()),
            StatusCode::NOT_FOUND,
        ),
        (
            "POST",
            "/api/runs/999/approve".into(),
            Some(r#"{"environment":"prod"}"#.into()),
            StatusCode::NOT_FOUND,
        ),
        (
            "POST",
            "/api/runs/1/approve".into(),
            Some("[]".into()),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "GET",
            "/api/deployments?limit=x".into(),
            None,
            StatusCode::BAD_REQUEST,
        ),
    ];
    for (method, path, body, want) in cases {
        let (status, v) = s.call(method, &path, a, body.clone()).await;
        assert_eq!(status, want, "{method} {path} {body:?}: {v}");
        assert!(
            v["error"].as_str().is_some_and(|m| !m.is_empty()),
            "{method} {path}: a JSON error with a message, got {v}"
        );
    }
    let huge = format!(r#"{{"workflow":"{}"}}"#, "a".repeat(MAX_BODY));
    assert_eq!(
        s.call("POST", "/api/repos/churn/dispatch", a, Some(huge))
            .await
            .0,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    // A signed-looking hook with a broken body, and one for an unknown repo.
    let req = |body: &str| {
        axum::http::Request::builder()
            .method("POST")
            .uri("/api/hooks/git")
            .header("x-github-event", "push")
            .header("x-hub-signature-256", "sha256=00")
            .body(Body::from(body.to_string()))
            .unwrap()
    };
    let res = router(s.state.clone()).oneshot(req("{oops")).await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let res = router(s.state.clone())
        .oneshot(req(
            r#"{"repository":{"name":"ghost"},"ref":"refs/heads/main","after":"abc"}"#,
        ))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    // Nothing was queued, only one repository registered.
    let (_, runs) = s.call("GET", "/api/runs", a, None).await;
    assert_eq!(runs, serde_json::json!([]));
    assert_eq!(s.state.store.repos().await.unwrap().len(), 1);
}

/// NUL bytes are refused with 400 wherever they come — a path, a query, a
/// JSON body, the unauthenticated webhook — before a store sees them
/// (PostgreSQL answered 500).
#[tokio::test]
async fn nul_bytes_are_a_400_everywhere() {
    let s = server().await;
    let admin = s.admin.clone();
    for (method, path, body) in [
        (
            "POST",
            "/api/repos",
            Some(r#"{"name":"a\u0000b","location":"/tmp"}"#),
        ),
        (
            "POST",
            "/api/users",
            Some(r#"{"name":"x\u0000","role":"viewer"}"#),
        ),
        ("GET", "/api/runs?repo=a%00b", None),
        ("GET", "/api/repos/a%00b", None),
        (
            "POST",
            "/api/hooks/git",
            Some(r#"{"repository":{"name":"\u0000"}}"#),
        ),
    ] {
        let (status, v) = s
            .call(method, path, Some(&admin), body.map(str::to_string))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{method} {path}: {v}");
        assert!(v["error"].as_str().unwrap().contains("NUL"), "{v}");
    }
    // Nothing was created.
    let (_, repos) = s.call("GET", "/api/repos", Some(&admin), None).await;
    assert_eq!(repos, json!([]));
}

/// Accounts over the API: tokens with an expiry, listed without their
/// values (each user sees their own), revoked by their owner or an admin;
/// users demoted, disabled (their tokens stop at once), enabled, removed;
/// never the last enabled admin.
#[tokio::test]
async fn tokens_and_users_are_managed_over_the_api() {
    let s = server().await;
    let admin = s.admin.clone();
    let (st, _) = s
        .call(
            "POST",
            "/api/users",
            Some(&admin),
            Some(r#"{"name":"ana","role":"developer"}"#.into()),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let (st, v) = s
        .call(
            "POST",
            "/api/tokens",
            Some(&admin),
            Some(r#"{"user":"ana","label":"laptop","expires_in_days":30}"#.into()),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let ana = v["token"].as_str().unwrap().to_string();
    assert!(v["expires_ms"].as_i64().unwrap() > 0);
    // Ana sees her own tokens, not the admin's, and never a value.
    let (st, v) = s.call("GET", "/api/tokens", Some(&ana), None).await;
    assert_eq!(st, StatusCode::OK);
    let list = v.as_array().unwrap();
    assert_eq!(list.len(), 1, "{v}");
    assert_eq!(list[0]["label"], "laptop");
    assert!(
        !v.to_string().contains(&ana[4..]),
        "a token's value is never listed"
    );
    assert!(
        list[0]["last_used_ms"].as_i64().unwrap() > 0,
        "last use is recorded"
    );
    let (st, _) = s
        .call("GET", "/api/tokens?user=admin", Some(&ana), None)
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (_, all) = s.call("GET", "/api/tokens", Some(&admin), None).await;
    let admin_token_id = all
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["user"] == "admin")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let (st, _) = s
        .call(
            "POST",
            &format!("/api/tokens/{admin_token_id}/revoke"),
            Some(&ana),
            None,
        )
        .await;
    assert_eq!(
        st,
        StatusCode::NOT_FOUND,
        "another user's token is not there for her"
    );
    // Her own second token, revoked by herself.
    let (_, v) = s
        .call(
            "POST",
            "/api/tokens",
            Some(&ana),
            Some(r#"{"label":"ci"}"#.into()),
        )
        .await;
    let (id, second) = (
        v["id"].as_i64().unwrap(),
        v["token"].as_str().unwrap().to_string(),
    );
    assert_eq!(
        s.call("GET", "/api/me", Some(&second), None).await.0,
        StatusCode::OK
    );
    let (st, _) = s
        .call(
            "POST",
            &format!("/api/tokens/{id}/revoke"),
            Some(&ana),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        s.call("GET", "/api/me", Some(&second), None).await.0,
        StatusCode::UNAUTHORIZED
    );
    // A token past its expiry is refused.
    let (_, old) = s
        .state
        .store
        .create_token_until("ana", "old", launchway_server::now_ms() - 1)
        .await
        .unwrap();
    assert_eq!(
        s.call("GET", "/api/me", Some(&old), None).await.0,
        StatusCode::UNAUTHORIZED
    );
    // Disabled: her tokens stop at once; enabled: they work again.
    let patch = |body: &str| Some(body.to_string());
    let (st, v) = s
        .call(
            "PATCH",
            "/api/users/ana",
            Some(&admin),
            patch(r#"{"disabled":true}"#),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(
        s.call("GET", "/api/me", Some(&ana), None).await.0,
        StatusCode::UNAUTHORIZED
    );
    s.call(
        "PATCH",
        "/api/users/ana",
        Some(&admin),
        patch(r#"{"disabled":false,"role":"viewer"}"#),
    )
    .await;
    let (st, me) = s.call("GET", "/api/me", Some(&ana), None).await;
    assert_eq!((st, me["role"].as_str()), (StatusCode::OK, Some("viewer")));
    // Never without an enabled admin; a non-admin changes nobody.
    for (method, body) in [
        ("PATCH", Some(r#"{"role":"viewer"}"#)),
        ("PATCH", Some(r#"{"disabled":true}"#)),
        ("DELETE", None),
    ] {
        let (st, v) = s
            .call(
                method,
                "/api/users/admin",
                Some(&admin),
                body.map(str::to_string),
            )
            .await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{method}: {v}");
        assert!(v["error"].as_str().unwrap().contains("last enabled admin"));
    }
    assert_eq!(
        s.call("DELETE", "/api/users/admin", Some(&ana), None)
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    // Removed: her tokens with her.
    let (st, _) = s.call("DELETE", "/api/users/ana", Some(&admin), None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        s.call("GET", "/api/me", Some(&ana), None).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (_, accounts) = s.call("GET", "/api/accounts", Some(&admin), None).await;
    assert_eq!(
        accounts,
        json!([{"name": "admin", "role": "admin", "disabled": false}])
    );
}

/// Generated from the OpenAPI document: every operation is called with no
/// token, a malformed, unknown, revoked or expired token, a disabled
/// user's token, and each role's token. Without a valid token it is a 401
/// (agent routes: any user token is a 401 too); below the operation's
/// `x-launchway-auth` role a 403; at or above it, neither.
#[tokio::test]
async fn every_operation_authorizes_as_its_document_says() {
    let s = server().await;
    let admin = s.admin.clone();
    let store = &s.state.store;
    let mut tokens = Vec::new();
    for role in [Role::Viewer, Role::Developer, Role::Deployer, Role::Admin] {
        let name = format!("u-{}", role.as_str());
        store.add_user(&name, role).await.unwrap();
        tokens.push((role, store.create_token(&name, "t").await.unwrap().1));
    }
    // The repository `{name}` stands for, with two users whose role there
    // is not their global one.
    let dir = tempfile::tempdir().unwrap();
    for args in [
        vec!["init", "-q", "-b", "main"],
        vec![
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "x",
        ],
    ] {
        assert!(
            std::process::Command::new("git")
                .arg("-C")
                .arg(dir.path())
                .args(&args)
                .status()
                .unwrap()
                .success()
        );
    }
    store
        .add_repo(
            "nope",
            &dir.path().to_string_lossy(),
            "",
            launchway_server::now_ms(),
        )
        .await
        .unwrap();
    store.add_user("up", Role::Viewer).await.unwrap();
    store
        .set_repo_role("nope", "up", Role::Deployer)
        .await
        .unwrap();
    let up = store.create_token("up", "t").await.unwrap().1;
    store.add_user("down", Role::Deployer).await.unwrap();
    store
        .set_repo_role("nope", "down", Role::Viewer)
        .await
        .unwrap();
    let down = store.create_token("down", "t").await.unwrap().1;
    store.add_user("gone", Role::Admin).await.unwrap();
    let (rid, revoked) = store.create_token("gone", "t").await.unwrap();
    store.revoke_token(rid).await.unwrap();
    let (_, expired) = store
        .create_token_until("gone", "t", launchway_server::now_ms() - 1)
        .await
        .unwrap();
    store.add_user("off", Role::Admin).await.unwrap();
    let (_, disabled) = store.create_token("off", "t").await.unwrap();
    store.set_user_disabled("off", true).await.unwrap();
    let invalid: Vec<Option<String>> = vec![
        None,
        Some("not-a-token".into()),
        Some("lwt_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef".into()),
        Some(revoked),
        Some(expired),
        Some(disabled),
    ];
    let doc: Value = serde_json::from_str(OPENAPI).unwrap();
    let mut checked = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let Some(auth) = op["x-launchway-auth"].as_str() else {
                panic!("{method} {path} has no x-launchway-auth");
            };
            let url = path
                .replace("{name}", "nope")
                .replace("{id}", "999999")
                .replace("{env}", "dev")
                .replace("{change}", "deploy")
                .replace("{verdict}", "approve")
                .replace("{action}", "promote")
                .replace("{verb}", "disable")
                .replace("{secret}", "X")
                .replace("{variable}", "X")
                .replace("{path}", "f.txt")
                .replace("{group}", "team")
                .replace("{user}", "nobody")
                .replace("{kind}", "email")
                .replace("{value}", "x@example.com");
            let body = op.get("requestBody").map(|_| "{}".to_string());
            // Deleting a repository: not the one the other operations use.
            let url = if method == "delete" && path == "/api/repos/{name}" {
                "/api/repos/another".to_string()
            } else {
                url
            };
            // `{user}` in a repository's roles: the body names a role.
            let body = if path.ends_with("/roles/{user}") && method == "put" {
                Some(r#"{"role":"viewer"}"#.to_string())
            } else {
                body
            };

            let m = method.to_uppercase();
            let call = |token: Option<String>| {
                let body = body.clone();
                let (m, url) = (m.clone(), url.clone());
                let s = &s;
                async move { s.call(&m, &url, token.as_deref(), body).await.0 }
            };
            if auth == "public" {
                assert_ne!(call(None).await, StatusCode::UNAUTHORIZED, "{m} {path}");
                checked += 1;
                continue;
            }
            if auth == "signature" {
                // A token opens nothing here: only the repository's signature.
                for t in invalid.iter().cloned().chain([Some(admin.clone())]) {
                    assert_eq!(call(t).await, StatusCode::UNAUTHORIZED, "{m} {path}");
                }
                checked += 1;
                continue;
            }
            for t in &invalid {
                let st = call(t.clone()).await;
                assert_eq!(st, StatusCode::UNAUTHORIZED, "{m} {path} with {t:?}");
            }
            let least = match auth {
                "agent" => None,
                "user" => Some(Role::Viewer),
                r => Some(r.parse::<Role>().unwrap()),
            };
            // In the repository, `up` is a deployer and `down` a viewer;
            // elsewhere their global roles hold.
            let in_repo = path.starts_with("/api/repos/{name}/");
            let scoped = [
                (
                    if in_repo {
                        Role::Deployer
                    } else {
                        Role::Viewer
                    },
                    up.clone(),
                ),
                (
                    if in_repo {
                        Role::Viewer
                    } else {
                        Role::Deployer
                    },
                    down.clone(),
                ),
            ];
            for (role, token) in tokens
                .iter()
                .chain([(Role::Admin, admin.clone())].iter())
                .chain(scoped.iter())
            {
                let st = call(Some(token.clone())).await;
                match least {
                    // Agent routes take an agent's credential, never a user's.
                    None => assert_eq!(st, StatusCode::UNAUTHORIZED, "{m} {path} as {role}"),
                    Some(l) if *role < l => {
                        assert_eq!(st, StatusCode::FORBIDDEN, "{m} {path} as {role}")
                    }
                    Some(_) => assert!(
                        st != StatusCode::UNAUTHORIZED && st != StatusCode::FORBIDDEN,
                        "{m} {path} as {role}: {st}"
                    ),
                }
            }
            checked += 1;
        }
    }
    assert_eq!(checked, ROUTES.len(), "every route is in the document");
}

/// Roles per repository: a global viewer who is a developer in one
/// repository dispatches there and nowhere else; a global developer who is
/// only a viewer in another cannot dispatch there. Admins stay admins.
#[tokio::test]
async fn a_role_in_one_repository_is_not_a_role_in_another() {
    let s = server().await;
    let admin = s.admin.clone();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(".github/workflows")).unwrap();
    std::fs::write(
        dir.path().join(".github/workflows/ci.yml"),
        "on: workflow_dispatch\njobs:\n  a:\n    runs-on: nowhere\n    steps: [{run: echo}]\n",
    )
    .unwrap();
    for args in [
        vec!["init", "-q", "-b", "main"],
        vec!["add", "-A"],
        vec![
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-q",
            "-m",
            "x",
        ],
    ] {
        assert!(
            std::process::Command::new("git")
                .arg("-C")
                .arg(dir.path())
                .args(&args)
                .status()
                .unwrap()
                .success()
        );
    }
    let loc = dir.path().to_string_lossy().to_string();
    for repo in ["alpha", "beta"] {
        let (st, v) = s
            .call(
                "POST",
                "/api/repos",
                Some(&admin),
                Some(format!(r#"{{"name":"{repo}","location":"{loc}"}}"#)),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
    }
    let store = &s.state.store;
    store.add_user("vic", Role::Viewer).await.unwrap();
    store.add_user("dev", Role::Developer).await.unwrap();
    let vic = store.create_token("vic", "t").await.unwrap().1;
    let dev = store.create_token("dev", "t").await.unwrap().1;
    for (repo, user, role) in [("alpha", "vic", "developer"), ("beta", "dev", "viewer")] {
        let (st, v) = s
            .call(
                "PUT",
                &format!("/api/repos/{repo}/roles/{user}"),
                Some(&admin),
                Some(format!(r#"{{"role":"{role}"}}"#)),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
    }
    let (st, _) = s
        .call(
            "PUT",
            "/api/repos/alpha/roles/vic",
            Some(&admin),
            Some(r#"{"role":"admin"}"#.into()),
        )
        .await;
    assert_eq!(
        st,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a repository role is never admin"
    );
    let dispatch = |repo: &str, token: &str| {
        let (repo, token) = (repo.to_string(), token.to_string());
        let s = &s;
        async move {
            s.call(
                "POST",
                &format!("/api/repos/{repo}/dispatch"),
                Some(&token),
                Some(r#"{"workflow":".github/workflows/none.yml"}"#.into()),
            )
            .await
            .0
        }
    };
    assert_ne!(dispatch("alpha", &vic).await, StatusCode::FORBIDDEN);
    assert_eq!(dispatch("beta", &vic).await, StatusCode::FORBIDDEN);
    assert_ne!(dispatch("alpha", &dev).await, StatusCode::FORBIDDEN);
    assert_eq!(dispatch("beta", &dev).await, StatusCode::FORBIDDEN);
    // Secrets' names need developer: the same rule.
    assert_ne!(
        s.call("GET", "/api/repos/alpha/secrets", Some(&vic), None)
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        s.call("GET", "/api/repos/beta/secrets", Some(&dev), None)
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    let (_, roles) = s
        .call("GET", "/api/repos/alpha/roles", Some(&admin), None)
        .await;
    assert_eq!(roles, json!([{"user": "vic", "role": "developer"}]));
    let (st, _) = s
        .call("DELETE", "/api/repos/alpha/roles/vic", Some(&admin), None)
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        dispatch("alpha", &vic).await,
        StatusCode::FORBIDDEN,
        "back to viewer"
    );
    // A run's repository decides, not the one a role was given in: vic
    // (developer in alpha only) cancels alpha's run, not beta's.
    store
        .set_repo_role("alpha", "vic", Role::Developer)
        .await
        .unwrap();
    let mut runs = Vec::new();
    for repo in ["alpha", "beta"] {
        let (st, v) = s
            .call(
                "POST",
                &format!("/api/repos/{repo}/dispatch"),
                Some(&admin),
                Some(r#"{"workflow":".github/workflows/ci.yml"}"#.into()),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        runs.push(v["id"].as_i64().unwrap());
    }
    let (st, _) = s
        .call(
            "POST",
            &format!("/api/runs/{}/cancel", runs[1]),
            Some(&vic),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "beta's run");
    let (st, v) = s
        .call(
            "POST",
            &format!("/api/runs/{}/cancel", runs[0]),
            Some(&vic),
            None,
        )
        .await;
    assert_ne!(st, StatusCode::FORBIDDEN, "alpha's run: {v}");
}

/// A list's limit is 1 to 1000: `limit=-1` is a 400, not every run.
#[tokio::test]
async fn list_limits_are_bounded() {
    let s = server().await;
    let a = Some(s.admin.as_str());
    for path in ["/api/runs", "/api/deployments"] {
        for bad in ["-1", "0", "1001"] {
            let (st, v) = s.call("GET", &format!("{path}?limit={bad}"), a, None).await;
            assert_eq!(st, StatusCode::BAD_REQUEST, "{path} {bad}: {v}");
        }
        assert_eq!(
            s.call("GET", &format!("{path}?limit=5"), a, None).await.0,
            StatusCode::OK
        );
    }
}
