//! Image references as Docker and OCI tools write them:
//! `[registry[:port]/]repository[:tag][@sha256:digest]`. A first part with
//! a `.` or `:` or that is `localhost` names a registry; otherwise the
//! image is on Docker Hub (`docker.io`, and `library/` for a single name).

use crate::OciError;

/// Where Docker Hub's registry API actually answers.
pub const DOCKER_HUB: &str = "docker.io";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// Host and optional port, e.g. `ghcr.io`, `127.0.0.1:5000`.
    pub registry: String,
    /// e.g. `library/python`, `org/app`.
    pub repository: String,
    pub tag: Option<String>,
    /// `sha256:…`.
    pub digest: Option<String>,
}

fn valid_digest(d: &str) -> bool {
    d.strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

impl Reference {
    pub fn parse(input: &str) -> Result<Reference, OciError> {
        let bad = |why: &str| OciError::Reference {
            input: input.to_string(),
            reason: why.to_string(),
        };
        let s = input.trim();
        if s.is_empty() {
            return Err(bad("empty"));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => {
                if !valid_digest(d) {
                    return Err(bad("a digest is sha256: and 64 hex digits"));
                }
                (r, Some(d.to_string()))
            }
            None => (s, None),
        };
        // A tag is after the last ':' that follows the last '/'.
        let slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[slash..].rfind(':') {
            Some(i) => (&rest[..slash + i], Some(rest[slash + i + 1..].to_string())),
            None => (rest, None),
        };
        if let Some(t) = &tag {
            let ok = !t.is_empty()
                && t.len() <= 128
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
                && !t.starts_with(['.', '-']);
            if !ok {
                return Err(bad("a tag is up to 128 letters, digits, '_', '.', '-'"));
            }
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, path))
                if first.contains(['.', ':']) || first == "localhost" || first.starts_with('[') =>
            {
                (first.to_string(), path.to_string())
            }
            _ => (DOCKER_HUB.to_string(), name.to_string()),
        };
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        let component_ok = |c: &str| {
            !c.is_empty()
                && c.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
                })
                && c.as_bytes()[0].is_ascii_alphanumeric()
        };
        if !repository.split('/').all(component_ok) {
            return Err(bad(
                "a repository is lowercase letters, digits and '.', '_', '-', separated by '/'",
            ));
        }
        Ok(Reference {
            registry,
            repository,
            tag: if tag.is_none() && digest.is_none() {
                Some("latest".into())
            } else {
                tag
            },
            digest,
        })
    }

    /// What to ask the registry for: the digest if pinned, else the tag.
    pub fn target(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }

    /// `registry/repository`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.name())?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> Reference {
        Reference::parse(s).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn references() {
        let p = r("python:3.11-slim");
        assert_eq!(
            (p.registry.as_str(), p.repository.as_str(), p.tag.as_deref()),
            ("docker.io", "library/python", Some("3.11-slim"))
        );
        let g = r("ghcr.io/org/app");
        assert_eq!(g.tag.as_deref(), Some("latest"));
        assert_eq!(g.to_string(), "ghcr.io/org/app:latest");
        let l = r("127.0.0.1:5000/app:v1");
        assert_eq!(
            (l.registry.as_str(), l.repository.as_str()),
            ("127.0.0.1:5000", "app")
        );
        let d = format!("sha256:{}", "a".repeat(64));
        let pinned = r(&format!("localhost/app@{d}"));
        assert_eq!(
            (pinned.tag, pinned.digest.as_deref()),
            (None, Some(d.as_str()))
        );
        assert_eq!(r("org/app:1").registry, "docker.io");
        assert_eq!(r("org/app:1").repository, "org/app");
    }

    #[test]
    fn bad_references() {
        for bad in [
            "",
            "App",
            "app:",
            "app:-x",
            "app@sha256:12",
            "ghcr.io//app",
            "a/../b",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad:?}");
        }
    }
}
