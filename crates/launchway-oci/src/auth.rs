//! Registry credentials: the auth files podman, buildah, skopeo and docker
//! read (`$REGISTRY_AUTH_FILE`, `$XDG_RUNTIME_DIR/containers/auth.json`,
//! `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`), in their
//! shared format: `{"auths": {"host": {"auth": base64("user:password")}}}`.

use base64::Engine;
use std::path::{Path, PathBuf};

#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    /// Never prints the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// `Basic base64(user:password)`.
    pub fn basic(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

/// Whether a program is on `PATH`.
pub fn on_path(tool: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::env::var_os("PATH").is_some_and(|p| {
        std::env::split_paths(&p).any(|d| {
            std::fs::metadata(d.join(tool))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

/// The auth files to read, most specific first.
pub fn auth_files() -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(p) = std::env::var_os("REGISTRY_AUTH_FILE") {
        out.push(PathBuf::from(p));
    }
    if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR") {
        out.push(Path::new(&d).join("containers/auth.json"));
    }
    match std::env::var_os("DOCKER_CONFIG") {
        Some(d) => out.push(Path::new(&d).join("config.json")),
        None => {
            if let Some(h) = std::env::var_os("HOME") {
                out.push(Path::new(&h).join(".docker/config.json"));
            }
        }
    }
    out
}

/// The host names an auth file may use for a registry.
fn keys_for(registry: &str) -> Vec<String> {
    let mut keys = vec![
        registry.to_string(),
        format!("https://{registry}"),
        format!("http://{registry}"),
    ];
    if registry == crate::reference::DOCKER_HUB {
        keys.push("https://index.docker.io/v1/".into());
        keys.push("index.docker.io".into());
        keys.push("registry-1.docker.io".into());
    }
    keys
}

/// Credentials for `registry` in the auth file's text.
pub fn lookup_in(text: &str, registry: &str) -> Option<Credentials> {
    let doc: serde_json::Value = serde_json::from_str(text).ok()?;
    let auths = doc.get("auths")?.as_object()?;
    for key in keys_for(registry) {
        let Some(entry) = auths.get(&key).or_else(|| {
            auths
                .iter()
                .find(|(k, _)| k.trim_end_matches('/') == key)
                .map(|(_, v)| v)
        }) else {
            continue;
        };
        let raw = entry.get("auth")?.as_str()?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(raw.trim())
            .ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let (username, password) = text.split_once(':')?;
        return Some(Credentials {
            username: username.to_string(),
            password: password.to_string(),
        });
    }
    None
}

/// Credentials for `registry` from the first auth file that has some.
pub fn lookup(registry: &str, files: &[PathBuf]) -> Option<Credentials> {
    files.iter().find_map(|f| {
        let text = std::fs::read_to_string(f).ok()?;
        lookup_in(&text, registry)
    })
}

/// The auth file text holding `creds` for `registry` (what `docker login`
/// writes), for a builder to read.
pub fn auth_file_text(entries: &[(String, Credentials)]) -> String {
    let auths: serde_json::Map<String, serde_json::Value> = entries
        .iter()
        .map(|(host, c)| {
            let raw = format!("{}:{}", c.username, c.password);
            (
                host.clone(),
                serde_json::json!({"auth": base64::engine::general_purpose::STANDARD.encode(raw)}),
            )
        })
        .collect();
    serde_json::json!({ "auths": auths }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_files_round_trip() {
        let c = Credentials {
            username: "ci".into(),
            password: "p:ss".into(),
        };
        let text = auth_file_text(&[("127.0.0.1:5000".into(), c.clone())]);
        assert_eq!(lookup_in(&text, "127.0.0.1:5000"), Some(c.clone()));
        assert_eq!(lookup_in(&text, "ghcr.io"), None);
        let hub = r#"{"auths":{"https://index.docker.io/v1/":{"auth":"dTpw"}}}"#;
        assert_eq!(
            lookup_in(hub, "docker.io").map(|c| c.username),
            Some("u".to_string())
        );
        assert!(!format!("{c:?}").contains("p:ss"));
    }
}
