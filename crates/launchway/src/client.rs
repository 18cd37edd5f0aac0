//! Talking to a Launchway server: `--server URL` / `LAUNCHWAY_SERVER` and
//! `--token` / `LAUNCHWAY_TOKEN`, JSON requests, and Server-Sent Events for
//! following logs.

use serde_json::Value;
use std::io::{BufRead, BufReader};

#[derive(clap::Args, Clone, Debug, Default)]
pub struct ServerOpts {
    /// The Launchway server, e.g. http://127.0.0.1:8080 (also LAUNCHWAY_SERVER).
    #[arg(long, global = true, env = "LAUNCHWAY_SERVER")]
    pub server: Option<String>,
    /// An API token (also LAUNCHWAY_TOKEN).
    #[arg(long, global = true, env = "LAUNCHWAY_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Trust this certificate (PEM) for an https:// server: a private CA,
    /// or a server's self-signed certificate (also LAUNCHWAY_CA_FILE).
    #[arg(long, global = true, env = "LAUNCHWAY_CA_FILE", value_name = "PEM")]
    pub ca_file: Option<std::path::PathBuf>,
}

/// An HTTP agent that trusts `ca_file`'s certificates (instead of the
/// built-in roots) when given.
pub fn http_agent(
    ca_file: Option<&std::path::Path>,
    timeout: Option<std::time::Duration>,
) -> Result<ureq::Agent, String> {
    let mut b = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(timeout);
    if let Some(f) = ca_file {
        let pem = std::fs::read(f).map_err(|e| format!("--ca-file {}: {e}", f.display()))?;
        let certs: Vec<ureq::tls::Certificate<'static>> = ureq::tls::parse_pem(&pem)
            .filter_map(|i| match i {
                Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                _ => None,
            })
            .collect();
        if certs.is_empty() {
            return Err(format!(
                "--ca-file {}: no certificate in it (expected PEM)",
                f.display()
            ));
        }
        b = b.tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::new_with_certs(&certs))
                .build(),
        );
    }
    Ok(b.build().into())
}

pub struct Client {
    base: String,
    token: String,
    agent: ureq::Agent,
}

impl Client {
    /// The server's address (no trailing slash).
    pub fn base(&self) -> &str {
        self.base.trim_end_matches('/')
    }
}

impl ServerOpts {
    /// A client when a server is named; `Ok(None)` otherwise.
    pub fn client(&self) -> Result<Option<Client>, String> {
        let Some(base) = self.server.as_deref().filter(|s| !s.is_empty()) else {
            return Ok(None);
        };
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(format!(
                "--server {base}: expected an http:// or https:// URL"
            ));
        }
        let token = self
            .token
            .clone()
            .filter(|t| !t.is_empty())
            .ok_or("a server needs an API token: --token or LAUNCHWAY_TOKEN")?;
        let agent = http_agent(self.ca_file.as_deref(), None)?;
        Ok(Some(Client {
            base: base.trim_end_matches('/').to_string(),
            token,
            agent,
        }))
    }

    /// As [`ServerOpts::client`], for commands that only work with a server.
    pub fn require(&self, what: &str) -> Result<Client, String> {
        self.client()?
            .ok_or_else(|| format!("{what} needs a server: --server URL or LAUNCHWAY_SERVER"))
    }
}

/// `{"error": …}` from the server, or the status line.
fn failure(status: u16, body: &str) -> String {
    let msg = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_string))
        .unwrap_or_else(|| body.trim().to_string());
    format!("the server answered {status}: {msg}")
}

