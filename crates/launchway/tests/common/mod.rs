//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used)]

pub mod server;

use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// The `launchway` binary, isolated from the environment it runs in.
pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_launchway"));
    c.env_remove("GITHUB_ACTIONS").env("NO_COLOR", "1");
    c
}

/// `git` with a fixed identity.
pub fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "Mona")
        .env("GIT_AUTHOR_EMAIL", "mona@example.com")
        .env("GIT_COMMITTER_NAME", "Mona")
        .env("GIT_COMMITTER_EMAIL", "mona@example.com")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Makes `dir` a repository with everything in it committed on `main`.
pub fn commit_all(dir: &Path) {
    git(dir, &["init", "-q", "-b", "main"]);
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "fixture"]);
}

/// A step's part of its job's log file.
pub fn step_log(run_dir: &Path, step: &Value) -> String {
    let Some(l) = step["log"].as_str() else {
        return String::new();
    };
    let bytes = std::fs::read(run_dir.join(l)).unwrap_or_default();
    let a = step["log_start"].as_u64().unwrap() as usize;
    let b = step["log_end"].as_u64().unwrap() as usize;
    String::from_utf8_lossy(&bytes[a..b]).into_owned()
}
