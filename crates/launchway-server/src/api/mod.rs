//! The HTTP API. Every route except `/healthz` needs a bearer token, and
//! each handler states the role it needs; errors are JSON `{"error": …}`
//! with the status that says whose fault it is.

use crate::audit::Event;
use crate::auth::{self, Denied, Role};
use crate::store::{Store, StoreError, User};
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde_json::{Value, json};
use std::net::SocketAddr;

/// Request bodies above this are refused with 413 before they are read.
pub const MAX_BODY: usize = 1 << 20;

mod accounts;
mod agents;
pub(crate) mod environments;
mod hooks;
pub mod limit;
pub mod metrics;
pub(crate) mod runs;
mod settings;
pub mod tls;

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub engine: std::sync::Arc<crate::engine::Engine>,
    /// Seals webhook secrets (and, later, repository secrets) at rest.
    pub key: std::sync::Arc<crate::sealed::MasterKey>,
    pub metrics: std::sync::Arc<metrics::Metrics>,
    /// The GitOps reconcilers (`None`: this server runs no environments).
    pub environments: Option<std::sync::Arc<crate::environments::Environments>>,
    /// Where agents claim jobs.
    pub hub: std::sync::Arc<crate::agents::Hub>,
    /// Failed authentications per source.
    pub limiter: std::sync::Arc<limit::Limiter>,
    /// Web session cookies are `Secure` (the server speaks TLS).
    pub secure_cookies: bool,
}

impl AppState {
    pub fn new(store: Store, engine: std::sync::Arc<crate::engine::Engine>) -> AppState {
        AppState {
            metrics: engine.metrics(),
            key: engine.key(),
            store,
            hub: engine.hub(),
            engine,
            environments: None,
            limiter: Default::default(),
            secure_cookies: false,
        }
    }

    /// Allows at most `max` failed authentications per source per minute.
    pub fn with_auth_failure_limit(mut self, max: u32) -> AppState {
        self.limiter = std::sync::Arc::new(limit::Limiter::new(max));
        self
    }

    /// Serves environments through these reconcilers.
    pub fn with_environments(
        mut self,
        envs: std::sync::Arc<crate::environments::Environments>,
    ) -> AppState {
        self.environments = Some(envs);
        self
    }
}

/// The API's OpenAPI 3.1 description; a test keeps it in step with
/// [`ROUTES`] and runs it through an OpenAPI validator.
pub const OPENAPI: &str = include_str!("openapi.json");