impl Client {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn finish(
        &self,
        res: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<String, String> {
        let mut res = res.map_err(|e| format!("{}: {e}", self.base))?;
        let status = res.status().as_u16();
        let body = res
            .body_mut()
            .read_to_string()
            .map_err(|e| format!("{}: {e}", self.base))?;
        if !(200..300).contains(&status) {
            return Err(failure(status, &body));
        }
        Ok(body)
    }

    pub fn get_text(&self, path: &str) -> Result<String, String> {
        let res = self
            .agent
            .get(self.url(path))
            .header("Authorization", format!("Bearer {}", self.token))
            .call();
        self.finish(res)
    }

    pub fn get_bytes(&self, path: &str) -> Result<Vec<u8>, String> {
        let res = self
            .agent
            .get(self.url(path))
            .header("Authorization", format!("Bearer {}", self.token))
            .call();
        let mut res = res.map_err(|e| format!("{}: {e}", self.base))?;
        let status = res.status().as_u16();
        let body = res
            .body_mut()
            .with_config()
            .limit(u64::MAX)
            .read_to_vec()
            .map_err(|e| format!("{}: {e}", self.base))?;
        if !(200..300).contains(&status) {
            return Err(failure(status, &String::from_utf8_lossy(&body)));
        }
        Ok(body)
    }

    pub fn get(&self, path: &str) -> Result<Value, String> {
        let text = self.get_text(path)?;
        serde_json::from_str(&text).map_err(|e| format!("the server's answer is not JSON: {e}"))
    }

    pub fn post(&self, path: &str, body: &Value) -> Result<Value, String> {
        let res = self
            .agent
            .post(self.url(path))
            .header("Authorization", format!("Bearer {}", self.token))
            .header("Content-Type", "application/json")
            .send(body.to_string());
        let text = self.finish(res)?;
        serde_json::from_str(&text).map_err(|e| format!("the server's answer is not JSON: {e}"))
    }

    /// `PUT` with a JSON body; the answer's body is ignored.
    pub fn put(&self, path: &str, body: &Value) -> Result<(), String> {
        let res = self
            .agent
            .put(self.url(path))
            .header("Authorization", format!("Bearer {}", self.token))
            .header("Content-Type", "application/json")
            .send(body.to_string());
        self.finish(res).map(|_| ())
    }

    /// `PATCH` with a JSON body; the answer as JSON.
    pub fn patch(&self, path: &str, body: &Value) -> Result<Value, String> {
        let res = self
            .agent
            .patch(self.url(path))
            .header("Authorization", format!("Bearer {}", self.token))
            .header("Content-Type", "application/json")
            .send(body.to_string());
        let text = self.finish(res)?;
        serde_json::from_str(&text).map_err(|e| format!("the server's answer is not JSON: {e}"))
    }

    pub fn delete(&self, path: &str) -> Result<(), String> {
        let res = self
            .agent
            .delete(self.url(path))
            .header("Authorization", format!("Bearer {}", self.token))
            .call();
        self.finish(res).map(|_| ())
    }

    /// Reads a Server-Sent Events stream, calling `on` with each event's
    /// name and data until the stream ends or `on` returns `false`.
    pub fn events(&self, path: &str, mut on: impl FnMut(&str, &str) -> bool) -> Result<(), String> {
        let res = self
            .agent
            .get(self.url(path))
            .header("Authorization", format!("Bearer {}", self.token))
            .header("Accept", "text/event-stream")
            .call()
            .map_err(|e| format!("{}: {e}", self.base))?;
        let status = res.status().as_u16();
        let mut body = res.into_body();
        if !(200..300).contains(&status) {
            let text = body.read_to_string().unwrap_or_default();
            return Err(failure(status, &text));
        }
        let reader = BufReader::new(body.into_reader());
        let (mut event, mut data) = (String::new(), String::new());
        for line in reader.lines() {
            let line = line.map_err(|e| format!("{}: {e}", self.base))?;
            if line.is_empty() {
                if !data.is_empty() || !event.is_empty() {
                    let name = if event.is_empty() { "message" } else { &event };
                    if !on(name, &data) {
                        return Ok(());
                    }
                }
                event.clear();
                data.clear();
            } else if let Some(v) = line.strip_prefix("event:") {
                event = v.trim_start().to_string();
            } else if let Some(v) = line.strip_prefix("data:") {
                if !data.is_empty() {
                    data.push('\n');
                }
                data.push_str(v.strip_prefix(' ').unwrap_or(v));
            }
            // Comments (keep-alives) and other fields are ignored.
        }
        Ok(())
    }
}

/// Percent-encodes a query value.
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Prints a JSON answer for `--json`.
pub(crate) fn print_json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

pub(crate) fn done(r: Result<(), String>) -> u8 {
    match r {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}
