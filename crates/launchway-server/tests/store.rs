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

#[tokio::test]
async fn the_run_queue_hands_each_run_to_exactly_one_worker() {
    use launchway_server::store::{NewRun, RunFilter, RunStatus};
    for (store, _keep) in stores().await {
        let b = store.backend();
        store
            .add_repo("churn", "/srv/churn", "sealed", 1)
            .await
            .unwrap();
        assert!(matches!(
            store.add_repo("churn", "/elsewhere", "x", 2).await,
            Err(StoreError::RepoExists(_))
        ));
        let new = |i: usize| NewRun {
            repo: "churn".into(),
            workflow: ".github/workflows/ci.yml".into(),
            event: "push".into(),
            git_ref: "refs/heads/main".into(),
            sha: format!("{i:040}"),
            inputs: [("level".to_string(), i.to_string())].into(),
            actor: "mona".into(),
            rerun_of: 0,
            base_ref: String::new(),
            action: String::new(),
            resume_dir: String::new(),
        };
        for i in 0..20 {
            let r = store.enqueue(&new(i), 10).await.unwrap();
            assert_eq!(r.status, RunStatus::Queued);
            assert_eq!(r.inputs["level"], i.to_string());
        }
        // Four workers race for twenty runs: each run is claimed once.
        let mut workers = Vec::new();
        for _ in 0..4 {
            let s = store.clone();
            workers.push(tokio::spawn(async move {
                let mut got = Vec::new();
                while let Some(r) = s.claim_next(20, "t", 40).await.unwrap() {
                    got.push(r.id);
                }
                got
            }));
        }
        let mut all = Vec::new();
        for w in workers {
            all.extend(w.await.unwrap());
        }
        all.sort_unstable();
        let expected: Vec<i64> = (1..=20).collect();
        assert_eq!(all, expected, "{b:?}");
        store
            .finish_run(1, RunStatus::Success, "", 30)
            .await
            .unwrap();
        let queued = store.enqueue(&new(99), 40).await.unwrap();
        assert!(store.cancel_queued(queued.id, 41).await.unwrap());
        assert!(
            !store.cancel_queued(queued.id, 42).await.unwrap(),
            "only once"
        );
        // A restart: what was running ends failed, with a reason.
        assert_eq!(store.fail_interrupted(50).await.unwrap(), 19);
        let counts = store.run_counts().await.unwrap();
        assert_eq!(counts["success"], 1);
        assert_eq!(counts["failure"], 19);
        assert_eq!(counts["cancelled"], 1);
        assert_eq!(counts["queued"], 0);
        let failed = store
            .runs(&RunFilter {
                repo: Some("churn".into()),
                status: Some(RunStatus::Failure),
                limit: 5,
            })
            .await
            .unwrap();
        assert_eq!(failed.len(), 5);
        assert!(failed[0].id > failed[1].id, "newest first");
        assert!(failed[0].message.contains("server stopped"));
        let none = store
            .runs(&RunFilter {
                repo: Some("other".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(none.is_empty());
    }
}

#[tokio::test]
async fn reviews_deployments_settings_and_trigger_memory_on_both_backends() {
    use launchway_server::approval::Review;
    use launchway_server::store::settings::Kind;
    use launchway_server::store::{Deployment, NewRun, RunStatus};
    use std::collections::BTreeMap;
    for (store, _keep) in stores().await {
        let b = store.backend();
        store
            .add_repo("churn", "/srv/churn", "sealed", 1)
            .await
            .unwrap();
        let run = store
            .enqueue(
                &NewRun {
                    repo: "churn".into(),
                    workflow: "d.yml".into(),
                    event: "workflow_dispatch".into(),
                    git_ref: "refs/heads/main".into(),
                    sha: "a".repeat(40),
                    inputs: BTreeMap::new(),
                    actor: "ana".into(),
                    rerun_of: 0,
                    base_ref: String::new(),
                    action: String::new(),
                    resume_dir: String::new(),
                },
                5,
            )
            .await
            .unwrap();
        // Waiting → approved → back in the queue, resuming from its directory.
        store.claim_next(6, "t", 1_000).await.unwrap().unwrap();
        store.set_run_dir(run.id, "/data/runs/1").await.unwrap();
        store
            .finish_run(run.id, RunStatus::Waiting, "waiting", 7)
            .await
            .unwrap();
        let review = Review {
            by: "bo".into(),
            approved: true,
            at_ms: 8,
            comment: Some("ship it".into()),
        };
        store
            .add_review(run.id, "production", &review)
            .await
            .unwrap();
        assert_eq!(
            store.reviews(run.id, "production").await.unwrap(),
            [review],
            "{b:?}"
        );
        assert!(store.reviews(run.id, "staging").await.unwrap().is_empty());
        assert!(store.resume_approved(run.id, "production").await.unwrap());
        assert!(
            !store.resume_approved(run.id, "production").await.unwrap(),
            "once"
        );
        let again = store.run(run.id).await.unwrap().unwrap();
        assert_eq!(again.status, RunStatus::Queued);
        assert_eq!(again.approved, "production");
        assert_eq!(again.resume_dir, "/data/runs/1");
        // Deployments, newest first, filtered.
        for (env, at) in [("staging", 10), ("production", 11)] {
            store
                .add_deployment(&Deployment {
                    run_id: run.id,
                    repo: "churn".into(),
                    environment: env.into(),
                    sha: "a".repeat(40),
                    git_ref: "refs/heads/main".into(),
                    job: format!("deploy-{env}"),
                    result: "success".into(),
                    triggered_by: "ana".into(),
                    approved_by: "bo".into(),
                    at_ms: at,
                })
                .await
                .unwrap();
        }
        let all = store.deployments(Some("churn"), None, 10).await.unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].environment, "production");
        let prod = store
            .deployments(None, Some("production"), 10)
            .await
            .unwrap();
        assert_eq!(prod.len(), 1);
        // Settings: replace, list, delete.
        store
            .put_setting("churn", "", Kind::Secret, "API", "sealed-1", 1)
            .await
            .unwrap();
        store
            .put_setting("churn", "", Kind::Secret, "API", "sealed-2", 2)
            .await
            .unwrap();
        store
            .put_setting("churn", "prod", Kind::Secret, "API", "sealed-3", 3)
            .await
            .unwrap();
        store
            .put_setting("churn", "", Kind::Variable, "LEVEL", "high", 4)
            .await
            .unwrap();
        let secrets = store.settings("churn", Kind::Secret).await.unwrap();
        assert_eq!(secrets.len(), 2);
        assert_eq!(
            (secrets[0].environment.as_str(), secrets[0].value.as_str()),
            ("", "sealed-2")
        );
        assert_eq!(
            store.settings("churn", Kind::Variable).await.unwrap()[0].value,
            "high"
        );
        assert!(
            store
                .delete_setting("churn", "prod", Kind::Secret, "API")
                .await
                .unwrap()
        );
        assert!(
            !store
                .delete_setting("churn", "prod", Kind::Secret, "API")
                .await
                .unwrap()
        );
        // What polling saw, and schedules claimed once per minute.
        assert!(store.refs_seen("churn").await.unwrap().is_empty());
        let refs: BTreeMap<String, String> =
            [("refs/heads/main".to_string(), "b".repeat(40))].into();
        store.set_refs_seen("churn", &refs).await.unwrap();
        assert_eq!(store.refs_seen("churn").await.unwrap(), refs);
        assert!(store.claim_schedule("churn", "n.yml", 100).await.unwrap());
        assert!(!store.claim_schedule("churn", "n.yml", 100).await.unwrap());
        assert!(store.claim_schedule("churn", "n.yml", 101).await.unwrap());
        // Retention sees finished runs with files only.
        store.claim_next(20, "t", 1_000).await.unwrap().unwrap();
        store
            .finish_run(run.id, RunStatus::Success, "", 30)
            .await
            .unwrap();
        assert_eq!(store.expired_runs(31).await.unwrap().len(), 1);
        assert!(store.expired_runs(29).await.unwrap().is_empty());
        store.clear_run_dir(run.id).await.unwrap();
        assert!(store.expired_runs(31).await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn environment_changes_are_decided_once_on_both_backends() {
    for (store, _keep) in stores().await {
        let b = store.backend();
        store
            .add_repo("churn", "/srv/churn", "sealed", 1)
            .await
            .unwrap();
        let params = serde_json::json!({"release": "abc", "set": {"replicas": "3"}});
        let id = store
            .add_change("churn", "prod", "deploy", &params, "ana", 10)
            .await
            .unwrap();
        let c = store.change(id).await.unwrap().unwrap();
        assert_eq!(
            (c.status.as_str(), c.requested_by.as_str(), &c.params),
            ("waiting", "ana", &params),
            "{b:?}"
        );
        assert_eq!(store.changes(Some("waiting")).await.unwrap().len(), 1);
        // Two reviewers at once: exactly one decides.
        let (a, r) = tokio::join!(
            store.decide_change(id, "approved", "bo", "ok", 20),
            store.decide_change(id, "rejected", "cy", "no", 21)
        );
        assert!(a.unwrap() ^ r.unwrap(), "{b:?}: exactly one decision lands");
        store.finish_change(id, "committed", "f00d").await.unwrap();
        let c = store.change(id).await.unwrap().unwrap();
        assert_eq!(c.result, "f00d");
        assert!(store.changes(Some("waiting")).await.unwrap().is_empty());
        assert!(store.change(id + 100).await.unwrap().is_none());
    }
}
