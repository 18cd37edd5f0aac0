//! `launchway sbom`, `launchway db` and `launchway scan` from the command
//! line, with snapshots of every report format.

#![allow(clippy::unwrap_used)]

mod common;
use common::{bin, commit_all};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn scan_fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../launchway-scan/tests/fixtures")
}

/// A data dir with the hand-written advisories imported.
fn home_with_db() -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    let out = bin()
        .args(["db", "import"])
        .arg(scan_fixtures().join("osv/json"))
        .arg(scan_fixtures().join("osv/yaml"))
        .env("LAUNCHWAY_HOME", home.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("5 added"), "{err}");
    assert!(
        err.contains("broken.json") && err.contains("(skipped)"),
        "{err}"
    );
    home
}

fn scan(home: &Path, args: &[&str]) -> (i32, String, String) {
    let out = bin()
        .arg("scan")
        .args(args)
        .env("LAUNCHWAY_HOME", home)
        .env_remove("GITLEAKS_CONFIG")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn db_status_reports_ecosystems() {
    let home = home_with_db();
    let out = bin()
        .args(["db", "status", "--json"])
        .env("LAUNCHWAY_HOME", home.path())
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ecosystems"]["crates.io"]["advisories"], 3);
    assert_eq!(v["ecosystems"]["crates.io"]["withdrawn"], 1);
    assert_eq!(v["ecosystems"]["PyPI"]["advisories"], 1);
}

#[test]
fn vulnerability_reports_in_every_format() {
    let home = home_with_db();
    let project = scan_fixtures().join("vulnproject");
    let p = project.to_str().unwrap();
    let (code, table, _) = scan(home.path(), &[p, "--scanners", "vuln"]);
    assert_eq!(code, 0);
    insta::assert_snapshot!("vuln_table", table);
    let (_, json, _) = scan(home.path(), &[p, "--scanners", "vuln", "--format", "json"]);
    let mut v: Value = serde_json::from_str(&json).unwrap();
    v["target"] = "<project>".into();
    insta::assert_json_snapshot!("vuln_json", v);
    let (_, sarif, _) = scan(home.path(), &[p, "--scanners", "vuln", "--format", "sarif"]);
    insta::assert_snapshot!("vuln_sarif", sarif);
    // Gates: --severity and --exit-code.
    let (code, _, err) = scan(
        home.path(),
        &[
            p,
            "--scanners",
            "vuln",
            "--severity",
            "CRITICAL",
            "--exit-code",
            "4",
        ],
    );
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("1 vulnerability"), "{err}");
    let (code, _, _) = scan(
        home.path(),
        &[
            p,
            "--scanners",
            "vuln",
            "--severity",
            "LOW",
            "--exit-code",
            "4",
        ],
    );
    assert_eq!(code, 0);
    let (code, _, err) = scan(
        home.path(),
        &[
            p,
            "--scanners",
            "vuln",
            "--ignorefile",
            &format!("{p}/trivyignore.txt"),
            "--ignore-unfixed",
        ],
    );
    assert_eq!(code, 0);
    assert!(err.contains("2 vulnerabilities (1 ignored)"), "{err}");
}

#[test]
fn sbom_files_lists_installed_files_and_reports_changed_ones() {
    let venv = scan_fixtures().join("sbom/venv");
    let out = bin()
        .args(["sbom", "--files", "-f", "spdx-json"])
        .arg(&venv)
        .env("SOURCE_DATE_EPOCH", "0")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("requests/api.py: content differs from the RECORD of requests 2.31.0"),
        "{err}"
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = doc["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["fileName"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"./bin/requests-fixture"), "{names:?}");
    let contains = doc["relationships"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["relationshipType"] == "CONTAINS")
        .count();
    assert_eq!(contains, names.len());
    // Without the flag: no files, no notice.
    let out = bin().arg("sbom").arg(&venv).output().unwrap();
    assert!(!String::from_utf8_lossy(&out.stderr).contains("RECORD"));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(doc["components"][0].get("components").is_none());
}

#[test]
fn scanning_an_sbom_finds_the_same() {
    let home = home_with_db();
    let tmp = tempfile::tempdir().unwrap();
    let bom = tmp.path().join("bom.cdx.json");
    let st = bin()
        .arg("sbom")
        .arg(scan_fixtures().join("vulnproject"))
        .arg("-o")
        .arg(&bom)
        .env("SOURCE_DATE_EPOCH", "0")
        .output()
        .unwrap();
    assert!(st.status.success());
    let (_, json, err) = scan(
        home.path(),
        &[
            bom.to_str().unwrap(),
            "--scanners",
            "vuln",
            "--format",
            "json",
        ],
    );
    let v: Value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json} {err}"));
    let ids: Vec<&str> = v["vulnerabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "CVE-2025-0001",
            "GHSA-lw00-0004-dddd",
            "GHSA-lw00-0003-cccc"
        ]
    );
}

