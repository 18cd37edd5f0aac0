//! One in-process server for the router tests: a real SQLite store in a
//! temporary directory, its first admin token, an engine with a fresh
//! master key.

#![allow(clippy::unwrap_used)]

use launchway_server::api::AppState;
use launchway_server::engine::{Engine, EngineConfig};
use launchway_server::sealed::MasterKey;
use launchway_server::store::Store;

pub struct Server {
    pub state: AppState,
    /// The first admin's token.
    pub admin: String,
    _dir: tempfile::TempDir,
}

/// A server named `instance`; its engine takes runs only when `start`.
pub async fn server(instance: &str, start: bool) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("l.db").display());
    let store = Store::open(&url).await.unwrap();
    let admin = store.bootstrap_admin().await.unwrap().unwrap();
    assert_eq!(store.bootstrap_admin().await.unwrap(), None, "shown once");
    let engine = Engine::new(
        store.clone(),
        EngineConfig {
            data_dir: dir.path().join("server"),
            parallel_runs: 1,
            jobs_per_run: 2,
            agents: Default::default(),
            run_lease: std::time::Duration::from_secs(30),
            instance: instance.into(),
            approval_timeout: launchway_server::engine::DEFAULT_APPROVAL_TIMEOUT,
        },
        MasterKey::from_hex(&MasterKey::generate_hex().unwrap()).unwrap(),
    );
    if start {
        engine.start().await.unwrap();
    }
    Server {
        state: AppState::new(store, engine),
        admin,
        _dir: dir,
    }
}
