//! The bundled example, run for real: Python dependencies come from the
//! package index (the only test that needs it), the model is trained and
//! tested, a release bundle is built and checked, and the release is
//! deployed through git to dev and (approved) prod, where it keeps
//! answering `/predict` after the run ends.

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

/// The example copied under `dir` as `churn-service`, without what a
/// local run of it left (its virtualenv, model, build output).
fn copy_example(dir: &Path) -> PathBuf {
    let repo = dir.join("churn-service");
    let copied = Command::new("cp")
        .arg("-r")
        .arg(example())
        .arg(&repo)
        .status()
        .unwrap();
    assert!(copied.success());
    for junk in [".venv", "model.json", "dist"] {
        let _ = std::fs::remove_dir_all(repo.join(junk));
    }
    repo
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

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "Dev")
        .env("GIT_AUTHOR_EMAIL", "dev@example.com")
        .env("GIT_COMMITTER_NAME", "Dev")
        .env("GIT_COMMITTER_EMAIL", "dev@example.com")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A POST of one customer to `/predict`: the body of the answer.
fn predict(address: &str) -> String {
    use std::io::{Read, Write};
    let hostport = address.trim_start_matches("http://");
    let body = r#"{"instances":[{"tenure_months":2,"monthly_charges":95.5,"support_calls":4,"contract":"month-to-month","has_fiber":1}]}"#;
    let mut s = std::net::TcpStream::connect(hostport).unwrap();
    write!(
        s,
        "POST /predict HTTP/1.1\r\nHost: {hostport}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// Stops the reconciler the run started (and the environments) even when
/// an assertion fails.
struct StopReconciler<'a>(&'a Path, &'a Path);

impl Drop for StopReconciler<'_> {
    fn drop(&mut self) {
        let _ = Command::new(env!("CARGO_BIN_EXE_launchway"))
            .args(["sync", "--stop", "-C"])
            .arg(self.0)
            .env("LAUNCHWAY_HOME", self.1)
            .output();
    }
}

#[test]
fn example_pipeline_runs_for_real() {
    let home = tempfile::tempdir().unwrap();
    // The example as its own repository (deploys commit to it).
    let repo = copy_example(home.path());
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-qm", "the example"]);
    let main_before = git(&repo, &["rev-parse", "main"]);
    let _stop = StopReconciler(&repo, home.path());
    // The README's main command.
    let (code, v, err) = launchway(&repo, home.path(), &["--approve", "production"]);
    let rec = &v[0];
    for job in [
        "test",
        "security-scan",
        "build-and-push",
        "deploy-dev",
        "deploy-prod",
    ] {
        assert_eq!(
            result(rec, job),
            "success",
            "{job}:\n{err}\n{}",
            logs(home.path(), rec, job)
        );
    }
    assert_eq!(code, 0);
    assert!(logs(home.path(), rec, "test").contains("passed"));
    // The security actions ran natively: an SBOM of the pinned dependencies
    // became an artifact, trivy-action and gitleaks-action scanned.
    let scan = logs(home.path(), rec, "security-scan");
    assert!(scan.contains("Cataloged"), "{scan}");
    assert!(scan.contains("No leaks detected"), "{scan}");
    let run_dir = home.path().join("runs").join(rec["id"].to_string());
    let artifacts: Vec<String> = std::fs::read_dir(run_dir.join("artifacts"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert!(
        artifacts.iter().any(|a| a.ends_with(".spdx.json")),
        "{artifacts:?}"
    );
    assert!(artifacts.contains(&"release".to_string()));
    // The release was built, started and answered.
    assert!(logs(home.path(), rec, "build-and-push").contains("healthy at http://127.0.0.1:"));
    // Deployed through git: one commit per environment on the
    // `environments` branch, main untouched, the environments served by
    // the reconciler after the run ended.
    assert!(logs(home.path(), rec, "deploy-prod").contains("churn probability"));
    assert_eq!(git(&repo, &["rev-parse", "main"]), main_before);
    let subjects = git(&repo, &["log", "--format=%s", "environments"]);
    let sha = &main_before[..12];
    // The model the build registered, pinned by each deploy commit: dev
    // through `Staging`, prod through `Production` (moved after approval).
    assert!(
        subjects.starts_with(&format!(
            "deploy prod: release {sha}, model ChurnPredictor@Production = 1\ndeploy dev: release {sha}, model ChurnPredictor@Staging = 1\n"
        )),
        "{subjects}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_launchway"))
        .args(["env", "status", "--json", "-C"])
        .arg(&repo)
        .env("LAUNCHWAY_HOME", home.path())
        .output()
        .unwrap();
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    for (env, replicas) in [("dev", 1), ("prod", 3)] {
        let st = status
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["environment"] == env)
            .unwrap();
        assert_eq!(st["sync"], "Synced", "{st}");
        assert_eq!(st["health"], "Healthy", "{st}");
        assert_eq!(st["release"].as_str().unwrap(), main_before, "{st}");
        assert_eq!(st["replicas"].as_array().unwrap().len(), replicas, "{st}");
        let answer = predict(st["address"].as_str().unwrap());
        assert!(
            answer.starts_with("HTTP/1.1 200") && answer.contains("churn_probability"),
            "{answer}"
        );
        let log = logs(home.path(), rec, &format!("deploy-{env}"));
        assert!(
            log.contains(&format!("at {} (", st["address"].as_str().unwrap())),
            "the step reports the address:\n{log}"
        );
    }
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

    // A second commit: prod now runs something, so the new release goes
    // through prod's canary (5% → smoke check → 25% → 50% → 100%) and the
    // deploy step's summary says how it went.
    std::fs::write(repo.join("NOTES.md"), "second release\n").unwrap();
    git(&repo, &["add", "NOTES.md"]);
    git(&repo, &["commit", "-qm", "second release"]);
    let second = git(&repo, &["rev-parse", "HEAD"]);
    let (code, v, err) = launchway(&repo, home.path(), &["--approve", "production"]);
    let rec = &v[0];
    assert_eq!(code, 0, "{err}\n{}", logs(home.path(), rec, "deploy-prod"));
    let log = logs(home.path(), rec, "deploy-prod");
    assert!(
        log.contains("rollout: canary of")
            && log.contains("promoted")
            && log.contains("smoke 2 passed"),
        "{log}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_launchway"))
        .args(["rollout", "status", "prod", "--json", "-C"])
        .arg(&repo)
        .env("LAUNCHWAY_HOME", home.path())
        .output()
        .unwrap();
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["phase"], "Promoted", "{r}");
    assert_eq!(r["canary"], second.as_str(), "{r}");
    assert_eq!(r["steps"], 7, "{r}");
}

/// The example's security job really gates on a fresh machine (no
/// database imported: the built-in snapshot answers): a vulnerable pin
/// fails it, and the report says which advisory and where its data is from.
#[test]
fn a_vulnerable_pin_fails_the_examples_security_job() {
    let home = tempfile::tempdir().unwrap();
    let repo = copy_example(home.path());
    let reqs = repo.join("requirements-dev.txt");
    let mut text = std::fs::read_to_string(&reqs).unwrap();
    text.push_str("gitpython==3.1.30\n    # via a tool someone added\n");
    std::fs::write(&reqs, text).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-qm", "a vulnerable pin"]);
    let (code, v, err) = launchway(&repo, home.path(), &["--job", "security-scan"]);
    let rec = &v[0];
    assert_eq!(result(rec, "security-scan"), "failure", "{err}");
    assert_ne!(code, 0);
    let log = logs(home.path(), rec, "security-scan");
    assert!(
        log.contains("gitpython") && log.contains("CVE-2023-40590"),
        "{log}"
    );
    assert!(log.contains("built-in snapshot"), "{log}");
}