/// A shell script with a (format-valid, random) GitHub token in it.
fn plant_token(repo: &Path) {
    std::fs::write(
        repo.join("deploy.sh"),
        "export GITHUB_TOKEN=ghp_4fR9kL2mN7pQ1sT6vW8xY3zA5bC0dE2gH4jK\n",
    )
    .unwrap();
}

#[test]
fn secret_reports_and_history() {
    let home = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    plant_token(&repo);
    commit_all(&repo);
    let r = repo.to_str().unwrap();
    let (code, table, _) = scan(
        home.path(),
        &[r, "--scanners", "secret", "--exit-code", "1"],
    );
    assert_eq!(code, 1);
    insta::assert_snapshot!("secret_table", table);
    assert!(!table.contains("ghp_4fR9"), "redacted by default");
    let (_, sarif, _) = scan(
        home.path(),
        &[r, "--scanners", "secret", "--format", "sarif"],
    );
    insta::assert_snapshot!("secret_sarif", sarif);
    let (_, json, _) = scan(
        home.path(),
        &[r, "--scanners", "secret", "--format", "json", "--no-redact"],
    );
    assert!(json.contains("ghp_4fR9"));
    // A baseline of the current findings silences them.
    let baseline = tmp.path().join("baseline.json");
    let v: Value = serde_json::from_str(&json).unwrap();
    std::fs::write(&baseline, v["secrets"].to_string()).unwrap();
    let (code, _, _) = scan(
        home.path(),
        &[
            r,
            "--scanners",
            "secret",
            "--exit-code",
            "1",
            "--baseline",
            baseline.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0);
    // History: removed from the tree, still found in the commit that added it.
    std::fs::write(repo.join("deploy.sh"), "export GITHUB_TOKEN=$TOKEN\n").unwrap();
    commit_all(&repo);
    let (code, _, _) = scan(
        home.path(),
        &[r, "--scanners", "secret", "--exit-code", "1"],
    );
    assert_eq!(code, 0);
    let (code, json, _) = scan(
        home.path(),
        &[
            r,
            "--scanners",
            "secret",
            "--git",
            "--format",
            "json",
            "--exit-code",
            "1",
        ],
    );
    assert_eq!(code, 1);
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["secrets"][0]["message"], "fixture");
    assert_eq!(v["secrets"][0]["author"], "Mona");
}

#[test]
fn bad_input_is_reported_not_fatal() {
    let home = tempfile::tempdir().unwrap();
    let (code, _, err) = scan(home.path(), &["/nonexistent/path"]);
    assert_eq!(code, 2);
    assert!(err.contains("does not exist"));
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join(".gitleaks.toml"),
        "[[rules]]\nid = \"x\"\nregex = '''(broken'''\n",
    )
    .unwrap();
    let (code, _, err) = scan(
        home.path(),
        &[tmp.path().to_str().unwrap(), "--scanners", "secret"],
    );
    assert_eq!(code, 2);
    assert!(
        err.contains(".gitleaks.toml") && err.contains("invalid regex"),
        "{err}"
    );
    let (code, _, err) = scan(
        home.path(),
        &[tmp.path().to_str().unwrap(), "--scanners", "nope"],
    );
    assert_eq!(code, 2);
    assert!(err.contains("unknown scanner"));
}