/// Every (method, path) the router serves.
pub const ROUTES: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/api/openapi.json"),
    ("get", "/api/me"),
    ("get", "/api/users"),
    ("post", "/api/users"),
    ("patch", "/api/users/{name}"),
    ("delete", "/api/users/{name}"),
    ("get", "/api/accounts"),
    ("get", "/api/groups"),
    ("put", "/api/groups/{group}/members/{user}"),
    ("delete", "/api/groups/{group}/members/{user}"),
    ("post", "/api/users/{name}/invites"),
    ("get", "/api/users/{name}/identities"),
    ("put", "/api/users/{name}/identities/{kind}/{value}"),
    ("delete", "/api/users/{name}/identities/{kind}/{value}"),
    ("get", "/api/tokens"),
    ("post", "/api/tokens"),
    ("post", "/api/tokens/{id}/revoke"),
    ("post", "/api/repos/{name}/webhook-secret"),
    ("delete", "/api/repos/{name}"),
    ("get", "/api/repos/{name}/roles"),
    ("put", "/api/repos/{name}/roles/{user}"),
    ("delete", "/api/repos/{name}/roles/{user}"),
    ("get", "/api/audit"),
    ("get", "/metrics"),
    ("get", "/api/repos"),
    ("post", "/api/repos"),
    ("post", "/api/repos/{name}/dispatch"),
    ("get", "/api/runs"),
    ("get", "/api/runs/{id}"),
    ("get", "/api/runs/{id}/logs"),
    ("post", "/api/runs/{id}/cancel"),
    ("post", "/api/runs/{id}/rerun"),
    ("post", "/api/runs/{id}/approve"),
    ("post", "/api/runs/{id}/reject"),
    ("get", "/api/deployments"),
    ("get", "/api/runs/{id}/artifacts"),
    // Served as `{*path}`: the rest of the URL, slashes included.
    ("get", "/api/runs/{id}/artifacts/{name}/{path}"),
    ("get", "/api/repos/{name}/secrets"),
    ("put", "/api/repos/{name}/secrets/{secret}"),
    ("delete", "/api/repos/{name}/secrets/{secret}"),
    ("get", "/api/repos/{name}/variables"),
    ("put", "/api/repos/{name}/variables/{variable}"),
    ("delete", "/api/repos/{name}/variables/{variable}"),
    ("post", "/api/hooks/git"),
    ("get", "/api/repos/{name}/environments"),
    ("get", "/api/repos/{name}/environments/{env}/history"),
    ("post", "/api/repos/{name}/environments/{env}/sync"),
    ("get", "/api/repos/{name}/environments/{env}/rollout"),
    (
        "post",
        "/api/repos/{name}/environments/{env}/rollout/{action}",
    ),
    ("post", "/api/repos/{name}/environments/{env}/{change}"),
    ("get", "/api/changes"),
    ("post", "/api/changes/{id}/{verdict}"),
    ("get", "/api/agents"),
    ("post", "/api/agents/{id}/{verb}"),
    ("post", "/api/agent-registrations"),
    ("post", "/api/agents/register"),
    ("post", "/api/agent/claim"),
    ("post", "/api/agent/jobs/{id}/report"),
    ("post", "/api/agent/jobs/{id}/finish"),
    ("get", "/api/agent/jobs/{id}/source"),
    ("get", "/api/agent/jobs/{id}/artifacts"),
    ("get", "/api/agent/jobs/{id}/artifacts/{name}/{path}"),
    ("put", "/api/agent/jobs/{id}/artifacts/{name}/{path}"),
    ("put", "/api/agent/jobs/{id}/manifests/{name}"),
    ("post", "/api/agent/jobs/{id}/deploy"),
    ("post", "/api/agent/jobs/{id}/models"),
];

/// The largest batch of reports an agent may send in one request.
pub const MAX_REPORT: usize = 64 << 20;

