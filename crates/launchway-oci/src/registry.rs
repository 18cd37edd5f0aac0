//! Pulling from a registry (the OCI distribution API): manifests and
//! blobs over HTTPS with rustls, or plain HTTP to a loopback host or a
//! mirror that says so. Authentication follows the registry's challenge:
//! `Bearer` (a token from its realm, asked with the credentials when there
//! are some) or `Basic`. Credentials never go anywhere but the registry
//! and its token realm; redirects (blob storage) carry none.

use crate::auth::Credentials;
use crate::manifest::{self, Document, Platform};
use crate::mirrors::Registries;
use crate::source::{Blobs, Image};
use crate::{OciError, Reference, sha256_digest};
use std::io::Read;
use std::sync::{Arc, Mutex};

pub struct Registry<'a> {
    registries: &'a Registries,
}

/// One repository on one registry, with the authorisation it earned.
struct Session {
    agent: ureq::Agent,
    base: String,
    /// The registry as the user named it (for messages).
    registry: String,
    repository: String,
    credentials: Option<Credentials>,
    authorization: Mutex<Option<String>>,
}

/// The value of a `key="value"` parameter in a challenge.
fn param(challenge: &str, key: &str) -> Option<String> {
    let lower = challenge.to_ascii_lowercase();
    let at = lower.find(&format!("{key}=\""))? + key.len() + 2;
    let end = challenge[at..].find('"')?;
    Some(challenge[at..at + end].to_string())
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

impl Session {
    fn error(&self, message: impl Into<String>) -> OciError {
        OciError::Registry {
            registry: self.registry.clone(),
            message: message.into(),
        }
    }

    /// GET with the registry's authentication dance on a 401.
    fn get(&self, path: &str, accept: Option<&str>) -> Result<ureq::Body, OciError> {
        let url = if self.repository.is_empty() {
            format!("{}/v2/", self.base)
        } else {
            format!("{}/v2/{}/{path}", self.base, self.repository)
        };
        let res = self.authorized(&url, |auth| {
            let mut r = self.agent.get(&url);
            if let Some(a) = accept {
                r = r.header("Accept", a);
            }
            if let Some(a) = auth {
                r = r.header("Authorization", a);
            }
            r.call()
        })?;
        let status = res.status().as_u16();
        if !(200..300).contains(&status) {
            let body = res
                .into_body()
                .with_config()
                .limit(64 << 10)
                .read_to_string()
                .unwrap_or_default();
            let message = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["errors"][0]["message"].as_str().map(str::to_string))
                .unwrap_or_else(|| body.trim().chars().take(200).collect());
            let what = match status {
                401 if self.credentials.is_none() => {
                    " (no credentials: log in with docker/login-action, or add them to an auth file)"
                        .to_string()
                }
                401 | 403 => " (the credentials were refused)".into(),
                404 => " (not found)".into(),
                _ => String::new(),
            };
            return Err(self.error(format!(
                "GET {}/{path}: HTTP {status}{what}: {message}",
                self.repository
            )));
        }
        Ok(res.into_body())
    }

    fn authenticate(&self, challenge: &str) -> Result<(), OciError> {
        let scheme = challenge
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        let header = match scheme.as_str() {
            "basic" => self
                .credentials
                .as_ref()
                .map(Credentials::basic)
                .ok_or_else(|| {
                    self.error("asks for credentials and there are no credentials for it (log in with docker/login-action or podman login, or add them to an auth file)")
                })?,
            "bearer" => {
                let realm = param(challenge, "realm")
                    .ok_or_else(|| self.error("a Bearer challenge without realm"))?;
                if !realm.starts_with("https://") && !realm.starts_with("http://") {
                    return Err(self.error(format!("token realm '{realm}' is not a URL")));
                }
                let mut url = format!("{realm}?");
                if let Some(s) = param(challenge, "service") {
                    url.push_str(&format!("service={}&", encode(&s)));
                }
                let scope = param(challenge, "scope").or_else(|| {
                    (!self.repository.is_empty())
                        .then(|| format!("repository:{}:pull", self.repository))
                });
                if let Some(scope) = scope {
                    url.push_str(&format!("scope={}", encode(&scope)));
                }
                let mut req = self.agent.get(&url);
                if let Some(c) = &self.credentials {
                    req = req.header("Authorization", c.basic());
                }
                let res = req.call().map_err(|e| self.error(format!("token: {e}")))?;
                let status = res.status().as_u16();
                let body = res
                    .into_body()
                    .with_config()
                    .limit(1 << 20)
                    .read_to_string()
                    .map_err(|e| self.error(format!("token: {e}")))?;
                if status != 200 {
                    return Err(self.error(format!(
                        "the token service refused: HTTP {status}{}",
                        if self.credentials.is_some() {
                            " (the credentials were refused)"
                        } else {
                            " (no credentials)"
                        }
                    )));
                }
                let v: serde_json::Value =
                    serde_json::from_str(&body).map_err(|e| self.error(format!("token: {e}")))?;
                let token = v["token"]
                    .as_str()
                    .or_else(|| v["access_token"].as_str())
                    .ok_or_else(|| self.error("the token service answered without a token"))?;
                format!("Bearer {token}")
            }
            _ => return Err(self.error(format!("unsupported authentication '{challenge}'"))),
        };
        if let Ok(mut g) = self.authorization.lock() {
            *g = Some(header);
        }
        Ok(())
    }

    fn document(&self, target: &str, want_digest: Option<&str>) -> Result<Vec<u8>, OciError> {
        let mut bytes = Vec::new();
        self.get(&format!("manifests/{target}"), Some(manifest::ACCEPT))?
            .into_with_config()
            .limit(16 << 20)
            .reader()
            .read_to_end(&mut bytes)
            .map_err(|e| self.error(e.to_string()))?;
        if let Some(d) = want_digest {
            let actual = sha256_digest(&bytes);
            if actual != d {
                return Err(OciError::Digest {
                    digest: d.to_string(),
                    actual,
                });
            }
        }
        Ok(bytes)
    }
}

