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
use common::free_port;
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
    // The build's images go to a storage of their own: the base image it
    // pulls is no one else's `python:3.11-slim`.
    let storage = tmp.path().join("storage.conf");
    std::fs::write(
        &storage,
        format!(
            "[storage]\ndriver = \"vfs\"\ngraphroot = \"{}\"\nrunroot = \"{}\"\n",
            tmp.path().join("graph").display(),
            tmp.path().join("run").display()
        ),
    )
    .unwrap();
    let out = bin()
        .current_dir(&repo)
        .env("LAUNCHWAY_HOME", &home)
        .env("CONTAINERS_STORAGE_CONF", &storage)
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
    // The step's `digest` output is the manifest the registry now serves
    // for the tag (pushed by Launchway's own client).
    let served = ureq::head(format!(
        "http://127.0.0.1:{}/v2/{repo_name}/manifests/{sha}",
        ghcr.port
    ))
    .header("Authorization", creds.basic())
    .header("Accept", "application/vnd.oci.image.manifest.v1+json")
    .call()
    .ok()
    .and_then(|r| {
        r.headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    })
    .unwrap_or_default();
    assert!(served.starts_with("sha256:"), "{served:?}");
    assert!(
        logs(&build).contains(&format!("pushed {served} ")),
        "{served}: {}",
        logs(&build)
    );
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

/// A busybox web image in the local storage serving `body` at `/` and
/// `/health`; its name.
fn web_image(dir: &Path, tag: &str, body: &str) -> String {
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
        .unwrap();
    let mut entries = vec![
        Entry::program("bin/busybox", std::fs::read(busybox).unwrap()),
        Entry::file("www/index.html", body),
        Entry::file("www/health", "ok"),
    ];
    entries.push(Entry::Symlink {
        path: "bin/sh".into(),
        target: "busybox".into(),
    });
    let layout_dir = dir.join(format!("web-{tag}"));
    layout::write_oci_dir(
        &layout_dir,
        &[LayerSpec {
            compression: Compression::Gzip,
            entries,
        }],
        &launchway_oci::Platform::host(),
        None,
    )
    .unwrap();
    let archive = layout_dir.with_extension("tar");
    layout::tar_dir(&layout_dir, &archive).unwrap();
    let out = Command::new("podman")
        .args(["load", "-q", "-i"])
        .arg(&archive)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = String::from_utf8_lossy(&out.stdout)
        .rsplit(": ")
        .next()
        .unwrap_or_default()
        .trim()
        .to_string();
    let name = format!("localhost/launchway-test/web:{tag}");
    let tagged = Command::new("podman")
        .args(["tag", &id, &name])
        .output()
        .unwrap();
    assert!(tagged.status.success());
    name
}