/// The largest artifact file or model an agent may upload in one request.
pub const MAX_UPLOAD: usize = 1 << 30;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route(
            "/api/openapi.json",
            get(|| async { ([(header::CONTENT_TYPE, "application/json")], OPENAPI) }),
        )
        .route("/api/me", get(me))
        .route("/api/users", get(list_users).post(add_user))
        .route(
            "/api/users/{name}",
            axum::routing::patch(accounts::change_user).delete(accounts::delete_user),
        )
        .route("/api/accounts", get(accounts::list_accounts))
        .route("/api/groups", get(accounts::list_groups))
        .route(
            "/api/groups/{group}/members/{user}",
            axum::routing::put(accounts::group_member).delete(accounts::group_member),
        )
        .route(
            "/api/users/{name}/identities",
            get(accounts::list_identities),
        )
        .route(
            "/api/users/{name}/identities/{kind}/{value}",
            axum::routing::put(accounts::identity).delete(accounts::identity),
        )
        .route(
            "/api/tokens",
            get(accounts::list_tokens).post(accounts::create_token),
        )
        .route("/api/tokens/{id}/revoke", post(accounts::revoke_token))
        .route(
            "/api/repos/{name}/webhook-secret",
            post(accounts::rotate_webhook_secret),
        )
        .route(
            "/api/repos/{name}",
            axum::routing::delete(accounts::delete_repo),
        )
        .route("/api/repos/{name}/roles", get(accounts::list_repo_roles))
        .route(
            "/api/repos/{name}/roles/{user}",
            axum::routing::put(accounts::set_repo_role).delete(accounts::remove_repo_role),
        )
        .route("/api/audit", get(audit_log))
        .route("/metrics", get(metrics::scrape))
        .route("/api/repos", get(runs::list_repos).post(runs::add_repo))
        .route("/api/repos/{name}/dispatch", post(runs::dispatch))
        .route("/api/runs", get(runs::list_runs))
        .route("/api/runs/{id}", get(runs::show_run))
        .route("/api/runs/{id}/logs", get(runs::logs))
        .route("/api/runs/{id}/cancel", post(runs::cancel))
        .route("/api/runs/{id}/rerun", post(runs::rerun))
        .route("/api/runs/{id}/approve", post(runs::approve))
        .route("/api/runs/{id}/reject", post(runs::reject))
        .route("/api/deployments", get(runs::deployments))
        .route("/api/runs/{id}/artifacts", get(runs::artifacts))
        .route(
            "/api/runs/{id}/artifacts/{name}/{*path}",
            get(runs::artifact_file),
        )
        .route("/api/repos/{name}/secrets", get(settings::list_secrets))
        .route(
            "/api/repos/{name}/secrets/{secret}",
            put(settings::put_secret).delete(settings::delete_secret),
        )
        .route("/api/repos/{name}/variables", get(settings::list_variables))
        .route(
            "/api/repos/{name}/variables/{variable}",
            put(settings::put_variable).delete(settings::delete_variable),
        )
        .route("/api/hooks/git", post(hooks::git))
        .route("/api/repos/{name}/environments", get(environments::list))
        .route(
            "/api/repos/{name}/environments/{env}/history",
            get(environments::history),
        )
        .route(
            "/api/repos/{name}/environments/{env}/sync",
            post(environments::sync),
        )
        .route(
            "/api/repos/{name}/environments/{env}/rollout",
            get(environments::rollout),
        )
        .route(
            "/api/repos/{name}/environments/{env}/rollout/{action}",
            post(environments::rollout_action),
        )
        .route(
            "/api/repos/{name}/environments/{env}/{change}",
            post(environments::change),
        )
        .route("/api/changes", get(environments::list_changes))
        .route("/api/changes/{id}/{verdict}", post(environments::decide))
        .route("/api/agents", get(agents::list))
        .route("/api/agents/register", post(agents::register))
        .route("/api/agents/{id}/{verb}", post(agents::set_disabled))
        .route(
            "/api/agent-registrations",
            post(agents::create_registration),
        )
        .route("/api/agent/claim", post(agents::claim))
        .route(
            "/api/agent/jobs/{id}/report",
            post(agents::report).layer(DefaultBodyLimit::max(MAX_REPORT)),
        )
        .route("/api/agent/jobs/{id}/finish", post(agents::finish))
        .route("/api/agent/jobs/{id}/source", get(agents::source))
        .route(
            "/api/agent/jobs/{id}/artifacts",
            get(agents::list_artifacts),
        )
        .route(
            "/api/agent/jobs/{id}/artifacts/{name}/{*path}",
            get(agents::get_artifact_file)
                .put(agents::put_artifact_file)
                .layer(DefaultBodyLimit::max(MAX_UPLOAD)),
        )
        .route(
            "/api/agent/jobs/{id}/manifests/{name}",
            put(agents::put_manifest),
        )
        .route("/api/agent/jobs/{id}/deploy", post(agents::deploy))
        .route(
            "/api/agent/jobs/{id}/models",
            post(agents::register_model).layer(DefaultBodyLimit::max(MAX_UPLOAD)),
        )
        .route("/api/users/{name}/invites", post(accounts::invite))
        .merge(crate::web::router())
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such endpoint") })
        .layer(axum::middleware::from_fn(reject_nul))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            limit::guard,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::observe,
        ))
        .with_state(state)
}

