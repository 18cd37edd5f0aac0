//! Rust: `Cargo.lock` (v1–v4). Workspace members (no `source`) are the
//! project itself and are left out.

use super::{err, toml_doc};
use crate::sbom::{CollectError, Component, Hash};
use crate::version::Ecosystem;

/// One `[[package]]` as written.
struct Locked {
    name: String,
    version: String,
    /// From a registry or git (not a workspace member).
    external: bool,
    checksum: Option<String>,
    deps: Vec<String>,
}

pub fn cargo_lock(file: &str, text: &str) -> Result<Vec<Component>, CollectError> {
    let doc = toml_doc(file, text)?;
    let Some(pkgs) = doc.get("package").and_then(|p| p.as_array()) else {
        return Ok(Vec::new());
    };
    // v1 lockfiles keep checksums in [metadata]: "checksum NAME VERSION (SOURCE)" = "hash".
    let legacy = doc.get("metadata").and_then(|m| m.as_table());
    let mut entries: Vec<Locked> = Vec::new();
    for p in pkgs {
        let name = p
            .get("name")
            .and_then(|v| v.as_str())
            .ok_or_else(|| err(file, None, "a [[package]] has no name"))?;
        let version = p
            .get("version")
            .and_then(|v| v.as_str())
            .ok_or_else(|| err(file, None, format!("package '{name}' has no version")))?;
        let source = p.get("source").and_then(|v| v.as_str());
        let checksum = p
            .get("checksum")
            .and_then(|v| v.as_str())
            .map(str::to_string)
            .or_else(|| {
                let src = source?;
                legacy?
                    .get(&format!("checksum {name} {version} ({src})"))?
                    .as_str()
                    .map(str::to_string)
            });
        let deps = p
            .get("dependencies")
            .and_then(|d| d.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|d| d.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        entries.push(Locked {
            name: name.to_string(),
            version: version.to_string(),
            external: source.is_some(),
            checksum,
            deps,
        });
    }
    let purl_of = |dep: &str| -> Option<String> {
        let mut parts = dep.split_whitespace();
        let name = parts.next()?;
        let version = parts.next();
        entries
            .iter()
            .filter(|e| e.name == name && version.is_none_or(|v| v == e.version))
            .map(|e| crate::sbom::purl::purl(Ecosystem::Crates, &e.name, &e.version))
            .next()
    };
    let mut out = Vec::new();
    for Locked {
        name,
        version,
        external,
        checksum,
        deps,
    } in &entries
    {
        let mut c = Component::new(Ecosystem::Crates, name, version, file);
        c.local = !external;
        if let Some(h) = checksum
            .as_ref()
            .filter(|h| h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit()))
        {
            c.hashes.push(Hash {
                alg: "SHA-256".into(),
                value: h.to_ascii_lowercase(),
            });
        }
        c.dependencies = deps.iter().filter_map(|d| purl_of(d)).collect();
        out.push(c);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lockfile() {
        let text = r#"
version = 3

[[package]]
name = "app"
version = "0.1.0"
dependencies = ["serde", "itoa 1.0.9"]

[[package]]
name = "serde"
version = "1.0.190"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "91d3c334ca1ee894a2c6f6ad698fe8c435b76d504b13d436f0685d648d6d96f7"
dependencies = ["itoa 1.0.9 (registry+https://github.com/rust-lang/crates.io-index)"]

[[package]]
name = "itoa"
version = "1.0.9"
source = "registry+https://github.com/rust-lang/crates.io-index"
"#;
        let cs = cargo_lock("Cargo.lock", text).unwrap();
        assert_eq!(cs.len(), 3);
        assert!(cs[0].local, "the workspace member is the project itself");
        assert_eq!(
            cs[0].dependencies,
            ["pkg:cargo/serde@1.0.190", "pkg:cargo/itoa@1.0.9"]
        );
        assert_eq!(cs[1].purl, "pkg:cargo/serde@1.0.190");
        assert_eq!(cs[1].hashes[0].alg, "SHA-256");
        assert_eq!(cs[1].dependencies, ["pkg:cargo/itoa@1.0.9"]);
        let e = cargo_lock("Cargo.lock", "[[package]]\nname = 1\n").unwrap_err();
        assert!(e.message.contains("no name"));
        assert!(
            cargo_lock("Cargo.lock", "[[package]\n")
                .unwrap_err()
                .line
                .is_some()
        );
    }
}
