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
    // The README's main command, on the example as it is in the working tree.
    let (code, v, err) = launchway(
        &example(),
        home.path(),
        &["--dirty", "--approve", "production"],
    );
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
    assert!(logs(home.path(), rec, "deploy-prod").contains("sample churn probability"));
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