/// Issue 14: an environment file says `image:`; the deploy commit pins it
/// to a digest; the local runtime runs replicas as containers behind the
/// stable address and switches to a new image without a failed request.
#[test]
fn an_environment_runs_an_image_pinned_to_its_digest() {
    if !tools() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let v1 = web_image(tmp.path(), "1", "v1");
    let v2 = web_image(tmp.path(), "2", "v2");
    let repo = tmp.path().join("repo");
    std::fs::create_dir_all(repo.join("configs/environments")).unwrap();
    std::fs::write(
        repo.join("configs/environments/imgweb.yaml"),
        format!("environment: development\nreplicas: 2\nimage: {v1}\nrun: {{command: exec /bin/busybox httpd -f -p 8080 -h /www, port: 8080, health_path: /health}}\n"),
    )
    .unwrap();
    commit_all(&repo);
    let home = tmp.path().join("home");
    // The deploy commit pins the tag to what it names now.
    let (ok, _, err) = common::lw(
        &home,
        &repo,
        &[
            "deploy",
            "imgweb",
            "--release",
            "HEAD",
            "--set",
            &format!("image={v1}"),
        ],
    );
    assert!(ok, "{err}");
    let file = std::fs::read_to_string(repo.join("configs/environments/imgweb.yaml")).unwrap();
    assert!(file.contains(&format!("{v1}@sha256:")), "{file}");

    let (ok, _, err) = common::lw(
        &home,
        &repo,
        &["sync", "--detach", "--health-timeout", "60"],
    );
    assert!(ok, "{err}");
    let _stop = common::Stop(&home, &repo);
    let st = common::wait_status(&home, &repo, "imgweb", "healthy on v1", |s| {
        s["health"] == "Healthy" && s["sync"] == "Synced"
    });
    let addr = st["address"]
        .as_str()
        .unwrap()
        .trim_start_matches("http://")
        .to_string();
    assert_eq!(common::get(&addr, "/").unwrap(), "v1");

    // Under steady requests, the next image: not one fails.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let failed = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let last = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let load = {
        let (stop, failed, last, addr) = (stop.clone(), failed.clone(), last.clone(), addr.clone());
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                match common::get(&addr, "/") {
                    Ok(b) => *last.lock().unwrap() = b,
                    Err(e) => {
                        eprintln!("request failed: {e}");
                        failed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        })
    };
    let (ok, _, err) = common::lw(
        &home,
        &repo,
        &["deploy", "imgweb", "--set", &format!("image={v2}")],
    );
    assert!(ok, "{err}");
    common::wait_status(&home, &repo, "imgweb", "serving v2", |_| {
        last.lock().unwrap().as_str() == "v2"
    });
    let st = common::wait_status(&home, &repo, "imgweb", "healthy on v2", |s| {
        s["health"] == "Healthy" && s["sync"] == "Synced"
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    load.join().unwrap();
    assert_eq!(failed.load(std::sync::atomic::Ordering::SeqCst), 0, "{st}");
    assert_eq!(common::get(&addr, "/").unwrap(), "v2");

    // A container that dies is replaced (drift healed): its replica's
    // process is started again, on the same port.
    let pids = |s: &Value| -> Vec<u64> {
        let mut p: Vec<u64> = s["replicas"]
            .as_array()
            .map(|rs| rs.iter().filter_map(|r| r["pid"].as_u64()).collect())
            .unwrap_or_default();
        p.sort_unstable();
        p
    };
    let ps = Command::new("podman")
        .args(["ps", "--format", "{{.Names}}"])
        .output()
        .unwrap();
    let running: Vec<String> = String::from_utf8_lossy(&ps.stdout)
        .lines()
        .filter(|n| n.starts_with("launchway-imgweb-"))
        .map(str::to_string)
        .collect();
    assert_eq!(running.len(), 2, "{running:?}");
    let before = pids(&common::status(&home, &repo, "imgweb"));
    let killed = Command::new("podman")
        .args(["kill", &running[0]])
        .output()
        .unwrap();
    assert!(killed.status.success());
    common::wait_status(&home, &repo, "imgweb", "a replacement", |s| {
        let now = pids(s);
        now.len() == 2 && now != before && s["health"] == "Healthy"
    });
    assert_eq!(common::get(&addr, "/").unwrap(), "v2");

    // A reconciler killed and started again adopts the containers it left.
    let serving = common::status(&home, &repo, "imgweb");
    let reconciler = std::fs::read_dir(home.join("environments"))
        .unwrap()
        .flatten()
        .find_map(|e| std::fs::read_to_string(e.path().join("reconciler.pid")).ok())
        .and_then(|t| t.lines().next().map(str::to_string))
        .unwrap();
    assert!(
        Command::new("kill")
            .args(["-9", &reconciler])
            .status()
            .unwrap()
            .success()
    );
    let (ok, _, err) = common::lw(
        &home,
        &repo,
        &["sync", "--detach", "--health-timeout", "60"],
    );
    assert!(ok, "{err}");
    let again = common::wait_status(&home, &repo, "imgweb", "adopted", |s| {
        s["health"] == "Healthy" && s["sync"] == "Synced" && !pids(s).is_empty()
    });
    assert_eq!(pids(&again), pids(&serving), "{again}");
    assert_eq!(common::get(&addr, "/").unwrap(), "v2");
    drop(_stop);
    // Stopped: no container of the environment is left.
    let ps = Command::new("podman")
        .args(["ps", "-a", "--format", "{{.Names}}"])
        .output()
        .unwrap();
    let left: Vec<String> = String::from_utf8_lossy(&ps.stdout)
        .lines()
        .filter(|n| n.starts_with("launchway-imgweb-"))
        .map(str::to_string)
        .collect();
    assert!(left.is_empty(), "containers left: {left:?}");
}