#[test]
fn db_update_fetches_exports_from_a_mirror() {
    use std::io::Write;
    // A mirror laid out like osv.dev's exports: <Ecosystem>/all.zip.
    let mirror = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(mirror.path().join("crates.io")).unwrap();
    let mut z = zip::ZipWriter::new(
        std::fs::File::create(mirror.path().join("crates.io/all.zip")).unwrap(),
    );
    for f in ["LW-2025-0001.json", "LW-2025-0002.json"] {
        z.start_file(f, zip::write::SimpleFileOptions::default())
            .unwrap();
        z.write_all(&std::fs::read(scan_fixtures().join("osv/json").join(f)).unwrap())
            .unwrap();
    }
    z.finish().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = std::process::Command::new("python3")
        .args([
            "-m",
            "http.server",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
        ])
        .current_dir(mirror.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let home = tempfile::tempdir().unwrap();
    let out = bin()
        .args([
            "db",
            "update",
            "--mirror",
            &format!("http://127.0.0.1:{port}"),
            "--ecosystem",
            "crates.io",
            "--ecosystem",
            "PyPI",
        ])
        .env("LAUNCHWAY_HOME", home.path())
        .output()
        .unwrap();
    let _ = server.kill();
    let _ = server.wait();
    let err = String::from_utf8_lossy(&out.stderr);
    // crates.io imports; PyPI is missing on this mirror, which is reported and fails the update.
    assert!(err.contains("2 added"), "{err}");
    assert!(err.contains("PyPI/all.zip") && err.contains("404"), "{err}");
    assert_eq!(out.status.code(), Some(1));
    let status = bin()
        .args(["db", "status", "--json"])
        .env("LAUNCHWAY_HOME", home.path())
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(v["ecosystems"]["crates.io"]["advisories"], 2);
}

/// Microsoft's SARIF Multitool and the SARIF 2.1.0 schema it ships, fetched
/// once per target dir (pinned and integrity-checked).
fn sarif_validator() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("sarif-validator");
    let ready = dir.join(".ready");
    if !ready.exists() {
        let out = std::process::Command::new("python3")
            .arg(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("tests/fixtures/sarif/fetch_validator.py"),
            )
            .arg(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "fetching the SARIF validator failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::write(&ready, "").unwrap();
    }
    dir
}

/// Problems the official validators report for `file`: schema violations
/// (jsonschema against the OASIS schema) and Multitool findings.
fn sarif_problems(validator: &Path, file: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let out = std::process::Command::new(validator.join("venv/bin/python"))
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sarif/validate_schema.py"))
        .arg(validator.join("sarif-2.1.0.json"))
        .arg(file)
        .output()
        .unwrap();
    if !out.status.success() {
        problems.push(format!(
            "schema: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let log = file.with_extension("validation.sarif");
    let out = std::process::Command::new(validator.join("Sarif.Multitool"))
        .arg("validate")
        .arg(file)
        .arg("--output")
        .arg(&log)
        .args(["--log", "ForceOverwrite"])
        .env("DOTNET_SYSTEM_GLOBALIZATION_INVARIANT", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "Sarif.Multitool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&log).unwrap()).unwrap();
    for result in v["runs"][0]["results"].as_array().unwrap() {
        problems.push(format!("multitool: {result}"));
    }
    problems
}

#[test]
fn sarif_reports_pass_the_official_validators() {
    let validator = sarif_validator();
    let tmp = tempfile::tempdir().unwrap();
    // A broken document is caught by both checks: the validators are live.
    let broken = tmp.path().join("broken.sarif");
    std::fs::write(
        &broken,
        r#"{"version":"2.1.0","runs":[{"tool":{},"results":[{"level":"fatal","ruleId":"a"}]}]}"#,
    )
    .unwrap();
    let problems = sarif_problems(&validator, &broken);
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("schema:") && p.contains("fatal"))
            && problems.iter().any(|p| p.starts_with("multitool:")),
        "{problems:#?}"
    );

    let home = home_with_db();
    let repo = tmp.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    for entry in std::fs::read_dir(scan_fixtures().join("vulnproject")).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), repo.join(entry.file_name())).unwrap();
        }
    }
    plant_token(&repo);
    commit_all(&repo);
    let r = repo.to_str().unwrap();
    for scanners in ["vuln", "secret", "vuln,secret"] {
        let (_, sarif, err) = scan(
            home.path(),
            &[r, "--scanners", scanners, "--format", "sarif"],
        );
        let v: Value = serde_json::from_str(&sarif).unwrap_or_else(|e| panic!("{e}: {err}"));
        assert!(
            !v["runs"][0]["results"].as_array().unwrap().is_empty(),
            "{scanners}: the report has findings to validate"
        );
        let file = tmp
            .path()
            .join(format!("{}.sarif", scanners.replace(',', "-")));
        std::fs::write(&file, &sarif).unwrap();
        let problems = sarif_problems(&validator, &file);
        assert!(problems.is_empty(), "{scanners}: {problems:#?}");
    }
    // `launchway lint --format sarif` (for code scanning of workflows) too.
    let lint = bin()
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lint"))
        .args(["lint", "--format", "sarif", "broken.yml"])
        .output()
        .unwrap();
    let file = tmp.path().join("lint.sarif");
    std::fs::write(&file, &lint.stdout).unwrap();
    let problems = sarif_problems(&validator, &file);
    assert!(problems.is_empty(), "lint: {problems:#?}");
}