/// The OCI media type of a layer, whatever the source called it.
fn oci_layer_type(t: &str) -> &'static str {
    if t.ends_with("gzip") || t.ends_with("tar.gzip") {
        "application/vnd.oci.image.layer.v1.tar+gzip"
    } else if t.ends_with("zstd") {
        "application/vnd.oci.image.layer.v1.tar+zstd"
    } else {
        "application/vnd.oci.image.layer.v1.tar"
    }
}

impl Session {
    /// A request with the authentication dance on a 401: `send` is called
    /// with the `Authorization` header to use (if any).
    fn authorized(
        &self,
        what: &str,
        send: impl Fn(Option<&str>) -> Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<ureq::http::Response<ureq::Body>, OciError> {
        let current = || self.authorization.lock().ok().and_then(|g| g.clone());
        let mut res = send(current().as_deref()).map_err(|e| self.error(format!("{what}: {e}")))?;
        if res.status() == 401 {
            let challenge = res
                .headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            self.authenticate(&challenge)?;
            res = send(current().as_deref()).map_err(|e| self.error(format!("{what}: {e}")))?;
        }
        Ok(res)
    }

    fn refused(&self, what: &str, res: ureq::http::Response<ureq::Body>) -> OciError {
        let status = res.status().as_u16();
        let body = res
            .into_body()
            .with_config()
            .limit(64 << 10)
            .read_to_string()
            .unwrap_or_default();
        let hint = match status {
            401 | 403 => " (the credentials were refused, or may not push here)",
            _ => "",
        };
        self.error(format!(
            "{what}: HTTP {status}{hint}: {}",
            body.trim().chars().take(200).collect::<String>()
        ))
    }

    /// Uploads a blob unless the registry has it (monolithic upload).
    fn put_blob(&self, digest: &str, bytes: &[u8]) -> Result<(), OciError> {
        let base = format!("{}/v2/{}", self.base, self.repository);
        let head = self.authorized("HEAD blob", |auth| {
            let mut r = self.agent.head(format!("{base}/blobs/{digest}"));
            if let Some(a) = auth {
                r = r.header("Authorization", a);
            }
            r.call()
        })?;
        if head.status() == 200 {
            return Ok(());
        }
        let started = self.authorized("start upload", |auth| {
            let mut r = self.agent.post(format!("{base}/blobs/uploads/"));
            if let Some(a) = auth {
                r = r.header("Authorization", a);
            }
            r.send_empty()
        })?;
        if started.status() != 202 {
            return Err(self.refused("start upload", started));
        }
        let location = started
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| self.error("an upload without a Location"))?
            .to_string();
        let mut url = if location.starts_with("http://") || location.starts_with("https://") {
            location
        } else {
            format!("{}{location}", self.base)
        };
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(&format!("digest={}", encode(digest)));
        let done = self.authorized("upload", |auth| {
            let mut r = self
                .agent
                .put(&url)
                .header("Content-Type", "application/octet-stream");
            if let Some(a) = auth {
                r = r.header("Authorization", a);
            }
            r.send(bytes)
        })?;
        if done.status() != 201 {
            return Err(self.refused("upload", done));
        }
        Ok(())
    }
}

