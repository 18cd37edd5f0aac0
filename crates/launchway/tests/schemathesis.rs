//! Schemathesis (PyPI) against the server's own OpenAPI document, for a
//! bounded number of generated requests per operation: no 5xx answer, and
//! every status the server answers is documented. CI installs schemathesis
//! and sets LAUNCHWAY_TEST_SCHEMATHESIS=1, which makes it required here.

#![allow(clippy::unwrap_used)]

mod common;
use common::server::start_with;

#[test]
fn the_api_keeps_its_document_under_generated_requests() {
    let found = std::process::Command::new("schemathesis")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("LAUNCHWAY_TEST_SCHEMATHESIS").is_none(),
            "LAUNCHWAY_TEST_SCHEMATHESIS is set but schemathesis is not installed"
        );
        eprintln!("schemathesis is not installed: skipped (CI installs it)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (_server, base, token) = start_with(
        &tmp.path().join("server"),
        &[
            "--local-agent-jobs",
            "0",
            "--poll-seconds",
            "0",
            // Generated requests fail to authenticate by the hundred.
            "--auth-failures-per-minute",
            "0",
        ],
    );
    let token = token.unwrap();
    let out = std::process::Command::new("schemathesis")
        .args(["run", &format!("{base}/api/openapi.json")])
        .args(["-H", &format!("Authorization: Bearer {token}")])
        .args(["--max-examples", "15", "--seed", "1"])
        .args(["--checks", "not_a_server_error,status_code_conformance"])
        .args(["--phases", "examples,fuzzing"])
        // Not the operations that take the caller's own token away midway.
        .args([
            "--exclude-path-regex",
            r"^/api/tokens/\{id\}/revoke$|^/api/users/\{name\}$",
        ])
        .env("NO_COLOR", "1")
        // Its cache goes with the test, not into the source tree.
        .current_dir(tmp.path())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("passed"), "{text}");
}