/// Launchway's own tree, with its own `.gitleaks.toml`, has no leaked
/// secrets: the fixtures' planted credentials are allowlisted, nothing else.
#[test]
fn this_repository_scans_clean() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = bin()
        .arg("scan")
        .arg(&root)
        .args(["--scanners", "secret", "--exit-code", "3"])
        .env_remove("GITLEAKS_CONFIG")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Fail closed (issue 17): a lockfile that cannot be read was "skipped"
/// and the gate passed with its packages unchecked. Now it is an error
/// that fails `--exit-code`, unless `--skip-unreadable` says to go on.
#[test]
fn an_unreadable_lockfile_fails_the_gate_unless_skipped() {
    let home = home_with_db();
    let tree = tempfile::tempdir().unwrap();
    std::fs::write(
        tree.path().join("poetry.lock"),
        "[[package]]\nname = \"x\"\nversion = ",
    )
    .unwrap();
    let target = tree.path().to_str().unwrap();
    let (code, _, err) = scan(
        home.path(),
        &["--scanners", "vuln", "--exit-code", "1", target],
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("poetry.lock")
            && err.contains("not checked")
            && err.contains("--skip-unreadable"),
        "{err}"
    );
    let (code, _, err) = scan(
        home.path(),
        &[
            "--scanners",
            "vuln",
            "--exit-code",
            "1",
            "--skip-unreadable",
            target,
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("warning:") && err.contains("poetry.lock"),
        "{err}"
    );
}

/// A fresh machine with no database gates from its first scan: the
/// built-in snapshot (PyPA, RustSec) stands in, with its date in the
/// report and a warning that it is old. An unscored finding left out by
/// `--severity` is said so, and an NVD feed gives it its score.
#[test]
fn a_fresh_machine_gates_with_the_built_in_snapshot() {
    let home = tempfile::tempdir().unwrap();
    let tree = tempfile::tempdir().unwrap();
    std::fs::write(
        tree.path().join("requirements.txt"),
        "gitpython==3.1.30\npyyaml==5.3\n",
    )
    .unwrap();
    let target = tree.path().to_str().unwrap();
    let gate = [
        "--scanners",
        "vuln",
        "--severity",
        "HIGH,CRITICAL",
        "--exit-code",
        "1",
        target,
    ];
    let (code, out, err) = scan(home.path(), &gate);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("CVE-2023-40590") && out.contains("HIGH"),
        "{out}"
    );
    assert!(
        out.contains("Advisories: PyPI from the built-in snapshot of 2024-10-10"),
        "{out}"
    );
    assert!(err.contains("days old"), "{err}");
    // PyYAML 5.3's PyPA record has no score: found, but not gated.
    assert!(!out.contains("CVE-2020-14343"), "{out}");
    let unscored = |out: &str| -> usize {
        out.lines()
            .find_map(|l| l.strip_prefix("Not gated: "))
            .and_then(|l| l.split(' ').next()?.parse().ok())
            .unwrap_or(0)
    };
    let before = unscored(&out);
    assert!(before >= 1, "{out}");
    // NVD's feed (2.0 format) scores it: now it is CRITICAL and gated.
    let feed = tree.path().join("nvdcve-2.0-2020.json");
    std::fs::write(
        &feed,
        serde_json::json!({"format": "NVD_CVE", "version": "2.0", "vulnerabilities": [{"cve": {
            "id": "CVE-2020-14343", "lastModified": "2024-11-21T05:03:02.000",
            "metrics": {"cvssMetricV31": [{"source": "nvd@nist.gov", "type": "Primary",
                "cvssData": {"vectorString": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "baseScore": 9.8}}]}
        }}]})
        .to_string(),
    )
    .unwrap();
    let out = bin()
        .args(["db", "import"])
        .arg(&feed)
        .env("LAUNCHWAY_HOME", home.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    std::fs::remove_file(&feed).unwrap();
    let (code, out, err) = scan(home.path(), &gate);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.lines()
            .any(|l| l.contains("CVE-2020-14343") && l.contains("CRITICAL")),
        "{out}"
    );
    assert_eq!(unscored(&out), before - 1, "{out}");
}