struct RegistryBlobs(Arc<Session>);

impl Blobs for RegistryBlobs {
    fn open(&self, key: &str) -> Result<Box<dyn Read + '_>, OciError> {
        let digest = key
            .strip_prefix("blobs/sha256/")
            .map_or_else(|| key.to_string(), |h| format!("sha256:{h}"));
        let body = self.0.get(&format!("blobs/{digest}"), None)?;
        Ok(Box::new(body.into_with_config().limit(u64::MAX).reader()))
    }
}

impl Registry<'_> {
    pub fn new(registries: &Registries) -> Registry<'_> {
        Registry { registries }
    }

    fn session(&self, r: &Reference) -> Session {
        let route = self.registries.route(&r.registry);
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(std::time::Duration::from_secs(15)))
            .build()
            .into();
        Session {
            agent,
            base: format!(
                "{}://{}",
                if route.plain_http { "http" } else { "https" },
                route.host
            ),
            registry: if route.host == r.registry || r.registry == crate::reference::DOCKER_HUB {
                r.registry.clone()
            } else {
                format!("{} (mirror of {})", route.host, r.registry)
            },
            repository: r.repository.clone(),
            credentials: self
                .registries
                .credentials(&route.host)
                .or_else(|| self.registries.credentials(&r.registry)),
            authorization: Mutex::new(None),
        }
    }

    /// Checks credentials against a registry (as `docker login` does):
    /// `GET /v2/` answered after authenticating with them.
    pub fn check_login(&self, registry: &str, creds: &Credentials) -> Result<(), OciError> {
        let r = Reference {
            registry: registry.to_string(),
            repository: String::new(),
            tag: None,
            digest: None,
        };
        let mut session = self.session(&r);
        session.credentials = Some(creds.clone());
        session.get("", None).map(|_| ())
    }

    /// The digest a reference names now (of its index for a multi-arch
    /// image): what a deployment pins so the tag moving changes nothing.
    pub fn resolve_digest(&self, r: &Reference) -> Result<String, OciError> {
        let session = self.session(r);
        let bytes = session.document(r.target(), r.digest.as_deref())?;
        Ok(sha256_digest(&bytes))
    }

    /// Pushes an image (its layers, configuration and an OCI manifest) to
    /// `dest`, through `dest`'s mirror when there is one; the manifest's
    /// digest. Blobs the registry has are not sent again; each blob is
    /// checked against its digest before it goes.
    pub fn push(&self, image: &Image, dest: &Reference) -> Result<String, OciError> {
        let session = self.session(dest);
        let read = |key: &str, want: Option<&str>| -> Result<Vec<u8>, OciError> {
            let mut bytes = Vec::new();
            image
                .blobs
                .open(key)?
                .read_to_end(&mut bytes)
                .map_err(|e| OciError::io(key, e))?;
            let digest = sha256_digest(&bytes);
            if let Some(w) = want
                && w != digest
            {
                return Err(OciError::Digest {
                    digest: w.to_string(),
                    actual: digest,
                });
            }
            Ok(bytes)
        };
        let mut layers = Vec::new();
        for l in &image.layers {
            let bytes = read(&l.key, l.verify.as_deref())?;
            let digest = sha256_digest(&bytes);
            session.put_blob(&digest, &bytes)?;
            layers.push(serde_json::json!({
                "mediaType": oci_layer_type(&l.media_type),
                "digest": digest,
                "size": bytes.len(),
            }));
        }
        let config = read(&image.config_key, Some(&image.config_digest))?;
        session.put_blob(&image.config_digest, &config)?;
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": manifest::OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": image.config_digest,
                "size": config.len(),
            },
            "layers": layers,
        });
        let body = serde_json::to_vec(&manifest).map_err(|e| OciError::format("manifest", e))?;
        let digest = sha256_digest(&body);
        let target = dest.tag.clone().unwrap_or_else(|| digest.clone());
        let url = format!(
            "{}/v2/{}/manifests/{target}",
            session.base, session.repository
        );
        let res = session.authorized("PUT manifest", |auth| {
            let mut r = session
                .agent
                .put(&url)
                .header("Content-Type", manifest::OCI_MANIFEST);
            if let Some(a) = auth {
                r = r.header("Authorization", a);
            }
            r.send(&body[..])
        })?;
        if res.status() != 201 {
            return Err(session.refused("PUT manifest", res));
        }
        Ok(digest)
    }

    /// The image a reference names, for `platform` when it is an index.
    pub fn image(&self, r: &Reference, platform: &Platform) -> Result<Image, OciError> {
        let session = Arc::new(self.session(r));
        let mut bytes = session.document(r.target(), r.digest.as_deref())?;
        let mut digest = sha256_digest(&bytes);
        let mut doc = Document::parse(&format!("{r}"), &bytes)?;
        if doc.is_index() {
            let entries = doc.manifests.clone().unwrap_or_default();
            let chosen = manifest::choose(&entries, platform)?.digest.clone();
            bytes = session.document(&chosen, Some(&chosen))?;
            digest = chosen;
            doc = Document::parse(&digest, &bytes)?;
        }
        let blobs: Box<dyn Blobs> = Box::new(RegistryBlobs(session));
        let config_desc = doc
            .config
            .clone()
            .ok_or_else(|| OciError::format(&digest, "a manifest without config"))?;
        let mut config_bytes = Vec::new();
        blobs
            .open(&format!("blobs/{}", config_desc.digest.replace(':', "/")))?
            .take(16 << 20)
            .read_to_end(&mut config_bytes)
            .map_err(|e| OciError::io(&config_desc.digest, e))?;
        let actual = sha256_digest(&config_bytes);
        if actual != config_desc.digest {
            return Err(OciError::Digest {
                digest: config_desc.digest,
                actual,
            });
        }
        let config = crate::manifest::Config::parse(&config_bytes)?;
        let layers = doc
            .layers
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|l| crate::source::Layer {
                key: format!("blobs/{}", l.digest.replace(':', "/")),
                verify: Some(l.digest.clone()),
                digest: l.digest,
                media_type: l.media_type,
                size: l.size,
            })
            .collect();
        Ok(Image {
            target: format!("registry:{r}"),
            manifest_digest: Some(digest),
            config_key: format!("blobs/{}", config_desc.digest.replace(':', "/")),
            config_digest: config_desc.digest,
            config,
            tags: r.tag.iter().map(|t| format!("{}:{t}", r.name())).collect(),
            layers,
            blobs,
            scratch: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        let c = r#"Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:org/app:pull""#;
        assert_eq!(param(c, "realm").as_deref(), Some("https://ghcr.io/token"));
        assert_eq!(param(c, "service").as_deref(), Some("ghcr.io"));
        assert_eq!(
            param(c, "scope").as_deref(),
            Some("repository:org/app:pull")
        );
        assert_eq!(param(c, "missing"), None);
        assert_eq!(encode("repository:a/b:pull"), "repository%3Aa%2Fb%3Apull");
    }
}
