//! Model stages and aliases resolved on a real MLflow tracking server
//! (installed from PyPI into the target dir on first run): a deploy
//! commit pins the version MLflow names at that moment.

#![allow(clippy::unwrap_used)]

mod common;
use common::free_port;
use common::{bin, commit_all};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const MLFLOW: &str = "mlflow==3.17.2";

fn mlflow() -> PathBuf {
    common::pip_venv("mlflow", MLFLOW).join("bin/mlflow")
}

/// The MLflow server, in a process group of its own: `mlflow server`
/// starts uvicorn, a job runner and queue consumers, which outlive it when
/// only it is killed. Dropping it kills that group (the one this test
/// started, by the server's pid) and reaps the server.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0.id())])
            .status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn call(agent: &ureq::Agent, base: &str, path: &str, body: &str) -> String {
    let mut r = agent
        .post(&format!("{base}/api/2.0/mlflow/{path}"))
        .header("Content-Type", "application/json")
        .send(body)
        .unwrap();
    let status = r.status().as_u16();
    let text = r.body_mut().read_to_string().unwrap();
    assert_eq!(status, 200, "{path}: {text}");
    text
}

#[test]
fn model_stages_and_aliases_resolve_on_mlflow_when_committed() {
    let tool = mlflow();
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let _server = Server(
        Command::new(&tool)
            .args(["server", "--host", "127.0.0.1", "--workers", "1", "--port"])
            .arg(port.to_string())
            .arg("--backend-store-uri")
            .arg(format!(
                "sqlite:///{}",
                tmp.path().join("mlflow.db").display()
            ))
            .current_dir(tmp.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let start = Instant::now();
    while agent
        .get(&format!("{base}/health"))
        .call()
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
        != 200
    {
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "MLflow did not start"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    call(
        &agent,
        &base,
        "registered-models/create",
        r#"{"name":"Churn"}"#,
    );
    for m in ["m1", "m2"] {
        call(
            &agent,
            &base,
            "model-versions/create",
            &format!(r#"{{"name":"Churn","source":"s3://models/{m}"}}"#),
        );
    }
    call(
        &agent,
        &base,
        "model-versions/transition-stage",
        r#"{"name":"Churn","version":"1","stage":"Production","archive_existing_versions":false}"#,
    );
    call(
        &agent,
        &base,
        "registered-models/alias",
        r#"{"name":"Churn","alias":"champion","version":"2"}"#,
    );

    let repo = tmp.path().join("repo");
    let envs = repo.join("configs/environments");
    std::fs::create_dir_all(&envs).unwrap();
    std::fs::write(
        envs.join("_base.yaml"),
        format!("mlflow_uri: {base}\nmodel_name: Churn\n"),
    )
    .unwrap();
    std::fs::write(envs.join("prod.yaml"), "model_stage: Production\n").unwrap();
    std::fs::write(envs.join("canary.yaml"), "model_stage: champion\n").unwrap();
    std::fs::write(envs.join("broken.yaml"), "model_stage: nobody\n").unwrap();
    commit_all(&repo);
    let deploy = |env: &str| {
        let out = bin()
            .args(["deploy", env, "--release", "HEAD", "-C"])
            .arg(&repo)
            .env("LAUNCHWAY_HOME", tmp.path().join("home"))
            .env("GIT_AUTHOR_NAME", "Ana")
            .env("GIT_AUTHOR_EMAIL", "ana@example.com")
            .env("GIT_COMMITTER_NAME", "Ana")
            .env("GIT_COMMITTER_EMAIL", "ana@example.com")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // A stage (MLflow's latest version in it) and an alias.
    let (ok, err) = deploy("prod");
    assert!(ok, "{err}");
    assert!(
        std::fs::read_to_string(envs.join("prod.yaml"))
            .unwrap()
            .contains("model_version: 1\n")
    );
    let (ok, err) = deploy("canary");
    assert!(ok, "{err}");
    assert!(
        std::fs::read_to_string(envs.join("canary.yaml"))
            .unwrap()
            .contains("model_version: 2\n")
    );
    // An alias MLflow does not know: refused with MLflow's reason.
    let (ok, err) = deploy("broken");
    assert!(!ok);
    assert!(
        err.contains("Churn@nobody") && err.contains("nothing was committed"),
        "{err}"
    );
    assert!(
        !std::fs::read_to_string(envs.join("broken.yaml"))
            .unwrap()
            .contains("model_version")
    );
}
