//! Model versions: the built-in registry (versions with their files,
//! content-addressed, and aliases such as `Staging` or `Production`) and
//! MLflow's registry over its REST API. An environment naming a stage or
//! alias (`model_stage: Production`) is pinned to the version it resolves
//! to when a change is committed, so a moved alias never deploys
//! unreviewed. The I/O edge: files under the registry directory, HTTP.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One registered version.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Version {
    pub version: u64,
    /// The file's name as registered (`model.json`).
    pub file: String,
    pub sha256: String,
    pub size: u64,
    /// Where it came from (a run, a path).
    pub source: String,
    /// Unix seconds.
    pub created: u64,
}

/// A registered model: its versions and aliases.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Model {
    pub name: String,
    pub versions: Vec<Version>,
    /// Alias → version (`Production` → 3).
    pub aliases: BTreeMap<String, u64>,
}

/// The built-in registry: `<dir>/<name>/model.json` plus one directory
/// per version holding the registered file.
#[derive(Debug, Clone)]
pub struct Registry {
    pub dir: PathBuf,
}

fn valid_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && !name.starts_with('.')
}

impl Registry {
    pub fn new(dir: &Path) -> Registry {
        Registry {
            dir: dir.to_path_buf(),
        }
    }

    fn model_dir(&self, name: &str) -> Result<PathBuf, String> {
        if !valid_name(name) {
            return Err(format!(
                "'{name}' is not a model name (letters, digits, '.', '_', '-')"
            ));
        }
        Ok(self.dir.join(name))
    }

