//! The pre-commit check (issue 17): `launchway scan --staged` reads what
//! the index stages, the real `pre-commit` framework (from PyPI) runs it
//! from a `repo: local` configuration and from this repository's own
//! `.pre-commit-hooks.yaml`, and `launchway hook install --pre-commit`
//! makes `git commit` refuse a leak.

#![allow(clippy::unwrap_used)]

mod common;
use common::{bin, git};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const TOKEN: &str = "ghp_4fR9kL2mN7pQ1sT6vW8xY3zA5bC0dE2gH4jK";

/// A virtualenv with pre-commit, made once per target dir.
fn pre_commit() -> PathBuf {
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("pre-commit-venv");
    let ready = venv.join(".ready");
    if !ready.exists() {
        let ok = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .unwrap()
            .success();
        assert!(ok, "python3 -m venv failed");
        let out = Command::new(venv.join("bin/python"))
            .args(["-m", "pip", "install", "-q", "pre-commit"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "installing pre-commit failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::write(&ready, "").unwrap();
    }
    venv.join("bin/pre-commit")
}

fn repo(tmp: &Path) -> PathBuf {
    let repo = tmp.join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("README.md"), "# app\n").unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-qm", "initial"]);
    repo
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// What is staged counts, not the working tree: a staged secret deleted
/// from the file afterwards is still found; an unstaged one is not; a
/// staged lockfile's vulnerable pin is found.
#[test]
fn scan_staged_reads_the_index() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo(tmp.path());
    let home = tmp.path().join("home");
    let scan = |args: &[&str]| {
        bin()
            .args(["scan", "--staged", "--exit-code", "1"])
            .args(args)
            .arg(&repo)
            .env("LAUNCHWAY_HOME", &home)
            .env_remove("GITLEAKS_CONFIG")
            .output()
            .unwrap()
    };
    let out = scan(&[]);
    assert_eq!(out.status.code(), Some(0), "nothing staged: {}", text(&out));
    std::fs::write(repo.join(".env"), format!("TOKEN={TOKEN}\n")).unwrap();
    git(&repo, &["add", ".env"]);
    std::fs::write(repo.join(".env"), "TOKEN=\n").unwrap();
    let out = scan(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("github-pat"), "{}", text(&out));
    git(&repo, &["reset", "-q", ".env"]);
    std::fs::write(repo.join(".env"), format!("TOKEN={TOKEN}\n")).unwrap();
    let out = scan(&[]);
    assert_eq!(out.status.code(), Some(0), "unstaged: {}", text(&out));
    std::fs::write(repo.join("requirements.txt"), "gitpython==3.1.30\n").unwrap();
    git(&repo, &["add", "requirements.txt"]);
    let out = scan(&["--scanners", "vuln"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("CVE-2023-40590"), "{}", text(&out));
    let out = bin()
        .args(["scan", "--staged", "--git"])
        .arg(&repo)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "--staged with --git is refused");
}

/// The real pre-commit framework runs Launchway from a `repo: local`
/// configuration and from this repository's `.pre-commit-hooks.yaml`
/// (`try-repo`): a staged secret fails the commit check, a clean change
/// passes.
#[test]
fn the_pre_commit_framework_runs_launchway() {
    let pc = pre_commit();
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo(tmp.path());
    let exe = env!("CARGO_BIN_EXE_launchway");
    std::fs::write(
        repo.join(".pre-commit-config.yaml"),
        format!(
            "repos:\n- repo: local\n  hooks:\n  - id: launchway\n    name: launchway scan --staged\n    entry: {exe} scan --staged --exit-code 1\n    language: system\n    pass_filenames: false\n"
        ),
    )
    .unwrap();
    git(&repo, &["add", ".pre-commit-config.yaml"]);
    git(&repo, &["commit", "-qm", "pre-commit"]);
    let bin_dir = Path::new(exe).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run = |args: &[&str]| {
        Command::new(&pc)
            .args(args)
            .current_dir(&repo)
            .env("PRE_COMMIT_HOME", tmp.path().join("pc-cache"))
            .env("LAUNCHWAY_HOME", tmp.path().join("home"))
            .env("PATH", &path)
            .env_remove("GITLEAKS_CONFIG")
            .output()
            .unwrap()
    };
    std::fs::write(repo.join("app.py"), "print('hello')\n").unwrap();
    git(&repo, &["add", "app.py"]);
    let out = run(&["run"]);
    assert!(out.status.success(), "a clean change: {}", text(&out));
    std::fs::write(repo.join("deploy.sh"), format!("export GH={TOKEN}\n")).unwrap();
    git(&repo, &["add", "deploy.sh"]);
    let out = run(&["run"]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("github-pat") && text(&out).contains("deploy.sh"),
        "{}",
        text(&out)
    );
    // This repository's own hook definitions, as a user would take them.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = run(&["try-repo", root.to_str().unwrap(), "launchway-secrets"]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("github-pat"), "{}", text(&out));
}

/// `launchway hook install --pre-commit`: `git commit` of a secret is
/// refused, `--no-verify` is the way around it that git always offers;
/// a hook someone else wrote is not overwritten.
#[test]
fn the_installed_hook_refuses_a_commit_with_a_secret() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo(tmp.path());
    let out = bin()
        .args(["hook", "install", "--pre-commit", "-C"])
        .arg(&repo)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    std::fs::write(repo.join("ci.env"), format!("GH_TOKEN={TOKEN}\n")).unwrap();
    git(&repo, &["add", "ci.env"]);
    let commit = |extra: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(&repo)
            .args(["-c", "user.name=Mona", "-c", "user.email=mona@example.com"])
            .args(["commit", "-qm", "leak"])
            .args(extra)
            .env("LAUNCHWAY_HOME", tmp.path().join("home"))
            .env_remove("GITLEAKS_CONFIG")
            .output()
            .unwrap()
    };
    let out = commit(&[]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("github-pat"), "{}", text(&out));
    let out = commit(&["--no-verify"]);
    assert!(out.status.success(), "{}", text(&out));
    // Someone else's hook stays.
    let other = tempfile::tempdir().unwrap();
    let repo2 = self::repo(other.path());
    std::fs::write(repo2.join(".git/hooks/pre-commit"), "#!/bin/sh\nexit 0\n").unwrap();
    let out = bin()
        .args(["hook", "install", "--pre-commit", "-C"])
        .arg(&repo2)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out).contains("was not written by Launchway"),
        "{}",
        text(&out)
    );
    // The server hook's options do not go with --pre-commit.
    let out = bin()
        .args(["hook", "install", "--pre-commit", "--repo", "x", "-C"])
        .arg(&repo2)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}
