//! `launchway env` on a fixture repository: listing, overlays, diffs,
//! positioned errors, and Kubernetes manifests checked by
//! kubernetes-validate (Kubernetes' published schemas, installed from
//! PyPI at test time; it bundles them, so no network is needed after).

#![allow(clippy::unwrap_used)]

mod common;
use common::bin;
use std::path::{Path, PathBuf};
use std::process::Command;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/environments")
}

fn env(args: &[&str]) -> (i32, String, String) {
    let out = bin()
        .arg("env")
        .arg("-C")
        .arg(fixture())
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn list_show_and_diff_with_a_shared_base() {
    let (code, out, _) = env(&["list"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("dev ") && out.contains("prod ") && !out.contains("_base"),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("broken") && l.contains("has errors")),
        "{out}"
    );
    let (code, out, err) = env(&["show", "dev", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["merged"]["image"], "ghcr.io/acme/churn:1.4.0",
        "from the base"
    );
    assert_eq!(v["merged"]["replicas"], 1);
    assert_eq!(
        v["service_environment"]["FEATURE_FLAGS"],
        r#"{"explain":true}"#
    );
    assert_eq!(v["service_environment"]["LOG_LEVEL"], "DEBUG");
    let (code, out, _) = env(&["diff", "dev", "prod"]);
    assert_eq!(code, 1, "they differ: exit 1, as diff does");
    assert!(
        out.lines()
            .any(|l| l.starts_with("replicas") && l.contains('1') && l.contains('3')),
        "{out}"
    );
    assert!(
        out.contains("namespace") && out.contains("(unset)"),
        "{out}"
    );
    assert!(
        !out.contains("image"),
        "same in both (from the base): {out}"
    );
}

#[test]
fn validate_reports_each_problem_at_its_place() {
    let (code, _, err) = env(&["validate"]);
    assert_eq!(code, 1, "{err}");
    for want in [
        "configs/environments/broken.yaml:4:19",
        "resources.requests.cpu: 'abc' is not a quantity",
        "configs/environments/broken.yaml:2:11",
        "replicas (20) is outside autoscaling's 2..=5",
        "configs/environments/broken.yaml:6:9",
        "unknown target 'mars'",
        "targets: local, kubernetes",
        "1 of 3 environment(s) have errors",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
    let (code, _, err) = env(&["validate", "dev", "prod"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = env(&["show", "nope"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("no environment 'nope'") && err.contains("dev, prod"),
        "{err}"
    );
}

/// kubernetes-validate in a virtualenv, made once per target dir.
fn validator() -> PathBuf {
    common::pip_venv("kubernetes-validate", "kubernetes-validate==1.37.0")
        .join("bin/kubernetes-validate")
}

fn validate(tool: &Path, file: &Path) -> (bool, String) {
    let out = Command::new(tool)
        .args(["-k", "1.30.0", "--strict"])
        .arg(file)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn rendered_manifests_pass_the_kubernetes_schemas() {
    let tool = validator();
    let tmp = tempfile::tempdir().unwrap();
    for name in ["dev", "prod"] {
        let file = tmp.path().join(format!("{name}.yaml"));
        let (code, _, err) = env(&[
            "render",
            name,
            "--target",
            "kubernetes",
            "-o",
            file.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{err}");
        let (ok, report) = validate(&tool, &file);
        assert!(ok, "{name}:\n{report}");
        let kinds = report.matches("passed for resource").count();
        assert_eq!(kinds, if name == "prod" { 3 } else { 2 }, "{report}");
    }
    let text = std::fs::read_to_string(tmp.path().join("prod.yaml")).unwrap();
    assert!(
        text.contains("kind: HorizontalPodAutoscaler") && text.contains("namespace: ml-prod"),
        "{text}"
    );
    assert!(text.contains("averageUtilization: 70"), "{text}");
    // The autoscaler owns the count: the Deployment names none to fight it.
    assert!(!text.contains("\n  replicas:"), "{text}");
    // --set renders what a change would (nothing committed); an invalid
    // name is an error, not rewritten.
    let (code, out, err) = env(&[
        "render",
        "prod",
        "--set",
        "image=registry.local/churn:2.0.0",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("image: registry.local/churn:2.0.0"), "{out}");
    let (code, _, err) = env(&["render", "prod", "--set", "namespace=ML Prod"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("namespace 'ML Prod' is not a valid Kubernetes name"),
        "{err}"
    );
    // The validator is live: a broken manifest fails it.
    let broken = tmp.path().join("broken.yaml");
    std::fs::write(
        &broken,
        text.replacen("minReplicas: 3", "minReplicas: three", 1),
    )
    .unwrap();
    assert!(
        !validate(&tool, &broken).0,
        "the schema check must catch a bad type"
    );
}

fn git_out(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn lw(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = bin().args(args).arg("-C").arg(dir).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// With a server named and no `--repo`, a deploy is refused rather than
/// quietly made in this machine's repository; `--local` says it is meant.
#[test]
fn a_named_server_is_never_ignored_by_deploy() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    std::fs::create_dir_all(repo.join("configs/environments")).unwrap();
    std::fs::write(repo.join("configs/environments/dev.yaml"), "replicas: 1\n").unwrap();
    common::commit_all(&repo);
    for verb in [
        &["deploy", "dev", "--set", "replicas=2"][..],
        &["rollback", "dev"],
        &["promote", "dev", "prod"],
    ] {
        let out = bin()
            .args(verb)
            .arg("-C")
            .arg(&repo)
            .env("LAUNCHWAY_SERVER", "http://127.0.0.1:9")
            .env("LAUNCHWAY_TOKEN", "lwt_x")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{verb:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("--local"));
    }
    let out = bin()
        .args(["deploy", "dev", "--set", "replicas=2", "--local", "-C"])
        .arg(&repo)
        .env("LAUNCHWAY_SERVER", "http://127.0.0.1:9")
        .env("LAUNCHWAY_HOME", tmp.path().join("home"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn deploy_rollback_and_promote_are_commits_of_the_environment_file() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    let envs = repo.join("configs/environments");
    std::fs::create_dir_all(&envs).unwrap();
    std::fs::write(
        envs.join("dev.yaml"),
        "# dev: anything goes\nenvironment: development\nreplicas: 1\n",
    )
    .unwrap();
    std::fs::write(
        envs.join("prod.yaml"),
        "environment: production\nreplicas: 3   # keep three\n",
    )
    .unwrap();
    std::fs::write(repo.join("app.py"), "print('v1')\n").unwrap();
    common::commit_all(&repo);
    let v1 = git_out(&repo, &["rev-parse", "HEAD"]);

    // Deploy pins the release to a full commit and commits only the file.
    std::fs::write(repo.join("notes.txt"), "not part of the deploy\n").unwrap();
    let (code, out, err) = lw(
        &repo,
        &[
            "deploy",
            "dev",
            "--release",
            "HEAD",
            "--set",
            "log_level=DEBUG",
            "--author",
            "Ana <ana@example.com>",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("deploy dev: committed"), "{out}");
    let dev = std::fs::read_to_string(envs.join("dev.yaml")).unwrap();
    assert!(
        dev.starts_with("# dev: anything goes\n"),
        "comments stay: {dev}"
    );
    assert!(dev.contains(&format!("release: {v1}")), "{dev}");
    assert_eq!(
        git_out(&repo, &["log", "-1", "--format=%an <%ae>|%s"]),
        format!(
            "Ana <ana@example.com>|deploy dev: release {}, log_level=DEBUG",
            &v1[..12]
        )
    );
    assert_eq!(
        git_out(&repo, &["show", "--name-only", "--format=", "HEAD"]),
        "configs/environments/dev.yaml"
    );
    assert_eq!(git_out(&repo, &["status", "--porcelain"]), "?? notes.txt");

    // An invalid change is refused and nothing is committed.
    let head = git_out(&repo, &["rev-parse", "HEAD"]);
    for bad in ["=5", "a..b=1", "has space=1"] {
        let (code, _, err) = lw(&repo, &["deploy", "dev", "--set", bad]);
        assert_eq!(code, 1, "{bad}");
        assert!(err.contains("dotted path of names"), "{bad}: {err}");
    }
    let (code, _, err) = lw(&repo, &["deploy", "dev", "--set", "replicas"]);
    assert_eq!(code, 1);
    assert!(err.contains("--set replicas: expected KEY=VALUE"), "{err}");
    let (code, _, err) = lw(&repo, &["deploy", "dev", "--set", "replicas=-2"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("invalid") && err.contains("nothing was committed"),
        "{err}"
    );
    assert_eq!(git_out(&repo, &["rev-parse", "HEAD"]), head);
    assert!(
        std::fs::read_to_string(envs.join("dev.yaml"))
            .unwrap()
            .contains("replicas: 1")
    );

    // Values keep their YAML type.
    let (code, _, err) = lw(&repo, &["deploy", "dev", "--set", "replicas=2"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        std::fs::read_to_string(envs.join("dev.yaml"))
            .unwrap()
            .contains("replicas: 2\n")
    );

    // Promote copies what runs in dev to prod, keeping prod's own settings.
    let (code, _, err) = lw(&repo, &["promote", "dev", "prod"]);
    assert_eq!(code, 0, "{err}");
    let prod = std::fs::read_to_string(envs.join("prod.yaml")).unwrap();
    assert!(
        prod.contains(&format!("release: {v1}")) && prod.contains("replicas: 3   # keep three"),
        "{prod}"
    );

    // Rollback restores the file as it was before its last change.
    let (code, _, err) = lw(&repo, &["rollback", "prod"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        std::fs::read_to_string(envs.join("prod.yaml")).unwrap(),
        "environment: production\nreplicas: 3   # keep three\n"
    );
    assert!(git_out(&repo, &["log", "-1", "--format=%s"]).starts_with("rollback prod to "));
    // …or as it was at a revision.
    let (code, _, err) = lw(&repo, &["rollback", "dev", "--to", &v1]);
    assert_eq!(code, 0, "{err}");
    assert!(
        !std::fs::read_to_string(envs.join("dev.yaml"))
            .unwrap()
            .contains("release:")
    );
    // Uncommitted edits of the file are never committed over.
    std::fs::write(envs.join("dev.yaml"), "replicas: 9\n").unwrap();
    let (code, _, err) = lw(&repo, &["deploy", "dev", "--set", "replicas=2"]);
    assert_eq!(code, 1);
    assert!(err.contains("uncommitted changes"), "{err}");
}

#[test]
fn deploys_to_another_branch_leave_the_work_tree_alone() {
    // The service is a folder of a larger repository, as the bundled example is.
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("mono");
    let svc = repo.join("services/churn");
    let envs = svc.join("configs/environments");
    std::fs::create_dir_all(&envs).unwrap();
    std::fs::write(envs.join("_base.yaml"), "replicas: 1\n").unwrap();
    std::fs::write(envs.join("dev.yaml"), "environment: development\n").unwrap();
    common::commit_all(&repo);
    let main = git_out(&repo, &["rev-parse", "HEAD"]);

    let (code, out, err) = lw(
        &svc,
        &[
            "deploy",
            "dev",
            "--release",
            "HEAD",
            "--branch",
            "environments",
            "--author",
            "Ana <ana@example.com>",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("committed"), "{out}");
    // main and the files on disk are untouched; the branch has the change.
    assert_eq!(git_out(&repo, &["rev-parse", "HEAD"]), main);
    assert_eq!(git_out(&repo, &["status", "--porcelain"]), "");
    assert_eq!(
        std::fs::read_to_string(envs.join("dev.yaml")).unwrap(),
        "environment: development\n"
    );
    assert_eq!(
        git_out(
            &repo,
            &[
                "show",
                "environments:services/churn/configs/environments/dev.yaml"
            ]
        ),
        format!("environment: development\nrelease: {main}")
    );
    assert_eq!(
        git_out(&repo, &["log", "-1", "--format=%an|%s|%P", "environments"]),
        format!("Ana|deploy dev: release {}|{main}", &main[..12])
    );
    assert_eq!(
        git_out(&repo, &["show", "--name-only", "--format=", "environments"]),
        "services/churn/configs/environments/dev.yaml"
    );
    // An invalid change is refused there too, and the branch does not move.
    let tip = git_out(&repo, &["rev-parse", "environments"]);
    let (code, _, err) = lw(
        &svc,
        &[
            "deploy",
            "dev",
            "--set",
            "replicas=-1",
            "--branch",
            "environments",
        ],
    );
    assert_eq!(code, 1);
    assert!(err.contains("nothing was committed"), "{err}");
    assert_eq!(git_out(&repo, &["rev-parse", "environments"]), tip);
    // A rollback on the branch restores the file as it was before.
    let (code, _, err) = lw(&svc, &["rollback", "dev", "--branch", "environments"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        git_out(
            &repo,
            &[
                "show",
                "environments:services/churn/configs/environments/dev.yaml"
            ]
        ),
        "environment: development"
    );
    assert_eq!(git_out(&repo, &["rev-parse", "HEAD"]), main);
}

#[test]
fn a_model_stage_is_pinned_to_its_version_when_the_change_is_committed() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let repo = tmp.path().join("repo");
    let envs = repo.join("configs/environments");
    std::fs::create_dir_all(&envs).unwrap();
    std::fs::write(
        envs.join("prod.yaml"),
        "environment: production\nmodel_name: Churn\nmodel_stage: Production\n",
    )
    .unwrap();
    std::fs::write(
        envs.join("dev.yaml"),
        "model_name: Churn\nmodel_stage: Staging\n",
    )
    .unwrap();
    common::commit_all(&repo);
    let with_home = |args: &[&str]| {
        let out = bin()
            .args(args)
            .arg("-C")
            .arg(&repo)
            .env("LAUNCHWAY_HOME", &home)
            .env("GIT_AUTHOR_NAME", "Ana")
            .env("GIT_AUTHOR_EMAIL", "ana@example.com")
            .env("GIT_COMMITTER_NAME", "Ana")
            .env("GIT_COMMITTER_EMAIL", "ana@example.com")
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let model = |args: &[&str]| {
        let out = bin()
            .arg("model")
            .args(args)
            .env("LAUNCHWAY_HOME", &home)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };

    // No such model: nothing is committed, and the error says how to fix it.
    let head = git_out(&repo, &["rev-parse", "HEAD"]);
    let (code, _, err) = with_home(&["deploy", "prod", "--release", "HEAD"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("cannot pin Churn@Production") && err.contains("launchway model register"),
        "{err}"
    );
    assert_eq!(git_out(&repo, &["rev-parse", "HEAD"]), head);

    let weights = tmp.path().join("weights.json");
    std::fs::write(&weights, "{\"w\": [1, 2]}").unwrap();
    assert_eq!(
        model(&["register", "Churn", weights.to_str().unwrap()]),
        "Churn version 1\n"
    );
    std::fs::write(&weights, "{\"w\": [3, 4]}").unwrap();
    assert_eq!(
        model(&[
            "register",
            "Churn",
            weights.to_str().unwrap(),
            "--alias",
            "Production"
        ]),
        "Churn version 2\n"
    );
    let (code, _, err) = with_home(&["deploy", "prod", "--release", "HEAD"]);
    assert_eq!(code, 0, "{err}");
    let prod = std::fs::read_to_string(envs.join("prod.yaml")).unwrap();
    assert!(prod.contains("model_version: 2\n"), "{prod}");
    assert!(
        git_out(&repo, &["log", "-1", "--format=%s"]).ends_with(", model Churn@Production = 2")
    );
    // Moving the alias changes nothing that runs: git still says 2 …
    model(&["alias", "Churn", "Production", "1"]);
    assert!(
        std::fs::read_to_string(envs.join("prod.yaml"))
            .unwrap()
            .contains("model_version: 2\n")
    );
    // … and a change of something else never moves the model silently …
    let (code, _, err) = with_home(&["deploy", "prod", "--set", "log_level=DEBUG"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        std::fs::read_to_string(envs.join("prod.yaml"))
            .unwrap()
            .contains("model_version: 2\n")
    );
    // … until a reviewed commit names the stage again and pins the new version.
    let (code, _, err) = with_home(&["deploy", "prod", "--set", "model_stage=Production"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        std::fs::read_to_string(envs.join("prod.yaml"))
            .unwrap()
            .contains("model_version: 1\n")
    );
    // A version the registry lacks is refused, not committed.
    let (code, _, err) = with_home(&["deploy", "prod", "--set", "model_version=999"]);
    assert_eq!(code, 1);
    assert!(err.contains("Churn has no version 999"), "{err}");
    // A typo'd key is refused with the key it meant.
    let (code, _, err) = with_home(&["deploy", "prod", "--set", "replcas=2"]);
    assert_eq!(code, 1);
    assert!(err.contains("did you mean 'replicas'"), "{err}");
    let listing = model(&["list", "Churn"]);
    assert!(listing.contains("aliases: Production=1"), "{listing}");
    // Promote takes the release, and the target resolves its own stage:
    // dev's Staging model (2) is not copied into prod (Production = 1).
    model(&["alias", "Churn", "Staging", "2"]);
    let (code, _, err) = with_home(&["deploy", "dev", "--release", "HEAD"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        std::fs::read_to_string(envs.join("dev.yaml"))
            .unwrap()
            .contains("model_version: 2\n")
    );
    model(&["alias", "Churn", "Production", "1"]);
    let (code, _, err) = with_home(&["promote", "dev", "prod"]);
    assert_eq!(code, 0, "{err}");
    let prod = std::fs::read_to_string(envs.join("prod.yaml")).unwrap();
    assert!(prod.contains("model_version: 1\n"), "{prod}");
}

/// The local CLI applies `protection:`: a protected environment is not
/// changed by deploy, rollback or promote without `--approve ENV`.
#[test]
fn a_protected_environment_needs_an_explicit_approval_locally() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    std::fs::create_dir_all(repo.join("configs/environments")).unwrap();
    std::fs::write(repo.join("configs/environments/dev.yaml"), "replicas: 1\n").unwrap();
    std::fs::write(
        repo.join("configs/environments/prod.yaml"),
        "replicas: 1\nprotection:\n  required_reviewers: [release-managers]\n",
    )
    .unwrap();
    common::commit_all(&repo);
    let head = || {
        let out = std::process::Command::new("git")
            .args(["-C", repo.to_str().unwrap(), "rev-parse", "HEAD"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let before = head();
    for args in [
        &["deploy", "prod", "--set", "replicas=2"][..],
        &["promote", "dev", "prod"],
        &["rollback", "prod"],
    ] {
        let (code, _, err) = lw(&repo, args);
        assert_eq!(code, 1, "{args:?}");
        assert!(
            err.contains("--approve prod") && err.contains("release-managers"),
            "{err}"
        );
    }
    assert_eq!(head(), before, "nothing was committed");
    let (code, _, err) = lw(
        &repo,
        &["deploy", "prod", "--set", "replicas=2", "--approve", "prod"],
    );
    assert_eq!(code, 0, "{err}");
    assert_ne!(head(), before);
    // An unprotected one needs nothing.
    let (code, _, err) = lw(&repo, &["deploy", "dev", "--set", "replicas=2"]);
    assert_eq!(code, 0, "{err}");
}
