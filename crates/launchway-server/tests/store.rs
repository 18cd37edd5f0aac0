//! The store on both backends: SQLite always, PostgreSQL when
//! `LAUNCHWAY_TEST_POSTGRES` names a server (`.ci/run` starts one).

#![allow(clippy::unwrap_used)]

use launchway_server::audit::{Event, Tamper, verify};
use launchway_server::auth::Role;
use launchway_server::store::{Store, StoreError};

/// A fresh, empty database per test on every configured backend.
async fn stores() -> Vec<(Store, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("launchway.db").display()
    );
    let mut out = vec![(Store::open(&url).await.unwrap(), Some(dir))];
    match std::env::var("LAUNCHWAY_TEST_POSTGRES") {
        Ok(admin) => {
            let name = format!(
                "lw_test_{}",
                &launchway_server::auth::generate_token().unwrap()[4..20]
            );
            let pool = sqlx::postgres::PgPool::connect(&admin).await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&pool)
                .await
                .unwrap();
            let (base, _) = admin.rsplit_once('/').unwrap();
            out.push((Store::open(&format!("{base}/{name}")).await.unwrap(), None));
        }
        Err(_) => eprintln!("LAUNCHWAY_TEST_POSTGRES is not set: PostgreSQL half skipped"),
    }
    out
}

fn event(i: usize) -> Event {
    Event {
        actor: "mona".into(),
        action: "run.cancel".into(),
        target: format!("run/{i}"),
        source: "127.0.0.1".into(),
        outcome: "ok".into(),
    }
}

#[tokio::test]
async fn users_and_tokens() {
    for (store, _keep) in stores().await {
        let b = store.backend();
        store.add_user("mona", Role::Admin).await.unwrap();
        store.add_user("bo", Role::Viewer).await.unwrap();
        assert!(
            matches!(
                store.add_user("mona", Role::Viewer).await,
                Err(StoreError::UserExists(_))
            ),
            "{b:?}"
        );
        let (id, token) = store.create_token("bo", "laptop").await.unwrap();
        let user = store.authenticate(&token).await.unwrap().unwrap();
        assert_eq!(
            (user.name.as_str(), user.role),
            ("bo", Role::Viewer),
            "{b:?}"
        );
        // Only the digest is stored.
        let stored: Vec<String> = sqlx::query_scalar("SELECT digest FROM tokens")
            .fetch_all(store.pool())
            .await
            .unwrap();
        assert!(stored.iter().all(|d| !d.contains(&token[4..])), "{b:?}");
        store.revoke_token(id).await.unwrap();
        assert_eq!(store.authenticate(&token).await.unwrap(), None, "{b:?}");
        assert!(matches!(
            store.revoke_token(9999).await,
            Err(StoreError::NoToken(9999))
        ));
        assert!(matches!(
            store.create_token("nobody", "x").await,
            Err(StoreError::NoUser(_))
        ));
        let names: Vec<String> = store
            .users()
            .await
            .unwrap()
            .into_iter()
            .map(|u| u.name)
            .collect();
        assert_eq!(names, ["bo", "mona"]);
    }
}

#[tokio::test]
async fn audit_chain_survives_concurrency_and_exposes_tampering() {
    for (store, _keep) in stores().await {
        let b = store.backend();
        let mut tasks = Vec::new();
        for i in 0..40 {
            let s = store.clone();
            tasks.push(tokio::spawn(async move {
                s.audit(1_700_000_000_000 + i as i64, event(i)).await
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let log = store.audit_log().await.unwrap();
        assert_eq!(verify(&log), Ok(40), "{b:?}");
        // Someone with database access rewrites history.
        sqlx::query("UPDATE audit SET outcome = 'denied' WHERE seq = 7")
            .execute(store.pool())
            .await
            .unwrap();
        assert_eq!(
            verify(&store.audit_log().await.unwrap()),
            Err(Tamper::Edited { seq: 7 }),
            "{b:?}"
        );
        sqlx::query("DELETE FROM audit WHERE seq = 7")
            .execute(store.pool())
            .await
            .unwrap();
        assert_eq!(
            verify(&store.audit_log().await.unwrap()),
            Err(Tamper::Broken {
                seq: 8,
                prev_seq: 6
            }),
            "{b:?}"
        );
    }
}

#[tokio::test]
async fn reopening_keeps_data_and_does_not_reapply_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("l.db").display());
    let store = Store::open(&url).await.unwrap();
    store.add_user("mona", Role::Admin).await.unwrap();
    drop(store);
    let store = Store::open(&url).await.unwrap();
    assert_eq!(store.users().await.unwrap().len(), 1);
    assert!(matches!(
        Store::open("mysql://x").await,
        Err(StoreError::Url(_))
    ));
}
