//! A `launchway serve` process for tests.

use super::bin;
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A server process, SIGKILLed and reaped when dropped.
pub struct Server(pub Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the server; returns it, its base URL and the first-start token if
/// one was printed.
pub fn start(data: &std::path::Path) -> (Server, String, Option<String>) {
    start_with(data, &[])
}

/// As [`start`], with more `serve` arguments.
pub fn start_with(data: &std::path::Path, extra: &[&str]) -> (Server, String, Option<String>) {
    start_with_env(data, extra, &[])
}

/// A new, empty PostgreSQL database on the server `admin_url` names; its URL.
pub fn fresh_postgres(admin_url: &str) -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let name = format!(
        "lw_t_{}_{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    );
    // A database an earlier test process with the same pid left goes first.
    let _ = std::process::Command::new("psql")
        .arg(admin_url)
        .args([
            "-q",
            "-c",
            &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        ])
        .output();
    let out = std::process::Command::new("psql")
        .arg(admin_url)
        .args(["-q", "-c", &format!("CREATE DATABASE {name}")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (prefix, _) = admin_url.rsplit_once('/').unwrap();
    format!("{prefix}/{name}")
}

/// As [`start_with`], with variables in the server's environment.
pub fn start_with_env(
    data: &std::path::Path,
    extra: &[&str],
    env: &[(&str, &str)],
) -> (Server, String, Option<String>) {
    // The local agent works beside the data dir; when the tests run as
    // root it runs as another user, who must be able to pass through.
    let parent = data.parent().unwrap();
    assert!(
        parent != std::env::temp_dir(),
        "give the server a data dir inside a temp dir of its own: its local agent works beside it"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(parent).unwrap().permissions().mode();
    std::fs::set_permissions(parent, std::fs::Permissions::from_mode(mode | 0o755)).unwrap();
    let local_agent = !extra.windows(2).any(|w| w == ["--local-agent-jobs", "0"]);
    let mut cmd = bin();
    cmd.arg("serve");
    if !extra.contains(&"--listen") {
        cmd.args(["--listen", "127.0.0.1:0"]);
    }
    cmd.arg("--data-dir").arg(data);
    if local_agent {
        cmd.arg("--agent-work-dir").arg(parent.join(format!(
            "{}.agent",
            data.file_name().unwrap().to_string_lossy()
        )));
    }
    let mut server = Server(
        cmd.args(extra)
            .env_remove("LAUNCHWAY_DATABASE")
            .envs(env.iter().copied())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stderr = server.0.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            // Shown with a failing test's output.
            eprintln!("[serve] {line}");
            let _ = tx.send(line);
        }
    });
    let mut token = None;
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("server did not start");
        if let Some(t) = line.trim().strip_prefix("lwt_") {
            token = Some(format!("lwt_{t}"));
        }
        if line.contains("its API token is in") {
            let t = std::fs::read_to_string(data.join("admin-token")).unwrap();
            token = Some(t.trim().to_string());
        }
        if let Some(addr) = line.strip_prefix("launchway server listening on ") {
            return (server, addr.to_string(), token);
        }
    }
}

pub fn get(url: &str, token: Option<&str>) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut req = agent.get(url);
    if let Some(t) = token {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    let mut res = req.call().unwrap();
    let status = res.status().as_u16();
    (status, res.body_mut().read_to_string().unwrap())
}

pub fn admin(data: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = bin()
        .arg("admin")
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env_remove("LAUNCHWAY_DATABASE")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs the CLI against `base` with `token` (and `stdin` piped in):
/// whether it succeeded, and its stdout and stderr together.
pub fn cli(base: &str, token: &str, args: &[&str], stdin: Option<&str>) -> (bool, String) {
    use std::io::Write;
    let mut child = bin()
        .args(args)
        .env("LAUNCHWAY_SERVER", base)
        .env("LAUNCHWAY_TOKEN", token)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(s) = stdin {
        child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}