/// NUL bytes in a path, a query or a JSON body are refused with 400 on
/// every backend (PostgreSQL cannot store them in text; SQLite would, and
/// names with NULs would then mean different things to different tools).
/// Agents' report bodies (large, already checked as JSON) and binary
/// uploads pass untouched.
async fn reject_nul(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let nul = || {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "NUL bytes are not allowed in names or values",
        )
        .into_response()
    };
    let uri = req.uri().to_string().to_ascii_lowercase();
    if uri.contains("%00") {
        return nul();
    }
    let json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json"));
    if !json || req.uri().path().starts_with("/api/agent/") {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "the request body is too large",
            )
            .into_response();
        }
    };
    let lower = bytes.to_ascii_lowercase();
    if bytes.contains(&0) || lower.windows(6).any(|w| w == b"\\u0000") {
        return nul();
    }
    next.run(axum::extract::Request::from_parts(
        parts,
        axum::body::Body::from(bytes),
    ))
    .await
}

/// An error as the client sees it.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            eprintln!("{}: {}", self.status, self.message);
        }
        (self.status, Json(json!({ "error": self.message }))).into_response()
    }
}

impl From<Denied> for ApiError {
    fn from(d: Denied) -> ApiError {
        let status = StatusCode::from_u16(d.status()).unwrap_or(StatusCode::UNAUTHORIZED);
        ApiError::new(status, d.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::UserExists(_)
            | StoreError::RepoExists(_)
            | StoreError::AgentExists(_)
            | StoreError::RepoBusy { .. } => ApiError::new(StatusCode::CONFLICT, e.to_string()),
            StoreError::NoUser(_)
            | StoreError::NoToken(_)
            | StoreError::NoRepo(_)
            | StoreError::NoRun(_)
            | StoreError::NoAgent(_) => ApiError::new(StatusCode::NOT_FOUND, e.to_string()),
            StoreError::Unauthorized => ApiError::new(StatusCode::UNAUTHORIZED, e.to_string()),
            StoreError::Invalid(_) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string())
            }
            // Details of database failures stay in the server's log.
            e => {
                eprintln!("internal error: {e}");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
            }
        }
    }
}

impl From<launchway_deploy::gitops::ChangeError> for ApiError {
    fn from(e: launchway_deploy::gitops::ChangeError) -> ApiError {
        use launchway_deploy::gitops::ChangeError as C;
        let status = match &e {
            C::NotFound(_) => StatusCode::NOT_FOUND,
            C::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            C::Refused(_) => StatusCode::FORBIDDEN,
            C::Conflict(_) => StatusCode::CONFLICT,
            C::Internal(_) => {
                eprintln!("internal error: {e}");
                return ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error");
            }
        };
        ApiError::new(status, e.to_string())
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> ApiError {
        ApiError::new(r.status(), r.body_text())
    }
}

/// The authenticated user behind a request, and where it came from.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: User,
    pub source: String,
}

impl Caller {
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        Ok(auth::authorize(role, self.user.role)?)
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller, ApiError> {
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        // A bearer token; else the web session's cookie — which, for
        // anything but a read, needs the session's CSRF token as well.
        let token = match (header, crate::web::session_token(&parts.headers)) {
            (None, Some(session)) => {
                let given = parts
                    .headers
                    .get(crate::web::CSRF_HEADER)
                    .and_then(|v| v.to_str().ok());
                if !parts.method.is_safe() && !crate::web::csrf_ok(state, session, given) {
                    return Err(ApiError::new(
                        StatusCode::FORBIDDEN,
                        "a request made with the web session needs its CSRF token (X-CSRF-Token)",
                    ));
                }
                session
            }
            _ => auth::bearer(header)?,
        };
        let user = state
            .store
            .authenticate(token)
            .await?
            .ok_or(Denied::InvalidToken)?;
        let repo = repo_of_request(state, parts.uri.path()).await?;
        Caller::in_repo(state, user, source_of(parts), repo.as_deref()).await
    }
}

/// Where a request came from (its peer's address).
pub(crate) fn source_of(parts: &Parts) -> String {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "unknown".to_string(), |c| c.0.ip().to_string())
}

