//! `.launchway/registries.yaml`: where pushes and pulls of a registry
//! really go, so a workflow that pushes to `ghcr.io` runs unchanged on an
//! offline machine with a local registry:
//!
//! ```yaml
//! registries:
//!   ghcr.io:
//!     mirror: http://127.0.0.1:5000   # pushes and pulls of ghcr.io/<path> go here
//! ```
//!
//! A mirror is a URL: `https://host[:port]`, or `http://` (only for a
//! loopback host unless `insecure: true` says so).

use crate::OciError;
use std::collections::BTreeMap;
use std::path::Path;

/// The file, relative to a repository's root.
pub const FILE: &str = ".launchway/registries.yaml";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirror {
    /// `host[:port]`.
    pub host: String,
    /// Plain HTTP.
    pub plain_http: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Registries {
    /// Mirrors by the registry they stand for.
    pub mirrors: BTreeMap<String, Mirror>,
    /// Credentials by registry host (from a login step), checked before
    /// the auth files.
    pub credentials: BTreeMap<String, crate::auth::Credentials>,
    /// Auth files to read (default: [`crate::auth::auth_files`]).
    pub auth_files: Option<Vec<std::path::PathBuf>>,
}

fn is_loopback(host: &str) -> bool {
    let h = host
        .rsplit_once(':')
        .filter(|(h, p)| !h.ends_with(':') && p.bytes().all(|b| b.is_ascii_digit()))
        .map_or(host, |(h, _)| h);
    let h = h.trim_start_matches('[').trim_end_matches(']');
    h == "localhost"
        || h.parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl Registries {
    /// Reads `.launchway/registries.yaml` under `root`; none is no mirror.
    pub fn load(root: &Path) -> Result<Registries, OciError> {
        let path = root.join(FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => Registries::parse(&path.display().to_string(), &text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Registries::default()),
            Err(e) => Err(OciError::io(path.display(), e)),
        }
    }

    pub fn parse(file: &str, text: &str) -> Result<Registries, OciError> {
        let at = |pos: launchway_yaml::Pos, msg: String| OciError::Format {
            what: format!("{file}:{}:{}", pos.line, pos.col),
            reason: msg,
        };
        let doc = launchway_yaml::parse(text).map_err(|e| at(e.pos, e.message))?;
        let mut out = Registries::default();
        if matches!(doc.kind, launchway_yaml::NodeKind::Null) {
            return Ok(out);
        }
        let Some(top) = doc.as_map() else {
            return Err(at(
                doc.span.start,
                "expected a mapping with 'registries:'".into(),
            ));
        };
        for (k, v) in top {
            match k.as_str() {
                Some("registries") => {}
                _ => {
                    return Err(at(
                        k.span.start,
                        format!(
                            "unknown key '{}' (expected 'registries')",
                            k.scalar_string().unwrap_or_default()
                        ),
                    ));
                }
            }
            let Some(entries) = v.as_map() else {
                return Err(at(
                    v.span.start,
                    "expected a mapping of registry hosts".into(),
                ));
            };
            for (host, settings) in entries {
                let Some(host_name) = host.as_str() else {
                    return Err(at(host.span.start, "a registry host is a string".into()));
                };
                let Some(fields) = settings.as_map() else {
                    return Err(at(settings.span.start, "expected 'mirror: URL'".into()));
                };
                let mut url = None;
                let mut insecure = false;
                for (fk, fv) in fields {
                    match fk.as_str() {
                        Some("mirror") => url = fv.as_str().map(|s| (s.to_string(), fv.span.start)),
                        Some("insecure") => {
                            insecure = fv.kind == launchway_yaml::NodeKind::Bool(true);
                        }
                        _ => {
                            return Err(at(
                                fk.span.start,
                                format!(
                                    "unknown key '{}' (expected 'mirror' or 'insecure')",
                                    fk.scalar_string().unwrap_or_default()
                                ),
                            ));
                        }
                    }
                }
                let Some((url, pos)) = url else {
                    return Err(at(
                        settings.span.start,
                        format!("{host_name}: 'mirror: URL' is required"),
                    ));
                };
                let (plain_http, rest) = if let Some(r) = url.strip_prefix("http://") {
                    (true, r)
                } else if let Some(r) = url.strip_prefix("https://") {
                    (false, r)
                } else {
                    return Err(at(
                        pos,
                        format!("mirror '{url}' must start with http:// or https://"),
                    ));
                };
                let mirror_host = rest.trim_end_matches('/').to_string();
                if mirror_host.is_empty() || mirror_host.contains('/') {
                    return Err(at(
                        pos,
                        format!("mirror '{url}' is a host[:port], without a path"),
                    ));
                }
                if plain_http && !insecure && !is_loopback(&mirror_host) {
                    return Err(at(
                        pos,
                        format!(
                            "mirror '{url}' is plain HTTP to a host that is not loopback; use https:// or say 'insecure: true'"
                        ),
                    ));
                }
                out.mirrors.insert(
                    host_name.to_string(),
                    Mirror {
                        host: mirror_host,
                        plain_http,
                    },
                );
            }
        }
        Ok(out)
    }

    /// A `registries.conf` (containers-registries.conf(5)) that sends pulls
    /// of each mapped registry to its mirror, for podman and buildah.
    pub fn registries_conf(&self) -> String {
        let mut text = String::from("unqualified-search-registries = [\"docker.io\"]\n");
        for (from, m) in &self.mirrors {
            text.push_str(&format!(
                "\n[[registry]]\nprefix = \"{from}\"\nlocation = \"{}\"\ninsecure = {}\n",
                m.host, m.plain_http
            ));
        }
        text
    }

    /// Where a registry's traffic goes: its mirror, or itself.
    pub fn route(&self, registry: &str) -> Mirror {
        self.mirrors
            .get(registry)
            .cloned()
            .unwrap_or_else(|| Mirror {
                host: if registry == crate::reference::DOCKER_HUB {
                    "registry-1.docker.io".into()
                } else {
                    registry.to_string()
                },
                plain_http: is_loopback(registry),
            })
    }

    /// Credentials for a registry host (as reached: the mirror's host).
    pub fn credentials(&self, host: &str) -> Option<crate::auth::Credentials> {
        if let Some(c) = self.credentials.get(host) {
            return Some(c.clone());
        }
        let files = self
            .auth_files
            .clone()
            .unwrap_or_else(crate::auth::auth_files);
        crate::auth::lookup(host, &files)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirrors() {
        let r = Registries::parse(
            "r.yaml",
            "registries:\n  ghcr.io:\n    mirror: http://127.0.0.1:5000\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            r.route("ghcr.io"),
            Mirror {
                host: "127.0.0.1:5000".into(),
                plain_http: true
            }
        );
        assert_eq!(r.route("quay.io").host, "quay.io");
        assert!(!r.route("quay.io").plain_http);
        assert!(r.route("localhost:5000").plain_http);
        assert_eq!(r.route("docker.io").host, "registry-1.docker.io");
    }

    #[test]
    fn bad_files_say_where() {
        for (text, want) in [
            (
                "registries:\n  ghcr.io:\n    mirror: ftp://x\n",
                "r.yaml:3:13",
            ),
            (
                "registries:\n  ghcr.io:\n    mirror: http://10.0.0.1:5000\n",
                "not loopback",
            ),
            (
                "registries:\n  ghcr.io:\n    mirrors: http://x\n",
                "unknown key 'mirrors'",
            ),
            ("registry: {}\n", "unknown key 'registry'"),
            (
                "registries:\n  ghcr.io:\n    mirror: https://h/path\n",
                "without a path",
            ),
        ] {
            let e = Registries::parse("r.yaml", text)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(e.contains(want), "{text:?}: {e}");
        }
        assert!(
            Registries::parse(
                "r.yaml",
                "registries:\n  ghcr.io:\n    mirror: http://10.0.0.1:5000\n    insecure: true\n"
            )
            .is_ok()
        );
    }
}