/// Fail closed (issue 17): packages of an ecosystem with no advisories at
/// all are not "no findings" — the scan is an error, unless `--skip-db`,
/// and then the report lists them as not checked.
#[test]
fn an_ecosystem_without_advisories_is_an_error_unless_skipped() {
    let home = tempfile::tempdir().unwrap();
    let tree = tempfile::tempdir().unwrap();
    std::fs::write(
        tree.path().join("package-lock.json"),
        r#"{"name": "app", "lockfileVersion": 3, "packages": {"": {"name": "app"}, "node_modules/lodash": {"version": "4.17.20"}}}"#,
    )
    .unwrap();
    let target = tree.path().to_str().unwrap();
    let (code, out, err) = scan(home.path(), &["--scanners", "vuln", target]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("no advisories for npm") && err.contains("--skip-db"),
        "{err}"
    );
    let (code, out, err) = scan(
        home.path(),
        &[
            "--scanners",
            "vuln",
            "--skip-db",
            "--format",
            "json",
            target,
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert!(
        report["not_checked"][0]
            .as_str()
            .unwrap()
            .contains("1 npm package(s): no advisories (--skip-db)"),
        "{report}"
    );
    let (code, _, err) = scan(home.path(), &["--scanners", "secret", "--skip-db", target]);
    assert_eq!(code, 2, "{err}");
}

/// Issue 17.10: RustSec's informational advisories (unmaintained,
/// unsound) are notices, as cargo-audit shows them — not vulnerabilities
/// that fail a gate. A real vulnerability next to one still does.
#[test]
fn rustsec_notices_are_not_vulnerabilities() {
    let home = tempfile::tempdir().unwrap();
    let tree = tempfile::tempdir().unwrap();
    let lock = "version = 3\n\n[[package]]\nname = \"ansi_term\"\nversion = \"0.12.1\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\n";
    std::fs::write(tree.path().join("Cargo.lock"), lock).unwrap();
    let target = tree.path().to_str().unwrap();
    let (code, out, err) = scan(
        home.path(),
        &["--scanners", "vuln", "--exit-code", "1", target],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("Notice: ansi_term 0.12.1 is unmaintained (RUSTSEC-2021-0139)"),
        "{out}"
    );
    assert!(out.contains("No findings."), "{out}");
    let with_time = format!(
        "{lock}\n[[package]]\nname = \"time\"\nversion = \"0.1.45\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\n"
    );
    std::fs::write(tree.path().join("Cargo.lock"), with_time).unwrap();
    let (code, out, err) = scan(
        home.path(),
        &["--scanners", "vuln", "--exit-code", "1", target],
    );
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("RUSTSEC-2020-0071") || out.contains("CVE-2020-26235"),
        "{out}"
    );
    assert!(
        !out.lines().any(|l| l.contains("ansi_term")
            && l.contains("RUSTSEC-2021-0139")
            && !l.starts_with("Notice")),
        "{out}"
    );
}