impl Caller {
    /// The caller acting in `repo`: within one repository a user may have a
    /// role of their own, and every role check then sees that one (admins
    /// stay admins).
    pub(crate) async fn in_repo(
        state: &AppState,
        mut user: User,
        source: String,
        repo: Option<&str>,
    ) -> Result<Caller, ApiError> {
        if user.role < Role::Admin
            && let Some(repo) = repo
            && let Some(role) = state.store.repo_role(repo, &user.name).await?
        {
            user.role = role;
        }
        Ok(Caller { user, source })
    }
}

/// The repository a request acts in, from its path: `/api/repos/{name}/…`,
/// `/api/runs/{id}…` (the run's), `/api/changes/{id}/…` (the change's).
async fn repo_of_request(state: &AppState, path: &str) -> Result<Option<String>, ApiError> {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    Ok(match parts.as_slice() {
        ["api", "repos", name, _, ..] => Some((*name).to_string()),
        ["api", "runs", id, ..] => match id.parse::<i64>() {
            Ok(id) => state.store.run(id).await?.map(|r| r.repo),
            Err(_) => None,
        },
        ["api", "changes", id, ..] => match id.parse::<i64>() {
            Ok(id) => state.store.change(id).await?.map(|c| c.repo),
            Err(_) => None,
        },
        _ => None,
    })
}

/// Records a state-changing action (or a refused attempt at one).
pub(crate) async fn record(
    state: &AppState,
    caller: &Caller,
    action: &str,
    target: &str,
    outcome: &str,
) -> Result<(), ApiError> {
    let event = Event {
        actor: caller.user.name.clone(),
        action: action.to_string(),
        target: target.to_string(),
        source: caller.source.clone(),
        outcome: outcome.to_string(),
    };
    state.store.audit(crate::now_ms(), event).await?;
    Ok(())
}

async fn healthz(State(state): State<AppState>) -> Result<&'static str, ApiError> {
    state.store.ping().await?;
    Ok("ok")
}

async fn me(caller: Caller) -> Json<User> {
    Json(caller.user)
}

async fn list_users(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<User>>, ApiError> {
    caller.require(Role::Admin)?;
    Ok(Json(state.store.users().await?))
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    name: String,
    role: Role,
}

/// User names appear in URLs, logs and the audit chain: keep them plain.
pub(crate) use crate::valid_name;

async fn add_user(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<NewUser>, JsonRejection>,
) -> Result<(StatusCode, Json<User>), ApiError> {
    if let Err(e) = caller.require(Role::Admin) {
        record(&state, &caller, "user.add", "user", "denied").await?;
        return Err(e);
    }
    let Json(new) = body?;
    if !valid_name(&new.name) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "user names are 1-64 characters of letters, digits, '.', '_' and '-'",
        ));
    }
    let target = format!("user/{}", new.name);
    match state.store.add_user(&new.name, new.role).await {
        Ok(user) => {
            record(&state, &caller, "user.add", &target, "ok").await?;
            Ok((StatusCode::CREATED, Json(user)))
        }
        Err(e) => {
            record(&state, &caller, "user.add", &target, &format!("error: {e}")).await?;
            Err(e.into())
        }
    }
}

pub(crate) async fn audit_log(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Admin)?;
    let entries = state.store.audit_log().await?;
    let checked = match state.store.audit_anchor() {
        Some(a) => crate::audit::verify_anchored(&entries, a),
        None => crate::audit::verify(&entries),
    };
    let verified = match checked {
        Ok(n) => json!({ "ok": true, "entries": n }),
        Err(t) => json!({ "ok": false, "problem": t.to_string() }),
    };
    Ok(Json(json!({ "entries": entries, "verify": verified })))
}

/// Serves the API on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    tls: Option<std::sync::Arc<tokio_rustls::rustls::ServerConfig>>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut state = state;
    state.secure_cookies = tls.is_some();
    if let Some(config) = tls {
        return tls::serve(listener, router(state), config, shutdown).await;
    }
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
