//! The bundled example, run for real: Python dependencies come from the
//! package index (the only test that needs it), the model is trained and
//! tested, a release bundle is built, started and answers `/predict`.

#![allow(clippy::unwrap_used)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/churn-service")
}

fn launchway(dir: &Path, home: &Path, args: &[&str]) -> (i32, Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_launchway"))
        .args(["run", "--json", "-C"])
        .arg(dir)
        .args(args)
        .env("LAUNCHWAY_HOME", home)
        .env_remove("GITHUB_ACTIONS")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    (
        out.status.code().unwrap_or(-1),
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null),
        err,
    )
}

fn result<'a>(rec: &'a Value, key: &str) -> &'a str {
    rec["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["key"] == key)
        .unwrap()["result"]
        .as_str()
        .unwrap()
}

fn logs(home: &Path, rec: &Value, key: &str) -> String {
    let job = rec["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["key"] == key)
        .unwrap();
    let dir = home.join("runs").join(rec["id"].to_string());
    // The job's whole log.
    job["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|s| s["log"].as_str())
        .map(|l| std::fs::read_to_string(dir.join(l)).unwrap_or_default())
        .unwrap_or_default()
}

#[test]
fn example_pipeline_runs_for_real() {
    let home = tempfile::tempdir().unwrap();
    // The README's main command, on the example as committed (working tree
    // included, so the test sees local edits too).
    let (code, v, err) = launchway(
        &example(),
        home.path(),
        &["--dirty", "--approve", "production"],
    );
    let rec = &v[0];
    assert_eq!(
        result(rec, "test"),
        "success",
        "{err}\n{}",
        logs(home.path(), rec, "test")
    );
    let test_log = logs(home.path(), rec, "test");
    assert!(test_log.contains("passed"), "{test_log}");
    // Until the native security actions land, security-scan fails clearly
    // and nothing downstream runs.
    assert_eq!(result(rec, "security-scan"), "failure");
    assert!(logs(home.path(), rec, "security-scan").contains("launchway scan"));
    assert_eq!(result(rec, "build-and-push"), "skipped");
    assert_eq!(code, 1);
}

#[test]
fn example_build_and_deploy_jobs_work_end_to_end() {
    // The same pipeline with build-and-push needing only `test`, to exercise
    // the release bundle, artifact hand-over and smoke tests for real.
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("churn-service");
    let status = Command::new("cp")
        .arg("-r")
        .arg(example())
        .arg(&repo)
        .status()
        .unwrap();
    assert!(status.success());
    let wf = repo.join(".github/workflows/ci-cd.yml");
    let text = std::fs::read_to_string(&wf)
        .unwrap()
        .replace("needs: [test, security-scan]", "needs: [test]");
    std::fs::write(&wf, text).unwrap();
    let (code, v, err) = launchway(
        &repo,
        &tmp.path().join("home"),
        &["--dirty", "--job", "deploy-prod", "--approve", "production"],
    );
    let rec = &v[0];
    assert_eq!(code, 0, "{err}");
    for job in ["test", "build-and-push", "deploy-prod"] {
        assert_eq!(result(rec, job), "success", "{job}: {err}");
    }
    let home = tmp.path().join("home");
    assert!(logs(&home, rec, "build-and-push").contains("healthy at http://127.0.0.1:"));
    let deploy = logs(&home, rec, "deploy-prod");
    assert!(deploy.contains("sample churn probability"), "{deploy}");
    let build = rec["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["key"] == "build-and-push")
        .unwrap();
    assert!(
        build["outputs"]["release"]
            .as_str()
            .unwrap()
            .starts_with("churn-service-")
    );
}
