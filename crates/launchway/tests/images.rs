//! Container images end to end (issue 14), against a real registry —
//! Debian's `docker-registry` (CNCF distribution) with htpasswd auth, on
//! loopback, started here — and podman as the builder:
//! - `sbom`/`scan registry:REF` with credentials from an auth file, and
//!   through a mirror from `.launchway/registries.yaml`;
//! - the course's build-and-push job, unchanged: login, build with
//!   `Dockerfile.api` (its `FROM python:3.11-slim` pulled through a mirror),
//!   push of `:latest` and `:<sha>` to `ghcr.io` (a local registry), then
//!   the trivy action scanning the pushed image as a gate.
//!
//! `.ci/run` installs them and sets `LAUNCHWAY_TEST_REGISTRY=1`, which
//! makes a missing tool a failure; elsewhere these tests say why they skip.

#![allow(clippy::unwrap_used)]

mod common;
use common::{bin, commit_all};
use launchway_oci::layout::{self, Compression, Entry, LayerSpec};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

const USER: &str = "ci";
const PASSWORD: &str = "s3cret-registry-pw";

fn tools() -> bool {
    let required = std::env::var("LAUNCHWAY_TEST_REGISTRY").is_ok_and(|v| v == "1");
    let have = |t: &str| {
        Command::new("sh")
            .args(["-c", &format!("command -v {t}")])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let missing: Vec<&str> = ["docker-registry", "htpasswd", "podman"]
        .into_iter()
        .filter(|t| !have(t))
        .collect();
    if !missing.is_empty() {
        assert!(
            !required,
            "LAUNCHWAY_TEST_REGISTRY=1 but {missing:?} are missing"
        );
        eprintln!("{missing:?} not installed: registry tests skipped");
        return false;
    }
    true
}

/// A registry on loopback, killed (by pid) when dropped.
struct Registry {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn registry(auth: bool) -> Registry {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut config = format!(
        "version: 0.1\nlog: {{level: error}}\nstorage:\n  filesystem: {{rootdirectory: {}}}\nhttp: {{addr: 127.0.0.1:{port}}}\n",
        dir.path().join("data").display()
    );
    if auth {
        let out = Command::new("htpasswd")
            .args(["-Bbn", USER, PASSWORD])
            .output()
            .unwrap();
        assert!(out.status.success());
        std::fs::write(dir.path().join("htpasswd"), out.stdout).unwrap();
        config.push_str(&format!(
            "auth:\n  htpasswd: {{realm: launchway-test, path: {}}}\n",
            dir.path().join("htpasswd").display()
        ));
    }
    std::fs::write(dir.path().join("config.yml"), config).unwrap();
    let mut child = Command::new("docker-registry")
        .arg("serve")
        .arg(dir.path().join("config.yml"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Registry {
                child,
                port,
                _dir: dir,
            };
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("docker-registry did not start on port {port}");
}

fn dpkg_status() -> &'static str {
    "Package: libssl3\nStatus: install ok installed\nArchitecture: amd64\nSource: openssl\nVersion: 3.0.11-1~deb12u2\n"
}

/// A small "python:3.11-slim": busybox for `RUN`, Debian 12's os-release,
/// a dpkg database with an old openssl, a Python distribution.
fn base_layers() -> Vec<LayerSpec> {
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
        .expect("busybox (Debian package busybox-static)");
    let mut entries = vec![
        Entry::program("bin/busybox", std::fs::read(busybox).unwrap()),
        Entry::file("etc/os-release", "ID=debian\nVERSION_ID=\"12\"\n"),
        Entry::file("var/lib/dpkg/status", dpkg_status()),
        Entry::file(
            "usr/local/lib/python3.11/site-packages/requests-2.19.0.dist-info/METADATA",
            "Metadata-Version: 2.1\nName: requests\nVersion: 2.19.0\n",
        ),
    ];
    for tool in ["sh", "mkdir", "echo", "cat", "ls"] {
        entries.push(Entry::Symlink {
            path: format!("bin/{tool}"),
            target: "busybox".into(),
        });
    }
    vec![LayerSpec {
        compression: Compression::Gzip,
        entries,
    }]
}

/// Pushes an OCI layout with podman (through its local storage); returns
/// the pushed digest.
fn push_layout(layout: &Path, dest: &str, creds: bool) -> String {
    let digest = layout.with_extension("digest");
    let archive = layout.with_extension("tar");
    layout::tar_dir(layout, &archive).unwrap();
    let loaded = Command::new("podman")
        .args(["load", "-q", "-i"])
        .arg(&archive)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&loaded.stdout);
    assert!(
        loaded.status.success(),
        "podman load: {}",
        String::from_utf8_lossy(&loaded.stderr)
    );
    let id = text
        .rsplit(": ")
        .next()
        .unwrap_or_default()
        .trim()
        .to_string();
    let mut cmd = Command::new("podman");
    cmd.args(["push", "-q", "--tls-verify=false", "--digestfile"])
        .arg(&digest);
    if creds {
        cmd.arg("--creds").arg(format!("{USER}:{PASSWORD}"));
    }
    let out = cmd
        .arg(&id)
        .arg(format!("docker://{dest}"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "podman push: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(digest).unwrap().trim().to_string()
}

fn auth_file(dir: &Path, host: &str) -> PathBuf {
    let p = dir.join("auth.json");
    let creds = launchway_oci::auth::Credentials {
        username: USER.into(),
        password: PASSWORD.into(),
    };
    std::fs::write(
        &p,
        launchway_oci::auth::auth_file_text(&[(host.to_string(), creds)]),
    )
    .unwrap();
    p
}

fn import_advisories(home: &Path) {
    let advisories = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../launchway-scan/tests/fixtures/images/advisories.json");
    let out = bin()
        .env("LAUNCHWAY_HOME", home)
        .args(["db", "import"])
        .arg(advisories)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn registry_images_are_read_with_credentials_and_through_mirrors() {
    if !tools() {
        return;
    }
    let reg = registry(true);
    let host = format!("127.0.0.1:{}", reg.port);
    let tmp = tempfile::tempdir().unwrap();
    let layout_dir = tmp.path().join("layout");
    layout::write_oci_dir(
        &layout_dir,
        &base_layers(),
        &launchway_oci::Platform::host(),
        None,
    )
    .unwrap();
    let digest = push_layout(&layout_dir, &format!("{host}/org/app:1"), true);
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let nowhere = tmp.path().join("no-auth.json");

    // No credentials: the registry's refusal, said plainly.
    let out = bin()
        .env("HOME", &home)
        .env("REGISTRY_AUTH_FILE", &nowhere)
        .args(["sbom", &format!("registry:{host}/org/app:1")])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("no credentials"), "{err}");

    // With an auth file (what `docker login` / `podman login` write).
    let auth = auth_file(tmp.path(), &host);
    let out = bin()
        .env("HOME", &home)
        .env("REGISTRY_AUTH_FILE", &auth)
        .args([
            "sbom",
            "-f",
            "spdx-json",
            &format!("registry:{host}/org/app:1"),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert!(
        names.contains(&"libssl3") && names.contains(&"requests"),
        "{names:?}"
    );
    assert_eq!(doc["packages"][0]["versionInfo"], digest.as_str());

    // Wrong password: refused as such.
    let bad = tmp.path().join("bad.json");
    let creds = launchway_oci::auth::Credentials {
        username: USER.into(),
        password: "wrong".into(),
    };
    std::fs::write(
        &bad,
        launchway_oci::auth::auth_file_text(&[(host.clone(), creds)]),
    )
    .unwrap();
    let out = bin()
        .env("HOME", &home)
        .env("REGISTRY_AUTH_FILE", &bad)
        .args(["sbom", &format!("registry:{host}/org/app:1")])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("refused"), "{err}");

    // ghcr.io mapped to the local registry: the scan reads it there.
    let project = tmp.path().join("project");
    std::fs::create_dir_all(project.join(".launchway")).unwrap();
    std::fs::write(
        project.join(".launchway/registries.yaml"),
        format!("registries:\n  ghcr.io:\n    mirror: http://{host}\n"),
    )
    .unwrap();
    import_advisories(&home);
    let out = bin()
        .current_dir(&project)
        .env("HOME", &home)
        .env("LAUNCHWAY_HOME", &home)
        .env("REGISTRY_AUTH_FILE", &auth)
        .args(["scan", "--format", "json", "--exit-code", "3"])
        .arg("registry:ghcr.io/org/app:1")
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!("{}", String::from_utf8_lossy(&out.stderr));
    });
    assert_eq!(out.status.code(), Some(3), "{report}");
    assert_eq!(report["image"]["manifest_digest"], digest.as_str());
    let ids: Vec<&str> = report["vulnerabilities"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["id"].as_str())
        .collect();
    assert!(ids.contains(&"CVE-2026-9001"), "{report}");
}

#[test]
fn the_course_build_and_push_job_runs_unchanged() {
    if !tools() {
        return;
    }
    // Docker Hub's stand-in (anonymous pulls) and ghcr.io's (htpasswd).
    let hub = registry(false);
    let ghcr = registry(true);
    let tmp = tempfile::tempdir().unwrap();
    let layout_dir = tmp.path().join("base");
    layout::write_oci_dir(
        &layout_dir,
        &base_layers(),
        &launchway_oci::Platform::host(),
        None,
    )
    .unwrap();
    push_layout(
        &layout_dir,
        &format!("127.0.0.1:{}/library/python:3.11-slim", hub.port),
        false,
    );
    // Nothing of a previous run in the local storage stands in for the pull.
    let _ = Command::new("podman")
        .args(["rmi", "-f", "docker.io/library/python:3.11-slim"])
        .output();

    let repo = tmp.path().join("course");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/course");
    let out = Command::new("cp")
        .arg("-r")
        .arg(&fixture)
        .arg(&repo)
        .output()
        .unwrap();
    assert!(out.status.success());
    std::fs::create_dir_all(repo.join(".launchway")).unwrap();
    std::fs::write(
        repo.join(".launchway/registries.yaml"),
        format!(
            "registries:\n  docker.io:\n    mirror: http://127.0.0.1:{}\n  ghcr.io:\n    mirror: http://127.0.0.1:{}\n",
            hub.port, ghcr.port
        ),
    )
    .unwrap();
    commit_all(&repo);
    // `github.actor` is the repository's git user, the login's username.
    common::git(&repo, &["config", "user.name", USER]);
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    import_advisories(&home);
    let out = bin()
        .current_dir(&repo)
        .env("LAUNCHWAY_HOME", &home)
        .env("USER", USER)
        .env("REGISTRY_AUTH_FILE", tmp.path().join("none.json"))
        .args(["run", "--json", "--secret"])
        .arg(format!("GITHUB_TOKEN={PASSWORD}"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let runs: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{stderr}"));
    let run = &runs[0];
    let job = |name: &str| {
        run["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["name"] == name || j["id"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no job {name}: {run}"))
    };
    let run_dir = home.join("runs").join(run["id"].to_string());
    let logs = |j: &Value| {
        j["steps"]
            .as_array()
            .map(|steps| {
                steps
                    .iter()
                    .map(|s| common::step_log(&run_dir, s))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_default()
    };
    let build = job("build-and-push");
    assert_eq!(build["result"], "success", "{}\n{stderr}", logs(&build));
    // Both tags are in the registry ghcr.io was mapped to.
    let sha = run["sha"].as_str().unwrap_or_default().to_string();
    let repo_name = run["repository"].as_str().unwrap_or_default().to_string();
    let creds = launchway_oci::auth::Credentials {
        username: USER.into(),
        password: PASSWORD.into(),
    };
    let listed = ureq::get(format!(
        "http://127.0.0.1:{}/v2/{repo_name}/tags/list",
        ghcr.port
    ))
    .header("Authorization", creds.basic())
    .call()
    .ok()
    .and_then(|mut r| r.body_mut().read_to_string().ok())
    .unwrap_or_default();
    let tags: Value = serde_json::from_str(&listed).unwrap_or_default();
    let tags: Vec<&str> = tags["tags"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert!(
        tags.contains(&"latest") && tags.contains(&sha.as_str()),
        "{tags:?} (want latest and {sha}); {listed}"
    );
    assert!(logs(&build).contains("pushed sha256:"), "{}", logs(&build));
    // The gate: the pushed image has a CRITICAL vulnerability.
    let scan = job("scan-image");
    let scan_log = logs(&scan);
    assert_eq!(scan["result"], "failure", "{scan_log}");
    assert!(scan_log.contains("CVE-2026-9001"), "{scan_log}");
    // The registry password is in no log, report or file of the run.
    let grep = Command::new("grep")
        .args(["-rl", PASSWORD])
        .arg(&run_dir)
        .arg(&home)
        .output()
        .unwrap();
    assert!(
        grep.stdout.is_empty(),
        "the password leaked into {}",
        String::from_utf8_lossy(&grep.stdout)
    );
}