    /// A model's record (`None` when it was never registered).
    pub fn model(&self, name: &str) -> Result<Option<Model>, String> {
        let path = self.model_dir(name)?.join("model.json");
        match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| format!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    /// Every registered model, by name.
    pub fn models(&self) -> Result<Vec<Model>, String> {
        let mut out = Vec::new();
        let Ok(rd) = std::fs::read_dir(&self.dir) else {
            return Ok(out);
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if let Some(m) = self.model(&name).ok().flatten() {
                out.push(m);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn save(&self, m: &Model) -> Result<(), String> {
        let dir = self.model_dir(&m.name)?;
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let tmp = dir.join(".model.json");
        std::fs::write(
            &tmp,
            serde_json::to_vec_pretty(m).map_err(|e| e.to_string())?,
        )
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, dir.join("model.json")).map_err(|e| e.to_string())
    }

    /// Registers `file` as the next version of `name` (the same content
    /// as an existing version is that version again); returns it.
    pub fn register(&self, name: &str, file: &Path, source: &str) -> Result<Version, String> {
        use sha2::{Digest, Sha256};
        let bytes = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
        let sha256 = format!("{:x}", Sha256::digest(&bytes));
        let mut m = self.model(name)?.unwrap_or_else(|| Model {
            name: name.to_string(),
            ..Model::default()
        });
        if let Some(v) = m.versions.iter().find(|v| v.sha256 == sha256) {
            return Ok(v.clone());
        }
        let file_name = file
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .filter(|n| valid_name(n))
            .unwrap_or_else(|| "model".into());
        let version = m.versions.iter().map(|v| v.version).max().unwrap_or(0) + 1;
        let vdir = self.model_dir(name)?.join(version.to_string());
        std::fs::create_dir_all(&vdir).map_err(|e| format!("{}: {e}", vdir.display()))?;
        std::fs::write(vdir.join(&file_name), &bytes)
            .map_err(|e| format!("{}: {e}", vdir.display()))?;
        let v = Version {
            version,
            file: file_name,
            sha256,
            size: bytes.len() as u64,
            source: source.to_string(),
            created: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        };
        m.versions.push(v.clone());
        self.save(&m)?;
        Ok(v)
    }

    /// Points `alias` at `version`.
    pub fn set_alias(&self, name: &str, alias: &str, version: u64) -> Result<(), String> {
        if !valid_name(alias) {
            return Err(format!("'{alias}' is not an alias name"));
        }
        let mut m = self
            .model(name)?
            .ok_or_else(|| format!("no model '{name}' in the registry"))?;
        if !m.versions.iter().any(|v| v.version == version) {
            return Err(format!("model '{name}' has no version {version}"));
        }
        m.aliases.insert(alias.to_string(), version);
        self.save(&m)
    }

    /// The version an alias or stage names (case-insensitive, as MLflow's
    /// stages are), or a version number as it is.
    pub fn resolve(&self, name: &str, alias: &str) -> Result<u64, String> {
        let m = self.model(name)?.ok_or_else(|| {
            format!("no model '{name}' in the registry (launchway model register {name} FILE)")
        })?;
        if let Ok(n) = alias.parse::<u64>()
            && m.versions.iter().any(|v| v.version == n)
        {
            return Ok(n);
        }
        m.aliases
            .iter()
            .find(|(a, _)| a.eq_ignore_ascii_case(alias))
            .map(|(_, v)| *v)
            .ok_or_else(|| {
                format!(
                    "model '{name}' has no alias '{alias}' (aliases: {}); `launchway model alias {name} {alias} VERSION`",
                    if m.aliases.is_empty() {
                        "none".to_string()
                    } else {
                        m.aliases.keys().cloned().collect::<Vec<_>>().join(", ")
                    }
                )
            })
    }

    /// The file of a registered version.
    pub fn file(&self, name: &str, version: u64) -> Option<PathBuf> {
        let m = self.model(name).ok()??;
        let v = m.versions.iter().find(|v| v.version == version)?;
        let p = self
            .model_dir(name)
            .ok()?
            .join(version.to_string())
            .join(&v.file);
        p.is_file().then_some(p)
    }
}

/// Registers `file` (or takes an existing `version`) and points `aliases`
/// at it: what `launchway/register-model` and `launchway model` do.
pub fn register_and_alias(
    registry: &Registry,
    name: &str,
    file: Option<&Path>,
    version: Option<u64>,
    aliases: &[String],
    source: &str,
) -> Result<u64, String> {
    let v = match (file, version) {
        (Some(f), _) => registry.register(name, f, source)?.version,
        (None, Some(v)) => v,
        (None, None) => return Err("give a file to register or a version".into()),
    };
    for a in aliases {
        registry.set_alias(name, a, v)?;
    }
    Ok(v)
}

/// Resolves a stage or alias on an MLflow tracking server: aliases through
/// `registered-models/alias`, stages (`None`, `Staging`, `Production`,
/// `Archived`) through `registered-models/get-latest-versions`.
pub fn mlflow_resolve(uri: &str, name: &str, alias: &str) -> Result<u64, String> {
    let base = uri.trim_end_matches('/');
    let agent = crate::http_agent();
    let stage = ["none", "staging", "production", "archived"]
        .contains(&alias.to_ascii_lowercase().as_str());
    let (status, body) = if stage {
        let mut r = agent
            .post(&format!(
                "{base}/api/2.0/mlflow/registered-models/get-latest-versions"
            ))
            .header("Content-Type", "application/json")
            .send(serde_json::json!({"name": name, "stages": [alias]}).to_string())
            .map_err(|e| format!("MLflow at {base}: {e}"))?;
        (
            r.status().as_u16(),
            r.body_mut().read_to_string().unwrap_or_default(),
        )
    } else {
        let mut r = agent
            .get(&format!("{base}/api/2.0/mlflow/registered-models/alias"))
            .query("name", name)
            .query("alias", alias)
            .call()
            .map_err(|e| format!("MLflow at {base}: {e}"))?;
        (
            r.status().as_u16(),
            r.body_mut().read_to_string().unwrap_or_default(),
        )
    };
    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    if status != 200 {
        return Err(format!(
            "MLflow at {base} could not resolve {name}@{alias}: {}",
            v["message"].as_str().unwrap_or(&body)
        ));
    }
    let version = if stage {
        v["model_versions"].as_array().and_then(|a| {
            a.iter()
                .filter_map(|m| m["version"].as_str()?.parse::<u64>().ok())
                .max()
        })
    } else {
        v["model_version"]["version"]
            .as_str()
            .and_then(|s| s.parse().ok())
    };
    version.ok_or_else(|| format!("MLflow at {base} has no version of {name} in '{alias}'"))
}

/// Whether the model version `env` pins can be served: on this machine
/// (target local) the version must be in the built-in registry — it is
/// where `MODEL_PATH` comes from, and a missing one would silently serve
/// something else. A cluster environment with `mlflow_uri` is resolved
/// there. No registry to check against fails closed.
pub fn check_pinned(
    registry: Option<&Registry>,
    env: &crate::config::Environment,
) -> Result<(), String> {
    let (Some(name), Some(version)) = (
        env.config.get("MODEL_NAME"),
        env.config.get("MODEL_VERSION"),
    ) else {
        return Ok(());
    };
    let mlflow = env.config.get("MLFLOW_URI");
    if env.target == crate::config::Target::Kubernetes && mlflow.is_some() {
        // Resolved by the cluster's MLflow, which this machine may not reach.
        return Ok(());
    }
    let Ok(v) = version.parse::<u64>() else {
        return Err(format!("model_version '{version}' is not a version number"));
    };
    let in_registry = registry.is_some_and(|r| r.model(name).ok().flatten().is_some());
    if let (Some(uri), false) = (mlflow, in_registry) {
        return mlflow_has_version(uri, name, v);
    }
    let Some(r) = registry else {
        return Err(format!(
            "no model registry to check {name} version {v} against"
        ));
    };
    if r.file(name, v).is_some() {
        return Ok(());
    }
    let known = r
        .model(name)
        .ok()
        .flatten()
        .map(|m| {
            m.versions
                .iter()
                .map(|v| v.version.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        })
        .filter(|k| !k.is_empty());
    Err(match known {
        Some(k) => format!("model {name} has no version {v} in the registry (versions: {k})"),
        None => {
            format!("model {name} is not in the registry (launchway model register {name} FILE)")
        }
    })
}

/// Whether MLflow at `uri` has version `v` of `name` (unreachable: an error).
pub fn mlflow_has_version(uri: &str, name: &str, v: u64) -> Result<(), String> {
    let base = uri.trim_end_matches('/');
    let agent = crate::http_agent();
    let mut r = agent
        .get(&format!("{base}/api/2.0/mlflow/model-versions/get"))
        .query("name", name)
        .query("version", v.to_string())
        .call()
        .map_err(|e| format!("cannot check {name} version {v} on MLflow at {base}: {e}"))?;
    match r.status().as_u16() {
        200 => Ok(()),
        status => {
            let body = r.body_mut().read_to_string().unwrap_or_default();
            let v2: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            Err(format!(
                "MLflow at {base} has no version {v} of {name} ({status}: {})",
                v2["message"].as_str().unwrap_or(&body)
            ))
        }
    }
}

/// Resolves an environment's `model_stage` to a version. On this machine
/// (`local`) the built-in registry answers when it knows the model — a
/// cluster-only `mlflow_uri` does not block a local deploy; otherwise
/// MLflow when the environment names `mlflow_uri`, else the registry.
pub fn resolve(
    registry: Option<&Registry>,
    mlflow_uri: Option<&str>,
    local: bool,
    name: &str,
    alias: &str,
) -> Result<u64, String> {
    if local
        && let Some(r) = registry
        && r.model(name).ok().flatten().is_some()
    {
        return r.resolve(name, alias);
    }
    match (mlflow_uri, registry) {
        (Some(uri), _) => mlflow_resolve(uri, name, alias),
        (None, Some(r)) => r.resolve(name, alias),
        (None, None) => Err(format!(
            "cannot resolve {name}@{alias}: no model registry (set mlflow_uri, or register the model with launchway model register)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_aliases_and_resolution() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let r = Registry::new(tmp.path());
        let f = tmp.path().join("model.json");
        std::fs::write(&f, "{\"w\": 1}").expect("write");
        let v1 = r.register("Churn", &f, "test").expect("register");
        assert_eq!(v1.version, 1);
        // The same content is the same version.
        assert_eq!(r.register("Churn", &f, "again").expect("again").version, 1);
        std::fs::write(&f, "{\"w\": 2}").expect("write");
        assert_eq!(r.register("Churn", &f, "test").expect("v2").version, 2);
        r.set_alias("Churn", "Production", 1).expect("alias");
        assert_eq!(r.resolve("Churn", "production").expect("resolve"), 1);
        assert_eq!(r.resolve("Churn", "2").expect("number"), 2);
        assert!(
            r.resolve("Churn", "Staging")
                .unwrap_err()
                .contains("no alias")
        );
        assert!(r.set_alias("Churn", "x", 9).is_err());
        assert!(r.register("../etc", &f, "x").is_err());
        let file = r.file("Churn", 1).expect("file");
        assert_eq!(std::fs::read_to_string(file).expect("read"), "{\"w\": 1}");
    }
}
