//! `launchway serve` as a process: first-start admin token, authenticated
//! requests over a real socket, and data that survives SIGKILL.

#![allow(clippy::unwrap_used)]

mod common;
use common::bin;
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A server process, SIGKILLed and reaped when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the server; returns it, its base URL and the first-start token if
/// one was printed.
fn start(data: &std::path::Path) -> (Server, String, Option<String>) {
    let mut server = Server(
        bin()
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data)
            .env_remove("LAUNCHWAY_DATABASE")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stderr = server.0.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
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
        if let Some(addr) = line.strip_prefix("launchway server listening on ") {
            return (server, addr.to_string(), token);
        }
    }
}

fn get(url: &str, token: Option<&str>) -> (u16, String) {
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

#[test]
fn first_start_token_auth_and_restart_after_sigkill() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("server");
    let (server, base, token) = start(&data);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&data).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700, "a new data dir is private");
    let mode = std::fs::metadata(data.join("server.db"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the database is the owner's only");
    let token = token.expect("the first start prints the admin token");
    assert_eq!(get(&format!("{base}/healthz"), None), (200, "ok".into()));
    assert_eq!(get(&format!("{base}/api/me"), None).0, 401);
    let (status, body) = get(&format!("{base}/api/me"), Some(&token));
    assert_eq!(
        (status, body.as_str()),
        (200, r#"{"name":"admin","role":"admin"}"#)
    );

    drop(server); // SIGKILL
    let (_server, base, again) = start(&data);
    assert_eq!(again, None, "the token is shown only at the first start");
    assert_eq!(get(&format!("{base}/api/me"), Some(&token)).0, 200);
    let (status, body) = get(&format!("{base}/api/audit"), Some(&token));
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["verify"]["ok"], true, "{body}");
}

fn admin(data: &std::path::Path, args: &[&str]) -> (bool, String, String) {
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

#[test]
fn admin_commands_manage_users_and_tokens_for_a_running_server() {
    let data = tempfile::tempdir().unwrap();
    let (_server, base, _) = start(data.path());
    let d = data.path();
    let (ok, out, _) = admin(d, &["user", "add", "ana", "--role", "deployer"]);
    assert!(ok && out.contains("added user 'ana' (deployer)"), "{out}");
    let (ok, _, err) = admin(d, &["user", "add", "ana"]);
    assert!(!ok && err.contains("user 'ana' already exists"), "{err}");
    let (ok, _, err) = admin(d, &["user", "add", "bo", "--role", "root"]);
    assert!(!ok && err.contains("unknown role 'root'"), "{err}");
    let (ok, token, err) = admin(d, &["token", "create", "ana"]);
    assert!(ok, "{err}");
    let token = token.trim().to_string();
    let id = err.split_whitespace().nth(1).unwrap().to_string();
    let (status, body) = get(&format!("{base}/api/me"), Some(&token));
    assert_eq!(
        (status, body.as_str()),
        (200, r#"{"name":"ana","role":"deployer"}"#)
    );
    assert_eq!(get(&format!("{base}/api/users"), Some(&token)).0, 403);
    let (ok, _, err) = admin(d, &["token", "revoke", &id]);
    assert!(ok, "{err}");
    assert_eq!(get(&format!("{base}/api/me"), Some(&token)).0, 401);
    let (ok, list, _) = admin(d, &["user", "list"]);
    assert!(
        ok && list.contains("admin") && list.contains("ana"),
        "{list}"
    );
}
